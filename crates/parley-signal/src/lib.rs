//! Parley's signaling hub: the sans-IO [`Hub`] that runs rooms on top of the
//! SFU, speaking the wire protocol of `parley-protocol` (`docs/protocol.md`).
//! The protocol's types are re-exported so drivers need one import.

mod hub;
mod ratelimit;

pub use hub::{
    Account, ConnId, ConnMeta, Hub, HubConfig, HubOutput, IceServerSource, MembersWithPaths,
    RoomConfig, RoomPolicy, TokenSource, WallClock,
};
pub use parley_protocol::*;
/// The transport a datagram came over: UDP, or an ICE-TCP frame.
pub use parley_sfu::Protocol;
pub use ratelimit::TokenBucket;
