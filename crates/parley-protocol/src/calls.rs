//! Presence and one-to-one calls between signed-in users.

use serde::{Deserialize, Serialize};

/// The presence a user chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceChoice {
    /// Reachable.
    Available,
    /// The page is hidden or idle.
    Away,
    /// Do not ring.
    Dnd,
}

/// A user's presence as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// On a Parley page and reachable.
    Available,
    /// Every Parley page of theirs is hidden or idle; still rung.
    Away,
    /// In a meeting or a call; not rung.
    Busy,
    /// Do not disturb; not rung.
    Dnd,
    /// No Parley page open.
    Offline,
}

/// One side of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallParty {
    /// Account id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// The callee declined.
    Declined,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The callee is in a meeting or a call.
    Busy,
    /// The callee set do-not-disturb.
    Dnd,
    /// The callee has no Parley page open.
    Offline,
    /// The caller hung up before an answer.
    Cancelled,
    /// Answered on another page of the callee's.
    AnsweredElsewhere,
    /// The other side left the call.
    HungUp,
}
