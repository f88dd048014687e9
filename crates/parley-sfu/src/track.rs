//! Tracks a participant publishes, and what the SFU knows about their layers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, Vp8Descriptor};

use crate::codec;
use crate::media::{LayerInfo, Packet};

/// A layer that sent nothing for this long counts as stopped (a browser drops
/// its top simulcast layer when short of CPU or bandwidth).
const LAYER_IDLE: Duration = Duration::from_millis(1000);
/// Keyframe requests to one layer of one track are at most this frequent,
/// however many subscribers ask: a publisher flooded with PLIs spends its
/// bandwidth on keyframes.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Bitrates are measured over windows of this length.
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// The bitrate of one stream, measured over fixed windows and smoothed, so a
/// keyframe does not look like a new steady rate.
#[derive(Debug, Default)]
pub(crate) struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    /// Bits per second; zero until a first window completes.
    rate: u64,
}

impl RateMeter {
    pub(crate) fn add(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let measured = self.bytes * 8 * 1_000_000 / elapsed.as_micros().max(1) as u64;
            self.rate = if self.rate == 0 {
                measured
            } else {
                // Half-life of about two windows.
                (self.rate * 2 + measured) / 3
            };
            self.window_start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }

    /// Bits per second (zero while unknown).
    pub(crate) fn bps(&self) -> u64 {
        self.rate
    }
}
/// Video packets each layer keeps after forwarding them, at most, and for
/// at most [`RECENT_FOR`]: enough for a keyframe and what follows it for a
/// round trip, so a subscriber can enter at a keyframe whose first packet
/// came late (reordered, or lost and retransmitted) without losing the
/// packets that came before it.
const RECENT_PACKETS: usize = 256;
const RECENT_FOR: Duration = Duration::from_secs(1);

/// How far a keyframe's first packet may trail the packets of its stream
/// that came before it and still be an entry point (they are sent along).
const LATE_ENTRY: Duration = Duration::from_millis(500);

/// One received RTP packet, as every subscriber's copy is written from it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// What the forwarding decisions need.
    pub(crate) facts: Packet,
    pub(crate) pt: Pt,
    pub(crate) params: PayloadParams,
    pub(crate) marker: bool,
    /// The header extension values forwarded.
    pub(crate) ext: ExtensionValues,
    /// The VP8 payload descriptor, for rewriting picture ids.
    pub(crate) vp8: Option<Vp8Descriptor>,
    /// Shared by every subscriber's copy.
    pub(crate) payload: Arc<[u8]>,
}

/// One incoming RTP stream of a track: the only one, or one simulcast layer.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) rid: Option<Rid>,
    /// Position in the publisher's SDP `a=simulcast` list; by convention
    /// (mediasoup's and browsers' `sendEncodings`) lowest quality first.
    sdp_order: usize,
    /// Pixels per frame, read from the layer's latest keyframe where the
    /// codec makes that cheap (VP8). Ranks layers whatever order the SDP gave.
    pixels: Option<u32>,
    last_seen: Option<Instant>,
    /// RTP time of the last packet: a packet with another starts a frame.
    last_time: Option<u64>,
    last_keyframe_request: Option<Instant>,
    rate: RateMeter,
    /// The latest video packets, in arrival order (see [`RECENT_PACKETS`]).
    recent: VecDeque<Received>,
}

impl Layer {
    fn new(rid: Option<Rid>, sdp_order: usize) -> Self {
        Layer {
            rid,
            sdp_order,
            pixels: None,
            last_seen: None,
            last_time: None,
            last_keyframe_request: None,
            rate: RateMeter::default(),
            recent: VecDeque::new(),
        }
    }

    fn is_active(&self, now: Instant) -> bool {
        self.last_seen
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_IDLE)
    }
}

/// Bytes per packet besides the payload: RTP header and extensions, SRTP
/// tag, UDP and IP headers. Small audio packets are nearly half overhead.
const PACKET_OVERHEAD: usize = 60;

/// What [`PublishedTrack::record`] learnt from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The layer was not active before (the subscribers' layer choice is
    /// then worth revisiting).
    pub(crate) new_layer: bool,
    /// The packet's RTP time differs from the layer's previous packet's:
    /// it starts a frame (or is the first of a reordered one).
    pub(crate) frame_start: bool,
}

/// An incoming packet as its track recorded it: what the forwarders decide
/// on and write.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    /// What the forwarders decide on: as in `received`, except that a
    /// keyframe start too late to enter at is none.
    pub(crate) facts: Packet,
    /// The packet as it is kept and written.
    pub(crate) received: Received,
    /// What arrived of the stream after this keyframe start but before it
    /// (see [`PublishedTrack::kept_after`]): whoever enters here gets those too.
    pub(crate) late_entry: Vec<Received>,
    /// The layer was not active before.
    pub(crate) new_layer: bool,
    /// A video whose codec is not the previous packet's: the subscribers'
    /// codecs are to be checked again.
    pub(crate) codec_changed: bool,
    /// The RFC 6464 audio level of an audio packet.
    pub(crate) audio_level: Option<i8>,
}

/// A track a participant sends to the SFU.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    layers: Vec<Layer>,
    /// The codec of the payload type last seen.
    params: Option<PayloadParams>,
    /// The codec the publisher was last asked to send, and when (see `codecs.rs`).
    pub(crate) asked_codec: Option<(Codec, Instant)>,
}

impl PublishedTrack {
    pub(crate) fn new(mid: Mid, kind: MediaKind, rids: Vec<Rid>) -> Self {
        let layers = if rids.is_empty() {
            vec![Layer::new(None, 0)]
        } else {
            rids.into_iter()
                .enumerate()
                .map(|(i, rid)| Layer::new(Some(rid), i))
                .collect()
        };
        PublishedTrack {
            mid,
            kind,
            layers,
            params: None,
            asked_codec: None,
        }
    }

    /// The codec of the packets last received, once one came.
    pub(crate) fn codec(&self) -> Option<Codec> {
        self.params.map(|p| p.spec().codec)
    }

    /// When the publisher's patience for a requested codec ends, while it
    /// still sends another.
    pub(crate) fn codec_deadline(&self) -> Option<Instant> {
        let (asked, at) = self.asked_codec?;
        (self.codec() != Some(asked)).then_some(at + crate::negotiated_codecs::ASK_PATIENCE)
    }

    /// The codec of payload type `pt`, from `look_up` when it is not the
    /// one last seen.
    fn params(
        &mut self,
        pt: Pt,
        look_up: impl FnOnce() -> Option<PayloadParams>,
    ) -> Option<PayloadParams> {
        match self.params {
            Some(p) if p.pt() == pt => Some(p),
            _ => {
                self.params = look_up();
                self.params
            }
        }
    }

    /// Reads and records a packet of layer `rid`: its codec (from `look_up`
    /// when the payload type is not the last one's; none if unknown), what
    /// its clear header says, and, for video, keeps it for later entry points.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        rid: Option<Rid>,
        packet: RtpPacket,
        look_up: impl FnOnce() -> Option<PayloadParams>,
    ) -> Option<Incoming> {
        let codec_before = self.codec();
        let pt = packet.header.payload_type;
        let params = self.params(pt, look_up)?;
        let is_video = self.kind == MediaKind::Video;
        let codec = params.spec().codec;
        let payload = &packet.payload;
        let header = codec::read(codec, payload);
        let recorded = self.record(now, rid, header.size(), payload.len(), packet.time.numer());
        let facts = Packet {
            rid,
            ssrc: *packet.header.ssrc,
            seq: *packet.seq_no,
            time: packet.time,
            arrival: packet.timestamp,
            keyframe_start: header.starts_keyframe(payload, recorded.frame_start),
            picture_id: header.picture_id(),
            tl0_pic_idx: header.tl0_pic_idx(),
        };
        let ext_vals = &packet.header.ext_vals;
        let audio_level = (!is_video).then_some(ext_vals.audio_level).flatten();
        let mut ext = ExtensionValues::default();
        if is_video {
            ext.video_orientation = ext_vals.video_orientation;
        } else {
            ext.audio_level = audio_level;
            ext.voice_activity = ext_vals.voice_activity;
        }
        let received = Received {
            facts,
            pt,
            params,
            marker: packet.header.marker,
            ext,
            vp8: header.vp8_descriptor(),
            payload: packet.payload,
        };
        let (facts, late_entry) = self.late_entry(facts);
        if is_video {
            self.keep(&received);
        }
        Some(Incoming {
            mid: self.mid,
            kind: self.kind,
            facts,
            received,
            late_entry,
            new_layer: recorded.new_layer,
            codec_changed: is_video && codec_before != Some(codec),
            audio_level,
        })
    }

    /// A keyframe's first packet that came after others of its stream:
    /// whoever enters there gets those too. One that came so late that they
    /// would be stale (a slow retransmission) is no entry point.
    fn late_entry(&self, mut facts: Packet) -> (Packet, Vec<Received>) {
        let late_entry = if facts.keyframe_start {
            self.kept_after(&facts)
        } else {
            Vec::new()
        };
        if late_entry
            .first()
            .is_some_and(|k| facts.arrival.saturating_duration_since(k.facts.arrival) > LATE_ENTRY)
        {
            facts.keyframe_start = false;
        }
        (facts, late_entry)
    }

    fn layer_mut(&mut self, rid: Option<Rid>) -> &mut Layer {
        if let Some(i) = self.layers.iter().position(|l| l.rid == rid) {
            return &mut self.layers[i];
        }
        // A layer the SDP did not announce (some clients send rids late): track it too.
        let order = self.layers.len();
        self.layers.push(Layer::new(rid, order));
        let last = self.layers.len() - 1;
        &mut self.layers[last]
    }

    /// Notes a packet with `bytes` of payload and RTP time `time` on layer
    /// `rid`; `size` is its picture size when it starts a keyframe that says.
    fn record(
        &mut self,
        now: Instant,
        rid: Option<Rid>,
        size: Option<(u16, u16)>,
        bytes: usize,
        time: u64,
    ) -> Recorded {
        let layer = self.layer_mut(rid);
        let new_layer = !layer.is_active(now);
        let frame_start = layer.last_time != Some(time);
        layer.last_seen = Some(now);
        layer.last_time = Some(time);
        layer.rate.add(now, bytes + PACKET_OVERHEAD);
        if let Some((w, h)) = size {
            layer.pixels = Some(u32::from(w) * u32::from(h));
        }
        Recorded {
            new_layer,
            frame_start,
        }
    }

    /// Keeps a video packet of its layer for later entry points (see
    /// [`RECENT_PACKETS`]). A new source stream starts the list afresh.
    fn keep(&mut self, received: &Received) {
        let layer = self.layer_mut(received.facts.rid);
        if layer
            .recent
            .back()
            .is_some_and(|r| r.facts.ssrc != received.facts.ssrc)
        {
            layer.recent.clear();
        }
        let arrival = received.facts.arrival;
        while layer.recent.len() >= RECENT_PACKETS
            || layer
                .recent
                .front()
                .is_some_and(|r| arrival.saturating_duration_since(r.facts.arrival) > RECENT_FOR)
        {
            layer.recent.pop_front();
        }
        layer.recent.push_back(received.clone());
    }

    /// The kept packets of `entry`'s stream that follow it, in sequence
    /// order: what a subscriber entering at `entry` (a keyframe's first
    /// packet that arrived late) missed.
    fn kept_after(&self, entry: &Packet) -> Vec<Received> {
        let Some(layer) = self.layers.iter().find(|l| l.rid == entry.rid) else {
            return Vec::new();
        };
        let mut after: Vec<Received> = layer
            .recent
            .iter()
            .filter(|r| r.facts.ssrc == entry.ssrc && r.facts.seq > entry.seq)
            .cloned()
            .collect();
        after.sort_by_key(|r| r.facts.seq);
        after.dedup_by_key(|r| r.facts.seq);
        after
    }

    /// The active layers, lowest quality first, each with its picture size
    /// (pixels, when known) and measured bitrate.
    pub(crate) fn layer_info(&self, now: Instant) -> Vec<LayerInfo> {
        self.active_layers(now)
            .into_iter()
            .filter_map(|rid| self.layers.iter().find(|l| l.rid == rid))
            .map(|l| LayerInfo {
                rid: l.rid,
                pixels: l.pixels,
                bps: l.rate.bps(),
            })
            .collect()
    }

    /// The track's bitrate: the sum over its active layers.
    pub(crate) fn bps(&self, now: Instant) -> u64 {
        self.layers
            .iter()
            .filter(|l| l.is_active(now))
            .map(|l| l.rate.bps())
            .sum()
    }

    /// Layers that currently carry media, from lowest to highest quality:
    /// by picture size when every active layer's is known, else in the
    /// publisher's SDP order. (Bitrate is no guide: while a browser ramps up,
    /// its smallest layer can briefly carry the most bits.)
    pub(crate) fn active_layers(&self, now: Instant) -> Vec<Option<Rid>> {
        let mut active: Vec<&Layer> = self.layers.iter().filter(|l| l.is_active(now)).collect();
        if active.iter().all(|l| l.pixels.is_some()) {
            active.sort_by_key(|l| (l.pixels, l.sdp_order));
        } else {
            active.sort_by_key(|l| l.sdp_order);
        }
        active.into_iter().map(|l| l.rid).collect()
    }

    /// Whether a keyframe request for layer `rid` may go out now; records it if so.
    pub(crate) fn take_keyframe_request_slot(&mut self, now: Instant, rid: Option<Rid>) -> bool {
        let layer = self.layer_mut(rid);
        let allowed = layer
            .last_keyframe_request
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_INTERVAL);
        if allowed {
            layer.last_keyframe_request = Some(now);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rids(names: &[&str]) -> Vec<Rid> {
        names.iter().map(|n| Rid::from(*n)).collect()
    }

    #[test]
    fn layers_rank_by_picture_size_whatever_the_sdp_order() {
        let now = Instant::now();
        // Listed high to low, as some clients do.
        let mut track =
            PublishedTrack::new(Mid::from("0"), MediaKind::Video, rids(&["f", "h", "q"]));
        track.record(now, Some("f".into()), None, 1000, 0);
        track.record(now, Some("h".into()), None, 1000, 0);
        track.record(now, Some("q".into()), None, 1000, 0);
        // Without sizes, SDP order stands.
        assert_eq!(
            track.active_layers(now),
            vec![Some("f".into()), Some("h".into()), Some("q".into())]
        );
        track.record(now, Some("f".into()), Some((1280, 720)), 1000, 0);
        track.record(now, Some("h".into()), Some((640, 360)), 1000, 0);
        track.record(now, Some("q".into()), Some((320, 180)), 1000, 0);
        assert_eq!(
            track.active_layers(now),
            vec![Some("q".into()), Some("h".into()), Some("f".into())]
        );
    }

    #[test]
    fn a_layer_that_stops_sending_drops_out() {
        let start = Instant::now();
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, rids(&["q", "h"]));
        track.record(start, Some("q".into()), None, 1000, 0);
        track.record(start, Some("h".into()), None, 1000, 0);
        let later = start + Duration::from_secs(2);
        track.record(later, Some("q".into()), None, 1000, 0);
        assert_eq!(track.active_layers(later), vec![Some("q".into())]);
    }

    #[test]
    fn layer_bitrates_are_measured_and_smoothed() {
        let start = Instant::now();
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, rids(&["q"]));
        // 25 frames a second of 1000 bytes (1060 on the wire): 212 kbit/s.
        for i in 0..50u64 {
            let first = i == 0;
            let now = start + Duration::from_millis(i * 40);
            assert_eq!(
                track.record(now, Some("q".into()), None, 1000, i).new_layer,
                first
            );
        }
        let bps = track.bps(start + Duration::from_millis(2000));
        assert!((190_000..=230_000).contains(&bps), "{bps}");
        let info = track.layer_info(start + Duration::from_millis(2000));
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].bps, bps);
    }

    #[test]
    fn a_new_rtp_time_starts_a_frame() {
        let now = Instant::now();
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, vec![]);
        assert!(track.record(now, None, None, 1000, 3000).frame_start);
        assert!(!track.record(now, None, None, 1000, 3000).frame_start);
        assert!(track.record(now, None, None, 1000, 6000).frame_start);
    }

    fn received(rid: Option<Rid>, ssrc: u32, seq: u64) -> Received {
        Received {
            facts: Packet {
                rid,
                ssrc,
                seq,
                time: str0m::media::MediaTime::from_90khz(seq * 3000),
                arrival: Instant::now(),
                keyframe_start: false,
                picture_id: None,
                tl0_pic_idx: None,
            },
            pt: 96.into(),
            params: PayloadParams::new(
                96.into(),
                None,
                str0m::format::CodecSpec {
                    codec: Codec::Vp8,
                    clock_rate: str0m::media::Frequency::NINETY_KHZ,
                    channels: None,
                    format: Default::default(),
                },
            ),
            marker: false,
            ext: ExtensionValues::default(),
            vp8: None,
            payload: Arc::from(&[0u8; 4][..]),
        }
    }

    #[test]
    fn kept_packets_after_a_late_entry_come_in_order_once_each() {
        let q = Some(Rid::from("q"));
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, rids(&["q", "h"]));
        for seq in [12, 11, 13, 12, 9] {
            track.keep(&received(q, 1, seq));
        }
        track.keep(&received(Some(Rid::from("h")), 2, 50));
        let entry = received(q, 1, 10).facts;
        let after: Vec<u64> = track
            .kept_after(&entry)
            .iter()
            .map(|r| r.facts.seq)
            .collect();
        assert_eq!(after, vec![11, 12, 13]);
        // A new source stream on the layer: the old one's packets go.
        track.keep(&received(q, 3, 100));
        assert!(track.kept_after(&entry).is_empty());
        // Bounded.
        for seq in 0..(RECENT_PACKETS as u64 + 10) {
            track.keep(&received(q, 3, 200 + seq));
        }
        let all = track.kept_after(&received(q, 3, 0).facts);
        assert_eq!(all.len(), RECENT_PACKETS);
        assert_eq!(all[0].facts.seq, 210);
        // And only for a while.
        let mut late = received(q, 3, 1000);
        late.facts.arrival += RECENT_FOR + Duration::from_millis(1);
        track.keep(&late);
        let kept: Vec<u64> = track
            .kept_after(&received(q, 3, 0).facts)
            .iter()
            .map(|r| r.facts.seq)
            .collect();
        assert_eq!(kept, vec![1000]);
    }

    #[test]
    fn keyframe_requests_are_rate_limited_per_layer() {
        let now = Instant::now();
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, vec![]);
        assert!(track.take_keyframe_request_slot(now, None));
        assert!(!track.take_keyframe_request_slot(now + Duration::from_millis(100), None));
        assert!(track.take_keyframe_request_slot(now + KEYFRAME_REQUEST_INTERVAL, None));
    }
}
