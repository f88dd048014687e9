//! Serving HTTP/1.1 connections, on the plain listener (`--http`) and on
//! the one port after TLS: a request's headers must arrive within
//! [`HEADER_READ`], connections are limited in number overall and per
//! address, and WebSocket upgrades work. (axum's own `serve` has no header
//! timeout, so a client sending headers a byte a minute would hold a
//! connection for ever.)

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::conn_limit::ConnLimit;

/// How long a request's headers may take (also the wait for the next
/// request on a kept-alive connection).
pub const HEADER_READ: Duration = Duration::from_secs(30);
/// HTTP connections served at once, and from one IP address; more are
/// closed at once. On the plain listener, a reverse proxy on the same
/// machine (the documented deployment) connects from loopback for
/// everyone, so loopback has only the overall limit. (An upgraded
/// WebSocket no longer counts.)
pub const MAX_CONNECTIONS: usize = 8192;
/// See [`MAX_CONNECTIONS`].
pub const MAX_PER_ADDRESS: usize = 256;

/// Serves one connection with `app`, which sees `remote` as the client's
/// address; ends early, finishing the request under way, when `stop` says so.
pub async fn serve_connection<I>(
    io: I,
    remote: SocketAddr,
    app: Router,
    stop: Option<watch::Receiver<bool>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_with_timeout(io, remote, app, stop, HEADER_READ).await;
}

async fn serve_with_timeout<I>(
    io: I,
    remote: SocketAddr,
    app: Router,
    mut stop: Option<watch::Receiver<bool>>,
    header_read: Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.layer(axum::Extension(ConnectInfo(remote)));
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(connection);
    let served = match stop.as_mut() {
        Some(stop) => {
            tokio::select! {
                served = connection.as_mut() => served,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
        None => connection.await,
    };
    if let Err(e) = served {
        tracing::debug!(%remote, "HTTP connection ended: {e}");
    }
}

/// Accepts connections on `listener` and serves them with `app` until
/// `shutdown` completes; then stops accepting, lets requests under way
/// finish (upgraded WebSockets are the conference's to close) and returns.
pub async fn serve_plain(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let limit = ConnLimit::new(MAX_CONNECTIONS, MAX_PER_ADDRESS);
    let local = ConnLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when the last is gone, all ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = crate::conn_limit::accept(&listener, "HTTP") => accepted,
            () = &mut shutdown => break,
        };
        let limit = if remote.ip().is_loopback() {
            &local
        } else {
            &limit
        };
        let admission = match limit.admit(remote.ip()) {
            Ok(admission) => admission,
            Err(refused) => {
                tracing::debug!(%remote, "HTTP: refused, {refused}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, stop, alive) = (app.clone(), stop_rx.clone(), alive_tx.clone());
        tokio::spawn(async move {
            let _admission = admission;
            let _alive = alive;
            serve_connection(stream, remote, app, Some(stop)).await;
        });
    }
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server() -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_plain(listener, app, async move {
            let _ = rx.await;
        }));
        (addr, tx, task)
    }

    #[tokio::test]
    async fn requests_are_served_and_shutdown_returns() {
        let (addr, stop, task) = server().await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("hello"), "{reply}");
        // A kept-alive idle connection does not hold the shutdown up.
        let _idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stop.send(()).expect("stop");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("shutdown finishes")
            .expect("task");
    }

    #[tokio::test]
    async fn headers_that_never_finish_are_cut_off() {
        let (mut client, server) = tokio::io::duplex(4096);
        let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let remote = SocketAddr::from(([127, 0, 0, 1], 1));
        let served = tokio::spawn(serve_with_timeout(
            server,
            remote,
            app,
            None,
            Duration::from_millis(200),
        ));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost:")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the connection was not closed");
        let reply = String::from_utf8_lossy(&buf);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{reply}"
        );
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("the connection ends")
            .expect("task");
    }
}
