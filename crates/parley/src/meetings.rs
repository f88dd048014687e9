//! What meetings leave in the store: room security settings (loaded into
//! the hub at start, saved when moderators change them), chat messages, and
//! the retention job that deletes chat older than the history setting.

use std::sync::Arc;
use std::time::Duration;

use parley_settings::Settings;
use parley_signal::{ChatMessage, Handover, Hub, RoomConfig, RoomName};
use parley_store::{StoredChat, StoredRoom};
use tokio::sync::watch;

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

/// Saves a room's configuration, in the background.
pub fn save_room(db: &Db, room: &RoomName, config: &RoomConfig) {
    let stored = StoredRoom {
        room: room.to_string(),
        owner_id: config.owner,
        moderators: config.moderators.clone(),
        password_hash: config.password.clone(),
        lobby: config.lobby,
        on_moderator_leave: match config.on_moderator_leave {
            Handover::NextAccount => "next_account".into(),
            Handover::OpenLobby => "open_lobby".into(),
        },
    };
    let db = db.clone();
    let at = crate::clock::unix_now_i64();
    tokio::spawn(async move {
        let room = stored.room.clone();
        if let Err(e) = db.run(move |s| s.save_room_config(&stored, at)).await {
            tracing::warn!(%room, "cannot save the room's settings: {e}");
        }
    });
}

/// Saves a chat message, in the background.
pub fn save_chat(db: &Db, room: &RoomName, message: &ChatMessage) {
    let stored = StoredChat {
        room: room.to_string(),
        sent_at: i64::try_from(message.at).unwrap_or(i64::MAX),
        sender_id: message.from.clone(),
        sender_name: message.name.clone(),
        recipient_id: message.to.clone(),
        body: message.text.clone(),
    };
    let db = db.clone();
    tokio::spawn(async move {
        if let Err(e) = db.run(move |s| s.add_chat(&stored)).await {
            tracing::warn!("cannot store a chat message: {e}");
        }
    });
}

/// Deletes chat older than the retention setting, now and every hour.
pub async fn retention(db: Db, settings: watch::Receiver<Arc<Settings>>) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tick.tick().await;
        let days = i64::from(settings.borrow().history.retention_days);
        let cutoff = crate::clock::unix_now_i64().saturating_sub(days * 86_400) * 1000;
        match db.run(move |s| s.purge_chat(cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("deleted {n} chat messages older than {days} days"),
            Err(e) => tracing::warn!("chat retention failed: {e}"),
        }
    }
}
