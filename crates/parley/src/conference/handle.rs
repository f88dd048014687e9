//! What the rest of the server holds of the conference task: the commands
//! it takes, the messages it sends each WebSocket, and a cheap handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parley_settings::ConnectionSettings;
use parley_signal::{ConnId, ConnMeta, MembersWithPaths, PresenceStatus, RoomName, RoomPolicy};
use tokio::sync::{mpsc, oneshot, watch};

use crate::media::{BindError, MediaAddresses};
use crate::metrics::ConferenceStats;

/// Messages queued for one WebSocket before the connection counts as stuck.
const OUTBOUND_QUEUE: usize = 256;

/// What a WebSocket task tells the conference.
#[derive(Debug)]
pub enum Command {
    /// A new connection, who is behind it, and where to send its messages.
    Connect(ConnId, ConnMeta, mpsc::Sender<Outbound>),
    /// A text frame.
    Text(ConnId, String),
    /// A binary frame (not part of the protocol).
    Binary(ConnId),
    /// A pong or other sign of life.
    Activity(ConnId),
    /// The connection closed.
    Disconnect(ConnId),
    /// Report counters for `/metrics`.
    Stats(oneshot::Sender<ConferenceStats>),
    /// List the rooms in use, who is in them and their media paths.
    Rooms(oneshot::Sender<Vec<(String, MembersWithPaths)>>),
    /// The presence of every signed-in user with a page open.
    Presence(oneshot::Sender<Vec<(i64, PresenceStatus)>>),
    /// Set up a scheduled conference's room.
    ConfigureRoom {
        /// Which room.
        room: RoomName,
        /// Its owner, if it has none.
        owner: i64,
        /// A new password hash.
        password: Option<String>,
        /// The lobby on or off.
        lobby: Option<bool>,
    },
    /// Apply the administrator's room settings.
    RoomPolicy(RoomPolicy),
    /// Apply new connection settings (ports, announced addresses).
    Connection(ConnectionSettings, oneshot::Sender<Result<(), BindError>>),
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
    addresses: watch::Receiver<MediaAddresses>,
}

impl ConferenceHandle {
    /// A handle sending to `commands`, showing the addresses `addresses` holds.
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        addresses: watch::Receiver<MediaAddresses>,
    ) -> ConferenceHandle {
        ConferenceHandle {
            commands,
            next_conn: Arc::new(AtomicU64::new(1)),
            addresses,
        }
    }

    /// Registers a new connection; its messages arrive on the returned receiver.
    pub async fn connect(&self, meta: ConnMeta) -> Option<(ConnId, mpsc::Receiver<Outbound>)> {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        self.commands
            .send(Command::Connect(conn, meta, tx))
            .await
            .ok()?;
        Some((conn, rx))
    }

    /// Passes a command on; false if the conference has stopped.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// The conference's counters, if it is running.
    pub async fn stats(&self) -> Option<ConferenceStats> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Stats(tx)).await {
            return None;
        }
        rx.await.ok()
    }

    /// Applies connection settings; an error says which port could not be bound.
    pub async fn set_connection(&self, settings: ConnectionSettings) -> Result<(), BindError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || BindError {
            field: "",
            message: "the server is shutting down".into(),
        };
        if !self.send(Command::Connection(settings, tx)).await {
            return Err(stopped());
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// The rooms in use, who is in them, and how each one's media reaches
    /// the server (as their client last reported).
    pub async fn rooms(&self) -> Vec<(String, MembersWithPaths)> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Rooms(tx)).await {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Sets up a room ahead of its meeting.
    pub async fn configure_room(
        &self,
        room: RoomName,
        owner: i64,
        password: Option<String>,
        lobby: Option<bool>,
    ) {
        self.send(Command::ConfigureRoom {
            room,
            owner,
            password,
            lobby,
        })
        .await;
    }

    /// Signed-in users' presence (users not listed are offline).
    pub async fn presence(&self) -> Vec<(i64, PresenceStatus)> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Presence(tx)).await {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The media addresses, now and as they change.
    pub fn addresses(&self) -> watch::Receiver<MediaAddresses> {
        self.addresses.clone()
    }
}
