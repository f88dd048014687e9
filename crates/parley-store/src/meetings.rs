//! What meetings leave behind: room security settings and chat messages.

use rusqlite::params;

use crate::{Store, StoreError};

/// A room's stored security settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRoom {
    /// Normalised room name.
    pub room: String,
    /// The owning account.
    pub owner_id: Option<i64>,
    /// Accounts made moderators.
    pub moderators: Vec<i64>,
    /// PHC string of the password.
    pub password_hash: Option<String>,
    /// Newcomers wait in the lobby.
    pub lobby: bool,
    /// `next_account` or `open_lobby`.
    pub on_moderator_leave: String,
}

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChat {
    /// Normalised room name.
    pub room: String,
    /// Unix milliseconds.
    pub sent_at: i64,
    /// Sender's participant id.
    pub sender_id: String,
    /// Sender's display name.
    pub sender_name: String,
    /// Recipient's participant id for a private message.
    pub recipient_id: Option<String>,
    /// The text.
    pub body: String,
}

impl Store {
    /// Every room with stored settings.
    pub fn room_configs(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT room, owner_id, moderators, password_hash, lobby, on_moderator_leave \
             FROM room_config ORDER BY room",
        )?;
        let rows = stmt.query_map([], |r| {
            let moderators: String = r.get(2)?;
            Ok(StoredRoom {
                room: r.get(0)?,
                owner_id: r.get(1)?,
                moderators: serde_json::from_str(&moderators).unwrap_or_default(),
                password_hash: r.get(3)?,
                lobby: r.get(4)?,
                on_moderator_leave: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates or replaces a room's settings. Accounts that no longer exist
    /// are dropped rather than failing the write.
    pub fn save_room_config(&self, room: &StoredRoom, at: i64) -> Result<(), StoreError> {
        let exists = |id: i64| -> Result<bool, StoreError> {
            Ok(self
                .conn
                .query_row("SELECT 1 FROM users WHERE id = ?1", [id], |_| Ok(()))
                .map(|()| true)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(false),
                    e => Err(e),
                })?)
        };
        let owner = match room.owner_id {
            Some(id) if exists(id)? => Some(id),
            _ => None,
        };
        let mut moderators = Vec::new();
        for id in &room.moderators {
            if exists(*id)? {
                moderators.push(*id);
            }
        }
        let moderators = serde_json::Value::from(moderators).to_string();
        self.conn.execute(
            "INSERT INTO room_config \
               (room, owner_id, moderators, password_hash, lobby, on_moderator_leave, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (room) DO UPDATE SET owner_id = ?2, moderators = ?3, \
               password_hash = ?4, lobby = ?5, on_moderator_leave = ?6, updated_at = ?7",
            params![
                room.room,
                owner,
                moderators,
                room.password_hash,
                room.lobby,
                room.on_moderator_leave,
                at
            ],
        )?;
        Ok(())
    }

    /// Stores one chat message; returns its row id.
    pub fn add_chat(&self, message: &StoredChat) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO chat_messages \
               (room, sent_at, sender_id, sender_name, recipient_id, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                message.room,
                message.sent_at,
                message.sender_id,
                message.sender_name,
                message.recipient_id,
                message.body
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{NewUser, Role};

    #[test]
    fn room_config_round_trips_and_forgets_deleted_accounts() {
        let store = Store::open_in_memory().unwrap();
        store.create_domain("example.org", 0).unwrap();
        let user = store
            .create_user(
                &NewUser {
                    local: "ada".into(),
                    domain: "example.org".into(),
                    display_name: "Ada".into(),
                    password_hash: "x".into(),
                    role: Role::User,
                },
                0,
            )
            .unwrap();
        let room = StoredRoom {
            room: "standup".into(),
            owner_id: Some(user.id),
            moderators: vec![user.id, 999],
            password_hash: Some("$argon2id$...".into()),
            lobby: true,
            on_moderator_leave: "open_lobby".into(),
        };
        store.save_room_config(&room, 1).unwrap();
        let loaded = store.room_configs().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].moderators,
            vec![user.id],
            "unknown account 999 dropped"
        );
        assert_eq!(loaded[0].owner_id, Some(user.id));
        assert!(loaded[0].lobby);

        store.delete_user(user.id).unwrap();
        let loaded = store.room_configs().unwrap();
        assert_eq!(loaded[0].owner_id, None, "a deleted owner is forgotten");
    }

    #[test]
    fn chat_is_kept_until_purged() {
        let store = Store::open_in_memory().unwrap();
        // Unix milliseconds; the history purge takes unix seconds.
        for (at, body) in [(1_000_000, "old"), (5_000_000, "new")] {
            store
                .add_chat(&StoredChat {
                    room: "r".into(),
                    sent_at: at,
                    sender_id: "p".into(),
                    sender_name: "Ada".into(),
                    recipient_id: None,
                    body: body.into(),
                })
                .unwrap();
        }
        store.purge_history(2_000).unwrap();
        let left: Vec<String> = store
            .conn
            .prepare("SELECT body FROM chat_messages WHERE room = 'r'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            ["new"],
            "the older message is deleted, the newer kept"
        );
    }
}
