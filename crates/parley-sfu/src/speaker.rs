//! Who is speaking in a room, from the audio levels publishers put in every
//! Opus packet (RFC 6464 header extension: 0 is the loudest, 127 silence,
//! in -dBov). No audio is decoded.
//!
//! Each participant's loudness is smoothed over the last few hundred
//! milliseconds; the loudest one above a speech threshold becomes the active
//! speaker, and keeps the floor for at least [`HOLD`] unless it falls
//! silent: a cough does not take it away, a real turn does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::ParticipantId;

/// The least time an active speaker keeps the floor against a louder one.
pub(crate) const HOLD: Duration = Duration::from_millis(1500);
/// Someone not heard (or below the threshold) this long is silent.
const SILENT_AFTER: Duration = Duration::from_millis(800);
/// Loudness (127 - level) counted as speech: about -70 dBov and louder.
const SPEECH: f32 = 57.0;
/// Weight of each new packet in the smoothed loudness (20 ms packets:
/// about a quarter second to follow a change).
const SMOOTHING: f32 = 0.08;
/// A challenger must be this much louder (dB) to take the floor early.
const MARGIN: f32 = 6.0;
/// The floor is reconsidered at most this often (levels come per packet,
/// from every speaker in the room; deciding on each would cost O(n) per packet).
const DECIDE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Voice {
    loudness: f32,
    last_speech: Option<Instant>,
}

/// The active speaker of one room.
#[derive(Debug, Default)]
pub(crate) struct SpeakerDetector {
    voices: HashMap<ParticipantId, Voice>,
    current: Option<(ParticipantId, Instant)>,
    next_decision: Option<Instant>,
}

impl SpeakerDetector {
    /// Notes one audio packet's level; returns the new active speaker when
    /// it changes.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        id: ParticipantId,
        level: i8,
    ) -> Option<ParticipantId> {
        // str0m hands the level over negated (-127 silence, 0 loudest); the
        // magnitude is the RFC's -dBov either way.
        let loudness = 127.0 - f32::from(level.unsigned_abs().min(127));
        let voice = self.voices.entry(id).or_insert(Voice {
            loudness,
            last_speech: None,
        });
        voice.loudness += SMOOTHING * (loudness - voice.loudness);
        if voice.loudness >= SPEECH {
            voice.last_speech = Some(now);
        }
        if self.next_decision.is_some_and(|t| now < t) {
            return None;
        }
        self.next_decision = Some(now + DECIDE_EVERY);
        self.decide(now)
    }

    /// The active speaker, if any.
    pub(crate) fn current(&self) -> Option<ParticipantId> {
        self.current.map(|(id, _)| id)
    }

    /// When `id` last spoke, if ever.
    pub(crate) fn last_speech(&self, id: ParticipantId) -> Option<Instant> {
        self.voices.get(&id).and_then(|v| v.last_speech)
    }

    /// Forgets a participant that left.
    pub(crate) fn remove(&mut self, id: ParticipantId) {
        self.voices.remove(&id);
        if self.current.is_some_and(|(c, _)| c == id) {
            self.current = None;
        }
    }

    fn speaking(&self, now: Instant, id: ParticipantId) -> Option<f32> {
        let v = self.voices.get(&id)?;
        let recent = v
            .last_speech
            .is_some_and(|t| now.saturating_duration_since(t) < SILENT_AFTER);
        recent.then_some(v.loudness)
    }

    fn decide(&mut self, now: Instant) -> Option<ParticipantId> {
        let loudest = self
            .voices
            .keys()
            .filter_map(|id| self.speaking(now, *id).map(|l| (*id, l)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let (challenger, loudness) = loudest?;
        let take = match self.current {
            None => true,
            Some((current, _)) if current == challenger => false,
            Some((current, since)) => match self.speaking(now, current) {
                None => true,
                Some(held) => {
                    now.saturating_duration_since(since) >= HOLD && loudness > held + MARGIN
                }
            },
        };
        if take {
            self.current = Some((challenger, now));
            return Some(challenger);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(
        d: &mut SpeakerDetector,
        start: Instant,
        ms: std::ops::Range<u64>,
        who: &[(ParticipantId, i8)],
    ) -> Vec<(u64, ParticipantId)> {
        let mut changes = Vec::new();
        for t in ms.step_by(20) {
            for (id, level) in who {
                if let Some(s) = d.observe(start + Duration::from_millis(t), *id, *level) {
                    changes.push((t, s));
                }
            }
        }
        changes
    }

    #[test]
    fn the_speaker_keeps_the_floor_through_a_cough_and_yields_to_a_real_turn() {
        let (ada, bob) = (ParticipantId::new(1), ParticipantId::new(2));
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        // Ada speaks; Bob is silent.
        let c = feed(&mut d, t0, 0..2000, &[(ada, 30), (bob, 127)]);
        assert_eq!(c.first().map(|c| c.1), Some(ada));
        assert_eq!(c.len(), 1);
        // Bob coughs for 200 ms while Ada goes on: no change.
        let c = feed(&mut d, t0, 2000..2200, &[(ada, 30), (bob, 10)]);
        assert!(c.is_empty(), "{c:?}");
        // Ada stops; Bob speaks: Bob takes the floor within a second.
        let c = feed(&mut d, t0, 2200..4000, &[(ada, 127), (bob, 30)]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].1, bob);
        assert!(c[0].0 < 3200, "took {} ms", c[0].0 - 2200);
    }

    #[test]
    fn levels_as_str0m_hands_them_over_are_understood() {
        // str0m decodes the RFC 6464 level as a negative number: -30 is
        // speech, -127 silence. (Reading them as 0..=127 once made everyone
        // maximally loud, and the first voice kept the floor for good.)
        let (ada, bob) = (ParticipantId::new(1), ParticipantId::new(2));
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        let c = feed(&mut d, t0, 0..2000, &[(ada, -127), (bob, -30)]);
        assert_eq!(c.first().map(|c| c.1), Some(bob), "{c:?}");
        let c = feed(&mut d, t0, 2000..4000, &[(ada, -25), (bob, -127)]);
        assert_eq!(c.last().map(|c| c.1), Some(ada), "{c:?}");
    }

    #[test]
    fn silence_elects_nobody_and_a_leaver_is_forgotten() {
        let ada = ParticipantId::new(1);
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        assert!(feed(&mut d, t0, 0..1000, &[(ada, 127)]).is_empty());
        assert_eq!(feed(&mut d, t0, 1000..2000, &[(ada, 20)]).len(), 1);
        d.remove(ada);
        assert!(d.current.is_none());
    }
}
