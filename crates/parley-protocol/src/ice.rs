//! The ICE servers a participant's peer connections are configured with.

use serde::{Deserialize, Serialize};

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Which ICE candidates the browser may use (`RTCConfiguration.iceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IceTransportPolicy {
    /// Any candidate.
    #[default]
    All,
    /// Relayed candidates only: media always goes through TURN.
    Relay,
}

/// What a participant's peer connections are configured with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// For `RTCConfiguration.iceServers`.
    pub servers: Vec<IceServer>,
    /// For `RTCConfiguration.iceTransportPolicy`.
    pub policy: IceTransportPolicy,
}
