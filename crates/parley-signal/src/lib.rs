//! Parley's signaling: the wire protocol of `docs/protocol.md` and the
//! sans-IO [`Hub`] that runs rooms on top of the SFU.

mod error;
mod hub;
mod messages;
mod names;
mod ratelimit;

pub use error::{ErrorCode, ProtocolError};
pub use hub::{ConnId, Hub, HubConfig, HubOutput, IceServerSource, RoomPolicy};
pub use messages::{
    ClientMessage, IceConfig, IceServer, IceTransportPolicy, LeaveReason, MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION, ParticipantInfo, PcName, ServerMessage,
};
pub use names::{DisplayName, MAX_DISPLAY_NAME, MAX_ROOM_NAME, RoomName};
pub use ratelimit::TokenBucket;
