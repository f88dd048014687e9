//! The conference task: the thin async driver around the sans-IO [`Hub`].
//!
//! One task owns the hub and the media socket. WebSocket tasks talk to it
//! through [`ConferenceHandle`]; it answers through each connection's own
//! bounded channel. Everything the hub decides happens here, in order, so no
//! lock guards any room or media state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parley_signal::{ConnId, Hub, HubOutput};
use parley_store::Store;
use tokio::sync::mpsc;

use crate::candidates::arrival_candidate;
use crate::metrics::ConferenceStats;
use crate::udp::MediaSocket;

/// Messages queued for one WebSocket before the connection counts as stuck.
const OUTBOUND_QUEUE: usize = 256;

/// What a WebSocket task tells the conference.
#[derive(Debug)]
pub enum Command {
    /// A new connection and where to send its messages.
    Connect(ConnId, mpsc::Sender<Outbound>),
    /// A text frame.
    Text(ConnId, String),
    /// A binary frame (not part of the protocol).
    Binary(ConnId),
    /// A pong or other sign of life.
    Activity(ConnId),
    /// The connection closed.
    Disconnect(ConnId),
    /// Report counters for `/metrics`.
    Stats(tokio::sync::oneshot::Sender<ConferenceStats>),
    /// Close every connection and stop.
    Shutdown,
}

/// What the conference tells a WebSocket task.
#[derive(Debug)]
pub enum Outbound {
    /// Send this JSON text.
    Text(String),
    /// Close with this reason.
    Close(&'static str),
}

/// A cheap handle for WebSocket tasks.
#[derive(Clone)]
pub struct ConferenceHandle {
    commands: mpsc::Sender<Command>,
    next_conn: Arc<AtomicU64>,
}

impl ConferenceHandle {
    /// Registers a new connection; its messages arrive on the returned receiver.
    pub async fn connect(&self) -> Option<(ConnId, mpsc::Receiver<Outbound>)> {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        self.commands.send(Command::Connect(conn, tx)).await.ok()?;
        Some((conn, rx))
    }

    /// Passes a command on; false if the conference has stopped.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// The conference's counters, if it is running.
    pub async fn stats(&self) -> Option<ConferenceStats> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.send(Command::Stats(tx)).await {
            return None;
        }
        rx.await.ok()
    }
}

/// The conference task's state.
pub struct Conference {
    hub: Hub,
    socket: MediaSocket,
    candidates: Vec<SocketAddr>,
    conns: HashMap<ConnId, mpsc::Sender<Outbound>>,
    commands: mpsc::Receiver<Command>,
    store: Arc<Mutex<Store>>,
}

impl Conference {
    /// A conference over `hub`, serving media on `socket`.
    pub fn new(
        hub: Hub,
        socket: MediaSocket,
        candidates: Vec<SocketAddr>,
        store: Arc<Mutex<Store>>,
    ) -> (Conference, ConferenceHandle) {
        let (tx, rx) = mpsc::channel(4096);
        let handle = ConferenceHandle {
            commands: tx,
            next_conn: Arc::new(AtomicU64::new(1)),
        };
        let conference = Conference {
            hub,
            socket,
            candidates,
            conns: HashMap::new(),
            commands: rx,
            store,
        };
        (conference, handle)
    }

    /// Runs until [`Command::Shutdown`] or until every handle is gone.
    pub async fn run(mut self) {
        loop {
            let deadline = self.hub.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
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
                result = receive(&mut self.socket, &mut self.hub, &self.candidates) => {
                    if let Err(e) = result {
                        tracing::error!("media socket failed: {e}");
                    }
                }
                () = sleep => self.hub.handle_timeout(Instant::now()),
            }
            self.flush().await;
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Connect(conn, tx) => {
                self.conns.insert(conn, tx);
                self.hub.handle_connect(now, conn);
            }
            Command::Text(conn, text) => self.hub.handle_text(now, conn, &text),
            Command::Binary(conn) => self.hub.handle_binary(now, conn),
            Command::Activity(conn) => self.hub.handle_activity(now, conn),
            Command::Disconnect(conn) => {
                self.conns.remove(&conn);
                self.hub.handle_disconnect(now, conn);
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
                });
            }
            Command::Shutdown => {}
        }
    }

    /// Carries out what the hub decided: messages, closes, store writes, datagrams.
    async fn flush(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                HubOutput::Send { conn, message } => {
                    let Some(tx) = self.conns.get(&conn) else {
                        continue;
                    };
                    if tx.try_send(Outbound::Text(message.to_json())).is_err() {
                        // The client stopped reading; let it go rather than buffer without end.
                        tracing::info!(conn = conn.0, "connection not reading; closing it");
                        self.conns.remove(&conn);
                        self.hub.handle_disconnect(Instant::now(), conn);
                    }
                }
                HubOutput::Close { conn, reason } => {
                    if let Some(tx) = self.conns.remove(&conn) {
                        let _ = tx.try_send(Outbound::Close(reason));
                    }
                }
                HubOutput::RoomOpened { room } => {
                    let store = self.store.clone();
                    let at = unix_now();
                    tokio::task::spawn_blocking(move || {
                        let Ok(store) = store.lock() else {
                            return;
                        };
                        if let Err(e) = store.record_room_opened(room.as_str(), at) {
                            tracing::warn!(%room, "cannot record room: {e}");
                        }
                    });
                }
                HubOutput::RoomClosed { .. } => {}
            }
        }
        while let Some(t) = self.hub.poll_transmit() {
            self.socket.send(t.destination, &t.contents).await;
        }
    }

    async fn shutdown(&mut self) {
        for (_, tx) in self.conns.drain() {
            let _ = tx.try_send(Outbound::Close("server shutting down"));
        }
    }
}

/// Receives one batch of datagrams into the hub.
async fn receive(
    socket: &mut MediaSocket,
    hub: &mut Hub,
    candidates: &[SocketAddr],
) -> std::io::Result<()> {
    let local = socket.local_addr();
    socket
        .recv_batch(|d| {
            let destination = arrival_candidate(d.destination_ip, candidates, local);
            hub.handle_datagram(Instant::now(), d.source, destination, d.data);
        })
        .await
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
