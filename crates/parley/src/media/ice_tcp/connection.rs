//! One ICE-TCP connection's task: it reads RFC 4571 frames, hands them to the
//! conference as [`TcpEvent`]s, and writes the frames queued for the peer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parley_stun::channel_data::starts_with_stun;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::conn_limit::ConnLimit;
use crate::media::candidates::arrival_candidate;

/// How long a new connection may take to send its first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an open connection may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames queued for one peer before further ones are dropped (media over a
/// stalled TCP connection is better lost than buffered without end).
const WRITE_QUEUE: usize = 512;
/// The largest first frame: a connectivity check is a STUN binding request
/// of a few hundred bytes. Anything else (an HTTP request, a TLS hello) reads
/// as a far larger length and is refused without waiting for it.
pub const MAX_FIRST_FRAME: usize = 1024;

/// A new connection's first frame, waiting for the conference's verdict.
#[derive(Debug)]
pub struct Opening {
    /// Where to queue frames for the peer.
    pub(super) frames: mpsc::Sender<Vec<u8>>,
    /// Dropping it ends the connection, even in the middle of a write.
    pub(super) cancel: oneshot::Sender<()>,
    /// `true`: a participant took the check, read on; `false` (or dropped): close.
    pub(super) verdict: oneshot::Sender<bool>,
}

/// What the connection tasks tell the conference task.
#[derive(Debug)]
pub enum TcpEvent {
    /// A frame arrived on connection `id` from `remote`.
    Frame {
        /// The connection.
        id: u64,
        /// The peer's address.
        remote: SocketAddr,
        /// The advertised candidate the connection was made to (fixed when
        /// it was accepted, so a later change of addresses does not strand it).
        destination: SocketAddr,
        /// The frame's contents, without the length prefix.
        data: Vec<u8>,
        /// With the connection's first frame only.
        opening: Option<Opening>,
    },
    /// The connection ended.
    Closed {
        /// The connection.
        id: u64,
        /// The peer's address.
        remote: SocketAddr,
    },
}

/// What every connection task shares: where events go and the limits.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) events: mpsc::Sender<TcpEvent>,
    pub(super) limit: ConnLimit,
    pub(super) next_id: Arc<AtomicU64>,
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    candidates: watch::Receiver<Vec<SocketAddr>>,
    shared: Shared,
) {
    loop {
        let (stream, remote) = crate::conn_limit::accept(&listener, "ICE-TCP").await;
        start_conn(stream, remote, &candidates, &shared);
    }
}

/// Serves one accepted connection in its own task, if the limits allow.
pub(super) fn start_conn(
    stream: TcpStream,
    remote: SocketAddr,
    candidates: &watch::Receiver<Vec<SocketAddr>>,
    shared: &Shared,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; ICE
    // speaks of them as IPv4.
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (remote, local) = (canonical(remote), canonical(local));
    let admission = match shared.limit.admit(remote.ip()) {
        Ok(admission) => admission,
        Err(refused) => {
            tracing::debug!(%remote, "ICE-TCP connection refused: {refused}");
            return;
        }
    };
    let destination = arrival_candidate(Some(local.ip()), &candidates.borrow(), local);
    let _ = stream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let events = shared.events.clone();
    tokio::spawn(async move {
        run_conn(id, stream, remote, destination, &events).await;
        let _ = events.send(TcpEvent::Closed { id, remote }).await;
        drop(admission);
    });
}

/// Reads frames until the peer closes, breaks the framing, or goes silent,
/// or the conference closes the connection; writes queued frames meanwhile.
async fn run_conn(
    id: u64,
    stream: TcpStream,
    remote: SocketAddr,
    destination: SocketAddr,
    events: &mpsc::Sender<TcpEvent>,
) {
    let (frames_tx, mut frames) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let (cancel_tx, cancel) = oneshot::channel::<()>();
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        while let Some(frame) = frames.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        let mut data = Vec::new();
        // The first frame: a STUN check, judged before anything more is read.
        match tokio::time::timeout(
            FIRST_FRAME_TIMEOUT,
            read_frame(&mut reader, &mut data, MAX_FIRST_FRAME),
        )
        .await
        {
            Ok(Ok(())) if is_stun(&data) => {}
            Ok(Ok(())) => {
                tracing::debug!(%remote, "ICE-TCP connection did not open with STUN; closed");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%remote, "ICE-TCP connection ended: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "ICE-TCP connection sent nothing; closed");
                return;
            }
        }
        let (verdict_tx, verdict) = oneshot::channel();
        let opening = Opening {
            frames: frames_tx,
            cancel: cancel_tx,
            verdict: verdict_tx,
        };
        let first = TcpEvent::Frame {
            id,
            remote,
            destination,
            data: std::mem::take(&mut data),
            opening: Some(opening),
        };
        if events.send(first).await.is_err() || verdict.await != Ok(true) {
            return;
        }
        loop {
            match tokio::time::timeout(
                IDLE_TIMEOUT,
                read_frame(&mut reader, &mut data, usize::from(u16::MAX)),
            )
            .await
            {
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
            let frame = TcpEvent::Frame {
                id,
                remote,
                destination,
                data: std::mem::take(&mut data),
                opening: None,
            };
            if events.send(frame).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = write => {}
        () = read => {}
        // The conference dropped the connection (or never took it).
        _ = cancel => {}
    }
}

/// Reads one RFC 4571 frame into `data`. An empty frame is refused (no
/// packet of ICE, DTLS or RTP is empty), and so is one longer than `max`.
pub async fn read_frame(
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

/// A whole STUN header (20 bytes) with the magic cookie.
fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && starts_with_stun(data)
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
