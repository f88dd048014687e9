//! ICE-TCP (RFC 6544): the SFU's passive TCP candidates, for clients whose
//! network blocks UDP. Each accepted connection carries RFC 4571 frames (a
//! 16-bit length, then one STUN, DTLS, RTP or RTCP packet); a task per
//! connection reads frames and hands them to the conference task as if they
//! were datagrams, and writes what the SFU sends back to that peer.
//!
//! A connection must open with a STUN message (the browser's connectivity
//! check) within [`FIRST_FRAME_TIMEOUT`], and nothing more is read until a
//! participant's connection took that check (so an unauthenticated peer can
//! queue one small frame, no more). It must keep talking: [`IDLE_TIMEOUT`]
//! of silence, or [`MAX_UNTAKEN`] frames in a row that no participant takes
//! (its participant left), close it. At most [`MAX_CONNECTIONS`] are open at
//! once, [`MAX_PER_ADDRESS`] from one IP address.

mod connection;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::conn_limit::ConnLimit;
pub use connection::{
    FIRST_FRAME_TIMEOUT, IDLE_TIMEOUT, MAX_FIRST_FRAME, Opening, TcpEvent, read_frame,
};
use connection::{Shared, accept_loop, start_conn};

/// Connections open at once; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 4096;
/// Connections open at once from one IP address (a NAT may hide a whole
/// office: each participant uses two, one per peer connection).
pub const MAX_PER_ADDRESS: usize = 64;
/// Frames in a row no participant's connection takes before the
/// connection is closed.
pub const MAX_UNTAKEN: u32 = 200;
/// Frames queued from all connections to the conference task.
const EVENT_QUEUE: usize = 4096;

/// A frame for the SFU, from [`IceTcp::note`].
#[derive(Debug)]
pub struct TcpFrame {
    /// The connection.
    pub id: u64,
    /// The peer's address (the `source` for the SFU).
    pub remote: SocketAddr,
    /// The advertised candidate it was sent to.
    pub destination: SocketAddr,
    /// The packet.
    pub data: Vec<u8>,
    /// The connection's first frame: answer [`IceTcp::judge`].
    pub opening: Option<Opening>,
}

struct Conn {
    id: u64,
    frames: mpsc::Sender<Vec<u8>>,
    _cancel: oneshot::Sender<()>,
    untaken: u32,
}

/// The listener and the open connections. Owned by the conference task.
pub struct IceTcp {
    listener: Option<(SocketAddr, JoinHandle<()>)>,
    /// The advertised ICE-TCP candidates, for connections accepted from now on.
    candidates: watch::Sender<Vec<SocketAddr>>,
    /// The same for connections handed over by the one-port listener.
    one_port_candidates: watch::Sender<Vec<SocketAddr>>,
    adopting: Option<JoinHandle<()>>,
    shared: Shared,
    events_rx: Option<mpsc::Receiver<TcpEvent>>,
    /// Accepted connections by the peer's address.
    conns: HashMap<SocketAddr, Conn>,
}

impl Default for IceTcp {
    fn default() -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        IceTcp {
            listener: None,
            candidates: watch::Sender::new(Vec::new()),
            one_port_candidates: watch::Sender::new(Vec::new()),
            adopting: None,
            shared: Shared {
                events: events_tx,
                limit: ConnLimit::new(MAX_CONNECTIONS, MAX_PER_ADDRESS),
                next_id: Arc::default(),
            },
            events_rx: Some(events_rx),
            conns: HashMap::new(),
        }
    }
}

impl IceTcp {
    /// The bound address of the listener, if one is open.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|(addr, _)| *addr)
    }

    /// The events of every connection, for the conference task; `None` after the first call.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<TcpEvent>> {
        self.events_rx.take()
    }

    /// The advertised candidates that connections accepted from now on count
    /// as made to (connections already open keep theirs).
    pub fn set_candidates(&self, candidates: Vec<SocketAddr>) {
        self.candidates.send_replace(candidates);
    }

    /// Starts accepting on `listener`, closing the previous listener (its
    /// connections stay open: calls in progress keep their media).
    pub fn listen(&mut self, listener: std::net::TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let task = tokio::spawn(accept_loop(
            listener,
            self.candidates.subscribe(),
            self.shared.clone(),
        ));
        if let Some((old, task)) = self.listener.replace((addr, task)) {
            task.abort();
            tracing::info!("ICE-TCP moved from tcp {old} to tcp {addr}");
        }
        Ok(())
    }

    /// Stops listening (open connections stay).
    pub fn stop_listening(&mut self) {
        if let Some((_, task)) = self.listener.take() {
            task.abort();
        }
        if let Some(task) = self.adopting.take() {
            task.abort();
        }
    }

    /// Takes ICE-TCP connections another listener accepted (one-port mode):
    /// streams sent to the returned sender are served like accepted ones,
    /// counting as made to `candidates` (see [`set_one_port_candidates`](Self::set_one_port_candidates)).
    pub fn adopt(&mut self, candidates: Vec<SocketAddr>) -> mpsc::Sender<TcpStream> {
        self.one_port_candidates.send_replace(candidates);
        let (tx, mut rx) = mpsc::channel::<TcpStream>(64);
        let shared = self.shared.clone();
        let candidates = self.one_port_candidates.subscribe();
        if let Some(old) = self.adopting.replace(tokio::spawn(async move {
            while let Some(stream) = rx.recv().await {
                if let Ok(remote) = stream.peer_addr() {
                    start_conn(stream, remote, &candidates, &shared);
                }
            }
        })) {
            old.abort();
        }
        tx
    }

    /// The advertised one-port candidates, for connections handed over from now on.
    pub fn set_one_port_candidates(&self, candidates: Vec<SocketAddr>) {
        self.one_port_candidates.send_replace(candidates);
    }

    /// Notes an event from [`take_events`](Self::take_events)'s receiver.
    /// Returns the frame to hand to the SFU, if the event carries one (a
    /// first frame, or a frame of an accepted connection); a first frame
    /// must then be judged with [`judge`](Self::judge).
    pub fn note(&mut self, event: TcpEvent) -> Option<TcpFrame> {
        match event {
            TcpEvent::Frame {
                id,
                remote,
                destination,
                data,
                opening,
            } => {
                if opening.is_none() && self.conns.get(&remote).is_none_or(|c| c.id != id) {
                    // A connection closed here, whose task has not seen it yet.
                    return None;
                }
                Some(TcpFrame {
                    id,
                    remote,
                    destination,
                    data,
                    opening,
                })
            }
            TcpEvent::Closed { id, remote } => {
                if self.conns.get(&remote).is_some_and(|c| c.id == id) {
                    self.conns.remove(&remote);
                }
                None
            }
        }
    }

    /// After the SFU saw `frame`: whether a participant's connection took
    /// it. A first frame that was taken opens the connection for reading
    /// and sending (replacing an older one from the same address); one that
    /// was not closes it. Too many untaken frames in a row close it too.
    pub fn judge(&mut self, frame: TcpFrame, taken: bool) {
        if let Some(opening) = frame.opening {
            if taken && opening.verdict.send(true).is_ok() {
                self.conns.insert(
                    frame.remote,
                    Conn {
                        id: frame.id,
                        frames: opening.frames,
                        _cancel: opening.cancel,
                        untaken: 0,
                    },
                );
            } else {
                tracing::debug!(remote = %frame.remote, "ICE-TCP connection for no participant; closed");
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(&frame.remote) else {
            return;
        };
        conn.untaken = if taken { 0 } else { conn.untaken + 1 };
        if conn.untaken >= MAX_UNTAKEN {
            tracing::debug!(remote = %frame.remote, "ICE-TCP connection carries nothing anyone takes; closed");
            self.conns.remove(&frame.remote);
        }
    }

    /// Queues `data` to the peer at `remote`, framed. Dropped if no
    /// connection from there is open or its queue is full.
    pub fn send(&self, remote: SocketAddr, data: &[u8]) {
        let Some(conn) = self.conns.get(&remote) else {
            tracing::trace!(%remote, "ICE-TCP frame for no connection");
            return;
        };
        let Ok(len) = u16::try_from(data.len()) else {
            return;
        };
        let mut frame = Vec::with_capacity(2 + data.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(data);
        if conn.frames.try_send(frame).is_err() {
            tracing::trace!(%remote, "ICE-TCP queue full; frame dropped");
        }
    }

    /// Open connections that carry a participant's media.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

impl Drop for IceTcp {
    fn drop(&mut self) {
        // Connections close as their cancel senders go with `conns`.
        self.stop_listening();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn binding_request() -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        m.extend([7; 12]);
        m
    }

    async fn listening() -> (IceTcp, mpsc::Receiver<TcpEvent>, SocketAddr) {
        let mut tcp = IceTcp::default();
        let events = tcp.take_events().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        tcp.set_candidates(vec![addr]);
        tcp.listen(listener).unwrap();
        (tcp, events, addr)
    }

    async fn open(addr: SocketAddr) -> TcpStream {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&[0, 20]).await.unwrap();
        client.write_all(&binding_request()).await.unwrap();
        client
    }

    #[tokio::test]
    async fn a_taken_connection_carries_frames_both_ways() {
        let (mut tcp, mut events, addr) = listening().await;
        let mut client = open(addr).await;
        // Written before the check was judged: read only once it is.
        client.write_all(&[0, 3, b'r']).await.unwrap();
        client.write_all(b"tp").await.unwrap();
        let first = tcp.note(events.recv().await.unwrap()).unwrap();
        assert_eq!((first.destination, &first.data), (addr, &binding_request()));
        assert_eq!(first.remote, client.local_addr().unwrap());
        assert!(first.opening.is_some());
        let remote = first.remote;
        tcp.judge(first, true);
        assert_eq!(tcp.connections(), 1);

        let next = tcp.note(events.recv().await.unwrap()).unwrap();
        assert_eq!(
            (next.data.as_slice(), next.opening.is_none()),
            (&b"rtp"[..], true)
        );
        tcp.judge(next, true);

        tcp.send(remote, b"answer");
        let mut back = [0u8; 8];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"\0\x06answer");

        // Closed by the server (all its connections go with it): the
        // client sees the end, and the task reports it.
        drop(tcp);
        assert_eq!(client.read(&mut back).await.unwrap(), 0);
        assert!(matches!(
            events.recv().await.unwrap(),
            TcpEvent::Closed { remote: r, .. } if r == remote
        ));
    }

    #[tokio::test]
    async fn a_check_nobody_takes_closes_the_connection_before_more_is_read() {
        let (mut tcp, mut events, addr) = listening().await;
        let mut client = open(addr).await;
        client.write_all(&[0, 3, b'x', b'y', b'z']).await.unwrap();
        let first = tcp.note(events.recv().await.unwrap()).unwrap();
        tcp.judge(first, false);
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        // Only the close follows: the frame after the check was never read.
        assert!(matches!(
            events.recv().await.unwrap(),
            TcpEvent::Closed { .. }
        ));
        assert_eq!(tcp.connections(), 0);
    }

    #[tokio::test]
    async fn frames_nobody_takes_close_an_open_connection() {
        let (mut tcp, mut events, addr) = listening().await;
        let mut client = open(addr).await;
        let first = tcp.note(events.recv().await.unwrap()).unwrap();
        tcp.judge(first, true);
        for _ in 0..MAX_UNTAKEN {
            client.write_all(&[0, 1, 0]).await.unwrap();
            let frame = tcp.note(events.recv().await.unwrap()).unwrap();
            tcp.judge(frame, false);
        }
        assert_eq!(tcp.connections(), 0);
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
    }

    #[tokio::test]
    async fn one_address_may_hold_only_so_many_connections() {
        let (_tcp, mut events, addr) = listening().await;
        let mut clients = Vec::new();
        for _ in 0..MAX_PER_ADDRESS {
            clients.push(open(addr).await);
        }
        // Kept: dropping a first frame's opening would close its connection.
        let mut pending = Vec::new();
        for _ in 0..MAX_PER_ADDRESS {
            let e = events.recv().await;
            assert!(matches!(e, Some(TcpEvent::Frame { .. })), "{e:?}");
            pending.push(e);
        }
        // One more from the same address is closed at once.
        let mut extra = open(addr).await;
        let mut rest = Vec::new();
        let _ = extra.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_connection_that_does_not_open_with_stun_is_closed() {
        let (mut tcp, mut events, addr) = listening().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "closed without a word");
        assert!(matches!(
            events.recv().await.unwrap(),
            TcpEvent::Closed { .. }
        ));
        assert_eq!(tcp.connections(), 0);
        tcp.stop_listening();
    }
}
