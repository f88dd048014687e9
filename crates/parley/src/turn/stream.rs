//! TURN over TCP and TLS (RFC 8656 §3.1): STUN messages and ChannelData
//! framed on a byte stream, handed to a worker like datagrams. When the
//! connection closes, its allocation goes with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parley_stun::channel_data::stream_frame_len;
use parley_stun::{FiveTuple, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::worker::{StreamEvent, WorkerInbox};

/// The most bytes one frame may have (a STUN message or ChannelData header
/// plus 64 KiB).
const MAX_FRAME: usize = 4 + 65_535 + 3;
/// Frames queued towards one slow client before new ones are dropped.
const OUTGOING_QUEUE: usize = 1024;
/// A connection that sends nothing for this long is closed (TURN clients
/// refresh at least every 10 minutes; this leaves room).
const IDLE: Duration = Duration::from_secs(15 * 60);
/// A TLS handshake must finish within this time.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Accepts TCP (or, with `tls`, TLS) connections and spreads them over the workers.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    workers: Arc<Vec<WorkerInbox>>,
) {
    let next = AtomicUsize::new(0);
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    loop {
        let (stream, client) = crate::conn_limit::accept(&listener, "TURN").await;
        let _ = stream.set_nodelay(true);
        let worker = workers[next.fetch_add(1, Ordering::Relaxed) % workers.len()].clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    connection(
                        stream,
                        FiveTuple {
                            client,
                            server: local,
                            transport: Transport::Tcp,
                        },
                        worker,
                    )
                    .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            connection(
                                stream,
                                FiveTuple {
                                    client,
                                    server: local,
                                    transport: Transport::Tls,
                                },
                                worker,
                            )
                            .await
                        }
                        Ok(Err(e)) => tracing::debug!(%client, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves one TURN-over-TLS connection accepted elsewhere (one-port mode),
/// on the next worker.
pub(crate) async fn adopt<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    client: SocketAddr,
    server: SocketAddr,
    workers: &[WorkerInbox],
    next: &AtomicUsize,
) {
    let Some(worker) = workers
        .get(next.fetch_add(1, Ordering::Relaxed) % workers.len().max(1))
        .cloned()
    else {
        return;
    };
    let tuple = FiveTuple {
        client,
        server,
        transport: Transport::Tls,
    };
    connection(stream, tuple, worker).await;
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tuple: FiveTuple,
    worker: WorkerInbox,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(OUTGOING_QUEUE);
    if !worker.send(StreamEvent::Open(tuple, tx)) {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let writing = async {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let reading = async {
        let mut buf = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            // Hand over every complete frame in the buffer.
            loop {
                match stream_frame_len(&buf) {
                    Ok(Some(len)) if len > MAX_FRAME => return,
                    Ok(Some(len)) if buf.len() >= len => {
                        let frame: Vec<u8> = buf.drain(..len).collect();
                        if !worker.send(StreamEvent::Frame(tuple, frame)) {
                            return;
                        }
                    }
                    Ok(_) => break,
                    // Not STUN, not ChannelData: this is no TURN client.
                    Err(_) => return,
                }
            }
            match tokio::time::timeout(IDLE, reader.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::select! {
        () = writing => {}
        () = reading => {}
    }
    worker.send(StreamEvent::Closed(tuple));
}
