-- Rooms that have been used, for the admin console and history.
CREATE TABLE rooms (
    name            TEXT PRIMARY KEY NOT NULL,
    first_opened_at INTEGER NOT NULL,  -- unix seconds
    last_opened_at  INTEGER NOT NULL,  -- unix seconds
    times_opened    INTEGER NOT NULL DEFAULT 1
) STRICT;

-- Administrator settings: one JSON value per key, validated by the application.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL CHECK (json_valid(value)),
    updated_at INTEGER NOT NULL        -- unix seconds
) STRICT;
