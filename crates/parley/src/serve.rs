//! `parley serve`: everything in one process.

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use parley_signal::{Hub, HubConfig};
use parley_store::Store;
use tokio::net::TcpListener;

use crate::candidates::{host_candidates, interface_addresses};
use crate::conference::{Command, Conference, ConferenceHandle};
use crate::config::ServeConfig;
use crate::http::{AppState, app};
use crate::udp::MediaSocket;

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the database in {}", config.data_dir.display()))?;
    let socket = MediaSocket::bind(config.media)
        .with_context(|| format!("cannot bind the media port udp/{}", config.media))?;
    let media = socket.local_addr();
    let candidates = host_candidates(media, &config.announce, &interface_addresses());
    if candidates.is_empty() {
        bail!("no address to advertise for media on {media}; pass --announce with the server's IP");
    }
    let listener = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let http = listener.local_addr()?;

    let mut hub_config = HubConfig::new(candidates.clone(), rand::random());
    hub_config.max_room_members = config.max_room_members;
    let (conference, handle) = Conference::new(
        Hub::new(hub_config),
        socket,
        candidates.clone(),
        Arc::new(Mutex::new(store)),
    );
    let conference_task = tokio::spawn(conference.run());

    let shown = candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        "Parley {} ready: http://{http} (media udp {media}, advertised as {shown}; data in {})",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display()
    );
    if http.ip().is_unspecified() {
        tracing::info!(
            "open http://localhost:{}/ in a browser to start a meeting",
            http.port()
        );
    }

    let app = app(AppState {
        conference: handle.clone(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(handle))
        .await
        .context("HTTP server failed")?;
    conference_task.await.context("conference task failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, after telling every client the server is going away.
async fn shutdown_signal(conference: ConferenceHandle) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    conference.send(Command::Shutdown).await;
}
