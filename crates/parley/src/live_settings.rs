//! The administrator's settings, live: loaded from the store over the
//! command line's values, changed through the API, applied at once, stored
//! only once they are valid and applied.

use std::sync::Arc;

use parley_settings::{Invalid, Section, Settings};
use parley_signal::RoomPolicy;
use serde_json::Value;
use tokio::sync::watch;

use crate::conference::{Command, ConferenceHandle};
use crate::db::Db;
use crate::http::error::ApiError;

/// Stored sections over `base`; a stored section that no longer passes
/// validation is skipped with a warning (the server still starts).
pub fn load(db: &Db, base: &Settings) -> Settings {
    let mut settings = base.clone();
    for section in Section::ALL {
        let stored = db.blocking(|s| s.setting(section.key()));
        match stored {
            Ok(None) => {}
            Ok(Some(value)) => match settings.with_section(section, value) {
                Ok(next) => settings = next,
                Err(e) => tracing::warn!(
                    section = section.key(),
                    "ignoring the stored {} settings, they are not valid: {e}",
                    section.key()
                ),
            },
            Err(e) => tracing::warn!(section = section.key(), "cannot read stored settings: {e}"),
        }
    }
    settings
}

/// What the hub enforces, from the settings.
pub fn room_policy(settings: &Settings) -> RoomPolicy {
    RoomPolicy {
        enabled: settings.rooms.enabled,
        max_members: usize::try_from(settings.rooms.max_members).unwrap_or(usize::MAX),
        reactions: settings.reactions.allowed.clone(),
        ring_timeout: std::time::Duration::from_secs(u64::from(settings.rooms.ring_timeout_secs)),
        buddies_all_domains: settings.history.buddy_list == parley_settings::BuddyList::AllDomains,
        last_n: usize::try_from(settings.rooms.last_n).unwrap_or(0),
        reconnect_grace: std::time::Duration::from_secs(u64::from(
            settings.rooms.reconnect_grace_secs,
        )),
    }
}

/// The live settings. See the module documentation.
pub struct SettingsService {
    db: Db,
    base: Settings,
    current: watch::Sender<Arc<Settings>>,
    conference: ConferenceHandle,
    /// One change at a time, so apply and store happen in the same order.
    changing: tokio::sync::Mutex<()>,
}

impl SettingsService {
    /// Serves the settings `current` holds and publishes changes there;
    /// `base` is what a reset returns to.
    pub fn new(
        db: Db,
        base: Settings,
        current: watch::Sender<Arc<Settings>>,
        conference: ConferenceHandle,
    ) -> Self {
        SettingsService {
            db,
            base,
            current,
            conference,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// What a reset returns each section to.
    pub fn base(&self) -> &Settings {
        &self.base
    }

    /// The settings in force.
    pub fn current(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// The settings in force, now and as they change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
    }

    /// Replaces `section` with `value`: checked, applied, then stored. On
    /// any failure nothing is stored and the old value stays in force.
    pub async fn update(&self, section: Section, value: Value) -> Result<Arc<Settings>, ApiError> {
        let _one = self.changing.lock().await;
        let old = self.current();
        let next = old.with_section(section, value)?;
        self.commit(section, &old, next, false).await
    }

    /// Returns `section` to its default (the command line's value, or the
    /// built-in default).
    pub async fn reset(&self, section: Section) -> Result<Arc<Settings>, ApiError> {
        let _one = self.changing.lock().await;
        let old = self.current();
        let next = old
            .with_section(section, self.base.section(section))
            .unwrap_or_else(|_| old.reset(section));
        self.commit(section, &old, next, true).await
    }

    async fn commit(
        &self,
        section: Section,
        old: &Settings,
        next: Settings,
        clear: bool,
    ) -> Result<Arc<Settings>, ApiError> {
        self.apply(section, &next).await?;
        let key = section.key();
        let value = next.section(section);
        let stored = self
            .db
            .run(move |s| {
                let at = crate::clock::unix_now_i64();
                if clear {
                    s.clear_setting(key)
                } else {
                    s.set_setting(key, &value, at)
                }
            })
            .await;
        if let Err(e) = stored {
            // Put the old value back in force; report the failure.
            if let Err(back) = self.apply(section, old).await {
                tracing::error!("cannot restore the previous {key} settings: {back:?}");
            }
            return Err(ApiError::internal(format!(
                "cannot store the {key} settings: {e}"
            )));
        }
        let next = Arc::new(next);
        self.current.send_replace(next.clone());
        tracing::info!(section = key, "settings changed");
        Ok(next)
    }

    /// Puts one section in force. ICE servers and the TURN provider are
    /// read at each join from the published settings, so only these need
    /// work here.
    async fn apply(&self, section: Section, settings: &Settings) -> Result<(), ApiError> {
        match section {
            Section::Connection => self
                .conference
                .set_connection(settings.connection.clone())
                .await
                .map_err(|e| {
                    // Valid, but not possible now: 409, naming the field.
                    ApiError::from(Invalid::one(e.field, "bind", e.message))
                        .with_status(axum::http::StatusCode::CONFLICT, "unavailable")
                }),
            Section::Rooms | Section::Reactions | Section::History => {
                self.conference
                    .send(Command::RoomPolicy(room_policy(settings)))
                    .await;
                Ok(())
            }
            Section::Logging => {
                crate::logging::set_level(settings.logging.level);
                Ok(())
            }
            Section::Stun | Section::Turn | Section::TurnProvider | Section::Mail => Ok(()),
        }
    }
}
