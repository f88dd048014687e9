//! Counters a TURN server keeps, for `/metrics`.

/// Counters since start. Gauges (live allocations) are read from the server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations that ended (expired, deleted, or their TCP connection closed).
    pub allocations_ended: u64,
    /// Datagrams relayed to peers.
    pub packets_to_peers: u64,
    /// Bytes of application data relayed to peers.
    pub bytes_to_peers: u64,
    /// Datagrams relayed from peers to clients.
    pub packets_to_clients: u64,
    /// Bytes of application data relayed from peers to clients.
    pub bytes_to_clients: u64,
    /// Requests refused for bad or missing credentials (401), stale nonces excluded.
    pub auth_failures: u64,
    /// Peers refused by the peer policy (403, or dropped Send indications).
    pub denied_peers: u64,
    /// Allocations refused by quota or capacity (486, 508).
    pub quota_refusals: u64,
    /// Unauthenticated requests dropped by the rate limit.
    pub rate_limited: u64,
    /// STUN Binding requests answered.
    pub bindings: u64,
    /// Relayed data dropped: no permission, no channel, over budget.
    pub dropped: u64,
}

impl Metrics {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Metrics) {
        self.allocations_created += o.allocations_created;
        self.allocations_ended += o.allocations_ended;
        self.packets_to_peers += o.packets_to_peers;
        self.bytes_to_peers += o.bytes_to_peers;
        self.packets_to_clients += o.packets_to_clients;
        self.bytes_to_clients += o.bytes_to_clients;
        self.auth_failures += o.auth_failures;
        self.denied_peers += o.denied_peers;
        self.quota_refusals += o.quota_refusals;
        self.rate_limited += o.rate_limited;
        self.bindings += o.bindings;
        self.dropped += o.dropped;
    }
}
