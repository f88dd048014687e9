-- Mail-style domains users belong to.
CREATE TABLE domains (
    name       TEXT PRIMARY KEY NOT NULL,   -- lower case, e.g. example.org
    created_at INTEGER NOT NULL
) STRICT;

-- Accounts. Guests have none: they join rooms by link.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    local         TEXT NOT NULL,            -- the part before @, lower case
    domain        TEXT NOT NULL REFERENCES domains (name) ON DELETE RESTRICT,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,            -- argon2id, PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    UNIQUE (local, domain)
) STRICT;

-- Signed-in browsers. Only a hash of the cookie's token is stored.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Personal access tokens for the API. Only a hash is stored.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
