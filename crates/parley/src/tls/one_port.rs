//! One-port mode: HTTPS (the web client, the API and the signaling
//! WebSocket), TURN over TLS and ICE-TCP media share one TCP port, usually
//! 443, so a participant whose network lets only HTTPS out still joins with
//! media. Each connection is told apart by its first bytes: a TLS record
//! (`0x16`) is decrypted, and then a STUN message is TURN over TLS and
//! anything else HTTP; an RFC 4571 frame holding a STUN message (two length
//! bytes, then a STUN header with its magic cookie) is ICE-TCP and goes to
//! the SFU's ICE-TCP connections; anything else is closed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use parley_stun::channel_data::starts_with_stun;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::conn_limit::ConnLimit;
use crate::http::server::{MAX_CONNECTIONS, MAX_PER_ADDRESS};
use crate::turn::TurnService;

/// How long a connection may take to show its first bytes, and a TLS
/// handshake to finish.
const FIRST_BYTES: Duration = Duration::from_secs(10);

/// What a connection's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TLS ClientHello: HTTPS or WSS.
    Tls,
    /// An RFC 4571 frame holding STUN: ICE-TCP.
    IceTcp,
    /// Neither (yet, with fewer bytes than needed; or at all).
    Unknown,
}

/// Classifies the first bytes of a connection (at least 10 are needed for
/// ICE-TCP, 1 for TLS).
pub fn classify(first: &[u8]) -> Kind {
    if first.first() == Some(&0x16) {
        Kind::Tls
    } else if first.get(2..).is_some_and(starts_with_stun) {
        Kind::IceTcp
    } else {
        Kind::Unknown
    }
}

/// Where one-port connections go.
#[derive(Clone)]
pub struct Routes {
    /// HTTPS and WSS.
    pub app: Router,
    /// ICE-TCP connections, for the SFU.
    pub ice_tcp: mpsc::Sender<TcpStream>,
    /// TURN over TLS, when the built-in TURN server runs.
    pub turn: Option<Arc<TurnService>>,
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, routes: Routes) {
    let limit = ConnLimit::new(MAX_CONNECTIONS, MAX_PER_ADDRESS);
    loop {
        let (stream, remote) = crate::conn_limit::accept(&listener, "HTTPS").await;
        let admission = match limit.admit(remote.ip()) {
            Ok(admission) => admission,
            Err(refused) => {
                tracing::debug!(%remote, "one port: refused, {refused}");
                continue;
            }
        };
        let (tls, routes) = (tls.clone(), routes.clone());
        tokio::spawn(async move {
            let _admission = admission;
            match tokio::time::timeout(FIRST_BYTES, first_bytes(&stream)).await {
                Ok(Kind::Tls) => tls_connection(stream, remote, tls, routes).await,
                Ok(Kind::IceTcp) => {
                    let _ = routes.ice_tcp.send(stream).await;
                }
                Ok(Kind::Unknown) => tracing::debug!(%remote, "neither TLS nor ICE-TCP; closed"),
                Err(_) => tracing::debug!(%remote, "sent nothing; closed"),
            }
        });
    }
}

/// Peeks until the first bytes tell what the connection is, or it ends.
async fn first_bytes(stream: &TcpStream) -> Kind {
    let mut buf = [0u8; 10];
    let mut last = 0;
    loop {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return Kind::Unknown,
            Ok(n) => n,
        };
        let kind = classify(&buf[..n]);
        // Neither TLS nor (with its third byte) an RFC 4571 STUN frame: done.
        let hopeless = n >= 3 && buf[0] != 0x16 && buf[2] >= 4;
        if kind != Kind::Unknown || n == buf.len() || hopeless {
            return kind;
        }
        if n == last {
            // Nothing new arrived yet: peek returns at once while data is
            // waiting, so wait for more before looking again.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last = n;
    }
}

/// Completes the TLS handshake; then TURN over TLS or HTTP/1.1 (with
/// WebSocket upgrades), by the first decrypted bytes.
async fn tls_connection(stream: TcpStream, remote: SocketAddr, tls: TlsAcceptor, routes: Routes) {
    let local = stream.local_addr().ok();
    let mut stream = match tokio::time::timeout(FIRST_BYTES, tls.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let mut first = vec![0u8; 2048];
    let n = match tokio::time::timeout(FIRST_BYTES, stream.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return,
    };
    first.truncate(n);
    let is_stun = starts_with_stun(&first);
    let stream = Prefixed {
        first,
        at: 0,
        inner: stream,
    };
    if is_stun {
        match (&routes.turn, local) {
            (Some(turn), Some(local)) => {
                let local = SocketAddr::new(local.ip().to_canonical(), local.port());
                turn.serve_tls_stream(stream, remote, local).await;
            }
            _ => tracing::debug!(%remote, "TURN over TLS, but the built-in TURN server is off"),
        }
        return;
    }
    let app = routes.app.layer(axum::middleware::map_request(over_tls));
    crate::http::server::serve_connection(stream, remote, app, None).await;
}

/// Requests on the one port came over TLS that Parley terminated itself:
/// they say so the way a TLS proxy would (secure cookies, https links), and
/// a client's own `X-Forwarded-Proto` is not taken at its word.
async fn over_tls(mut request: axum::extract::Request) -> axum::extract::Request {
    request.headers_mut().insert(
        "x-forwarded-proto",
        axum::http::HeaderValue::from_static("https"),
    );
    request
}

/// A stream whose first bytes were read already: they are read again first.
struct Prefixed<S> {
    first: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.first.len() {
            let n = (self.first.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.first[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_read_ahead_are_read_again_first() {
        let mut s = Prefixed {
            first: b"GET ".to_vec(),
            at: 0,
            inner: &b"/ HTTP/1.1"[..],
        };
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "GET / HTTP/1.1");
    }

    #[test]
    fn first_bytes_tell_tls_from_ice_tcp() {
        assert_eq!(classify(&[0x16, 0x03, 0x01]), Kind::Tls);
        let check = [0, 20, 0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        assert_eq!(classify(&check), Kind::IceTcp);
        assert_eq!(classify(&check[..9]), Kind::Unknown, "not enough bytes yet");
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Kind::Unknown);
        // Plain STUN without the RFC 4571 length is TURN over TCP, not ICE-TCP.
        assert_eq!(
            classify(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0]),
            Kind::Unknown
        );
    }
}
