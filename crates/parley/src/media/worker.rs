//! Media workers: with several SFU shards (see [`parley_sfu::Shards`]),
//! one task per shard, forwarding its rooms' packets on whichever core the
//! runtime gives it, in parallel with the other shards. (A single shard is
//! driven by the conference itself.)
//!
//! The conference task receives from the media sockets and hands each
//! datagram to the worker of the shard it belongs to, a batch per wakeup.
//! The worker feeds its shard, runs the shard's timers, and sends what the
//! shard has to send from the socket each datagram belongs to. It locks
//! only its own shard, and the conference (signaling: joins, offers,
//! answers) locks a shard only for the call at hand, so no lock is shared
//! by all of the forwarding. What a worker cannot do itself goes back to
//! the conference: ICE-TCP frames to send, and news that the shard has
//! events for the hub.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use parley_sfu::{Protocol, Shard, Transmit};
use tokio::sync::{Notify, mpsc, watch};

use super::Senders;
use crate::clock::sleep_until;

/// Batches (each at most a few hundred datagrams, from one wakeup of the
/// conference) waiting for one worker before newer ones are dropped: a
/// worker that far behind would only deliver stale media.
const INBOX: usize = 32;
/// Batches taken from the inbox at a time.
const BATCHES_PER_ROUND: usize = 8;
/// Datagrams waiting to be sent at which a worker sends before handling
/// more of what it received.
const SEND_AT: usize = 256;

/// Datagrams for one shard, received in one wakeup: one buffer for all.
#[derive(Default)]
pub struct Inbound {
    bytes: Vec<u8>,
    items: Vec<(SocketAddr, SocketAddr, Range<usize>)>,
}

impl Inbound {
    /// Adds a datagram from `source` that arrived on `destination`.
    pub fn push(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.items
            .push((source, destination, start..self.bytes.len()));
    }

    /// How many datagrams it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a worker tells the conference.
#[derive(Debug)]
pub enum Note {
    /// The shard has events for the hub.
    Events,
    /// ICE-TCP frames to send on their connections.
    Tcp(Vec<Transmit>),
    /// Datagrams from these addresses were not the shard's after all.
    Unrouted(Vec<SocketAddr>),
}

/// The conference's end of one worker.
pub struct Worker {
    inbox: mpsc::Sender<Inbound>,
    dropped: u64,
}

/// What a worker is told when it starts.
pub struct WorkerSetup {
    /// The sockets to send from, as they change.
    pub senders: watch::Receiver<Arc<Senders>>,
    /// Where to tell the conference things (among them the sources the
    /// shard did not take: the conference routes by address and must hear
    /// of a stale route).
    pub notes: mpsc::UnboundedSender<Note>,
}

impl Worker {
    /// Starts the worker for `shard`.
    pub fn spawn(shard: Arc<Shard>, setup: WorkerSetup) -> Worker {
        let wake = Arc::new(Notify::new());
        let waker = wake.clone();
        shard.set_waker(move || waker.notify_one());
        let (inbox, rx) = mpsc::channel(INBOX);
        tokio::spawn(run(shard, rx, wake, setup));
        Worker { inbox, dropped: 0 }
    }

    /// Hands the worker a batch; it is dropped (and its datagrams counted)
    /// if the worker is that far behind.
    pub fn send(&mut self, batch: Inbound) {
        let count = batch.len() as u64;
        if self.inbox.try_send(batch).is_err() {
            let before = self.dropped;
            self.dropped += count;
            if before == 0 || before.ilog2() != self.dropped.ilog2() {
                tracing::warn!(
                    dropped = self.dropped,
                    "a media worker is behind; dropping received datagrams"
                );
            }
        }
    }

    /// Received datagrams dropped because the worker was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The worker's loop: until the conference is gone.
async fn run(
    shard: Arc<Shard>,
    mut inbox: mpsc::Receiver<Inbound>,
    wake: Arc<Notify>,
    setup: WorkerSetup,
) {
    let WorkerSetup { senders, notes } = setup;
    let mut pending: VecDeque<Inbound> = VecDeque::new();
    // The next datagram of `pending.front()`.
    let mut cursor = 0;
    let mut udp: Vec<Transmit> = Vec::new();
    let mut tcp: Vec<Transmit> = Vec::new();
    let mut unrouted: Vec<SocketAddr> = Vec::new();
    loop {
        if pending.is_empty() {
            let sleep = sleep_until(shard.lock().poll_timeout());
            tokio::select! {
                batch = inbox.recv() => match batch {
                    Some(batch) => pending.push_back(batch),
                    None => return,
                },
                () = wake.notified() => {}
                () = sleep => {}
            }
        }
        while pending.len() < BATCHES_PER_ROUND {
            match inbox.try_recv() {
                Ok(batch) => pending.push_back(batch),
                Err(_) => break,
            }
        }
        // A bug in the SFU's own code must not stop the rooms of this
        // worker for good (str0m's panics are caught per connection).
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut sfu = shard.lock();
            // What was received, until enough waits to be sent: what the
            // rest fans out to goes in the next send, so no send is a
            // burst of thousands of datagrams (the subscribers' bandwidth
            // estimators would read it as a queue building up).
            'batches: while let Some(batch) = pending.front() {
                while let Some((source, destination, range)) = batch.items.get(cursor) {
                    cursor += 1;
                    // The time each packet is handled at: what str0m
                    // records as the send time of what it forwards.
                    let taken = sfu.handle_receive(
                        Instant::now(),
                        Protocol::Udp,
                        *source,
                        *destination,
                        &batch.bytes[range.clone()],
                    );
                    if !taken && unrouted.len() < 64 && !unrouted.contains(source) {
                        unrouted.push(*source);
                    }
                    if sfu.transmits_waiting() >= SEND_AT {
                        break 'batches;
                    }
                }
                pending.pop_front();
                cursor = 0;
            }
            // Timers that came due ride on this wakeup, whatever woke it.
            let now = Instant::now();
            if sfu.poll_timeout().is_some_and(|t| t <= now) {
                sfu.handle_timeout(now);
            }
            while let Some(t) = sfu.poll_transmit() {
                if t.proto == Protocol::Tcp {
                    tcp.push(t);
                } else {
                    udp.push(t);
                }
            }
            shard.note_events(&sfu);
            sfu.has_events()
        }));
        let events = match round {
            Ok(events) => events,
            Err(_) => {
                tracing::error!("a media worker's round panicked; its rooms go on");
                pending.clear();
                cursor = 0;
                udp.clear();
                tcp.clear();
                continue;
            }
        };
        if events && notes.send(Note::Events).is_err() {
            return;
        }
        if !unrouted.is_empty()
            && notes
                .send(Note::Unrouted(std::mem::take(&mut unrouted)))
                .is_err()
        {
            return;
        }
        if !tcp.is_empty() && notes.send(Note::Tcp(std::mem::take(&mut tcp))).is_err() {
            return;
        }
        if !udp.is_empty() {
            let senders = senders.borrow().clone();
            senders.send_transmits(&mut udp).await;
        }
    }
}
