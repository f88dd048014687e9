//! Where the server core puts what it wants sent, without allocating per
//! packet: one byte arena and a list of (destination, range) entries that
//! the driver drains after each batch.

use std::net::SocketAddr;
use std::ops::Range;

use crate::allocation::FiveTuple;

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To a client, on the transport it came from.
    Client(FiveTuple),
    /// To a peer, from an allocation's relay socket.
    Peer {
        /// The relay socket's address.
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
    },
}

/// Packets to send.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    packets: Vec<(Destination, Range<usize>)>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// How many packets wait.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// The packets, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Destination, &[u8])> {
        self.packets
            .iter()
            .map(|(to, range)| (*to, &self.bytes[range.clone()]))
    }

    /// Forgets everything (after sending), keeping the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.packets.clear();
    }

    /// Appends a packet of at most `max` bytes written by `write`, which
    /// returns how many it wrote.
    pub(crate) fn push_with(
        &mut self,
        to: Destination,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) {
        let start = self.bytes.len();
        self.bytes.resize(start + max, 0);
        let n = write(&mut self.bytes[start..]).min(max);
        self.bytes.truncate(start + n);
        if n > 0 {
            self.packets.push((to, start..start + n));
        }
    }

    /// Appends a packet made of `head` then `body`, zero-padded to `pad_to`
    /// bytes (ChannelData on streams).
    pub(crate) fn push_parts(&mut self, to: Destination, head: &[u8], body: &[u8], pad_to: usize) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(head);
        self.bytes.extend_from_slice(body);
        let len = head.len() + body.len();
        self.bytes.resize(start + len.max(pad_to), 0);
        self.packets.push((to, start..self.bytes.len()));
    }
}
