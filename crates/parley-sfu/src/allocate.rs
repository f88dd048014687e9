//! How much of each forwarded video one subscriber gets: a simulcast layer
//! or a pause, from the subscriber's bandwidth estimate, what it asked for
//! (the size of each tile), and who matters most (the active speaker first).
//!
//! Audio is never part of the bargain: its bitrate comes off the budget
//! first, and video is paused before audio would suffer. The decision is pure
//! (no str0m state), so it is tested directly; `allocator.rs` gathers the
//! inputs and applies the result.

use std::time::Duration;

use crate::media::{Choice, LayerInfo};

/// Every subscriber's layers are revisited at least this often (layers
/// stop, bitrates and estimates drift).
pub(crate) const ALLOCATE_EVERY: Duration = Duration::from_millis(500);
/// The share of the bandwidth estimate media may plan on.
pub(crate) const USABLE_PERCENT: u64 = 95;
/// An estimate below this share of what is being sent means the link is
/// congested. (While the SFU sends less than the link could carry, the
/// estimate follows what is sent rather than what the link can carry, so an
/// estimate near the sending rate is no reason to send less.)
const CONGESTED_PERCENT: u64 = 85;

/// Whether an estimate of `estimate` says the link cannot carry `sending`.
pub(crate) fn is_congested(estimate: u64, sending: u64) -> bool {
    estimate * 100 < sending * CONGESTED_PERCENT
}

/// What a subscriber's videos may take, given its latest estimate, the
/// lowest estimate `held` lately (see [`Estimates::held`](crate::estimate::Estimates::held)) and
/// what it is being sent (at least every wanted video's lowest layer): that
/// stays affordable until the link is congested — the estimate `fell` (the
/// estimator reacting to overuse or loss, not a starting guess still
/// climbing) below what is sent; going up needs room in an estimate that
/// held.
pub(crate) fn budget(estimate: u64, held: u64, sending: u64, floor: u64, fell: bool) -> u64 {
    if fell && is_congested(estimate, sending) {
        estimate * USABLE_PERCENT / 100
    } else {
        let usable = held * USABLE_PERCENT / 100;
        usable.max(sending).max(floor)
    }
}

/// Going up a layer needs this much more room than the layer's bitrate, so a
/// subscriber at the edge of its estimate does not flap between two layers.
const UPGRADE_HEADROOM_PERCENT: u64 = 15;

pub(crate) fn with_headroom(bps: u64) -> u64 {
    bps + bps * UPGRADE_HEADROOM_PERCENT / 100
}

/// What a subscriber could get of one published video.
#[derive(Debug, Clone)]
pub(crate) struct VideoWant {
    /// The layers being received, lowest quality first.
    pub(crate) layers: Vec<LayerInfo>,
    /// The best layer worth sending (index into `layers`), or `None` for
    /// none at all (a hidden tile, or outside the last N speakers).
    pub(crate) cap: Option<usize>,
    /// The layer being sent now, if any (index into `layers`).
    pub(crate) current: Option<usize>,
}

/// The decisions, in the order of the wants, with the totals they add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allocation {
    pub(crate) choices: Vec<Choice>,
    /// Bits per second the choices (and the audio) are expected to take.
    pub(crate) used_bps: u64,
    /// Bits per second the estimate must reach for everything wanted (with
    /// the headroom an upgrade needs): what the bandwidth estimator should
    /// try to reach.
    pub(crate) desired_bps: u64,
}

/// A layer's cost in bits per second: measured when known, else guessed from
/// its picture size, else from its rank (the usual 150/500/1500 kbit/s).
pub(crate) fn cost(layers: &[LayerInfo], index: usize) -> u64 {
    let layer = &layers[index];
    if layer.bps > 0 {
        return layer.bps;
    }
    if let Some(pixels) = layer.pixels {
        // About 0.06 bits per pixel at 25 frames a second.
        return u64::from(pixels) * 3 / 2;
    }
    const BY_RANK: [u64; 3] = [150_000, 500_000, 1_500_000];
    BY_RANK[index.min(BY_RANK.len() - 1)]
}

/// Decides every video of one subscriber. `wants` come in priority order
/// (the first is served first); `budget` is the usable estimate in bits per
/// second, or `None` where there is none (then everyone gets their cap).
pub(crate) fn allocate(budget: Option<u64>, audio_bps: u64, wants: &[VideoWant]) -> Allocation {
    let desired_bps = audio_bps
        + wants
            .iter()
            .filter_map(|w| w.cap.map(|c| with_headroom(cost(&w.layers, c))))
            .sum::<u64>();
    let Some(budget) = budget else {
        let choices = wants
            .iter()
            .map(|w| match w.cap {
                Some(c) => Choice::Layer(w.layers[c].rid),
                None => Choice::Paused,
            })
            .collect();
        return Allocation {
            choices,
            used_bps: desired_bps,
            desired_bps,
        };
    };
    // What taking layer `to` (from `from`) costs on top of what is taken.
    let step = |w: &VideoWant, from: Option<usize>, to: usize| -> u64 {
        let before = from.map_or(0, |f| cost(&w.layers, f));
        let mut after = cost(&w.layers, to);
        if w.current.is_none_or(|c| to > c) {
            after = with_headroom(after);
        }
        after.saturating_sub(before)
    };
    let mut left = budget.saturating_sub(audio_bps);
    let mut picked: Vec<Option<usize>> = vec![None; wants.len()];
    // Everyone's lowest layer first, in priority order.
    for (i, w) in wants.iter().enumerate() {
        if w.cap.is_none() || w.layers.is_empty() {
            continue;
        }
        let need = step(w, None, 0);
        if need <= left {
            left -= need;
            picked[i] = Some(0);
        }
    }
    // Then one step up at a time, in priority order, while it fits.
    loop {
        let mut raised = false;
        for (i, w) in wants.iter().enumerate() {
            let (Some(at), Some(cap)) = (picked[i], w.cap) else {
                continue;
            };
            if at >= cap.min(w.layers.len() - 1) {
                continue;
            }
            let need = step(w, Some(at), at + 1);
            if need <= left {
                left -= need;
                picked[i] = Some(at + 1);
                raised = true;
            }
        }
        if !raised {
            break;
        }
    }
    let mut used_bps = audio_bps;
    let choices = wants
        .iter()
        .zip(&picked)
        .map(|(w, p)| match p {
            Some(i) => {
                used_bps += cost(&w.layers, *i);
                Choice::Layer(w.layers[*i].rid)
            }
            None => Choice::Paused,
        })
        .collect();
    Allocation {
        choices,
        used_bps,
        desired_bps,
    }
}

/// The best layer worth sending for a tile of `requested` pixels (width,
/// height): the smallest layer at least that large. `(0, 0)` means the tile
/// is hidden. Without a request the room's size decides (a tile in a
/// 3-person grid is large, in a 12-person grid small).
pub(crate) fn cap_for(
    layers: &[LayerInfo],
    requested: Option<(u32, u32)>,
    room_size: usize,
) -> Option<usize> {
    let n = layers.len();
    if n == 0 {
        return None;
    }
    match requested {
        Some((0, _) | (_, 0)) => None,
        Some((w, h)) => {
            let want = w.saturating_mul(h);
            if layers.iter().all(|l| l.pixels.is_some()) {
                let fit = layers
                    .iter()
                    .position(|l| l.pixels.is_some_and(|p| p >= want))
                    .unwrap_or(n - 1);
                Some(fit)
            } else {
                // Sizes unknown: the usual thirds of 1280x720.
                let rank = match h.max(w * 9 / 16) {
                    0..=200 => 0,
                    201..=400 => 1,
                    _ => 2,
                };
                Some(rank.min(n - 1))
            }
        }
        None => Some(match room_size {
            0..=4 => n - 1,
            5..=9 => n / 2,
            _ => 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use str0m::media::Rid;

    use super::*;

    fn layers(bps: &[u64]) -> Vec<LayerInfo> {
        let names = ["q", "h", "f"];
        bps.iter()
            .enumerate()
            .map(|(i, b)| LayerInfo {
                rid: Some(Rid::from(names[i])),
                pixels: Some(320 * 180 * 4u32.pow(i as u32)),
                bps: *b,
            })
            .collect()
    }

    fn want(cap: Option<usize>, current: Option<usize>) -> VideoWant {
        VideoWant {
            layers: layers(&[150_000, 500_000, 1_500_000]),
            cap,
            current,
        }
    }

    fn rid(name: &str) -> Choice {
        Choice::Layer(Some(Rid::from(name)))
    }

    #[test]
    fn without_an_estimate_everyone_gets_their_cap() {
        let a = allocate(None, 40_000, &[want(Some(2), None), want(None, None)]);
        assert_eq!(a.choices, vec![rid("f"), Choice::Paused]);
        assert_eq!(a.desired_bps, 40_000 + 1_725_000);
    }

    #[test]
    fn audio_comes_off_first_and_the_speaker_is_served_before_the_rest() {
        let wants = [want(Some(2), None), want(Some(2), None)];
        // Room for more than two middle layers but not a top one besides:
        // both step up together rather than one taking it all.
        let a = allocate(Some(2_100_000), 80_000, &wants);
        assert_eq!(a.choices, vec![rid("h"), rid("h")]);
        // Room for one top layer: the speaker's.
        let a = allocate(Some(2_900_000), 80_000, &wants);
        assert_eq!(a.choices, vec![rid("f"), rid("h")]);
        assert!(a.used_bps <= 2_100_000);
        assert_eq!(a.desired_bps, 80_000 + 2 * 1_725_000);
        // A tight estimate: both at the lowest layer rather than one paused.
        let a = allocate(Some(450_000), 80_000, &wants);
        assert_eq!(a.choices, vec![rid("q"), rid("q")]);
        // Less than one lowest layer beside the audio: video pauses, the
        // second first.
        let a = allocate(Some(300_000), 80_000, &wants);
        assert_eq!(a.choices, vec![rid("q"), Choice::Paused]);
        let a = allocate(Some(100_000), 80_000, &wants);
        assert_eq!(a.choices, vec![Choice::Paused, Choice::Paused]);
    }

    #[test]
    fn staying_costs_less_than_going_up() {
        // 550 kbit/s fits the middle layer (500k) to stay on, not to go up to.
        let up = allocate(Some(550_000), 0, &[want(Some(2), Some(0))]);
        assert_eq!(up.choices, vec![rid("q")]);
        let stay = allocate(Some(550_000), 0, &[want(Some(2), Some(1))]);
        assert_eq!(stay.choices, vec![rid("h")]);
    }

    #[test]
    fn an_estimate_near_the_sending_rate_keeps_it_and_a_clear_drop_cuts_it() {
        assert_eq!(budget(290_000, 290_000, 300_000, 0, true), 300_000);
        assert_eq!(budget(1_000_000, 1_000_000, 300_000, 0, false), 950_000);
        assert!(is_congested(200_000, 300_000));
        assert_eq!(budget(200_000, 200_000, 300_000, 0, true), 190_000);
        // An idle connection's low estimate still allows the lowest layers.
        assert_eq!(budget(60_000, 60_000, 50_000, 250_000, true), 250_000);
        // A starting guess below what is sent (keyframes for new
        // subscribers push the measured rate up) is no congestion until the
        // estimator lowers it.
        assert_eq!(budget(1_000_000, 1_000_000, 1_600_000, 0, false), 1_600_000);
    }

    #[test]
    fn going_up_waits_for_an_estimate_that_held() {
        // A probe's overshoot: the latest estimate is high, but a second ago
        // it was not; what is sent stays affordable, nothing more.
        assert_eq!(budget(20_000_000, 1_000_000, 700_000, 0, false), 950_000);
        assert_eq!(budget(20_000_000, 500_000, 700_000, 0, false), 700_000);
        // Going down still follows the latest estimate.
        assert_eq!(budget(400_000, 400_000, 700_000, 0, true), 380_000);
    }

    #[test]
    fn tile_size_caps_the_layer() {
        let l = layers(&[150_000, 500_000, 1_500_000]);
        assert_eq!(cap_for(&l, Some((320, 180)), 2), Some(0));
        assert_eq!(cap_for(&l, Some((400, 225)), 2), Some(1));
        assert_eq!(cap_for(&l, Some((1920, 1080)), 2), Some(2));
        assert_eq!(cap_for(&l, Some((0, 0)), 2), None);
        assert_eq!(cap_for(&l, None, 3), Some(2));
        assert_eq!(cap_for(&l, None, 6), Some(1));
        assert_eq!(cap_for(&l, None, 20), Some(0));
        assert_eq!(cap_for(&[], None, 3), None);
        // Unknown sizes: by the requested height.
        let mut unsized_layers = l.clone();
        for layer in &mut unsized_layers {
            layer.pixels = None;
        }
        assert_eq!(cap_for(&unsized_layers, Some((320, 180)), 2), Some(0));
        assert_eq!(cap_for(&unsized_layers, Some((1280, 720)), 2), Some(2));
    }

    #[test]
    fn unmeasured_layers_are_costed_by_size_or_rank() {
        let mut l = layers(&[0, 0, 0]);
        assert_eq!(cost(&l, 2), 1280 * 720 * 3 / 2);
        l[2].pixels = None;
        assert_eq!(cost(&l, 2), 1_500_000);
    }
}
