//! A bottleneck on the way to one address.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::{Datagram, FAST_LINK_BPS, Peer};

/// Packets leave one after another at `bps`; one that would wait longer
/// than `max_delay` is dropped (a router's tail drop).
#[derive(Debug)]
pub struct Link {
    /// The link's rate, bits per second (a test may change it mid-run).
    pub bps: u64,
    /// The longest a packet may wait before it is dropped.
    pub max_delay: Duration,
    queue: VecDeque<(Instant, Datagram)>,
    free_at: Option<Instant>,
    /// Packets dropped at the tail.
    pub dropped: u64,
    /// Bytes that entered the link (dropped or not).
    pub bytes: u64,
}

impl Link {
    /// A link of `bps` that holds at most 250 ms of packets.
    pub fn new(bps: u64) -> Self {
        Link {
            bps,
            max_delay: Duration::from_millis(250),
            queue: VecDeque::new(),
            free_at: None,
            dropped: 0,
            bytes: 0,
        }
    }

    /// Queues a datagram sent at `now`.
    pub fn push(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: Vec<u8>,
    ) {
        self.bytes += data.len() as u64;
        let start = self.free_at.map_or(now, |f| f.max(now));
        if start.saturating_duration_since(now) > self.max_delay {
            self.dropped += 1;
            return;
        }
        // 28 bytes of IP and UDP header on the wire.
        let bits = (data.len() as u64 + 28) * 8;
        let on_wire = Duration::from_micros((bits * 1_000_000 / self.bps).max(1));
        let arrives = start + on_wire;
        self.free_at = Some(arrives);
        self.queue.push_back((arrives, (source, destination, data)));
    }

    /// The next datagram that has arrived by `now`, with when it arrived.
    pub fn pop_arrived(&mut self, now: Instant) -> Option<(Instant, Datagram)> {
        if self.queue.front().is_some_and(|q| q.0 <= now) {
            self.queue.pop_front()
        } else {
            None
        }
    }
}

/// The links from a server to each peer address.
#[derive(Debug, Default)]
pub struct Links(HashMap<SocketAddr, Link>);

impl Links {
    /// Puts both of `peer`'s addresses behind a fast link: packets take
    /// time on the wire, as on any network, which bandwidth probing relies on.
    pub fn add(&mut self, peer: &Peer) {
        for addr in [peer.publish_addr, peer.subscribe_addr] {
            self.0.insert(addr, Link::new(FAST_LINK_BPS));
        }
    }

    /// The link to `addr`.
    pub fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Link> {
        self.0.get_mut(addr)
    }

    /// What every link let through by `now`, in the order it arrived.
    pub fn arrived(&mut self, now: Instant) -> Vec<(Instant, Datagram)> {
        let mut due = Vec::new();
        for link in self.0.values_mut() {
            while let Some(arrived) = link.pop_arrived(now) {
                due.push(arrived);
            }
        }
        due.sort_by_key(|d| d.0);
        due
    }
}
