//! What meetings leave in the store: room security settings (loaded into
//! the hub at start, saved when moderators change them), the history of
//! meetings and calls with their chat, and the retention job that deletes
//! history older than the setting.
//!
//! Everything a meeting writes goes through one [`Journal`]: one task
//! writes the records in the order they happened and counts what it has
//! committed, so the conference can hold back the replies that acknowledge
//! a write (a chat message's echo, `joined`, a new password's `security`)
//! until the write is in the database, and a `kill -9` loses nothing anyone
//! was told had happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parley_settings::Settings;
use parley_signal::{ChatMessage, Handover, Hub, RoomConfig, RoomName};
use parley_store::{StoredChat, StoredRoom};
use tokio::sync::{mpsc, watch};

use crate::db::Db;

/// How often old chat is looked for.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Loads every stored room configuration into the hub.
pub fn load_rooms(db: &Db, hub: &mut Hub) -> anyhow::Result<()> {
    let rooms = db.blocking(|s| s.room_configs())?;
    for stored in rooms {
        match RoomName::parse(&stored.room) {
            Ok(name) => hub.load_room(name, from_stored(&stored)),
            Err(e) => tracing::warn!(room = %stored.room, "stored room skipped: {e}"),
        }
    }
    Ok(())
}

fn from_stored(stored: &StoredRoom) -> RoomConfig {
    RoomConfig {
        owner: stored.owner_id,
        moderators: stored.moderators.clone(),
        password: stored.password_hash.clone(),
        lobby: stored.lobby,
        on_moderator_leave: match stored.on_moderator_leave.as_str() {
            "open_lobby" => Handover::OpenLobby,
            _ => Handover::NextAccount,
        },
    }
}

/// A room's configuration as the store keeps it.
pub fn stored_room(room: &RoomName, config: &RoomConfig) -> StoredRoom {
    StoredRoom {
        room: room.to_string(),
        owner_id: config.owner,
        moderators: config.moderators.clone(),
        password_hash: config.password.clone(),
        lobby: config.lobby,
        on_moderator_leave: match config.on_moderator_leave {
            Handover::NextAccount => "next_account".into(),
            Handover::OpenLobby => "open_lobby".into(),
        },
    }
}

/// What the journal writes, in the order it happened.
#[derive(Debug)]
pub enum Record {
    /// A room came into use (its first participant of a meeting).
    Opened {
        /// Which room.
        room: RoomName,
    },
    /// A room's configuration changed (owner, moderators, password, lobby).
    RoomConfig(StoredRoom),
    /// Someone entered a room; the first one starts a meeting.
    Joined {
        /// Which room.
        room: RoomName,
        /// Participant id.
        participant: String,
        /// Account, if signed in.
        account: Option<i64>,
        /// Display name.
        name: String,
        /// A one-to-one call's room.
        call: bool,
    },
    /// Someone left.
    Left {
        /// Which room.
        room: RoomName,
        /// Participant id.
        participant: String,
    },
    /// The room emptied: its meeting ended.
    Closed {
        /// Which room.
        room: RoomName,
    },
    /// A chat message, stored with the meeting.
    Chat {
        /// Which room.
        room: RoomName,
        /// The message.
        message: ChatMessage,
    },
}

/// Where the conference sends what meetings write: one task writes the
/// records in order, and says up to which it has committed.
pub struct Journal {
    records: mpsc::UnboundedSender<(u64, Record, i64)>,
    /// The number of the last record sent.
    last: u64,
    committed: watch::Receiver<u64>,
}

impl Journal {
    /// Starts the writer. Meetings a previous run left open (a crash, a kill)
    /// are closed first.
    pub fn start(db: Db) -> Journal {
        let (tx, rx) = mpsc::unbounded_channel();
        let (committed_tx, committed) = watch::channel(0);
        tokio::spawn(write(db, rx, committed_tx));
        Journal {
            records: tx,
            last: 0,
            committed,
        }
    }

    /// Records `record` as happening now.
    pub fn record(&mut self, record: Record) {
        self.last += 1;
        let _ = self
            .records
            .send((self.last, record, crate::clock::unix_now_i64()));
    }

    /// The number of the last record sent: what a message sent now may
    /// acknowledge.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The number of the last record written (or given up on).
    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// Resolves when more records are written; never, once the writer is gone.
    pub async fn advanced(&mut self) {
        if self.committed.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn write(
    db: Db,
    mut records: mpsc::UnboundedReceiver<(u64, Record, i64)>,
    committed: watch::Sender<u64>,
) {
    let now = crate::clock::unix_now_i64();
    match db.run(move |s| s.close_open_meetings(now)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} meetings left open by the last run marked ended"),
        Err(e) => tracing::warn!("cannot close meetings left open: {e}"),
    }
    let mut current: HashMap<RoomName, String> = HashMap::new();
    while let Some((seq, record, at)) = records.recv().await {
        let result = match record {
            Record::Opened { room } => {
                let name = room.to_string();
                db.run(move |s| s.record_room_opened(&name, at)).await
            }
            Record::RoomConfig(stored) => db.run(move |s| s.save_room_config(&stored, at)).await,
            Record::Joined {
                room,
                participant,
                account,
                name,
                call,
            } => {
                let (id, new) = match current.get(&room) {
                    Some(id) => (id.clone(), false),
                    None => {
                        let id = format!("{:032x}", rand::random::<u128>());
                        current.insert(room.clone(), id.clone());
                        (id, true)
                    }
                };
                let room = room.to_string();
                db.run(move |s| {
                    if new {
                        s.start_meeting(&id, &room, if call { "call" } else { "meeting" }, at)?;
                    }
                    s.record_join(&id, &participant, account, &name, at)
                })
                .await
            }
            Record::Left { room, participant } => match current.get(&room).cloned() {
                Some(id) => db.run(move |s| s.record_leave(&id, &participant, at)).await,
                None => Ok(()),
            },
            Record::Closed { room } => match current.remove(&room) {
                Some(id) => db.run(move |s| s.end_meeting(&id, at)).await,
                None => Ok(()),
            },
            Record::Chat { room, message } => {
                let meeting = current.get(&room).cloned();
                let stored = StoredChat {
                    room: room.to_string(),
                    sent_at: i64::try_from(message.at).unwrap_or(i64::MAX),
                    sender_id: message.from,
                    sender_name: message.name,
                    recipient_id: message.to,
                    body: message.text,
                };
                db.run(move |s| {
                    let row = s.add_chat(&stored)?;
                    if let Some(meeting) = meeting {
                        s.chat_in_meeting(row, &meeting)?;
                    }
                    Ok(())
                })
                .await
            }
        };
        if let Err(e) = result {
            // Not stored; the replies waiting for it go anyway rather than
            // never (the database refusing writes is logged, and a full
            // disk is the administrator's to see).
            tracing::warn!("cannot write to the database: {e}");
        }
        committed.send_replace(seq);
    }
}

/// The unix time before which history is deleted, `days` before `now`.
pub fn retention_cutoff(now: i64, days: u32) -> i64 {
    now.saturating_sub(i64::from(days) * 86_400)
}

/// Deletes meetings, calls and chat older than the retention setting, now
/// and every hour.
pub async fn retention(db: Db, settings: watch::Receiver<Arc<Settings>>) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tick.tick().await;
        let days = settings.borrow().history.retention_days;
        let cutoff = retention_cutoff(crate::clock::unix_now_i64(), days);
        match db.run(move |s| s.purge_history(cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("deleted {n} meetings and calls older than {days} days"),
            Err(e) => tracing::warn!("history retention failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_retention_job_purges_what_is_older_than_the_setting_on_a_virtual_clock() {
        let store = parley_store::Store::open_in_memory().unwrap();
        let day = 86_400;
        let ended = 1_700_000_000;
        store
            .start_meeting("m", "retro", "call", ended - 600)
            .unwrap();
        store
            .record_join("m", "p1", None, "Gus", ended - 600)
            .unwrap();
        store.end_meeting("m", ended).unwrap();
        // 29 days later, with 30 days kept: still there.
        let cutoff = retention_cutoff(ended + 29 * day, 30);
        assert_eq!(store.purge_history(cutoff).unwrap(), 0);
        // 31 days later: gone.
        let cutoff = retention_cutoff(ended + 31 * day, 30);
        assert_eq!(store.purge_history(cutoff).unwrap(), 1);
        // A shorter setting purges sooner.
        store.start_meeting("n", "retro", "meeting", ended).unwrap();
        store.end_meeting("n", ended + 10).unwrap();
        assert_eq!(
            store
                .purge_history(retention_cutoff(ended + 2 * day, 1))
                .unwrap(),
            1
        );
    }
}
