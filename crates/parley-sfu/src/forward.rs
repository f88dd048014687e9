//! Per-subscriber forwarding decisions for one track: which simulcast layer
//! goes out, when a switch may happen, and how timestamps stay continuous.
//!
//! The decisions are pure (no str0m state), so they are tested directly.

use std::time::Instant;

use str0m::media::{MediaTime, Rid};

use crate::allocate::Choice;

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
    /// Nothing goes out (the subscriber's estimate leaves no room, or its tile is hidden).
    paused: bool,
    /// Switching down because the subscriber's link is short: the current
    /// layer stops at once rather than at the lower layer's keyframe, so the
    /// congestion (and the audio behind it) clears sooner.
    hold: bool,
    /// The layer choice has been made at least once (a simulcast track has
    /// no sensible default).
    pub(crate) chosen: bool,
    rebase: Rebase,
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
            rebase: Rebase::default(),
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

    /// Decides about one frame of layer `rid`.
    pub(crate) fn on_frame(
        &mut self,
        rid: Option<Rid>,
        is_keyframe: bool,
        time: MediaTime,
        arrival: Instant,
    ) -> Verdict {
        if self.paused {
            return Verdict::Drop;
        }
        let on_target = rid == self.target;
        let on_current = self.current == Some(rid);
        if on_target && is_keyframe && (self.waiting_keyframe || !on_current) {
            // A clean entry point: switch (or start) here.
            if !on_current {
                self.rebase.switch(time, arrival);
            }
            self.current = Some(rid);
            self.waiting_keyframe = false;
            self.hold = false;
            return Verdict::Forward(self.rebase.apply(time, arrival));
        }
        if on_current && !self.waiting_keyframe && !self.hold {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn chosen(rid: Option<Rid>) -> Forwarder {
        let mut f = Forwarder::new(rid);
        f.choose(Choice::Layer(rid));
        f
    }

    fn t(v: u64) -> MediaTime {
        MediaTime::from_90khz(v)
    }

    #[test]
    fn nothing_is_forwarded_before_the_first_keyframe() {
        let now = Instant::now();
        let mut f = chosen(None);
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
        let mut f = chosen(low);
        assert!(matches!(
            f.on_frame(low, true, t(100), now),
            Verdict::Forward(_)
        ));

        f.choose(Choice::Layer(high));
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
        let mut f = chosen(low);
        let Verdict::Forward(first) = f.on_frame(low, true, t(1_000), start) else {
            panic!("keyframe on target must be forwarded");
        };
        f.choose(Choice::Layer(high));
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
        let mut f = chosen(None);
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
    fn switching_down_stops_the_current_layer_at_once() {
        let now = Instant::now();
        let (low, high) = (Some(Rid::from("q")), Some(Rid::from("f")));
        let mut f = chosen(high);
        assert!(matches!(
            f.on_frame(high, true, t(0), now),
            Verdict::Forward(_)
        ));
        f.choose_lower(low);
        assert_eq!(f.on_frame(high, false, t(3000), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(low));
        assert!(matches!(
            f.on_frame(low, true, t(6000), now),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            f.on_frame(low, false, t(9000), now),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn a_pause_drops_everything_and_resumes_on_a_keyframe() {
        let now = Instant::now();
        let mut f = chosen(None);
        f.choose(Choice::Layer(None));
        assert!(matches!(
            f.on_frame(None, true, t(0), now),
            Verdict::Forward(_)
        ));
        f.choose(Choice::Paused);
        assert!(f.is_paused());
        assert_eq!(f.on_frame(None, true, t(3000), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), None, "a paused video asks for nothing");
        f.choose(Choice::Layer(None));
        assert_eq!(f.on_frame(None, false, t(6000), now), Verdict::Drop);
        assert_eq!(f.wants_keyframe(), Some(None));
        assert!(matches!(
            f.on_frame(None, true, t(9000), now),
            Verdict::Forward(_)
        ));
    }
}
