//! In-memory WebRTC peers for scenario tests, shaped as Parley's clients
//! are: a `publish` connection the peer offers and a `subscribe` connection
//! the server offers, synthetic media written on a virtual clock, and what
//! was received counted per publisher. Sans-IO like the SFU: a test world
//! moves the datagrams (through a [`Link`] where the network matters) and
//! carries the SDP over whatever signaling it tests — the SFU's API
//! directly (`parley-sfu/tests/`) or the hub's protocol
//! (`parley-signal/tests/`).

mod frames;
mod link;
mod peer;

pub use frames::{is_video_rtp, layer_frame_size, video_frame, vp8_frame};
pub use link::{Link, Links};
pub use peer::{Datagram, Peer};

use std::time::Duration;

/// How often a test world advances its peers: 5 ms, a quarter of an Opus frame.
pub const TICK: Duration = Duration::from_millis(5);

/// A link fast enough not to matter, but where packets take time on the
/// wire, as congestion control expects of any network.
pub const FAST_LINK_BPS: u64 = 100_000_000;
