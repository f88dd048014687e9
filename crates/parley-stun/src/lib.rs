//! Parley's STUN and TURN server core, sans-IO.
//!
//! Messages are parsed and written with the `stun-types` codec; the TURN
//! attributes, the allocation logic, credentials, nonces and the peer
//! policy are this crate's. Nothing here touches a socket or a clock: a
//! driver feeds [`TurnServer`] what arrives, with the time, and sends what
//! it puts in the [`Outbox`].

pub mod allocation;
pub mod attributes;
pub mod channel_data;
pub mod credentials;
pub mod metrics;
pub mod nonce;
pub mod outbox;
pub mod policy;
pub mod server;

pub use allocation::{Allocation, FiveTuple, Transport};
pub use credentials::{CredentialError, Credentials, mint_rest_credential};
pub use metrics::Metrics;
pub use nonce::NonceKey;
pub use outbox::{Destination, Outbox};
pub use policy::{Cidr, Denied, OwnAddresses, PeerPolicy};
pub use server::{Quotas, RelayPorts, ServerConfig, TurnServer};
pub use stun_types;
