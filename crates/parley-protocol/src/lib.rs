//! Parley's signaling contract, as `docs/protocol.md` writes it: what clients
//! send, what the server sends back, the names users choose and the error
//! codes. Serde only, so the hub, the ICE settings, the load generator and
//! any Rust client share one definition of the wire without pulling in the
//! server.

mod calls;
mod client;
mod error;
mod ice;
mod names;
mod room;
mod server;

use serde::{Deserialize, Serialize};

pub use calls::{CallEndReason, CallParty, PresenceChoice, PresenceStatus};
pub use client::ClientMessage;
pub use error::{ErrorCode, ProtocolError};
pub use ice::{IceConfig, IceServer, IceTransportPolicy};
pub use names::{DisplayName, MAX_DISPLAY_NAME, MAX_ROOM_NAME, RoomName};
pub use room::{
    ChatMessage, ConnectionReport, Handover, Knocker, LeaveReason, MAX_CHAT_CHARS,
    MAX_ROOM_PASSWORD_BYTES, MAX_VIDEO_SIZES, MediaPath, ModerateAction, ParticipantInfo, Role,
    Security, SecurityChange, VideoSize,
};
pub use server::ServerMessage;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 65_536;

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcName {
    /// The client's own media; the client offers.
    Publish,
    /// Everyone else's media; the server offers.
    Subscribe,
}
