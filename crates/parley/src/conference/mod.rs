//! The conference task: the thin async driver around the sans-IO [`Hub`].
//!
//! One task owns the hub and the media sockets. WebSocket tasks talk to it
//! through [`ConferenceHandle`]; it answers through each connection's own
//! bounded channel. Everything the hub decides happens here, in order.
//! With several SFU shards, received datagrams go to the media workers
//! ([`crate::media::worker`]), one per shard, which forward and send in
//! parallel; a shard's lock is shared only by its worker and this task's
//! signaling calls. A single shard is driven here, through the hub.

mod handle;
mod held;
pub mod meetings;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use parley_signal::{ConnId, Hub, HubOutput, Protocol, RoomName};
use tokio::sync::{mpsc, watch};

use crate::db::Db;
use crate::ice_servers::arrivals::{self, Arrivals};
use crate::media::ice_tcp::TcpEvent;
use crate::media::worker::{Inbound, Note, Worker, WorkerSetup};
use crate::media::{MediaAddresses, MediaEndpoints, Senders};
use crate::metrics::ConferenceStats;
pub use handle::{Command, ConferenceHandle, Outbound};
use held::Held;
use meetings::{Journal, Record};

/// Receive batches taken from the media socket in one wakeup before they
/// go to the workers: enough for the rest of a frame that arrived
/// meanwhile (so its packets to one subscriber can leave together), few
/// enough that what was received first is not held back long.
const RECEIVE_ROUNDS: usize = 4;
/// No further receive round once this many datagrams were gathered for the
/// workers: a busy server hands over what it has rather than holding it back.
const HAND_OVER_AT: usize = 128;
/// Without workers: no further receive round once this many datagrams
/// wait to be sent.
const FLUSH_AT: usize = 256;

/// Results of work done off the conference task (password hashing).
enum Done {
    PasswordChecked(ConnId, u64, bool),
    PasswordHashed(RoomName, u64, String),
}

/// The conference task's state.
pub struct Conference {
    done_tx: mpsc::UnboundedSender<Done>,
    done: mpsc::UnboundedReceiver<Done>,
    hub: Hub,
    media: MediaEndpoints,
    addresses: watch::Sender<MediaAddresses>,
    arrivals: Arrivals,
    conns: HashMap<ConnId, mpsc::Sender<Outbound>>,
    commands: mpsc::Receiver<Command>,
    /// Where meetings' writes go, in order.
    journal: Journal,
    /// Messages waiting for their record to be committed.
    held: Held<(ConnId, Outbound)>,
    /// Messages of one flush, sent after its records went to the journal.
    replies: Vec<HubOutput>,
    /// Datagrams gathered for one batched send (kept for its capacity).
    outgoing: Vec<str0m::net::Transmit>,
    /// Frames from ICE-TCP connections.
    tcp_events: mpsc::Receiver<TcpEvent>,
    /// One media worker per SFU shard (none for a single shard), and a
    /// batch of received datagrams being gathered for each.
    workers: Vec<(Worker, Inbound)>,
    /// What the workers tell the conference.
    notes: mpsc::UnboundedReceiver<Note>,
    /// The sockets the workers send from.
    senders: watch::Sender<Arc<Senders>>,
}

impl Conference {
    /// A conference over `hub`, serving media on `media` and publishing its
    /// addresses on `addresses`; test packets of the connectivity check go
    /// to `arrivals`.
    pub fn new(
        hub: Hub,
        mut media: MediaEndpoints,
        addresses: watch::Sender<MediaAddresses>,
        arrivals: Arrivals,
        store: Db,
    ) -> (Conference, ConferenceHandle) {
        let tcp_events = media
            .tcp()
            .take_events()
            .unwrap_or_else(|| mpsc::channel(1).1);
        let (tx, rx) = mpsc::channel(4096);
        addresses.send_replace(media.addresses());
        let handle = ConferenceHandle::new(tx, addresses.subscribe());
        let (done_tx, done) = mpsc::unbounded_channel();
        let (senders, senders_rx) = watch::channel(media.senders());
        let (notes_tx, notes) = mpsc::unbounded_channel();
        // One shard is driven here, through the hub, as the conference
        // receives: a worker of its own would only add a hand-over.
        let shards = hub.sfu().shards();
        let workers = if shards.len() > 1 {
            shards
                .iter()
                .map(|shard| {
                    let setup = WorkerSetup {
                        senders: senders_rx.clone(),
                        notes: notes_tx.clone(),
                    };
                    (Worker::spawn(shard.clone(), setup), Inbound::default())
                })
                .collect()
        } else {
            Vec::new()
        };
        let conference = Conference {
            done_tx,
            done,
            hub,
            media,
            addresses,
            arrivals,
            conns: HashMap::new(),
            commands: rx,
            journal: Journal::start(store),
            held: Held::default(),
            replies: Vec::new(),
            outgoing: Vec::new(),
            tcp_events,
            workers,
            notes,
            senders,
        };
        (conference, handle)
    }

    /// Runs until [`Command::Shutdown`] or until every handle is gone.
    pub async fn run(mut self) {
        loop {
            let deadline = self.hub.poll_timeout();
            let sleep = crate::clock::sleep_until(deadline);
            let overdue = crate::clock::sleep_until(self.held.deadline());
            tokio::select! {
                command = self.commands.recv() => {
                    match command {
                        Some(Command::Shutdown) | None => {
                            self.shutdown().await;
                            return;
                        }
                        Some(command) => self.handle_command(command),
                    }
                }
                Some(done) = self.done.recv() => match done {
                    Done::PasswordChecked(conn, ticket, ok) => {
                        self.hub.handle_password_checked(Instant::now(), conn, ticket, ok);
                    }
                    Done::PasswordHashed(room, ticket, phc) => {
                        self.hub.handle_password_hashed(&room, ticket, phc);
                    }
                },
                ready = self.media.readable() => match ready {
                    Ok(index) => {
                        if self.receive(index) {
                            // The workers forward what was just received
                            // before more is taken in (on a runtime with one
                            // thread, they would otherwise wait for this
                            // task to run out of input).
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(e) => tracing::error!("media socket failed: {e}"),
                },
                Some(note) = self.notes.recv() => {
                    self.note(note);
                    for _ in 0..64 {
                        match self.notes.try_recv() {
                            Ok(note) => self.note(note),
                            Err(_) => break,
                        }
                    }
                }
                Some(event) = self.tcp_events.recv() => {
                    self.receive_tcp(event);
                    // Take what else is waiting before the flush, a bounded amount.
                    for _ in 0..64 {
                        match self.tcp_events.try_recv() {
                            Ok(event) => self.receive_tcp(event),
                            Err(_) => break,
                        }
                    }
                }
                () = self.journal.advanced(), if !self.held.is_empty() => {}
                () = overdue, if !self.held.is_empty() => {}
                () = sleep => {}
            }
            // Timers that came due meanwhile ride on this wakeup (most do,
            // with datagrams arriving every few milliseconds), instead of
            // each waking the task itself.
            let now = Instant::now();
            if deadline.is_some_and(|t| t <= now) {
                self.hub.handle_timeout(now);
            }
            self.flush().await;
        }
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::Events => self.hub.handle_media_events(),
            Note::Tcp(transmits) => {
                for t in transmits {
                    self.media.tcp().send(t.destination, &t.contents);
                }
            }
            Note::Unrouted(sources) => {
                for source in sources {
                    self.hub.forget_route(Protocol::Udp, source);
                }
            }
        }
    }

    /// Tells the workers about changed sockets (and whoever watches the addresses).
    fn sockets_changed(&mut self) {
        self.addresses.send_replace(self.media.addresses());
        self.senders.send_replace(self.media.senders());
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Connect(conn, meta, tx) => {
                self.conns.insert(conn, tx);
                self.hub.handle_connect_as(now, conn, meta);
            }
            Command::Text(conn, text) => self.hub.handle_text(now, conn, &text),
            Command::Binary(conn) => self.hub.handle_binary(now, conn),
            Command::Activity(conn) => self.hub.handle_activity(now, conn),
            Command::Disconnect(conn) => {
                self.conns.remove(&conn);
                self.hub.handle_disconnect(now, conn);
                if self.media.retiring() {
                    let present: HashSet<_> = self.hub.participant_ids().into_iter().collect();
                    if self.media.retire(&present, true) {
                        self.sockets_changed();
                    }
                }
            }
            Command::RoomPolicy(policy) => self.hub.set_room_policy(policy),
            Command::ConfigureRoom {
                room,
                owner,
                password,
                lobby,
            } => self.hub.configure_room(&room, owner, password, lobby),
            Command::Presence(reply) => {
                let _ = reply.send(self.hub.presence());
            }
            Command::Rooms(reply) => {
                let rooms = self
                    .hub
                    .rooms()
                    .into_iter()
                    .map(|(name, members)| (name.to_string(), members))
                    .collect();
                let _ = reply.send(rooms);
            }
            Command::Connection(settings, reply) => {
                let present: HashSet<_> = self.hub.participant_ids().into_iter().collect();
                let result = self.media.reconfigure(&settings, present);
                if result.is_ok() {
                    self.hub.set_host_candidates(
                        self.media.candidates().to_vec(),
                        self.media.tcp_candidates().to_vec(),
                    );
                }
                // (Even on an error: the UDP socket may have moved before
                // the ICE-TCP listener failed.)
                self.sockets_changed();
                let _ = reply.send(result);
            }
            Command::Stats(reply) => {
                let sfu = self.hub.sfu().stats();
                let _ = reply.send(ConferenceStats {
                    participants: self.hub.participant_count(),
                    rooms: self.hub.room_names().len(),
                    connections: self.conns.len(),
                    frames_forwarded: sfu.frames_forwarded,
                    unrouted_datagrams: sfu.unrouted_datagrams,
                    malformed_datagrams: sfu.malformed_datagrams,
                    worker_dropped_datagrams: self.workers.iter().map(|(w, _)| w.dropped()).sum(),
                    ice_tcp_connections: self.media.tcp().connections(),
                });
            }
            Command::Shutdown => {}
        }
    }

    /// Carries out what the hub decided: messages, closes, store writes, datagrams.
    ///
    /// The records go to the journal first; the messages of the same flush
    /// may acknowledge them (a chat echo, `joined`), so they are held until
    /// the journal has committed them.
    async fn flush(&mut self) {
        let mut replies = std::mem::take(&mut self.replies);
        while let Some(output) = self.hub.poll_output() {
            match output {
                HubOutput::Send { .. } | HubOutput::Close { .. } => replies.push(output),
                HubOutput::RoomOpened { room } => {
                    self.journal.record(Record::Opened { room });
                }
                HubOutput::RoomClosed { room } => {
                    self.journal.record(Record::Closed { room });
                }
                HubOutput::MemberJoined {
                    room,
                    participant,
                    account,
                    name,
                    call,
                } => {
                    self.journal.record(Record::Joined {
                        room,
                        participant,
                        account,
                        name,
                        call,
                    });
                }
                HubOutput::MemberLeft { room, participant } => {
                    self.journal.record(Record::Left { room, participant });
                }
                HubOutput::StoreRoom { room, config } => {
                    let stored = meetings::stored_room(&room, &config);
                    self.journal.record(Record::RoomConfig(stored));
                }
                HubOutput::StoreChat { room, message } => {
                    self.journal.record(Record::Chat { room, message });
                }
                HubOutput::CheckPassword {
                    conn,
                    ticket,
                    phc,
                    password,
                } => {
                    // argon2 takes tens of milliseconds: never on this task,
                    // which also forwards everyone's media.
                    let done = self.done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let ok = crate::auth::password::verify(&password, &phc);
                        let _ = done.send(Done::PasswordChecked(conn, ticket, ok));
                    });
                }
                HubOutput::HashPassword {
                    room,
                    ticket,
                    password,
                } => {
                    let done = self.done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        match crate::auth::password::hash(&password) {
                            Ok(phc) => {
                                let _ = done.send(Done::PasswordHashed(room, ticket, phc));
                            }
                            Err(e) => tracing::error!(%room, "cannot hash the room password: {e}"),
                        }
                    });
                }
            }
        }
        let now = Instant::now();
        let committed = self.journal.committed();
        for reply in replies.drain(..) {
            let (conn, message) = match reply {
                HubOutput::Send { conn, message } => (conn, Outbound::Text(message.to_json())),
                HubOutput::Close { conn, reason } => (conn, Outbound::Close(reason)),
                _ => continue,
            };
            if let Some((conn, message)) =
                self.held
                    .hold(self.journal.last(), committed, (conn, message), now)
            {
                self.deliver(conn, message);
            }
        }
        self.replies = replies;
        for (conn, message) in self.held.release(committed, now) {
            self.deliver(conn, message);
        }
        // Everything a shard driven here has to send (with workers, they
        // send), a batch per system call; ICE-TCP frames to their connections.
        self.hub.take_transmits(&mut self.outgoing);
        let media = &mut self.media;
        self.outgoing.retain(|t| {
            if t.proto == Protocol::Tcp {
                media.tcp().send(t.destination, &t.contents);
            }
            t.proto != Protocol::Tcp
        });
        if !self.outgoing.is_empty() {
            let senders = self.senders.borrow().clone();
            senders.send_transmits(&mut self.outgoing).await;
        }
    }

    /// Hands `message` to the connection's socket task.
    fn deliver(&mut self, conn: ConnId, message: Outbound) {
        if let Outbound::Close(_) = message {
            if let Some(tx) = self.conns.remove(&conn) {
                let _ = tx.try_send(message);
            }
            return;
        }
        let Some(tx) = self.conns.get(&conn) else {
            return;
        };
        match tx.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The client stopped reading; let it go rather than buffer without end.
                tracing::info!(conn = conn.0, "connection not reading; closing it");
                self.conns.remove(&conn);
                self.hub.handle_disconnect(Instant::now(), conn);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // Its socket task ended (the client closed): what the
                // client sent last, a `leave` say, is still queued
                // ahead of that task's Disconnect, which comes next.
                // Disconnecting here would have the hub keep the place
                // of someone who left, shown as reconnecting.
                self.conns.remove(&conn);
            }
        }
    }

    /// Receives what is waiting on socket `index`, a bounded number of
    /// batches, and hands each shard's datagrams to its worker. What
    /// arrived meanwhile (the rest of a video frame, typically) goes in the
    /// same hand-over, so a frame's packets to one subscriber go out
    /// together. Returns whether anything was handed over.
    fn receive(&mut self, index: usize) -> bool {
        let Conference {
            media,
            hub,
            arrivals,
            workers,
            ..
        } = self;
        let now = Instant::now();
        let mut gathered = 0;
        for _ in 0..RECEIVE_ROUNDS {
            let result = media.try_recv(index, |a| {
                let d = &a.datagram;
                if d.data.first() == Some(&arrivals::MAGIC[0]) && arrivals.arrived(d.data, d.source)
                {
                    return;
                }
                if workers.is_empty() {
                    hub.handle_datagram(
                        Instant::now(),
                        Protocol::Udp,
                        d.source,
                        a.destination,
                        d.data,
                    );
                    return;
                }
                let shard = hub.route_datagram(now, Protocol::Udp, d.source, a.destination, d.data);
                if let Some((_, batch)) = shard.and_then(|i| workers.get_mut(i)) {
                    batch.push(d.source, a.destination, d.data);
                    gathered += 1;
                }
            });
            match result {
                Ok(0) => break,
                Ok(_) if gathered >= HAND_OVER_AT => break,
                Ok(_) if workers.is_empty() && hub.transmits_waiting() >= FLUSH_AT => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("media socket failed: {e}");
                    break;
                }
            }
        }
        for (worker, batch) in workers.iter_mut() {
            if !batch.is_empty() {
                worker.send(std::mem::take(batch));
            }
        }
        gathered > 0
    }

    /// Hands an ICE-TCP frame to the hub; a connection whose first frame
    /// no participant's connection takes is closed.
    fn receive_tcp(&mut self, event: TcpEvent) {
        let Some(frame) = self.media.tcp().note(event) else {
            return;
        };
        let taken = self.hub.handle_datagram(
            Instant::now(),
            Protocol::Tcp,
            frame.remote,
            frame.destination,
            &frame.data,
        );
        self.media.tcp().judge(frame, taken);
    }

    async fn shutdown(&mut self) {
        for (_, tx) in self.conns.drain() {
            let _ = tx.try_send(Outbound::Close("server shutting down"));
        }
    }
}
