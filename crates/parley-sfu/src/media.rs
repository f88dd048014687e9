//! Plain facts about media that the track bookkeeping, the forwarders and
//! the layer choice hand each other. A leaf: it depends on no other module
//! of the crate, so the modules that share these types need not know each
//! other.

use std::time::Instant;

use str0m::media::{MediaTime, Rid};

/// What the forwarder needs to know about one incoming RTP packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet {
    /// The simulcast layer it belongs to.
    pub(crate) rid: Option<Rid>,
    /// Its RTP stream (a new one means a new sequence and timestamp base).
    pub(crate) ssrc: u32,
    /// Extended sequence number.
    pub(crate) seq: u64,
    /// Extended media time.
    pub(crate) time: MediaTime,
    /// When it arrived.
    pub(crate) arrival: Instant,
    /// The first packet of a keyframe: a clean place to start or switch.
    pub(crate) keyframe_start: bool,
    /// VP8 picture id and TL0PICIDX, when the payload descriptor has them.
    pub(crate) picture_id: Option<PictureId>,
    pub(crate) tl0_pic_idx: Option<u8>,
}

/// A VP8 picture id and the width it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PictureId {
    pub(crate) value: u16,
    /// 15 bits (else 7).
    pub(crate) long: bool,
}

/// What the layer choice needs to know of one active layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerInfo {
    pub(crate) rid: Option<Rid>,
    pub(crate) pixels: Option<u32>,
    pub(crate) bps: u64,
}

/// The layer choice's decision for one video towards one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Send nothing until the next decision.
    Paused,
    /// Send this layer.
    Layer(Option<Rid>),
}
