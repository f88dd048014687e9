-- Scheduled conferences and whom they invite.

CREATE TABLE conferences (
    id INTEGER PRIMARY KEY,
    -- iCalendar UID, stable across updates.
    uid TEXT NOT NULL UNIQUE,
    organizer_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    room TEXT NOT NULL,
    -- Local wall time in time_zone, 'YYYY-MM-DDTHH:MM'.
    starts_local TEXT NOT NULL,
    -- IANA time zone name.
    time_zone TEXT NOT NULL,
    -- The same instant in unix seconds, for sorting and "upcoming".
    starts_at INTEGER NOT NULL,
    duration_min INTEGER NOT NULL,
    -- iCalendar SEQUENCE: 0, then +1 on each update or cancellation.
    sequence INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX conferences_starts_at ON conferences (starts_at);

CREATE TABLE conference_invitees (
    id INTEGER PRIMARY KEY,
    conference_id INTEGER NOT NULL REFERENCES conferences(id) ON DELETE CASCADE,
    -- The invitee's e-mail address (an account's login, or anyone's).
    email TEXT NOT NULL,
    -- The account with that login, if any.
    account_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- What happened to the last e-mail: 'pending', 'sent', 'failed: …', 'off'.
    delivery TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (conference_id, email)
);

CREATE INDEX conference_invitees_account ON conference_invitees (account_id);
