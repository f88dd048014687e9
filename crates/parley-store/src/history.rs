//! Conference and call history: meetings, who took part and when, and the
//! chat that went with them. Visible to the meeting's signed-in
//! participants; exported and deleted per user; purged after the
//! retention period.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// One participation in a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendance {
    /// The participant id in that meeting.
    pub participant: String,
    /// The account, for signed-in participants.
    pub account_id: Option<i64>,
    /// Display name.
    pub name: String,
    /// Unix seconds.
    pub joined_at: i64,
    /// Unix seconds; `None` while still there.
    pub left_at: Option<i64>,
}

/// A chat message of a meeting, as one participant may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryChat {
    /// Unix milliseconds.
    pub sent_at: i64,
    /// Sender's participant id.
    pub sender_id: String,
    /// Sender's name.
    pub sender_name: String,
    /// Recipient's participant id for a private message.
    pub recipient_id: Option<String>,
    /// The text.
    pub body: String,
}

/// A meeting or call with its participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// Id.
    pub id: String,
    /// Room name.
    pub room: String,
    /// `meeting` or `call`.
    pub kind: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while going on.
    pub ended_at: Option<i64>,
    /// Everyone who took part, in order of joining (one row per stay).
    pub participants: Vec<Attendance>,
    /// Chat the asking user could see: room messages and their own private ones.
    pub chat: Vec<HistoryChat>,
}

impl Store {
    /// Records that a meeting started.
    pub fn start_meeting(
        &self,
        id: &str,
        room: &str,
        kind: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meetings (id, room, kind, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, room, kind, at],
        )?;
        Ok(())
    }

    /// Records that a meeting ended.
    pub fn end_meeting(&self, id: &str, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE meetings SET ended_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }

    /// Records that someone joined a meeting. An account that no longer
    /// exists is recorded as a guest.
    pub fn record_join(
        &self,
        meeting: &str,
        participant: &str,
        account_id: Option<i64>,
        name: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let account = match account_id {
            Some(id) => self
                .conn
                .query_row("SELECT id FROM users WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?,
            None => None,
        };
        self.conn.execute(
            "INSERT INTO meeting_participants (meeting_id, participant, account_id, name, joined_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![meeting, participant, account, name, at],
        )?;
        Ok(())
    }

    /// Records that someone left a meeting.
    pub fn record_leave(
        &self,
        meeting: &str,
        participant: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE meeting_participants SET left_at = ?3 \
             WHERE meeting_id = ?1 AND participant = ?2 AND left_at IS NULL",
            params![meeting, participant, at],
        )?;
        Ok(())
    }

    /// Links a stored chat message's meeting (by its row id).
    pub fn chat_in_meeting(&self, chat_row: i64, meeting: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE chat_messages SET meeting_id = ?2 WHERE id = ?1",
            params![chat_row, meeting],
        )?;
        Ok(())
    }

    /// The meetings `account` took part in, newest first, at most `limit`.
    pub fn history(&self, account: i64, limit: usize) -> Result<Vec<Meeting>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, room, kind, started_at, ended_at FROM meetings \
             WHERE id IN (SELECT meeting_id FROM meeting_participants WHERE account_id = ?1) \
             ORDER BY started_at DESC, id LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let meetings: Vec<Meeting> = stmt
            .query_map(params![account, limit], |r| {
                Ok(Meeting {
                    id: r.get(0)?,
                    room: r.get(1)?,
                    kind: r.get(2)?,
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    participants: Vec::new(),
                    chat: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(meetings.len());
        for mut m in meetings {
            m.participants = self.attendance(&m.id)?;
            let mine: Vec<String> = m
                .participants
                .iter()
                .filter(|p| p.account_id == Some(account))
                .map(|p| p.participant.clone())
                .collect();
            m.chat = self
                .meeting_chat(&m.id)?
                .into_iter()
                .filter(|c| {
                    c.recipient_id.is_none()
                        || mine.contains(&c.sender_id)
                        || c.recipient_id.as_ref().is_some_and(|r| mine.contains(r))
                })
                .collect();
            out.push(m);
        }
        Ok(out)
    }

    fn attendance(&self, meeting: &str) -> Result<Vec<Attendance>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT participant, account_id, name, joined_at, left_at FROM meeting_participants \
             WHERE meeting_id = ?1 ORDER BY joined_at, id",
        )?;
        let rows = stmt.query_map([meeting], |r| {
            Ok(Attendance {
                participant: r.get(0)?,
                account_id: r.get(1)?,
                name: r.get(2)?,
                joined_at: r.get(3)?,
                left_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn meeting_chat(&self, meeting: &str) -> Result<Vec<HistoryChat>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT sent_at, sender_id, sender_name, recipient_id, body FROM chat_messages \
             WHERE meeting_id = ?1 ORDER BY sent_at, id",
        )?;
        let rows = stmt.query_map([meeting], |r| {
            Ok(HistoryChat {
                sent_at: r.get(0)?,
                sender_id: r.get(1)?,
                sender_name: r.get(2)?,
                recipient_id: r.get(3)?,
                body: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes `account`'s history: their attendance rows and the chat they
    /// sent; meetings left with no participant go too. Returns how many
    /// attendance rows were deleted.
    pub fn delete_history(&self, account: i64) -> Result<usize, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM chat_messages WHERE sender_id IN \
               (SELECT participant FROM meeting_participants WHERE account_id = ?1) \
             AND meeting_id IN (SELECT meeting_id FROM meeting_participants WHERE account_id = ?1)",
            [account],
        )?;
        let n = tx.execute(
            "DELETE FROM meeting_participants WHERE account_id = ?1",
            [account],
        )?;
        tx.execute(
            "DELETE FROM chat_messages WHERE meeting_id IN (SELECT id FROM meetings \
               WHERE ended_at IS NOT NULL \
               AND id NOT IN (SELECT meeting_id FROM meeting_participants))",
            [],
        )?;
        tx.execute(
            "DELETE FROM meetings WHERE ended_at IS NOT NULL \
             AND id NOT IN (SELECT meeting_id FROM meeting_participants)",
            [],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Deletes meetings that ended before `before` (unix seconds), with
    /// their participants and chat, and any chat older than that; returns
    /// how many meetings went.
    pub fn purge_history(&self, before: i64) -> Result<usize, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM chat_messages WHERE meeting_id IN \
               (SELECT id FROM meetings WHERE ended_at IS NOT NULL AND ended_at < ?1)",
            [before],
        )?;
        tx.execute(
            "DELETE FROM chat_messages WHERE sent_at < ?1",
            [before.saturating_mul(1000)],
        )?;
        let n = tx.execute(
            "DELETE FROM meetings WHERE ended_at IS NOT NULL AND ended_at < ?1",
            [before],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Marks meetings left open by a stop (crash, kill) as ended at `at`;
    /// run at start, when no meeting can be going on.
    pub fn close_open_meetings(&self, at: i64) -> Result<usize, StoreError> {
        self.conn.execute(
            "UPDATE meeting_participants SET left_at = ?1 WHERE left_at IS NULL",
            [at],
        )?;
        Ok(self.conn.execute(
            "UPDATE meetings SET ended_at = ?1 WHERE ended_at IS NULL",
            [at],
        )?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{NewUser, Role, StoredChat};

    fn user(store: &Store, local: &str) -> i64 {
        store
            .create_user(
                &NewUser {
                    local: local.into(),
                    domain: "example.org".into(),
                    display_name: local.into(),
                    password_hash: "x".into(),
                    role: Role::User,
                },
                0,
            )
            .unwrap()
            .id
    }

    #[test]
    fn history_shows_participants_and_their_chat_then_is_purged() {
        let store = Store::open_in_memory().unwrap();
        store.create_domain("example.org", 0).unwrap();
        let (ada, ben) = (user(&store, "ada"), user(&store, "ben"));
        store
            .start_meeting("m1", "standup", "meeting", 100)
            .unwrap();
        store
            .record_join("m1", "pa", Some(ada), "Ada", 100)
            .unwrap();
        store
            .record_join("m1", "pb", Some(ben), "Ben", 110)
            .unwrap();
        store.record_join("m1", "pg", None, "Guest", 120).unwrap();
        for (to, body) in [(None, "hello all"), (Some("pg"), "psst guest")] {
            store
                .add_chat(&StoredChat {
                    room: "standup".into(),
                    sent_at: 130_000,
                    sender_id: "pb".into(),
                    sender_name: "Ben".into(),
                    recipient_id: to.map(str::to_owned),
                    body: body.into(),
                })
                .unwrap();
        }
        store
            .conn
            .execute("UPDATE chat_messages SET meeting_id = 'm1'", [])
            .unwrap();
        store.record_leave("m1", "pa", 200).unwrap();
        store.end_meeting("m1", 300).unwrap();

        let h = store.history(ada, 10).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].participants.len(), 3);
        assert_eq!(h[0].participants[0].left_at, Some(200));
        let texts: Vec<_> = h[0].chat.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(
            texts,
            ["hello all"],
            "others' private messages stay private"
        );
        let texts: Vec<_> = store.history(ben, 10).unwrap()[0]
            .chat
            .iter()
            .map(|c| c.body.clone())
            .collect();
        assert_eq!(
            texts,
            ["hello all", "psst guest"],
            "the sender sees its own"
        );

        // Ben deletes his history: his rows and his chat go, Ada's stay.
        assert_eq!(store.delete_history(ben).unwrap(), 1);
        assert!(store.history(ben, 10).unwrap().is_empty());
        let h = store.history(ada, 10).unwrap();
        assert_eq!(h[0].participants.len(), 2);
        assert!(h[0].chat.is_empty());

        // Retention: nothing ended before 300 → kept; after → purged.
        assert_eq!(store.purge_history(300).unwrap(), 0);
        assert_eq!(store.purge_history(301).unwrap(), 1);
        assert!(store.history(ada, 10).unwrap().is_empty());
    }
}
