//! Parley's persistent store: the only crate that speaks SQL.
//!
//! SQLite in one file (`parley.db` in the data directory), in WAL mode, with
//! numbered migrations tracked by `PRAGMA user_version`. Calls are blocking;
//! async callers run them on a blocking thread.

mod accounts;
mod conferences;
mod history;
mod meetings;

pub use accounts::{ApiToken, NewUser, Role, Session, User, UserUpdate};
pub use conferences::{Conference, ConferenceDraft, Invitee};
pub use history::{Attendance, HistoryChat, Meeting};
pub use meetings::{StoredChat, StoredRoom};

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// The schema, one migration per step, applied in order and never edited once released.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_rooms_and_settings.sql"),
    include_str!("migrations/0002_accounts.sql"),
    include_str!("migrations/0003_meetings.sql"),
    include_str!("migrations/0004_history.sql"),
    include_str!("migrations/0005_conferences.sql"),
];

/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "parley.db";

/// Why the store failed. Each variant says whose problem it is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Operator: the data directory cannot be created or written.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Operator: a newer Parley wrote this database.
    #[error(
        "database schema version {found} is newer than this Parley understands ({known}); \
         run the newer Parley or restore a backup"
    )]
    TooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this build knows.
        known: u32,
    },
    /// Environment: SQLite itself failed (disk full, corrupt file, locked).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Caller: a row that must be unique exists already.
    #[error("{0} already exists")]
    Exists(String),
    /// Caller: a row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// Caller: the change would break a rule (e.g. remove the last administrator).
    #[error("{0}")]
    Refused(String),
    /// Bug or tampering: a stored value is not what the schema promises.
    #[error("stored setting {key} is not valid JSON: {source}")]
    BadSetting {
        /// The setting's key.
        key: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// A room that has been used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// Normalised room name.
    pub name: String,
    /// First use, unix seconds.
    pub first_opened_at: i64,
    /// Latest use, unix seconds.
    pub last_opened_at: i64,
    /// How many times the room went from empty to occupied.
    pub times_opened: i64,
}

/// The store. One connection; wrap in a mutex to share.
pub struct Store {
    pub(crate) conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(data_dir.join(DATABASE_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Store::migrated(conn)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Store::migrated(conn)
    }

    fn migrated(mut conn: Connection) -> Result<Store, StoreError> {
        let known = MIGRATIONS.len() as u32;
        let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Notes that `room` went from empty to occupied at `at` (unix seconds).
    pub fn record_room_opened(&self, room: &str, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO rooms (name, first_opened_at, last_opened_at) VALUES (?1, ?2, ?2)
             ON CONFLICT (name) DO UPDATE SET
                 last_opened_at = excluded.last_opened_at,
                 times_opened = times_opened + 1",
            params![room, at],
        )?;
        Ok(())
    }

    /// Every room ever used, most recent first.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, first_opened_at, last_opened_at, times_opened
             FROM rooms ORDER BY last_opened_at DESC, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RoomRecord {
                name: r.get(0)?,
                first_opened_at: r.get(1)?,
                last_opened_at: r.get(2)?,
                times_opened: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A stored setting, if set.
    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|source| StoreError::BadSetting {
                key: key.to_owned(),
                source,
            })
        })
        .transpose()
    }

    /// Stores a setting (the caller has validated it).
    pub fn set_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![key, value.to_string(), at],
        )?;
        Ok(())
    }

    /// Removes a setting, returning it to its default.
    pub fn clear_setting(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_counted_each_time_they_open() {
        let store = Store::open_in_memory().unwrap();
        store.record_room_opened("standup", 100).unwrap();
        store.record_room_opened("retro", 150).unwrap();
        store.record_room_opened("standup", 200).unwrap();
        let rooms = store.rooms().unwrap();
        assert_eq!(
            rooms[0],
            RoomRecord {
                name: "standup".into(),
                first_opened_at: 100,
                last_opened_at: 200,
                times_opened: 2
            }
        );
        assert_eq!(rooms[1].name, "retro");
    }

    #[test]
    fn settings_round_trip_and_reset() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.setting("rooms.max_members").unwrap(), None);
        let v = serde_json::json!(12);
        store.set_setting("rooms.max_members", &v, 1).unwrap();
        assert_eq!(store.setting("rooms.max_members").unwrap(), Some(v));
        store
            .set_setting("rooms.max_members", &serde_json::json!(30), 2)
            .unwrap();
        assert_eq!(
            store.setting("rooms.max_members").unwrap(),
            Some(serde_json::json!(30))
        );
        store.clear_setting("rooms.max_members").unwrap();
        assert_eq!(store.setting("rooms.max_members").unwrap(), None);
    }

    #[test]
    fn data_survives_reopening_and_migrations_run_once() {
        let dir = std::env::temp_dir().join(format!("parley-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = Store::open(&dir).unwrap();
            assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as u32);
            store.record_room_opened("kept", 5).unwrap();
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.rooms().unwrap().len(), 1);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_database_from_a_newer_parley_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = Store::migrated(conn).err().expect("refused");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("newer"));
    }

    #[test]
    fn an_unwritable_data_directory_is_reported_with_its_path() {
        let file = std::env::temp_dir().join(format!("parley-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file.join("sub")).err().expect("refused");
        assert!(err.to_string().contains("parley-not-a-dir"), "{err}");
        std::fs::remove_file(&file).unwrap();
    }
}
