//! A subscribe connection's recent bandwidth estimates, and what the layer
//! allocation reads from them: the latest, whether it fell from a recent
//! peak, and the lowest that held lately.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long estimates are remembered for their peak.
const PEAK_MEMORY: Duration = Duration::from_secs(2);
/// How long an estimate must hold before video goes up on it. A probe can
/// overshoot (a burst of padding that met no queue) and the estimate fall
/// back within half a second; layers raised on it would be cut again, each
/// change costing the publisher a keyframe and the subscriber frames.
pub(crate) const HOLD: Duration = Duration::from_secs(1);
/// The most estimates remembered, whatever the estimator's pace (it
/// reports a few times a second): the oldest go first.
const MAX_ESTIMATES: usize = 256;

/// The estimates (bits per second) of the last [`PEAK_MEMORY`], oldest first.
#[derive(Debug, Default)]
pub(crate) struct Estimates(VecDeque<(Instant, u64)>);

impl Estimates {
    /// Notes a new estimate.
    pub(crate) fn note(&mut self, now: Instant, bps: u64) {
        self.0.push_back((now, bps));
        // The newest estimate older than the memory stays: it was in force
        // when the memory began (the estimator reports only changes, so on
        // a steady link one estimate can stand for many seconds).
        while self
            .0
            .get(1)
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > PEAK_MEMORY)
        {
            self.0.pop_front();
        }
        while self.0.len() > MAX_ESTIMATES {
            self.0.pop_front();
        }
    }

    /// Forgets them all (a new connection estimates afresh).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The latest estimate.
    pub(crate) fn latest(&self) -> Option<u64> {
        self.0.back().map(|(_, bps)| *bps)
    }

    /// The lowest estimate in force over the last [`HOLD`]: the one noted
    /// before that began, and every one since.
    pub(crate) fn held(&self, now: Instant) -> Option<u64> {
        let since = now.checked_sub(HOLD);
        let mut held: Option<u64> = None;
        for &(at, bps) in self.0.iter().rev() {
            held = Some(held.map_or(bps, |h| h.min(bps)));
            if since.is_some_and(|since| at <= since) {
                break;
            }
        }
        held
    }

    /// Whether the estimate fell (by a tenth or more from its peak over the
    /// last [`PEAK_MEMORY`], counting the one in force when that began):
    /// the estimator reacting to congestion, rather than a starting guess
    /// still climbing towards what is sent.
    pub(crate) fn fell(&self) -> bool {
        let peak = self.0.iter().map(|(_, bps)| *bps).max();
        match (self.latest(), peak) {
            (Some(bps), Some(peak)) => bps * 10 < peak * 9,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_estimate_counts_for_going_up_once_it_held() {
        let t0 = Instant::now();
        let mut e = Estimates::default();
        assert_eq!(e.held(t0), None);
        e.note(t0, 1_000_000);
        // A probe overshoots: the latest is high, what held is not.
        e.note(t0 + 50 * MS, 30_000_000);
        assert_eq!(e.latest(), Some(30_000_000));
        assert_eq!(e.held(t0 + 500 * MS), Some(1_000_000));
        // The start of the window is what was in force then, not what came later.
        assert_eq!(e.held(t0 + 1040 * MS), Some(1_000_000));
        assert_eq!(e.held(t0 + 1060 * MS), Some(30_000_000));
        // A dip within the window holds going up back.
        e.note(t0 + 1200 * MS, 8_000_000);
        e.note(t0 + 1300 * MS, 9_000_000);
        assert_eq!(e.held(t0 + 2000 * MS), Some(8_000_000));
        assert_eq!(e.held(t0 + 2250 * MS), Some(8_000_000));
        assert_eq!(e.held(t0 + 2350 * MS), Some(9_000_000));
        // The window's start is inclusive: an estimate noted exactly then
        // was in force then.
        assert_eq!(e.held(t0 + 2200 * MS), Some(8_000_000));
    }

    #[test]
    fn after_a_quiet_stretch_the_estimate_in_force_still_counts() {
        // The estimator reports only changes: a steady link can go seconds
        // without one, and then a probe's overshoot must still wait.
        let t0 = Instant::now();
        let mut e = Estimates::default();
        e.note(t0, 1_000_000);
        e.note(t0 + 3000 * MS, 30_000_000);
        assert_eq!(e.held(t0 + 3100 * MS), Some(1_000_000));
        assert_eq!(e.held(t0 + 4100 * MS), Some(30_000_000));
        // And a drop after a quiet stretch is a fall from what was in force.
        let mut e = Estimates::default();
        e.note(t0, 1_000_000);
        e.note(t0 + 3000 * MS, 500_000);
        assert!(e.fell());
    }

    #[test]
    fn a_fall_is_measured_from_the_recent_peak() {
        let t0 = Instant::now();
        let mut e = Estimates::default();
        e.note(t0, 1_000_000);
        e.note(t0 + 100 * MS, 2_000_000);
        assert!(!e.fell(), "a starting guess climbing");
        e.note(t0 + 200 * MS, 1_700_000);
        assert!(e.fell());
        // The peak is forgotten after a while.
        e.note(t0 + 2500 * MS, 1_700_000);
        assert!(!e.fell());
        e.clear();
        assert_eq!(e.latest(), None);
        assert!(!e.fell());
    }

    #[test]
    fn memory_is_bounded_whatever_the_pace() {
        let t0 = Instant::now();
        let mut e = Estimates::default();
        for i in 0..1000u64 {
            e.note(t0 + Duration::from_micros(i), i);
        }
        assert_eq!(e.0.len(), MAX_ESTIMATES);
        assert_eq!(e.latest(), Some(999));
    }
}
