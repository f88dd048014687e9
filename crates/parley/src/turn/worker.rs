//! One TURN worker: a thread with its own event loop (mio), its own
//! `SO_REUSEPORT` share of each UDP listening address, the relay sockets of
//! the allocations it made, and its own sans-IO [`TurnServer`]. The kernel
//! hashes each client to one worker, and a client's relay socket lives in
//! the same worker, so workers share nothing on the packet path.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use parley_stun::{Destination, FiveTuple, Metrics, Outbox, RelayPorts, Transport, TurnServer};
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

use crate::media::batch::BatchSender;

/// Receive buffer per batch slot (GRO may coalesce several datagrams into one).
const SLOT: usize = 64 * 1024;
/// Kernel socket buffers asked for on listening sockets.
const LISTEN_BUFFER: usize = 8 * 1024 * 1024;
/// Kernel socket buffers asked for on relay sockets.
const RELAY_BUFFER: usize = 1024 * 1024;
const WAKER: Token = Token(0);
const LISTEN_BASE: usize = 1;
const RELAY_BASE: usize = 1 << 20;

/// The receive buffer as one slice per batch slot, without allocating.
fn slots(buffer: &mut [u8]) -> [IoSliceMut<'_>; BATCH_SIZE] {
    let mut chunks = buffer.chunks_mut(SLOT);
    std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()))
}

/// Datagrams for UDP clients leave in batches per listening socket (its
/// index) and source address (for wildcard-bound sockets).
type ClientBatch = (usize, Option<IpAddr>);
/// A datagram to send: destination and bytes.
type Datagram<'a> = (SocketAddr, &'a [u8]);

/// What stream connections (TCP, TLS) tell a worker.
pub enum StreamEvent {
    /// A new connection and where its outgoing frames go.
    Open(FiveTuple, tokio::sync::mpsc::Sender<Vec<u8>>),
    /// One framed STUN message or ChannelData.
    Frame(FiveTuple, Vec<u8>),
    /// The connection closed.
    Closed(FiveTuple),
    /// A new peer policy (the SFU's media addresses changed).
    Policy(parley_stun::PeerPolicy),
}

/// A handle for sending stream events to a worker.
#[derive(Clone)]
pub struct WorkerInbox {
    tx: mpsc::Sender<StreamEvent>,
    waker: Arc<Waker>,
}

impl WorkerInbox {
    /// Queues an event and wakes the worker; false if the worker has stopped.
    pub fn send(&self, event: StreamEvent) -> bool {
        self.tx.send(event).is_ok() && self.waker.wake().is_ok()
    }
}

struct UdpEndpoint {
    socket: UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
}

impl UdpEndpoint {
    fn bind(addr: SocketAddr, reuse_port: bool, buffer: usize) -> io::Result<UdpEndpoint> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let std_socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new((&std_socket).into())?;
        // Ask for large buffers; the kernel caps them at net.core.*mem_max.
        let _ = state.set_recv_buffer_size((&std_socket).into(), buffer);
        let _ = state.set_send_buffer_size((&std_socket).into(), buffer);
        let local = std_socket.local_addr()?;
        Ok(UdpEndpoint {
            socket: UdpSocket::from_std(std_socket),
            state,
            local,
        })
    }

    /// Sends one datagram; a full socket buffer drops it, as UDP does.
    fn send(&self, to: SocketAddr, src_ip: Option<IpAddr>, data: &[u8]) -> bool {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip,
        };
        match self.state.try_send((&self.socket).into(), &transmit) {
            Ok(()) => true,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    tracing::trace!(%to, "send failed: {e}");
                }
                false
            }
        }
    }
}

/// Counters a worker publishes for `/metrics`.
#[derive(Default)]
pub struct WorkerStats {
    /// The core's counters.
    pub metrics: Metrics,
    /// Datagrams dropped because a socket buffer was full.
    pub send_drops: u64,
    /// Live allocations in this worker.
    pub allocations: usize,
}

/// The relay sockets of one worker, as the core's [`RelayPorts`].
struct Relays<'a> {
    registry: &'a Registry,
    sockets: &'a mut Vec<Option<UdpEndpoint>>,
    by_addr: &'a mut HashMap<SocketAddr, usize>,
}

impl RelayPorts for Relays<'_> {
    fn open(&mut self, relay: SocketAddr, _dont_fragment: bool) -> io::Result<()> {
        // Relay sockets always carry DF (quinn-udp sets IP_PMTUDISC_PROBE),
        // which satisfies DONT-FRAGMENT and keeps relayed media from being
        // fragmented on the way to peers.
        let mut endpoint = UdpEndpoint::bind(relay, false, RELAY_BUFFER)?;
        let index = match self.sockets.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.sockets.push(None);
                self.sockets.len() - 1
            }
        };
        self.registry.register(
            &mut endpoint.socket,
            Token(RELAY_BASE + index),
            Interest::READABLE,
        )?;
        self.by_addr.insert(relay, index);
        self.sockets[index] = Some(endpoint);
        Ok(())
    }

    fn close(&mut self, relay: SocketAddr) {
        if let Some(index) = self.by_addr.remove(&relay)
            && let Some(mut endpoint) = self.sockets[index].take()
        {
            let _ = self.registry.deregister(&mut endpoint.socket);
        }
    }
}

/// A worker about to run.
pub struct Worker {
    poll: Poll,
    listeners: Vec<UdpEndpoint>,
    relays: Vec<Option<UdpEndpoint>>,
    relay_index: HashMap<SocketAddr, usize>,
    inbox: mpsc::Receiver<StreamEvent>,
    streams: HashMap<FiveTuple, tokio::sync::mpsc::Sender<Vec<u8>>>,
    core: TurnServer,
    outbox: Outbox,
    stats: Arc<Mutex<WorkerStats>>,
    stop: Arc<AtomicBool>,
    buffer: Vec<u8>,
    meta: Vec<RecvMeta>,
    send_drops: u64,
}

impl Worker {
    /// Binds this worker's share of every UDP listening address.
    pub fn new(
        core: TurnServer,
        listen: &[SocketAddr],
        stats: Arc<Mutex<WorkerStats>>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<(Worker, WorkerInbox)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listeners = Vec::new();
        for (i, addr) in listen.iter().enumerate() {
            let mut endpoint = UdpEndpoint::bind(*addr, true, LISTEN_BUFFER)?;
            poll.registry().register(
                &mut endpoint.socket,
                Token(LISTEN_BASE + i),
                Interest::READABLE,
            )?;
            listeners.push(endpoint);
        }
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            poll,
            listeners,
            relays: Vec::new(),
            relay_index: HashMap::new(),
            inbox: rx,
            streams: HashMap::new(),
            core,
            outbox: Outbox::new(),
            stats,
            stop,
            buffer: vec![0; SLOT * BATCH_SIZE],
            meta: vec![RecvMeta::default(); BATCH_SIZE],
            send_drops: 0,
        };
        Ok((worker, WorkerInbox { tx, waker }))
    }

    /// Runs until told to stop.
    pub fn run(mut self) {
        // Made here: its preallocated headers hold raw pointers and stay on this thread.
        let mut batch = BatchSender::default();
        let mut events = Events::with_capacity(256);
        let mut last_stats = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let timeout = self
                .core
                .poll_timeout()
                .map_or(Duration::from_millis(250), |t| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(250));
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("TURN worker poll failed: {e}");
                    return;
                }
                continue;
            }
            for event in events.iter() {
                let token = event.token().0;
                if token == WAKER.0 {
                    self.drain_streams();
                } else if token >= RELAY_BASE {
                    self.drain_relay(token - RELAY_BASE, &mut batch);
                } else {
                    self.drain_listener(token - LISTEN_BASE, &mut batch);
                }
            }
            let now = Instant::now();
            let mut relays = Relays {
                registry: self.poll.registry(),
                sockets: &mut self.relays,
                by_addr: &mut self.relay_index,
            };
            self.core.handle_timeout(now, &mut relays);
            self.flush(&mut batch);
            if now.duration_since(last_stats) >= Duration::from_millis(500) {
                last_stats = now;
                self.publish_stats();
            }
        }
        self.publish_stats();
    }

    fn publish_stats(&self) {
        if let Ok(mut s) = self.stats.lock() {
            s.metrics = self.core.metrics();
            s.send_drops = self.send_drops;
            s.allocations = self.core.allocation_count();
        }
    }

    fn drain_streams(&mut self) {
        while let Ok(event) = self.inbox.try_recv() {
            let now = Instant::now();
            match event {
                StreamEvent::Open(tuple, tx) => {
                    self.streams.insert(tuple, tx);
                }
                StreamEvent::Frame(tuple, bytes) => {
                    let mut relays = Relays {
                        registry: self.poll.registry(),
                        sockets: &mut self.relays,
                        by_addr: &mut self.relay_index,
                    };
                    self.core
                        .handle_client(now, tuple, &bytes, &mut relays, &mut self.outbox);
                }
                StreamEvent::Closed(tuple) => {
                    self.streams.remove(&tuple);
                    let mut relays = Relays {
                        registry: self.poll.registry(),
                        sockets: &mut self.relays,
                        by_addr: &mut self.relay_index,
                    };
                    self.core.handle_client_closed(&tuple, &mut relays);
                }
                StreamEvent::Policy(policy) => self.core.set_policy(policy),
            }
        }
    }

    /// Reads every datagram waiting on listening socket `index`.
    fn drain_listener(&mut self, index: usize, batch: &mut BatchSender) {
        loop {
            let Worker {
                listeners,
                relays,
                relay_index,
                poll,
                core,
                outbox,
                buffer,
                meta,
                ..
            } = self;
            let Some(listener) = listeners.get(index) else {
                return;
            };
            let mut slices = slots(buffer);
            let count = match listener
                .state
                .recv((&listener.socket).into(), &mut slices, meta)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("TURN receive failed: {e}");
                    break;
                }
            };
            let now = Instant::now();
            let mut ports = Relays {
                registry: poll.registry(),
                sockets: relays,
                by_addr: relay_index,
            };
            for (m, slot) in meta.iter().zip(buffer.chunks(SLOT)).take(count) {
                let server_ip = m.dst_ip.map_or(listener.local.ip(), |ip| ip.to_canonical());
                let tuple = FiveTuple {
                    client: SocketAddr::new(m.addr.ip().to_canonical(), m.addr.port()),
                    server: SocketAddr::new(server_ip, listener.local.port()),
                    transport: Transport::Udp,
                };
                for datagram in slot[..m.len].chunks(m.stride.max(1)) {
                    core.handle_client(now, tuple, datagram, &mut ports, outbox);
                }
            }
            if self.outbox.len() >= 256 {
                self.flush(batch);
            }
            // A short batch means the queue was empty a moment ago: another
            // recvmmsg would only return EAGAIN. New data re-arms the
            // edge-triggered readiness, so nothing is missed.
            if count < BATCH_SIZE {
                break;
            }
        }
    }

    /// Reads every datagram waiting on relay socket `index`.
    fn drain_relay(&mut self, index: usize, batch: &mut BatchSender) {
        loop {
            let Worker {
                relays,
                core,
                outbox,
                buffer,
                meta,
                ..
            } = self;
            let Some(Some(relay)) = relays.get(index) else {
                return;
            };
            let mut slices = slots(buffer);
            let count = match relay.state.recv((&relay.socket).into(), &mut slices, meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::trace!("relay receive failed: {e}");
                    break;
                }
            };
            let now = Instant::now();
            let local = relay.local;
            for (m, slot) in meta.iter().zip(buffer.chunks(SLOT)).take(count) {
                for datagram in slot[..m.len].chunks(m.stride.max(1)) {
                    core.handle_peer(now, local, m.addr, datagram, outbox);
                }
            }
            if self.outbox.len() >= 256 {
                self.flush(batch);
            }
            if count < BATCH_SIZE {
                break;
            }
        }
    }

    /// Sends everything the core queued: datagrams for UDP clients in one
    /// sendmmsg per listening socket, datagrams for peers in one per relay
    /// socket, frames for TCP and TLS clients to their connection tasks.
    fn flush(&mut self, batch: &mut BatchSender) {
        if self.outbox.is_empty() {
            return;
        }
        let mut to_clients: Vec<(ClientBatch, Vec<Datagram<'_>>)> = Vec::new();
        let mut to_peers: Vec<(usize, SocketAddr, &[u8])> = Vec::new();
        let mut drops = 0u64;
        for (to, bytes) in self.outbox.iter() {
            match to {
                Destination::Peer { relay, peer } => match self.relay_index.get(&relay) {
                    Some(i) => to_peers.push((*i, peer, bytes)),
                    None => drops += 1,
                },
                Destination::Client(tuple) if tuple.transport == Transport::Udp => {
                    let listener = self.listeners.iter().position(|l| {
                        l.local.port() == tuple.server.port()
                            && l.local.is_ipv4() == tuple.server.is_ipv4()
                    });
                    let Some(index) = listener else {
                        drops += 1;
                        continue;
                    };
                    // A wildcard-bound socket must answer from the address the client used.
                    let src = self.listeners[index]
                        .local
                        .ip()
                        .is_unspecified()
                        .then_some(tuple.server.ip());
                    match to_clients.iter_mut().find(|(key, _)| *key == (index, src)) {
                        Some((_, group)) => group.push((tuple.client, bytes)),
                        None => to_clients.push(((index, src), vec![(tuple.client, bytes)])),
                    }
                }
                Destination::Client(tuple) => {
                    let queued = self
                        .streams
                        .get(&tuple)
                        .is_some_and(|tx| tx.try_send(bytes.to_vec()).is_ok());
                    if !queued {
                        drops += 1;
                    }
                }
            }
        }
        for ((index, src), group) in &to_clients {
            let sent = batch.send(&self.listeners[*index].socket, group, *src);
            drops += (group.len() - sent) as u64;
        }
        to_peers.sort_by_key(|(relay, _, _)| *relay);
        for run in to_peers.chunk_by(|a, b| a.0 == b.0) {
            let Some(Some(endpoint)) = self.relays.get(run[0].0) else {
                drops += run.len() as u64;
                continue;
            };
            if let [(_, peer, bytes)] = run {
                if !endpoint.send(*peer, None, bytes) {
                    drops += 1;
                }
            } else {
                let packets: Vec<(SocketAddr, &[u8])> =
                    run.iter().map(|(_, p, b)| (*p, *b)).collect();
                let sent = batch.send(&endpoint.socket, &packets, None);
                drops += (packets.len() - sent) as u64;
            }
        }
        self.send_drops += drops;
        self.outbox.clear();
    }
}
