//! Rooms and reactions.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};

/// The rooms section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    /// Whether conferencing is on at all; off refuses every join.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most participants per room, 2–60 (seed 001).
    #[serde(default = "default_members")]
    pub max_members: u32,
    /// Seconds a one-to-one call rings before it ends unanswered, 10–300.
    #[serde(default = "default_ring")]
    pub ring_timeout_secs: u32,
    /// Last-N: forward the video of only this many most recent speakers to
    /// each participant (0: everyone's), 0–60. Audio is never limited.
    #[serde(default)]
    pub last_n: u32,
    /// Seconds a participant whose connection dropped keeps its place while
    /// it reconnects, 0–300 (0: it leaves at once).
    #[serde(default = "default_grace")]
    pub reconnect_grace_secs: u32,
}

fn default_grace() -> u32 {
    30
}

/// The longest reconnection grace period.
pub const MAX_RECONNECT_GRACE_SECS: u32 = 300;

fn default_ring() -> u32 {
    30
}

fn yes() -> bool {
    true
}

fn default_members() -> u32 {
    20
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            enabled: true,
            max_members: 20,
            ring_timeout_secs: 30,
            last_n: 0,
            reconnect_grace_secs: 30,
        }
    }
}

/// The lowest room member limit.
pub const MIN_MEMBERS: u32 = 2;
/// The highest room member limit.
pub const MAX_MEMBERS: u32 = 60;

impl RoomSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&self.max_members) {
            e.add(
                "max_members",
                "range",
                format!(
                    "the member limit must be between {MIN_MEMBERS} and {MAX_MEMBERS}, got {}",
                    self.max_members
                ),
            );
        }
        if self.last_n > MAX_MEMBERS {
            e.add(
                "last_n",
                "range",
                format!(
                    "last-N is 0 (every video) or at most {MAX_MEMBERS} videos, got {}",
                    self.last_n
                ),
            );
        }
        if self.reconnect_grace_secs > MAX_RECONNECT_GRACE_SECS {
            e.add(
                "reconnect_grace_secs",
                "range",
                format!(
                    "the reconnection grace period is 0 to {MAX_RECONNECT_GRACE_SECS} seconds, got {}",
                    self.reconnect_grace_secs
                ),
            );
        }
        if !(10..=300).contains(&self.ring_timeout_secs) {
            e.add(
                "ring_timeout_secs",
                "range",
                format!(
                    "calls ring between 10 and 300 seconds, got {}",
                    self.ring_timeout_secs
                ),
            );
        }
        e.finish()
    }
}

/// The most reactions in the list.
pub const MAX_REACTIONS: usize = 32;

/// The reactions section: the emojis participants may send (seed 000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactionSettings {
    /// Allowed emojis, in the order the client shows them. Empty disables reactions.
    pub allowed: Vec<String>,
}

impl Default for ReactionSettings {
    fn default() -> Self {
        ReactionSettings {
            allowed: ["👍", "👏", "😂", "❤️", "🎉", "😮"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl ReactionSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if self.allowed.len() > MAX_REACTIONS {
            e.add(
                format!("allowed[{MAX_REACTIONS}]"),
                "max_items",
                format!("at most {MAX_REACTIONS} reactions"),
            );
        }
        for (i, r) in self.allowed.iter().enumerate() {
            if let Err(why) = check_emoji(r) {
                e.add(format!("allowed[{i}]"), "emoji", why);
            }
            if self.allowed[..i].contains(r) {
                e.add(
                    format!("allowed[{i}]"),
                    "unique",
                    format!("{r} is listed twice"),
                );
            }
        }
        e.finish()
    }

    /// Whether `emoji` may be sent.
    pub fn allows(&self, emoji: &str) -> bool {
        self.allowed.iter().any(|a| a == emoji)
    }
}

/// One emoji, possibly with modifiers or joined sequences (👍🏽, ❤️, 👩‍💻):
/// up to 16 code points, at least one of them outside ASCII, no letters,
/// digits, spaces or control characters.
fn check_emoji(s: &str) -> Result<(), String> {
    let count = s.chars().count();
    if count == 0 {
        return Err("an empty reaction".into());
    }
    if count > 16 {
        return Err(format!("{s:?} is not one emoji"));
    }
    if s.chars()
        .any(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || c.is_control())
    {
        return Err(format!("{s:?} is not an emoji"));
    }
    if !s.chars().any(|c| u32::from(c) >= 0x2000) {
        return Err(format!("{s:?} is not an emoji"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_limit_is_2_to_60() {
        for ok in [2, 20, 60] {
            assert!(
                RoomSettings {
                    max_members: ok,
                    ..RoomSettings::default()
                }
                .validate()
                .is_ok()
            );
        }
        for bad in [0, 1, 61, 1000] {
            let e = RoomSettings {
                max_members: bad,
                ..RoomSettings::default()
            }
            .validate()
            .unwrap_err();
            assert_eq!(e.0[0].field, "max_members");
            assert_eq!(e.0[0].rule, "range");
        }
    }

    #[test]
    fn the_reconnection_grace_period_is_at_most_five_minutes() {
        for ok in [0, 30, 300] {
            let r = RoomSettings {
                reconnect_grace_secs: ok,
                ..RoomSettings::default()
            };
            assert!(r.validate().is_ok(), "{ok}");
        }
        let e = RoomSettings {
            reconnect_grace_secs: 301,
            ..RoomSettings::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            (e.0[0].field.as_str(), e.0[0].rule),
            ("reconnect_grace_secs", "range")
        );
    }

    #[test]
    fn last_n_is_off_or_up_to_the_member_limit() {
        for ok in [0, 1, 60] {
            let s = RoomSettings {
                last_n: ok,
                ..RoomSettings::default()
            };
            assert!(s.validate().is_ok(), "{ok}");
        }
        let e = RoomSettings {
            last_n: 61,
            ..RoomSettings::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!((e.0[0].field.as_str(), e.0[0].rule), ("last_n", "range"));
        // Stored settings from before last-N read as off.
        let old: RoomSettings =
            serde_json::from_str(r#"{"enabled": true, "max_members": 20}"#).unwrap();
        assert_eq!(old.last_n, 0);
        assert_eq!(
            old.reconnect_grace_secs, 30,
            "sections saved before it existed"
        );
    }

    #[test]
    fn reactions_are_single_emojis_without_duplicates() {
        assert!(ReactionSettings::default().validate().is_ok());
        let ok = ReactionSettings {
            allowed: vec!["👍🏽".into(), "👩‍💻".into(), "❤️".into()],
        };
        assert!(ok.validate().is_ok());
        for bad in ["", "lol", "👍 ", "a👍", "\u{7}"] {
            let r = ReactionSettings {
                allowed: vec![bad.into()],
            };
            assert!(r.validate().is_err(), "{bad:?}");
        }
        let dup = ReactionSettings {
            allowed: vec!["🎉".into(), "🎉".into()],
        };
        assert_eq!(dup.validate().unwrap_err().0[0].rule, "unique");
        assert!(ReactionSettings::default().allows("👍"));
        assert!(!ReactionSettings::default().allows("💩"));
    }
}
