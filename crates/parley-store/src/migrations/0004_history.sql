-- Conference and call history: who was where, when. No audio or video.

CREATE TABLE meetings (
    -- Random hex id made by the server when the room opened.
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    -- 'meeting' or 'call'.
    kind TEXT NOT NULL,
    -- Unix seconds.
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);

CREATE INDEX meetings_started_at ON meetings (started_at);

CREATE TABLE meeting_participants (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    -- The participant id the meeting knew them by.
    participant TEXT NOT NULL,
    -- The account, for signed-in participants; NULL for guests.
    account_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    left_at INTEGER
);

CREATE INDEX meeting_participants_meeting ON meeting_participants (meeting_id);
CREATE INDEX meeting_participants_account ON meeting_participants (account_id);

ALTER TABLE chat_messages ADD COLUMN meeting_id TEXT;
CREATE INDEX chat_messages_meeting ON chat_messages (meeting_id);
