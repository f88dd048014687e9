//! What load subscribers measure per received track, and the summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::media::{FPS, Stamp};

/// One track as one subscriber received it.
#[derive(Debug, Default)]
pub struct TrackStats {
    /// Frames received.
    pub frames: u64,
    /// Frames missing between the first and the last received (index gaps).
    pub skipped: u64,
    last_index: Option<u32>,
    /// Added latency of each frame, microseconds.
    pub latencies_us: Vec<u32>,
    /// From sending `join` to the first frame.
    pub first_frame: Option<Duration>,
    last_arrival: Option<Instant>,
    gap_sum: Duration,
    gaps: u64,
    /// Gaps longer than max(3 frame intervals, mean gap + 150 ms).
    pub freezes: u64,
    layer: Option<u8>,
    /// Times the received layer changed.
    pub layer_switches: u64,
    /// RTP packets received (from the receiver's statistics).
    pub packets: u64,
    /// Highest loss fraction the receiver reported.
    pub loss: f32,
    /// NACKs the receiver sent.
    pub nacks: u64,
}

impl TrackStats {
    /// Notes a frame with `stamp` arriving `now` (`since_start_us` on the
    /// generator's clock); `joined` is when this subscriber sent `join`.
    pub fn frame(
        &mut self,
        now: Instant,
        since_start_us: u64,
        joined: Instant,
        stamp: Stamp,
        video: bool,
    ) {
        self.frames += 1;
        if self.first_frame.is_none() {
            self.first_frame = Some(now.saturating_duration_since(joined));
        }
        if let Some(last) = self.last_index
            && stamp.index > last + 1
        {
            self.skipped += u64::from(stamp.index - last - 1);
        }
        self.last_index = Some(self.last_index.map_or(stamp.index, |l| l.max(stamp.index)));
        let latency = since_start_us.saturating_sub(stamp.sent_us);
        self.latencies_us
            .push(u32::try_from(latency).unwrap_or(u32::MAX));
        if let Some(prev) = self.last_arrival {
            let gap = now.saturating_duration_since(prev);
            if video && self.gaps >= 5 {
                let mean = self.gap_sum / u32::try_from(self.gaps).unwrap_or(u32::MAX);
                let interval = Duration::from_secs(1) / FPS;
                if gap > (interval * 3).max(mean + Duration::from_millis(150)) {
                    self.freezes += 1;
                }
            }
            self.gap_sum += gap;
            self.gaps += 1;
        }
        self.last_arrival = Some(now);
        if video {
            if self.layer.is_some_and(|l| l != stamp.layer) {
                self.layer_switches += 1;
            }
            self.layer = Some(stamp.layer);
        }
    }
}

/// Percentiles of a sample, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// One publisher track over all its subscribers.
#[derive(Debug, Serialize)]
pub struct TrackSummary {
    /// `p<n>` of the publisher (its order in the run).
    pub publisher: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// Subscribers that received it.
    pub receivers: usize,
    /// Frames received, fewest by one subscriber.
    pub frames_min: u64,
    /// Frames received in all.
    pub frames: u64,
    /// Frames skipped in all (layer switches wait for keyframes).
    pub skipped: u64,
    /// Frames skipped per frame received.
    pub skipped_ratio: f64,
    /// Added latency percentiles, ms.
    pub latency_p50_ms: f64,
    /// 95th percentile.
    pub latency_p95_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Freezes in all.
    pub freezes: u64,
    /// Layer switches in all.
    pub layer_switches: u64,
    /// Slowest time from join to first frame, ms.
    pub first_frame_max_ms: Option<u128>,
    /// RTP packets received in all.
    pub packets: u64,
    /// Highest receiver-reported loss fraction.
    pub loss_max: f32,
    /// NACKs sent in all.
    pub nacks: u64,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Seconds measured.
    pub duration_secs: f64,
    /// Publishers asked for.
    pub publishers: usize,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Participants that got into the room.
    pub joined: usize,
    /// Receivers that got every track of every publisher.
    pub receivers_complete: usize,
    /// Receivers expected to get every track of every other publisher.
    pub receivers_expected: usize,
    /// Per publisher track.
    pub tracks: Vec<TrackSummary>,
    /// What the measured server process spent (`--measure-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCost>,
    /// What a churn run did (`--churn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnSummary>,
}

/// What a churn run did.
#[derive(Debug, Default, Serialize)]
pub struct ChurnSummary {
    /// Rooms the participants were spread over.
    pub rooms: usize,
    /// Joins per second.
    pub rate_per_sec: f64,
    /// Seconds each participant stayed.
    pub stay_secs: u64,
    /// Participants started.
    pub started: usize,
    /// Participants the server let in.
    pub joined: usize,
    /// Participants whose media connections came up.
    pub connected: usize,
    /// Participants that received at least one video frame.
    pub received_video: usize,
    /// Chat messages, reactions, hands and tile size reports sent.
    pub activities: u64,
    /// Why participants failed (joined not, connected not, or an error).
    pub failures: Vec<String>,
}

impl ChurnSummary {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "churn: {} participants over {} room(s), {:.1} joins/s, {} s each: {} joined, {} connected, {} received video, {} activities sent, {} failed\n",
            self.started,
            self.rooms,
            self.rate_per_sec,
            self.stay_secs,
            self.joined,
            self.connected,
            self.received_video,
            self.activities,
            self.failures.len()
        );
        for f in self.failures.iter().take(20) {
            out.push_str(&format!("  failed: {f}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cpu_time_is_read_and_grows() {
        let before = process_cpu_ns(std::process::id()).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(process_cpu_ns(std::process::id()).unwrap() > before);
        assert!(process_cpu_ns(u32::MAX).is_none());
    }
}

/// A server process's CPU time per RTP packet its subscribers received,
/// over the steady part of a run.
#[derive(Debug, Serialize)]
pub struct ServerCost {
    /// Length of the measured window, seconds.
    pub window_secs: f64,
    /// CPU time of every thread of the process in the window, ms.
    pub cpu_ms: f64,
    /// Share of one core the process used (1.0 = one core busy).
    pub cores: f64,
    /// RTP packets all receivers got in the window.
    pub rtp_packets: u64,
    /// RTP packets received per second.
    pub packets_per_sec: f64,
    /// Server CPU per received (forwarded) packet, microseconds.
    pub cpu_us_per_packet: f64,
    /// Share of one core this generator used meanwhile (near 1.0, the
    /// generator rather than the server may be what limits the run).
    pub generator_cores: f64,
}

impl ServerCost {
    /// From CPU nanoseconds and packets over `window`.
    pub fn new(cpu_ns: u64, rtp_packets: u64, window: Duration) -> ServerCost {
        let secs = window.as_secs_f64().max(1e-9);
        ServerCost {
            window_secs: secs,
            cpu_ms: cpu_ns as f64 / 1e6,
            cores: cpu_ns as f64 / 1e9 / secs,
            rtp_packets,
            packets_per_sec: rtp_packets as f64 / secs,
            cpu_us_per_packet: if rtp_packets == 0 {
                0.0
            } else {
                cpu_ns as f64 / 1e3 / rtp_packets as f64
            },
            generator_cores: 0.0,
        }
    }
}

/// CPU time (user and system) of process `pid` so far, nanoseconds, from
/// `/proc/<pid>/stat`: it includes threads that have already exited, which
/// summing the live threads would lose within a window. The kernel counts
/// in ticks of 10 ms (USER_HZ 100 on Linux); over the several seconds a
/// load measures, that is well under a hundredth. `None` if there is no
/// such process.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields that follow start after its last ')'. utime and stime are
    // fields 14 and 15, the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    const NS_PER_TICK: u64 = 1_000_000_000 / 100;
    Some((utime + stime) * NS_PER_TICK)
}

/// Every receiver's stats, keyed by (publisher label, kind) then receiver.
pub type Collected = BTreeMap<(String, &'static str), Vec<TrackStats>>;

/// Aggregates what the receivers measured.
pub fn summarize(
    collected: Collected,
    duration: Duration,
    publishers: usize,
    subscribers: usize,
    joined: usize,
    complete: usize,
) -> Summary {
    let tracks = collected
        .into_iter()
        .map(|((publisher, kind), stats)| {
            let mut latencies: Vec<u32> = stats
                .iter()
                .flat_map(|s| s.latencies_us.iter().copied())
                .collect();
            latencies.sort_unstable();
            let frames: u64 = stats.iter().map(|s| s.frames).sum();
            let skipped: u64 = stats.iter().map(|s| s.skipped).sum();
            TrackSummary {
                publisher,
                kind,
                receivers: stats.len(),
                frames_min: stats.iter().map(|s| s.frames).min().unwrap_or(0),
                frames,
                skipped,
                skipped_ratio: if frames == 0 {
                    0.0
                } else {
                    skipped as f64 / frames as f64
                },
                latency_p50_ms: percentile(&latencies, 50.0),
                latency_p95_ms: percentile(&latencies, 95.0),
                latency_p99_ms: percentile(&latencies, 99.0),
                freezes: stats.iter().map(|s| s.freezes).sum(),
                layer_switches: stats.iter().map(|s| s.layer_switches).sum(),
                first_frame_max_ms: stats
                    .iter()
                    .filter_map(|s| s.first_frame.map(|d| d.as_millis()))
                    .max(),
                packets: stats.iter().map(|s| s.packets).sum(),
                loss_max: stats.iter().map(|s| s.loss).fold(0.0, f32::max),
                nacks: stats.iter().map(|s| s.nacks).sum(),
            }
        })
        .collect();
    Summary {
        duration_secs: duration.as_secs_f64(),
        publishers,
        subscribers,
        joined,
        receivers_complete: complete,
        // Subscribers, and publishers when there are others to receive.
        receivers_expected: subscribers + if publishers > 1 { publishers } else { 0 },
        tracks,
        server: None,
        churn: None,
    }
}

impl Summary {
    /// A table for people.
    pub fn table(&self) -> String {
        if let Some(churn) = &self.churn {
            return churn.table();
        }
        let mut out = format!(
            "{} publishers, {} subscribers, {:.1} s: {} joined, {}/{} receivers got every track\n\n",
            self.publishers,
            self.subscribers,
            self.duration_secs,
            self.joined,
            self.receivers_complete,
            self.receivers_expected
        );
        out.push_str(
            "track      recv  frames(min)  skipped  freezes  switches  latency p50/p95/p99 ms  first frame ms  packets  loss  nacks\n",
        );
        for t in &self.tracks {
            out.push_str(&format!(
                "{:<4} {:<5} {:>4}  {:>7}({:>4})  {:>7}  {:>7}  {:>8}  {:>6.2}/{:>6.2}/{:>6.2}  {:>14}  {:>7}  {:>4.1}%  {:>5}\n",
                t.publisher,
                t.kind,
                t.receivers,
                t.frames,
                t.frames_min,
                t.skipped,
                t.freezes,
                t.layer_switches,
                t.latency_p50_ms,
                t.latency_p95_ms,
                t.latency_p99_ms,
                t.first_frame_max_ms.map_or("-".to_owned(), |m| m.to_string()),
                t.packets,
                t.loss_max * 100.0,
                t.nacks
            ));
        }
        if let Some(c) = &self.server {
            out.push_str(&format!(
                "\nserver: {:.2} µs CPU per RTP packet received ({:.0} packets/s, {:.0}% of one core, over {:.1} s; this generator used {:.0}% of one core)\n",
                c.cpu_us_per_packet,
                c.packets_per_sec,
                c.cores * 100.0,
                c.window_secs,
                c.generator_cores * 100.0
            ));
        }
        out
    }
}
