//! Per-subscriber forwarding decisions for one track: which simulcast layer
//! goes out, when a switch may happen, and how the outgoing stream stays
//! continuous (sequence numbers, timestamps, VP8 picture ids) whatever
//! layers it is cut from.
//!
//! The SFU forwards RTP packets as they arrive (str0m's RTP mode): nothing
//! is depacketized or packetized again, and one payload is shared by every
//! subscriber. The decisions are pure (no str0m state), so they are tested
//! directly.

use std::time::Instant;

use str0m::media::{MediaTime, Rid};

use crate::media::{Choice, Packet};

/// Where a forwarded packet goes in the subscriber's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Out {
    pub(crate) seq: u64,
    pub(crate) time: MediaTime,
    /// Rewritten VP8 picture id, in the packet's own width.
    pub(crate) picture_id: Option<u16>,
    pub(crate) tl0_pic_idx: Option<u8>,
}

/// What to do with one incoming packet for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write the packet there.
    Forward(Out),
    /// Do not send; if the forwarder [`wants_keyframe`](Forwarder::wants_keyframe),
    /// ask the publisher for one.
    Drop,
}

/// Forwarding state of one published track towards one subscriber.
#[derive(Debug)]
pub(crate) struct Forwarder {
    /// The layer currently forwarded, once the first keyframe went out.
    current: Option<Option<Rid>>,
    /// The layer the subscriber should get.
    target: Option<Rid>,
    /// The subscriber's decoder needs a keyframe before anything else is useful
    /// (new subscription, a reconnect, or a subscriber asking with PLI).
    waiting_keyframe: bool,
    /// Nothing goes out (the subscriber's estimate leaves no room, or its tile is hidden).
    paused: bool,
    /// Switching down because the subscriber's link is short: the current
    /// layer stops at the end of its frame rather than at the lower layer's
    /// keyframe, so the congestion (and the audio behind it) clears sooner.
    hold: bool,
    /// The layer choice has been made at least once (a simulcast track has
    /// no sensible default).
    pub(crate) chosen: bool,
    /// The media time of the frame being forwarded: its remaining packets
    /// still go out after a pause or hold, so no frame is cut in half.
    open_frame: Option<MediaTime>,
    /// The last video packet started an epoch.
    entered: bool,
    sequence: Sequencer,
}

impl Forwarder {
    pub(crate) fn new(target: Option<Rid>) -> Self {
        Forwarder {
            current: None,
            target,
            waiting_keyframe: true,
            paused: false,
            hold: false,
            chosen: false,
            open_frame: None,
            entered: false,
            sequence: Sequencer::default(),
        }
    }

    /// Applies a layer choice: a layer (switched to at its next keyframe), or
    /// a pause. Video that resumes after a pause starts from a keyframe.
    pub(crate) fn choose(&mut self, choice: Choice) {
        self.chosen = true;
        match choice {
            Choice::Paused => self.paused = true,
            Choice::Layer(rid) => {
                if self.paused {
                    self.paused = false;
                    self.waiting_keyframe = true;
                }
                if self.target != rid {
                    self.hold = false;
                }
                self.target = rid;
            }
        }
    }

    /// Like [`choose`](Self::choose) a lower layer, but the current layer
    /// stops at once: the subscriber's link cannot carry it.
    pub(crate) fn choose_lower(&mut self, rid: Option<Rid>) {
        self.choose(Choice::Layer(rid));
        self.hold = self.current.is_some_and(|c| c != rid);
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn target(&self) -> Option<Rid> {
        self.target
    }

    /// The layer actually being sent, if any.
    pub(crate) fn current(&self) -> Option<Option<Rid>> {
        self.current
    }

    /// Starts over from a keyframe, e.g. when the subscriber's connection (re)connects.
    pub(crate) fn restart(&mut self) {
        self.waiting_keyframe = true;
    }

    /// The layer a keyframe is needed on, if forwarding is blocked on one.
    pub(crate) fn wants_keyframe(&self) -> Option<Option<Rid>> {
        if self.paused || !self.chosen {
            return None;
        }
        let switching = self.current != Some(self.target);
        (self.waiting_keyframe || switching).then_some(self.target)
    }

    /// Decides about one video packet.
    pub(crate) fn on_video(&mut self, packet: &Packet) -> Verdict {
        self.entered = false;
        let on_target = packet.rid == self.target;
        let mut on_current = self.current == Some(packet.rid);
        if on_current && self.sequence.ssrc != Some(packet.ssrc) {
            // The layer under way came back as a new stream (the publisher
            // reconnected): it needs a keyframe like any new start.
            self.waiting_keyframe = true;
            on_current = false;
        }
        if !self.paused
            && on_target
            && packet.keyframe_start
            && (self.waiting_keyframe || !on_current)
            && !self.sequence.has_passed(packet)
        {
            // A clean entry point: switch (or start) here.
            self.sequence.enter(packet);
            self.current = Some(packet.rid);
            self.waiting_keyframe = false;
            self.hold = false;
            self.entered = true;
            return self.pass(packet);
        }
        if on_current && !self.waiting_keyframe {
            let stopping = self.paused || self.hold;
            if !stopping || self.open_frame == Some(packet.time) {
                return self.pass(packet);
            }
        }
        if on_current && !self.waiting_keyframe {
            // Stopped (paused, or held for a lower layer): what comes after
            // needs a new entry point, even if the stop is lifted before
            // the lower layer's keyframe came.
            self.open_frame = None;
            self.waiting_keyframe = true;
        }
        Verdict::Drop
    }

    /// Decides about one audio packet: every one goes out, and a new
    /// source stream (or a jump after moderation held the track back)
    /// continues the subscriber's stream without a gap.
    pub(crate) fn on_audio(&mut self, packet: &Packet) -> Verdict {
        if !self.sequence.continues(packet) {
            self.sequence.enter(packet);
        }
        self.pass(packet)
    }

    /// Whether the last video packet decided on started an epoch: the
    /// subscriber entered (or switched) at it, so what arrived of its
    /// stream before it (reordered, or it was retransmitted) is still to
    /// be sent.
    pub(crate) fn just_entered(&self) -> bool {
        self.entered
    }

    fn pass(&mut self, packet: &Packet) -> Verdict {
        match self.sequence.map(packet) {
            Some(out) => {
                self.open_frame = Some(packet.time);
                Verdict::Forward(out)
            }
            None => Verdict::Drop,
        }
    }
}

/// A sequence jump this large in one source stream is a new start, not loss.
const SEQUENCE_JUMP: u64 = 1000;

/// Maps the packets of the layers a subscriber is sent onto its one
/// outgoing stream. Each entry point (a keyframe, or a new source stream
/// for audio) starts an epoch: sequence numbers and VP8 picture ids
/// continue from the last ones sent; media time continues from the last
/// one sent, advanced by the wall-clock time that passed, when the source
/// stream changed (simulcast layers may have unrelated timestamp bases).
#[derive(Debug, Default)]
struct Sequencer {
    /// The source stream of the current epoch.
    ssrc: Option<u32>,
    /// The first incoming sequence number of the epoch; older ones are dropped.
    start: u64,
    seq_offset: i64,
    /// One past the highest outgoing sequence number.
    next_seq: u64,
    highest_in: u64,
    time_offset: i64,
    last_time: Option<(MediaTime, Instant)>,
    picture_offset: u16,
    last_picture: Option<u16>,
    tl0_offset: u8,
    last_tl0: Option<u8>,
}

impl Sequencer {
    fn continues(&self, packet: &Packet) -> bool {
        self.ssrc == Some(packet.ssrc)
            && packet.seq >= self.start
            && packet.seq <= self.highest_in + SEQUENCE_JUMP
    }

    /// Whether newer packets of `packet`'s stream went out already: a
    /// keyframe arriving that late (a retransmission) is no entry point,
    /// since time would run backwards.
    fn has_passed(&self, packet: &Packet) -> bool {
        self.ssrc == Some(packet.ssrc)
            && packet.seq < self.highest_in
            && self.highest_in - packet.seq < SEQUENCE_JUMP
    }

    fn enter(&mut self, packet: &Packet) {
        let first = self.ssrc.is_none();
        let same_stream = self.ssrc == Some(packet.ssrc);
        self.ssrc = Some(packet.ssrc);
        self.start = packet.seq;
        self.highest_in = packet.seq;
        // Outgoing numbers start at 1, far from the 16-bit wrap.
        let next = self.next_seq.max(1);
        self.seq_offset = next as i64 - packet.seq as i64;
        if !same_stream {
            self.time_offset = match self.last_time {
                Some((last, at)) if !first => {
                    let hz = u64::from(last.denom());
                    let elapsed = packet.arrival.saturating_duration_since(at);
                    let ticks = (elapsed.as_micros() as u64).saturating_mul(hz) / 1_000_000;
                    let expected = last.numer() + ticks.max(1);
                    expected as i64 - packet.time.rebase(last.frequency()).numer() as i64
                }
                _ => 0,
            };
        }
        if let Some(id) = packet.picture_id {
            let next = self.last_picture.map_or(id.value, |p| p.wrapping_add(1));
            self.picture_offset = next.wrapping_sub(id.value);
        }
        if let Some(tl0) = packet.tl0_pic_idx {
            let next = self.last_tl0.map_or(tl0, |t| t.wrapping_add(1));
            self.tl0_offset = next.wrapping_sub(tl0);
        }
    }

    fn map(&mut self, packet: &Packet) -> Option<Out> {
        if self.ssrc != Some(packet.ssrc) || packet.seq < self.start {
            return None;
        }
        let seq = u64::try_from(packet.seq as i64 + self.seq_offset).ok()?;
        self.next_seq = self.next_seq.max(seq + 1);
        // Only the newest packet moves the bases the next epoch continues
        // from: a late one (reordered, or a retransmission) belongs to an
        // older frame.
        let newest = packet.seq >= self.highest_in;
        self.highest_in = self.highest_in.max(packet.seq);
        let shifted = (packet.time.numer() as i64)
            .saturating_add(self.time_offset)
            .max(0) as u64;
        let time = MediaTime::new(shifted, packet.time.frequency());
        if newest {
            self.last_time = Some((time, packet.arrival));
        }
        let picture_id = packet.picture_id.map(|id| {
            let out = id.value.wrapping_add(self.picture_offset) & 0x7fff;
            if newest {
                self.last_picture = Some(out);
            }
            if id.long { out } else { out & 0x7f }
        });
        let tl0_pic_idx = packet.tl0_pic_idx.map(|t| {
            let out = t.wrapping_add(self.tl0_offset);
            if newest {
                self.last_tl0 = Some(out);
            }
            out
        });
        Some(Out {
            seq,
            time,
            picture_id,
            tl0_pic_idx,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::PictureId;

    fn chosen(rid: Option<Rid>) -> Forwarder {
        let mut f = Forwarder::new(rid);
        f.choose(Choice::Layer(rid));
        f
    }

    /// A packet of layer `rid` (its SSRC follows the layer) with sequence
    /// number `seq` and 90 kHz time `time`.
    fn pkt(rid: Option<Rid>, seq: u64, time: u64, keyframe_start: bool, at: Instant) -> Packet {
        let ssrc = match rid {
            Some(r) => u32::from(r.as_bytes()[0]),
            None => 7,
        };
        Packet {
            rid,
            ssrc,
            seq,
            time: MediaTime::from_90khz(time),
            arrival: at,
            keyframe_start,
            picture_id: None,
            tl0_pic_idx: None,
        }
    }

    fn out(v: Verdict) -> Out {
        match v {
            Verdict::Forward(o) => o,
            Verdict::Drop => panic!("expected the packet to be forwarded"),
        }
    }

    #[test]
    fn nothing_is_forwarded_before_the_first_keyframe() {
        let now = Instant::now();
        let mut f = chosen(None);
        assert_eq!(f.on_video(&pkt(None, 10, 1000, false, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        let first = out(f.on_video(&pkt(None, 11, 4000, true, now)));
        let second = out(f.on_video(&pkt(None, 12, 4000, false, now)));
        assert_eq!(
            (first.seq, second.seq),
            (1, 2),
            "the subscriber's stream has no gap"
        );
        assert_eq!(second.time, MediaTime::from_90khz(4000));
        assert_eq!(f.wants_keyframe(), None);
        // A packet from before the entry point (reordered) stays out.
        assert_eq!(f.on_video(&pkt(None, 9, 1000, false, now)), Verdict::Drop);
    }

    #[test]
    fn entering_at_a_late_keyframe_start_takes_the_packets_that_came_before_it() {
        let now = Instant::now();
        let mut f = chosen(None);
        // The keyframe's second packet overtook its first.
        assert_eq!(f.on_video(&pkt(None, 21, 3000, false, now)), Verdict::Drop);
        let entry = pkt(None, 20, 3000, true, now);
        let first = out(f.on_video(&entry));
        assert!(f.just_entered());
        // What the SFU kept of the frame follows, in place.
        let second = out(f.on_video(&pkt(None, 21, 3000, false, now)));
        assert!(!f.just_entered());
        let third = out(f.on_video(&pkt(None, 22, 3000, false, now)));
        assert_eq!((first.seq, second.seq, third.seq), (1, 2, 3));
    }

    #[test]
    fn a_keyframe_older_than_what_went_out_is_no_entry_point() {
        let now = Instant::now();
        let mut f = chosen(None);
        out(f.on_video(&pkt(None, 3030, 3000, true, now)));
        out(f.on_video(&pkt(None, 3031, 6000, false, now)));
        out(f.on_video(&pkt(None, 3032, 9000, false, now)));
        // The subscriber asks for a keyframe; a retransmitted keyframe
        // start from before what it already has arrives meanwhile.
        f.restart();
        let old = pkt(None, 3030, 3000, true, now);
        assert_eq!(f.on_video(&old), Verdict::Drop);
        assert!(!f.just_entered());
        let fresh = out(f.on_video(&pkt(None, 3033, 12_000, true, now)));
        assert!(f.just_entered());
        assert_eq!(fresh.seq, 4, "time and numbers only go forward");
    }

    #[test]
    fn layer_switch_waits_for_a_keyframe_on_the_new_layer() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(low);
        out(f.on_video(&pkt(low, 100, 100, true, now)));

        f.choose(Choice::Layer(high));
        assert_eq!(f.wants_keyframe(), Some(high));
        // The old layer keeps flowing while the new one has no keyframe.
        out(f.on_video(&pkt(low, 101, 3100, false, now)));
        assert_eq!(
            f.on_video(&pkt(high, 5000, 50_000, false, now)),
            Verdict::Drop
        );
        // The keyframe on the target switches; the old layer then stops.
        let switched = out(f.on_video(&pkt(high, 5001, 53_000, true, now)));
        assert_eq!(
            switched.seq, 3,
            "sequence numbers continue across the switch"
        );
        assert_eq!(f.current(), Some(high));
        assert_eq!(f.on_video(&pkt(low, 102, 6100, false, now)), Verdict::Drop);
        assert_eq!(out(f.on_video(&pkt(high, 5002, 53_000, false, now))).seq, 4);
        assert_eq!(f.wants_keyframe(), None);
    }

    #[test]
    fn switching_layers_keeps_media_time_continuous() {
        let start = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(low);
        let first = out(f.on_video(&pkt(low, 1, 1_000, true, start)));
        f.choose(Choice::Layer(high));
        // The high layer has an unrelated timestamp base; 33 ms later its keyframe comes.
        let later = start + Duration::from_millis(33);
        let second = out(f.on_video(&pkt(high, 900, 9_000_000, true, later)));
        let step = second.time.numer() - first.time.numer();
        assert!((2_900..=3_100).contains(&step), "step was {step} ticks");
        // Packets after the switch keep the same offset.
        let third = out(f.on_video(&pkt(high, 901, 9_003_000, false, later)));
        assert_eq!(third.time.numer() - second.time.numer(), 3_000);
    }

    #[test]
    fn a_restart_waits_for_the_next_keyframe_and_leaves_no_gap() {
        let now = Instant::now();
        let mut f = chosen(None);
        out(f.on_video(&pkt(None, 50, 0, true, now)));
        f.restart();
        assert_eq!(f.on_video(&pkt(None, 51, 3000, false, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        let next = out(f.on_video(&pkt(None, 52, 6000, true, now)));
        assert_eq!(next.seq, 2);
        // Same stream: the media time is not shifted.
        assert_eq!(next.time, MediaTime::from_90khz(6000));
    }

    #[test]
    fn switching_down_stops_the_current_layer_after_its_frame() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(high);
        out(f.on_video(&pkt(high, 10, 0, true, now)));
        f.choose_lower(low);
        // The rest of the frame under way still goes out, the next does not.
        out(f.on_video(&pkt(high, 11, 0, false, now)));
        assert_eq!(f.on_video(&pkt(high, 12, 3000, false, now)), Verdict::Drop);
        assert_eq!(f.on_video(&pkt(high, 13, 3000, false, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(low));
        out(f.on_video(&pkt(low, 400, 6000, true, now)));
        out(f.on_video(&pkt(low, 401, 9000, false, now)));
    }

    #[test]
    fn a_hold_lifted_before_the_lower_keyframe_waits_for_a_keyframe() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(high);
        out(f.on_video(&pkt(high, 10, 0, true, now)));
        f.choose_lower(low);
        assert_eq!(f.on_video(&pkt(high, 11, 3000, false, now)), Verdict::Drop);
        // The link recovers before the low layer's keyframe: the high
        // layer's next delta frame would leave a gap nothing can fill.
        f.choose(Choice::Layer(high));
        assert_eq!(f.on_video(&pkt(high, 12, 6000, false, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(high));
        assert_eq!(out(f.on_video(&pkt(high, 13, 9000, true, now))).seq, 2);
    }

    #[test]
    fn a_layer_that_comes_back_as_a_new_stream_restarts_at_a_keyframe() {
        let now = Instant::now();
        let mut f = chosen(None);
        out(f.on_video(&pkt(None, 10, 0, true, now)));
        out(f.on_video(&pkt(None, 11, 3000, false, now)));
        // The publisher reconnected: same layer, new SSRC and numbering.
        let mut p = pkt(None, 500, 77_000, false, now);
        p.ssrc = 1234;
        assert_eq!(f.on_video(&p), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None), "a keyframe is asked for");
        p.seq = 501;
        p.keyframe_start = true;
        let entry = out(f.on_video(&p));
        assert_eq!(entry.seq, 3);
    }

    #[test]
    fn a_late_packet_does_not_move_the_next_epochs_bases() {
        let start = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(low);
        out(f.on_video(&pkt(low, 10, 90_000, true, start)));
        let newest = out(f.on_video(&pkt(low, 12, 96_000, false, start)));
        // A packet of the frame before arrives late (a retransmission).
        out(f.on_video(&pkt(low, 11, 93_000, false, start)));
        f.choose(Choice::Layer(high));
        let switched = out(f.on_video(&pkt(high, 70, 5_000, true, start)));
        assert!(switched.time.numer() > newest.time.numer());
    }

    #[test]
    fn a_pause_drops_everything_and_resumes_on_a_keyframe() {
        let now = Instant::now();
        let mut f = chosen(None);
        out(f.on_video(&pkt(None, 1, 0, true, now)));
        f.choose(Choice::Paused);
        assert!(f.is_paused());
        assert_eq!(f.on_video(&pkt(None, 2, 3000, true, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), None, "a paused video asks for nothing");
        f.choose(Choice::Layer(None));
        assert_eq!(f.on_video(&pkt(None, 3, 6000, false, now)), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        assert_eq!(out(f.on_video(&pkt(None, 4, 9000, true, now))).seq, 2);
    }

    #[test]
    fn vp8_picture_ids_continue_across_a_switch_in_their_own_width() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(low);
        let with = |mut p: Packet, id: u16, long: bool, tl0: u8| {
            p.picture_id = Some(PictureId { value: id, long });
            p.tl0_pic_idx = Some(tl0);
            p
        };
        let a = out(f.on_video(&with(pkt(low, 1, 0, true, now), 32_000, true, 200)));
        assert_eq!((a.picture_id, a.tl0_pic_idx), (Some(32_000), Some(200)));
        f.choose(Choice::Layer(high));
        let b = out(f.on_video(&with(pkt(high, 70, 3000, true, now), 5, false, 9)));
        // 32001 written in 7 bits.
        assert_eq!(b.picture_id, Some(32_001 & 0x7f));
        assert_eq!(b.tl0_pic_idx, Some(201));
        let c = out(f.on_video(&with(pkt(high, 71, 6000, false, now), 6, false, 9)));
        assert_eq!(c.picture_id, Some(32_002 & 0x7f));
        assert_eq!(c.tl0_pic_idx, Some(201));
    }

    #[test]
    fn audio_flows_and_a_new_source_stream_continues_the_sequence() {
        let now = Instant::now();
        let mut f = Forwarder::new(None);
        let mut p = pkt(None, 1000, 48_000, false, now);
        assert_eq!(out(f.on_audio(&p)).seq, 1);
        p.seq = 1001;
        assert_eq!(out(f.on_audio(&p)).seq, 2);
        // Loss stays visible as a gap (the receiver conceals it).
        p.seq = 1004;
        assert_eq!(out(f.on_audio(&p)).seq, 5);
        // A new source stream (the track was replaced): no gap, no jump.
        p.ssrc = 99;
        p.seq = 60_000;
        assert_eq!(out(f.on_audio(&p)).seq, 6);
    }
}
