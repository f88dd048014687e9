//! Per-subscriber forwarding decisions for one track: which simulcast layer
//! goes out, when a switch may happen, and how timestamps stay continuous.
//!
//! The decisions are pure (no str0m state), so they are tested directly.

use std::time::Instant;

use str0m::media::{MediaTime, Rid};

/// What to do with one incoming frame for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write the frame with this (rebased) media time.
    Forward(MediaTime),
    /// Do not send; if the forwarder [`wants_keyframe`](Forwarder::wants_keyframe),
    /// ask the publisher for one.
    Drop,
}

/// Forwarding state of one published video track towards one subscriber.
#[derive(Debug)]
pub(crate) struct Forwarder {
    /// The layer currently forwarded, once the first keyframe went out.
    current: Option<Option<Rid>>,
    /// The layer the subscriber should get.
    target: Option<Rid>,
    /// The subscriber's decoder needs a keyframe before anything else is useful
    /// (new subscription, a reconnect, or a subscriber asking with PLI).
    waiting_keyframe: bool,
    rebase: Rebase,
}

impl Forwarder {
    pub(crate) fn new(target: Option<Rid>) -> Self {
        Forwarder {
            current: None,
            target,
            waiting_keyframe: true,
            rebase: Rebase::default(),
        }
    }

    /// The layer this subscriber should receive from now on. The switch happens
    /// at the next keyframe of that layer; until then the current layer flows.
    pub(crate) fn set_target(&mut self, target: Option<Rid>) {
        self.target = target;
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
        let switching = self.current != Some(self.target);
        (self.waiting_keyframe || switching).then_some(self.target)
    }

    /// Decides about one frame of layer `rid`.
    pub(crate) fn on_frame(
        &mut self,
        rid: Option<Rid>,
        is_keyframe: bool,
        time: MediaTime,
        arrival: Instant,
    ) -> Verdict {
        let on_target = rid == self.target;
        let on_current = self.current == Some(rid);
        if on_target && is_keyframe && (self.waiting_keyframe || !on_current) {
            // A clean entry point: switch (or start) here.
            if !on_current {
                self.rebase.switch(time, arrival);
            }
            self.current = Some(rid);
            self.waiting_keyframe = false;
            return Verdict::Forward(self.rebase.apply(time, arrival));
        }
        if on_current && !self.waiting_keyframe {
            return Verdict::Forward(self.rebase.apply(time, arrival));
        }
        Verdict::Drop
    }
}

/// Keeps outgoing media time continuous across layer switches.
///
/// Simulcast layers may carry unrelated RTP timestamp bases. On a switch the
/// new layer's time is shifted so the output continues from the last frame
/// sent, advanced by the wall-clock time that passed.
#[derive(Debug, Default)]
struct Rebase {
    offset: i64,
    last: Option<(MediaTime, Instant)>,
}

impl Rebase {
    fn switch(&mut self, time: MediaTime, arrival: Instant) {
        let Some((last, last_arrival)) = self.last else {
            self.offset = 0;
            return;
        };
        let hz = u64::from(last.denom());
        let elapsed = arrival.saturating_duration_since(last_arrival);
        let ticks = (elapsed.as_micros() as u64).saturating_mul(hz) / 1_000_000;
        let expected = last.numer() + ticks.max(1);
        self.offset = expected as i64 - time.rebase(last.frequency()).numer() as i64;
    }

    fn apply(&mut self, time: MediaTime, arrival: Instant) -> MediaTime {
        let shifted = (time.numer() as i64).saturating_add(self.offset).max(0) as u64;
        let out = MediaTime::new(shifted, time.frequency());
        self.last = Some((out, arrival));
        out
    }
}

/// Picks the layer a subscriber should get from the layers being received,
/// ordered from lowest to highest quality.
///
/// For now the rule is by room size (a tile in a 3-person grid is large, in a
/// 12-person grid small): up to 4 participants get the best layer, up to 9 the
/// middle one, larger rooms the lowest.
pub(crate) fn choose_layer(active_low_to_high: &[Option<Rid>], room_size: usize) -> Option<Rid> {
    let n = active_low_to_high.len();
    if n == 0 {
        return None;
    }
    let index = match room_size {
        0..=4 => n - 1,
        5..=9 => n / 2,
        _ => 0,
    };
    active_low_to_high[index.min(n - 1)]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(v: u64) -> MediaTime {
        MediaTime::from_90khz(v)
    }

    #[test]
    fn nothing_is_forwarded_before_the_first_keyframe() {
        let now = Instant::now();
        let mut f = Forwarder::new(None);
        assert_eq!(f.on_frame(None, false, t(1000), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        assert_eq!(
            f.on_frame(None, true, t(4000), now),
            Verdict::Forward(t(4000))
        );
        assert_eq!(
            f.on_frame(None, false, t(7000), now),
            Verdict::Forward(t(7000))
        );
        assert_eq!(f.wants_keyframe(), None);
    }

    #[test]
    fn layer_switch_waits_for_a_keyframe_on_the_new_layer() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = Forwarder::new(low);
        assert!(matches!(
            f.on_frame(low, true, t(100), now),
            Verdict::Forward(_)
        ));

        f.set_target(high);
        assert_eq!(f.wants_keyframe(), Some(high));
        // The old layer keeps flowing while the new one has no keyframe.
        assert!(matches!(
            f.on_frame(low, false, t(3100), now),
            Verdict::Forward(_)
        ));
        assert_eq!(f.on_frame(high, false, t(50_000), now), Verdict::Drop);
        // The keyframe on the target switches; the old layer then stops.
        assert!(matches!(
            f.on_frame(high, true, t(53_000), now),
            Verdict::Forward(_)
        ));
        assert_eq!(f.current(), Some(high));
        assert_eq!(f.on_frame(low, false, t(6100), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), None);
    }

    #[test]
    fn switching_layers_keeps_media_time_continuous() {
        let start = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = Forwarder::new(low);
        let Verdict::Forward(first) = f.on_frame(low, true, t(1_000), start) else {
            panic!("keyframe on target must be forwarded");
        };
        f.set_target(high);
        // The high layer has an unrelated timestamp base; 33 ms later its keyframe comes.
        let later = start + Duration::from_millis(33);
        let Verdict::Forward(second) = f.on_frame(high, true, t(9_000_000), later) else {
            panic!("keyframe on new target must be forwarded");
        };
        let step = second.numer() - first.numer();
        assert!((2_900..=3_100).contains(&step), "step was {step} ticks");
        // Frames after the switch keep the same offset.
        let Verdict::Forward(third) = f.on_frame(high, false, t(9_003_000), later) else {
            panic!("delta frame after the switch must be forwarded");
        };
        assert_eq!(third.numer() - second.numer(), 3_000);
    }

    #[test]
    fn a_restart_waits_for_the_next_keyframe() {
        let now = Instant::now();
        let mut f = Forwarder::new(None);
        assert!(matches!(
            f.on_frame(None, true, t(0), now),
            Verdict::Forward(_)
        ));
        f.restart();
        assert_eq!(f.on_frame(None, false, t(3000), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        assert!(matches!(
            f.on_frame(None, true, t(6000), now),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn layer_choice_follows_room_size() {
        let layers = [
            Some(Rid::from("q")),
            Some(Rid::from("h")),
            Some(Rid::from("f")),
        ];
        assert_eq!(choose_layer(&layers, 3), layers[2]);
        assert_eq!(choose_layer(&layers, 6), layers[1]);
        assert_eq!(choose_layer(&layers, 20), layers[0]);
        assert_eq!(choose_layer(&layers[..1], 20), layers[0]);
        assert_eq!(choose_layer(&[], 3), None);
        assert_eq!(choose_layer(&[None], 3), None);
    }
}
