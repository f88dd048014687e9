//! `/metrics`: Prometheus text exposition of what Parley counts.

use std::fmt::Write;

use parley_stun::Metrics;

/// What the conference task reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConferenceStats {
    /// People in rooms.
    pub participants: usize,
    /// Rooms with people in them.
    pub rooms: usize,
    /// Open signaling connections.
    pub connections: usize,
    /// Frames forwarded by the SFU (one per subscriber).
    pub frames_forwarded: u64,
    /// Media datagrams no connection claimed.
    pub unrouted_datagrams: u64,
    /// Media datagrams that were not STUN, DTLS, RTP or RTCP.
    pub malformed_datagrams: u64,
    /// Media datagrams dropped because their media worker was behind.
    pub worker_dropped_datagrams: u64,
    /// Open ICE-TCP connections that carry a participant's media.
    pub ice_tcp_connections: usize,
}

/// What the TURN service reports: a snapshot of its workers' counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnMetrics {
    /// The cores' counters, summed over workers.
    pub core: Metrics,
    /// Live allocations.
    pub allocations: usize,
    /// Datagrams dropped for full socket buffers.
    pub send_drops: u64,
}

/// Renders the metrics; either part may be absent (`parley turn` has no
/// conference, `parley serve --no-turn` no TURN).
pub fn render(conference: Option<ConferenceStats>, turn: Option<TurnMetrics>) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    if let Some(c) = conference {
        metric(
            "parley_participants",
            "gauge",
            "People in rooms.",
            c.participants as u64,
        );
        metric(
            "parley_rooms",
            "gauge",
            "Rooms with people in them.",
            c.rooms as u64,
        );
        metric(
            "parley_signaling_connections",
            "gauge",
            "Open signaling WebSockets.",
            c.connections as u64,
        );
        metric(
            "parley_sfu_frames_forwarded_total",
            "counter",
            "Media frames forwarded to subscribers.",
            c.frames_forwarded,
        );
        metric(
            "parley_sfu_unrouted_datagrams_total",
            "counter",
            "Media datagrams for no known connection.",
            c.unrouted_datagrams,
        );
        metric(
            "parley_sfu_malformed_datagrams_total",
            "counter",
            "Media datagrams that were not STUN, DTLS, RTP or RTCP.",
            c.malformed_datagrams,
        );
        metric(
            "parley_media_worker_dropped_datagrams_total",
            "counter",
            "Received media datagrams dropped because their media worker was behind.",
            c.worker_dropped_datagrams,
        );
        metric(
            "parley_ice_tcp_connections",
            "gauge",
            "Open ICE-TCP connections (media over TCP from networks that block UDP).",
            c.ice_tcp_connections as u64,
        );
    }
    if let Some(t) = turn {
        let m = t.core;
        metric(
            "parley_turn_allocations",
            "gauge",
            "Live TURN allocations.",
            t.allocations as u64,
        );
        metric(
            "parley_turn_allocations_created_total",
            "counter",
            "TURN allocations created.",
            m.allocations_created,
        );
        metric(
            "parley_turn_allocations_ended_total",
            "counter",
            "TURN allocations that ended.",
            m.allocations_ended,
        );
        metric(
            "parley_turn_packets_to_peers_total",
            "counter",
            "Datagrams relayed from clients to peers.",
            m.packets_to_peers,
        );
        metric(
            "parley_turn_bytes_to_peers_total",
            "counter",
            "Bytes relayed from clients to peers.",
            m.bytes_to_peers,
        );
        metric(
            "parley_turn_packets_to_clients_total",
            "counter",
            "Datagrams relayed from peers to clients.",
            m.packets_to_clients,
        );
        metric(
            "parley_turn_bytes_to_clients_total",
            "counter",
            "Bytes relayed from peers to clients.",
            m.bytes_to_clients,
        );
        metric(
            "parley_turn_auth_failures_total",
            "counter",
            "Requests refused for bad or unknown credentials.",
            m.auth_failures,
        );
        metric(
            "parley_turn_denied_peers_total",
            "counter",
            "Peers refused by the peer policy.",
            m.denied_peers,
        );
        metric(
            "parley_turn_quota_refusals_total",
            "counter",
            "Allocations refused by quota or capacity.",
            m.quota_refusals,
        );
        metric(
            "parley_turn_rate_limited_total",
            "counter",
            "Unauthenticated requests dropped by the rate limit.",
            m.rate_limited,
        );
        metric(
            "parley_turn_bindings_total",
            "counter",
            "STUN Binding requests answered.",
            m.bindings,
        );
        metric(
            "parley_turn_dropped_total",
            "counter",
            "Relayed data dropped: no permission, no channel or over budget.",
            m.dropped,
        );
        metric(
            "parley_turn_send_drops_total",
            "counter",
            "Datagrams dropped because a socket buffer was full.",
            t.send_drops,
        );
    }
    // The process itself, so a soak (bench/soak) or a dashboard sees growth.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        metric(
            "parley_runtime_tasks",
            "gauge",
            "Tasks alive on the async runtime (connections, timers, workers).",
            handle.metrics().num_alive_tasks() as u64,
        );
    }
    if let Some(bytes) = resident_bytes() {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
            bytes,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            "process_open_fds",
            "gauge",
            "Open file descriptors of the process (sockets, files).",
            fds.count() as u64,
        );
    }
    out
}

/// The process's resident set, from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let text = render(
            Some(ConferenceStats {
                participants: 3,
                ..Default::default()
            }),
            Some(TurnMetrics::default()),
        );
        assert!(text.contains("# TYPE parley_participants gauge\nparley_participants 3\n"));
        assert!(text.contains("parley_turn_allocations 0\n"));
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.split(' ').count() == 2)
        );
    }
}
