-- Room security that outlives a meeting, and chat kept under the history
-- retention setting.

CREATE TABLE room_config (
    room TEXT PRIMARY KEY,
    -- The owning account; the room forgets it if the account is deleted.
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- JSON array of account ids made moderators.
    moderators TEXT NOT NULL DEFAULT '[]',
    -- PHC string of the room password (argon2id), or NULL.
    password_hash TEXT,
    lobby INTEGER NOT NULL DEFAULT 0,
    -- 'next_account' or 'open_lobby'.
    on_moderator_leave TEXT NOT NULL DEFAULT 'next_account',
    updated_at INTEGER NOT NULL
);

CREATE TABLE chat_messages (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    -- Unix milliseconds when the server received it.
    sent_at INTEGER NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    -- Participant id of a private message's recipient, else NULL.
    recipient_id TEXT,
    body TEXT NOT NULL
);

CREATE INDEX chat_messages_room ON chat_messages (room, sent_at);
CREATE INDEX chat_messages_sent_at ON chat_messages (sent_at);
