//! Tracks a participant publishes, and what the SFU knows about their layers.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid, Rid};

/// A layer that sent nothing for this long counts as stopped (a browser drops
/// its top simulcast layer when short of CPU or bandwidth).
const LAYER_IDLE: Duration = Duration::from_millis(1000);
/// Keyframe requests to one layer of one track are at most this frequent,
/// however many subscribers ask: a publisher flooded with PLIs spends its
/// bandwidth on keyframes.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Bitrate is measured over windows of this length.
const RATE_WINDOW: Duration = Duration::from_millis(1000);

/// One incoming RTP stream of a track: the only one, or one simulcast layer.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) rid: Option<Rid>,
    /// Position in the publisher's SDP `a=simulcast` list, the order used until
    /// bitrates are measured.
    sdp_order: usize,
    last_seen: Option<Instant>,
    window_start: Option<Instant>,
    window_bytes: u64,
    /// Bits per second over the last full window.
    bitrate: u64,
    last_keyframe_request: Option<Instant>,
}

impl Layer {
    fn new(rid: Option<Rid>, sdp_order: usize) -> Self {
        Layer {
            rid,
            sdp_order,
            last_seen: None,
            window_start: None,
            window_bytes: 0,
            bitrate: 0,
            last_keyframe_request: None,
        }
    }

    fn record(&mut self, now: Instant, bytes: usize) {
        self.last_seen = Some(now);
        let start = *self.window_start.get_or_insert(now);
        self.window_bytes += bytes as u64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            self.bitrate = self.window_bytes * 8 * 1000 / (elapsed.as_millis() as u64).max(1);
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
    }

    fn is_active(&self, now: Instant) -> bool {
        self.last_seen
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_IDLE)
    }
}

/// A track a participant sends to the SFU.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    layers: Vec<Layer>,
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
        PublishedTrack { mid, kind, layers }
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

    /// Notes a frame of `bytes` on layer `rid`.
    pub(crate) fn record(&mut self, now: Instant, rid: Option<Rid>, bytes: usize) {
        self.layer_mut(rid).record(now, bytes);
    }

    /// Layers that currently carry media, from lowest to highest quality.
    ///
    /// Quality is judged by measured bitrate; before a layer has a measurement
    /// the publisher's SDP order stands in (browsers list low to high).
    pub(crate) fn active_layers(&self, now: Instant) -> Vec<Option<Rid>> {
        let mut active: Vec<&Layer> = self.layers.iter().filter(|l| l.is_active(now)).collect();
        let all_measured = active.iter().all(|l| l.bitrate > 0);
        if all_measured {
            active.sort_by_key(|l| l.bitrate);
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

    #[test]
    fn layers_rank_by_measured_bitrate() {
        let start = Instant::now();
        let rids: Vec<Rid> = ["a", "b", "c"].into_iter().map(Rid::from).collect();
        let mut track = PublishedTrack::new(Mid::from("0"), MediaKind::Video, rids);
        // "a" is the busiest layer, "c" the quietest: SDP order says nothing about quality.
        for ms in (0..=1200).step_by(100) {
            let now = start + Duration::from_millis(ms);
            track.record(now, Some("a".into()), 3000);
            track.record(now, Some("b".into()), 1000);
            track.record(now, Some("c".into()), 300);
        }
        let now = start + Duration::from_millis(1200);
        assert_eq!(
            track.active_layers(now),
            vec![Some("c".into()), Some("b".into()), Some("a".into())]
        );
        // A layer that stops sending drops out.
        let later = now + Duration::from_secs(2);
        track.record(later, Some("c".into()), 300);
        assert_eq!(track.active_layers(later), vec![Some("c".into())]);
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
