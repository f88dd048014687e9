//! Scheduled conferences: validation, the room they get (with its password
//! and lobby), invitations by e-mail with an `.ics` file, updates and
//! cancellations. The REST handlers in `http/api/conferences.rs` call this.

pub mod ics;
pub mod mail;

use std::sync::Arc;

use parley_settings::{Settings, mailbox_address};
use parley_signal::MAX_ROOM_PASSWORD_BYTES;
use parley_store::{Conference, ConferenceDraft, Invitee};

use crate::conference::ConferenceHandle;
use crate::db::Db;
use crate::http::error::ApiError;

/// Most invitees per conference.
pub const MAX_INVITEES: usize = 100;
/// Longest title.
pub const MAX_TITLE: usize = 200;

/// A conference as the organizer describes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceBody {
    /// Title.
    pub title: String,
    /// Local start, `YYYY-MM-DDTHH:MM`.
    pub starts_local: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Minutes, 5–1440.
    pub duration_min: i64,
    /// A room password; on update, absent or empty keeps the current one.
    #[serde(default)]
    pub password: Option<String>,
    /// Newcomers wait in the lobby.
    #[serde(default)]
    pub lobby: bool,
    /// E-mail addresses (accounts' logins or anyone's).
    #[serde(default)]
    pub invitees: Vec<String>,
}

impl ConferenceBody {
    /// Checks everything; returns the draft to store.
    pub fn validate(&self) -> Result<ConferenceDraft, ApiError> {
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(ApiError::field(
                "title",
                "length",
                format!("a title of 1 to {MAX_TITLE} characters is needed"),
            ));
        }
        let starts = ics::local_time(&self.starts_local, &self.time_zone).map_err(|m| {
            let field = if m.contains("time zone") {
                "time_zone"
            } else {
                "starts_local"
            };
            ApiError::field(field, "format", m)
        })?;
        if !(5..=1440).contains(&self.duration_min) {
            return Err(ApiError::field(
                "duration_min",
                "range",
                "a conference lasts 5 to 1440 minutes",
            ));
        }
        if self
            .password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_ROOM_PASSWORD_BYTES)
        {
            return Err(ApiError::field(
                "password",
                "length",
                format!("a room password is at most {MAX_ROOM_PASSWORD_BYTES} bytes"),
            ));
        }
        if self.invitees.len() > MAX_INVITEES {
            return Err(ApiError::field(
                "invitees",
                "max_items",
                format!("at most {MAX_INVITEES} invitees"),
            ));
        }
        let mut invitees = Vec::new();
        for (i, raw) in self.invitees.iter().enumerate() {
            let email = raw.trim().to_lowercase();
            if mailbox_address(&email) != Some(email.as_str()) {
                return Err(ApiError::field(
                    format!("invitees[{i}]"),
                    "email",
                    format!("{raw:?} is not an e-mail address"),
                ));
            }
            if !invitees.contains(&email) {
                invitees.push(email);
            }
        }
        Ok(ConferenceDraft {
            title: title.to_owned(),
            starts_local: starts.strftime("%Y-%m-%dT%H:%M").to_string(),
            time_zone: self.time_zone.clone(),
            starts_at: starts.timestamp().as_second(),
            duration_min: self.duration_min,
            invitees,
        })
    }
}

/// A room name for a conference: its title's letters, and a random part
/// so it cannot be guessed.
pub fn room_for(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 32 {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let suffix: String = (0..10)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    if slug.is_empty() {
        format!("meeting-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    }
}

/// The address of a conference's room.
pub fn link(base_url: &str, room: &str) -> String {
    format!("{}/r/{room}", base_url.trim_end_matches('/'))
}

/// Every invitee's address.
pub fn invitee_emails(conference: &Conference) -> Vec<String> {
    conference
        .invitees
        .iter()
        .map(|i| i.email.clone())
        .collect()
}

/// A conference as an `.ics` file, with its local start (for e-mail text).
pub fn calendar_for(
    conference: &Conference,
    base_url: &str,
    password: Option<&str>,
    cancelled: bool,
) -> Result<(String, jiff::Zoned), String> {
    let starts = ics::local_time(&conference.starts_local, &conference.time_zone)?;
    let link = link(base_url, &conference.room);
    let attendees = invitee_emails(conference);
    let ics = ics::calendar(&ics::Invitation {
        uid: &conference.uid,
        sequence: conference.sequence,
        title: &conference.title,
        starts: &starts,
        duration_min: conference.duration_min,
        link: &link,
        password,
        organizer: (&conference.organizer_name, &conference.organizer_login),
        attendees: &attendees,
        cancelled,
        stamp: jiff::Timestamp::now(),
    });
    Ok((ics, starts))
}

/// Invitations (or cancellations) to send for one conference.
pub struct Mailing {
    /// The conference as it is now.
    pub conference: Conference,
    /// Addresses to send to.
    pub recipients: Vec<String>,
    /// Where links point.
    pub base_url: String,
    /// The room password, when the organizer just gave it.
    pub password: Option<String>,
    /// Cancellations rather than invitations.
    pub cancelled: bool,
}

/// Sends a mailing in the background and records each delivery.
pub fn send_invitations(db: Db, settings: Arc<Settings>, mailing: Mailing) {
    let Mailing {
        conference,
        recipients,
        base_url,
        password,
        cancelled,
    } = mailing;
    tokio::spawn(async move {
        let (ics, starts) =
            match calendar_for(&conference, &base_url, password.as_deref(), cancelled) {
                Ok(made) => made,
                Err(e) => {
                    tracing::warn!(
                        conference = conference.id,
                        "cannot make the invitation: {e}"
                    );
                    return;
                }
            };
        let link = link(&base_url, &conference.room);
        let when = starts.strftime("%A %e %B %Y, %H:%M %Z").to_string();
        for to in recipients {
            let delivery = if !settings.mail.enabled {
                "off".to_owned()
            } else {
                let (subject, intro) = if cancelled {
                    (format!("Cancelled: {}", conference.title), "has cancelled")
                } else if conference.sequence > 0 {
                    (format!("Updated: {}", conference.title), "has updated")
                } else {
                    (
                        format!("Invitation: {}", conference.title),
                        "invites you to",
                    )
                };
                let mut body = format!(
                    "{} {intro} \"{}\".\n\nWhen: {when} ({} minutes)\nJoin: {link}\n",
                    conference.organizer_name, conference.title, conference.duration_min
                );
                if let Some(p) = &password {
                    body.push_str(&format!("Password: {p}\n"));
                }
                body.push_str("\nThe attached invite.ics adds it to your calendar.\n");
                let letter = mail::Letter {
                    to: to.clone(),
                    subject,
                    body,
                    ics: ics.clone(),
                    method: if cancelled { "CANCEL" } else { "REQUEST" },
                };
                match mail::send(&settings.mail, letter).await {
                    Ok(()) => "sent".to_owned(),
                    Err(e) => {
                        tracing::warn!(conference = conference.id, "invitation not sent: {e}");
                        format!("failed: {e}")
                    }
                }
            };
            let id = conference.id;
            let record = to.clone();
            if let Err(e) = db
                .run(move |s| s.set_delivery(id, &record, &delivery))
                .await
            {
                tracing::warn!("cannot record an invitation's delivery: {e}");
            }
        }
    });
}

/// Invitees who were on `before` but not on `after`.
pub fn removed(before: &[Invitee], after: &[Invitee]) -> Vec<String> {
    before
        .iter()
        .filter(|b| !after.iter().any(|a| a.email == b.email))
        .map(|b| b.email.clone())
        .collect()
}

/// Makes the conference's room: the organizer owns it; password and lobby
/// as asked.
pub async fn configure_room(
    conference: &ConferenceHandle,
    room: &str,
    organizer: i64,
    password_phc: Option<String>,
    lobby: Option<bool>,
) -> Result<(), ApiError> {
    let room = parley_signal::RoomName::parse(room)
        .map_err(|e| ApiError::field("room", "format", e.to_string()))?;
    conference
        .configure_room(room, organizer, password_phc, lobby)
        .await;
    Ok(())
}
