//! Parley's signaling: the wire protocol of `docs/protocol.md` and the
//! sans-IO [`Hub`] that runs rooms on top of the SFU.

mod error;
mod hub;
mod messages;
mod names;
mod ratelimit;

pub use error::{ErrorCode, ProtocolError};
pub use hub::{
    Account, ConnId, ConnMeta, Hub, HubConfig, HubOutput, IceServerSource, MembersWithPaths,
    RoomConfig, RoomPolicy,
};
pub use messages::{
    CallEndReason, CallParty, ChatMessage, ClientMessage, ConnectionReport, Handover, IceConfig,
    IceServer, IceTransportPolicy, Knocker, LeaveReason, MAX_CHAT_CHARS, MAX_MESSAGE_BYTES,
    MAX_ROOM_PASSWORD_BYTES, MAX_VIDEO_SIZES, MediaPath, ModerateAction, PROTOCOL_VERSION,
    ParticipantInfo, PcName, PresenceChoice, PresenceStatus, Role, Security, SecurityChange,
    ServerMessage, VideoSize,
};
pub use names::{DisplayName, MAX_DISPLAY_NAME, MAX_ROOM_NAME, RoomName};
/// The transport a datagram came over: UDP, or an ICE-TCP frame.
pub use parley_sfu::Protocol;
pub use ratelimit::TokenBucket;
