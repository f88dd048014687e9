//! ICE-TCP (RFC 6544): the SFU's passive TCP candidates, for clients whose
//! network blocks UDP. Each accepted connection carries RFC 4571 frames (a
//! 16-bit length, then one STUN, DTLS, RTP or RTCP packet); a task per
//! connection reads frames and hands them to the conference task as if they
//! were datagrams, and writes what the SFU sends back to that peer.
//!
//! A connection must open with a STUN message (the browser's connectivity
//! check) and keep talking: the first frame must come within
//! [`FIRST_FRAME_TIMEOUT`], later ones within [`IDLE_TIMEOUT`] (ICE consent
//! checks run every few seconds). At most [`MAX_CONNECTIONS`] are open at once.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// How long a new connection may take to send its first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an open connection may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 4096;
/// Frames queued for one peer before further ones are dropped (media over a
/// stalled TCP connection is better lost than buffered without end).
const WRITE_QUEUE: usize = 512;
/// Frames queued from all connections to the conference task.
const EVENT_QUEUE: usize = 4096;
/// The largest first frame: a connectivity check is a STUN binding request
/// of a few hundred bytes. Anything else (an HTTP request, a TLS hello) reads
/// as a far larger length and is refused without waiting for it.
const MAX_FIRST_FRAME: usize = 1024;

/// What the connection tasks tell the conference task.
#[derive(Debug)]
pub enum TcpEvent {
    /// A frame arrived on connection `id` from `remote`, sent to `local`.
    Frame {
        /// The connection.
        id: u64,
        /// The peer's address.
        remote: SocketAddr,
        /// Our end of the connection.
        local: SocketAddr,
        /// The frame's contents, without the length prefix.
        data: Vec<u8>,
        /// With the connection's first frame: where to queue frames for the
        /// peer. Dropping it closes the connection.
        opened: Option<mpsc::Sender<Vec<u8>>>,
    },
    /// The connection ended.
    Closed {
        /// The connection.
        id: u64,
        /// The peer's address.
        remote: SocketAddr,
    },
}

struct Conn {
    id: u64,
    frames: mpsc::Sender<Vec<u8>>,
}

/// The listener and the open connections. Owned by the conference task.
pub struct IceTcp {
    listener: Option<(SocketAddr, JoinHandle<()>)>,
    events_tx: mpsc::Sender<TcpEvent>,
    events_rx: Option<mpsc::Receiver<TcpEvent>>,
    /// Open connections by the peer's address.
    conns: HashMap<SocketAddr, Conn>,
    slots: Arc<Semaphore>,
}

impl Default for IceTcp {
    fn default() -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        IceTcp {
            listener: None,
            events_tx,
            events_rx: Some(events_rx),
            conns: HashMap::new(),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
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

    /// Starts accepting on `listener`, closing the previous listener (its
    /// connections stay open: calls in progress keep their media).
    pub fn listen(&mut self, listener: std::net::TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let task = tokio::spawn(accept_loop(
            listener,
            self.events_tx.clone(),
            self.slots.clone(),
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
    }

    /// Notes an event from [`take_events`](Self::take_events)'s receiver.
    /// Returns the frame to hand to the SFU, if the event carries one:
    /// `(remote, local, data, first)`.
    pub fn note(&mut self, event: TcpEvent) -> Option<(SocketAddr, SocketAddr, Vec<u8>, bool)> {
        match event {
            TcpEvent::Frame {
                id,
                remote,
                local,
                data,
                opened,
            } => {
                let first = opened.is_some();
                if let Some(frames) = opened {
                    // A peer reconnecting from the same address replaces its
                    // old connection (dropping the sender closes it).
                    self.conns.insert(remote, Conn { id, frames });
                }
                Some((remote, local, data, first))
            }
            TcpEvent::Closed { id, remote } => {
                if self.conns.get(&remote).is_some_and(|c| c.id == id) {
                    self.conns.remove(&remote);
                }
                None
            }
        }
    }

    /// Closes the connection from `remote` (its first frame was for no one).
    pub fn close(&mut self, remote: SocketAddr) {
        self.conns.remove(&remote);
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

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

impl Drop for IceTcp {
    fn drop(&mut self) {
        // Connections close as their senders go with `conns`.
        self.stop_listening();
    }
}

async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>, slots: Arc<Semaphore>) {
    let mut next_id = 0u64;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("ICE-TCP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "ICE-TCP connection refused: {MAX_CONNECTIONS} already open");
            continue;
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; ICE
        // speaks of them as IPv4.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (remote, local) = (canonical(remote), canonical(local));
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let events = events.clone();
        tokio::spawn(async move {
            run_conn(id, stream, remote, local, &events).await;
            let _ = events.send(TcpEvent::Closed { id, remote }).await;
            drop(slot);
        });
    }
}

/// Reads frames until the peer closes, breaks the framing, or goes silent,
/// or the conference drops the connection's sender; writes queued frames meanwhile.
async fn run_conn(
    id: u64,
    stream: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    events: &mpsc::Sender<TcpEvent>,
) {
    let (frames_tx, mut frames) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let mut opened = Some(frames_tx);
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        while let Some(frame) = frames.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        let mut first = true;
        let mut data = Vec::new();
        loop {
            let limit = if first {
                FIRST_FRAME_TIMEOUT
            } else {
                IDLE_TIMEOUT
            };
            let max = if first {
                MAX_FIRST_FRAME
            } else {
                usize::from(u16::MAX)
            };
            match tokio::time::timeout(limit, read_frame(&mut reader, &mut data, max)).await {
                Err(_) => {
                    tracing::debug!(%remote, "ICE-TCP connection silent; closed");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%remote, "ICE-TCP connection ended: {e}");
                    return;
                }
                Ok(Ok(())) => {}
            }
            if first && !is_stun(&data) {
                tracing::debug!(%remote, "ICE-TCP connection did not open with STUN; closed");
                return;
            }
            let frame = TcpEvent::Frame {
                id,
                remote,
                local,
                data: std::mem::take(&mut data),
                opened: opened.take(),
            };
            first = false;
            if events.send(frame).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = write => {}
        () = read => {}
    }
}

/// Reads one RFC 4571 frame into `data`. An empty frame is refused (no
/// packet of ICE, DTLS or RTP is empty), and so is one longer than `max`.
async fn read_frame(
    reader: &mut (impl AsyncReadExt + Unpin),
    data: &mut Vec<u8>,
    max: usize,
) -> io::Result<()> {
    let len = usize::from(reader.read_u16().await?);
    if len == 0 || len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes"),
        ));
    }
    data.resize(len, 0);
    reader.read_exact(data).await?;
    Ok(())
}

/// A STUN message: a first byte of 0–3 (RFC 7983), a header, the magic cookie (RFC 8489).
fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] < 4 && data[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_is_told_from_the_rest() {
        let mut binding = vec![0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        binding.extend([0; 12]);
        assert!(is_stun(&binding));
        assert!(!is_stun(&binding[..19]), "shorter than a STUN header");
        let mut dtls = binding.clone();
        dtls[0] = 22;
        assert!(!is_stun(&dtls));
        let mut http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        http.truncate(20);
        assert!(!is_stun(&http));
    }

    fn binding_request() -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        m.extend([7; 12]);
        m
    }

    async fn listening() -> (IceTcp, mpsc::Receiver<TcpEvent>, SocketAddr) {
        let mut tcp = IceTcp::default();
        let events = tcp.take_events().unwrap();
        tcp.listen(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let addr = tcp.local_addr().unwrap();
        (tcp, events, addr)
    }

    #[tokio::test]
    async fn a_connection_carries_frames_both_ways() {
        let (mut tcp, mut events, addr) = listening().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let check = binding_request();
        client.write_all(&[0, 20]).await.unwrap();
        client.write_all(&check).await.unwrap();
        let event = events.recv().await.unwrap();
        let (remote, local, data, first) = tcp.note(event).unwrap();
        assert_eq!((local, data, first), (addr, check, true));
        assert_eq!(remote, client.local_addr().unwrap());
        assert_eq!(tcp.connections(), 1);

        // A second frame split across writes is read whole.
        client.write_all(&[0, 3, b'r']).await.unwrap();
        client.write_all(b"tp").await.unwrap();
        let (_, _, data, first) = tcp.note(events.recv().await.unwrap()).unwrap();
        assert_eq!((data.as_slice(), first), (&b"rtp"[..], false));

        tcp.send(remote, b"answer");
        let mut back = [0u8; 8];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"\0\x06answer");

        // Closed by the server: the client sees the end, the server the event.
        tcp.close(remote);
        assert_eq!(client.read(&mut back).await.unwrap(), 0);
        assert!(tcp.note(events.recv().await.unwrap()).is_none());
        assert_eq!(tcp.connections(), 0);
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

    #[tokio::test]
    async fn frames_are_read_whole_and_empty_ones_refused() {
        let mut input: &[u8] = &[0, 3, b'a', b'b', b'c', 0, 1, b'd', 0, 0];
        let mut data = Vec::new();
        read_frame(&mut input, &mut data, 100).await.unwrap();
        assert_eq!(data, b"abc");
        read_frame(&mut input, &mut data, 100).await.unwrap();
        assert_eq!(data, b"d");
        let e = read_frame(&mut input, &mut data, 100).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let mut cut: &[u8] = &[0, 5, b'a'];
        assert!(read_frame(&mut cut, &mut data, 100).await.is_err());
        let mut long: &[u8] = &[1, 0, b'a'];
        let e = read_frame(&mut long, &mut data, 100).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "over the limit");
    }
}
