//! The media plane's I/O: the UDP media sockets and the ICE-TCP listener the
//! SFU is reached on, the addresses advertised for them, and the media
//! workers that forward a shard's rooms in parallel.

pub mod batch;
mod bind;
pub mod candidates;
mod endpoints;
pub mod ice_tcp;
mod senders;
pub mod udp;
pub mod worker;

pub use bind::BindError;
pub use endpoints::{Arrival, MediaAddresses, MediaEndpoints};
pub use senders::Senders;
