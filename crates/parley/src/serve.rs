//! `parley serve`: everything in one process.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use parley_signal::{Hub, HubConfig, IceServer, IceServerSource};
use parley_store::Store;
use tokio::net::TcpListener;

use crate::candidates::{host_candidates, interface_addresses};
use crate::conference::{Command, Conference, ConferenceHandle};
use crate::config::{ServeConfig, TurnOptions};
use crate::http::{AppState, app};
use crate::turn::{TurnService, TurnSettings};
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

    let turn = match &config.turn {
        Some(options) => Some(Arc::new(start_turn(options, media, &candidates).await?)),
        None => None,
    };

    let mut hub_config = HubConfig::new(candidates.clone(), rand::random());
    hub_config.max_room_members = config.max_room_members;
    if let (Some(service), Some(options)) = (&turn, &config.turn) {
        hub_config.ice_servers = ice_server_source(service, options, &candidates);
    }
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
        turn: turn.clone(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(handle))
        .await
        .context("HTTP server failed")?;
    conference_task.await.context("conference task failed")?;
    if let Some(turn) = turn {
        tokio::task::spawn_blocking(move || turn.stop()).await.ok();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the built-in TURN server next to the SFU: on the media address,
/// relaying from it, always allowed to reach the SFU's own media sockets.
async fn start_turn(
    options: &TurnOptions,
    media: SocketAddr,
    candidates: &[SocketAddr],
) -> anyhow::Result<TurnService> {
    let bind_ip = media.ip();
    let mut always: Vec<SocketAddr> = candidates.to_vec();
    if !bind_ip.is_unspecified() {
        always.push(media);
    }
    let secret: [u8; 32] = rand::random();
    let mut secrets = vec![
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ];
    secrets.extend(options.secret.clone());
    let settings = TurnSettings {
        listen: vec![SocketAddr::new(bind_ip, options.port)],
        tls_listen: options
            .tls
            .iter()
            .map(|(port, _)| SocketAddr::new(bind_ip, *port))
            .collect(),
        tls: options.tls.as_ref().map(|(_, files)| files.clone()),
        realm: "parley".into(),
        secrets,
        users: Vec::new(),
        relay_ips: options.relay_ip.into_iter().collect(),
        relay_ports: options.relay_ports.clone(),
        allow_peers: options.allow_peers.clone(),
        always_peers: always,
        max_allocations: 10_000,
        // Credentials are per participant; a few allocations each (two peer
        // connections, UDP and TCP attempts) is plenty.
        max_allocations_per_user: 8,
        bandwidth: None,
        software: None,
        workers: std::thread::available_parallelism().map_or(1, usize::from),
    };
    TurnService::start(settings).await
}

/// Freshly minted TURN REST credentials for every joining participant, for
/// the built-in TURN server over UDP, TCP and (with a certificate) TLS.
fn ice_server_source(
    service: &TurnService,
    options: &TurnOptions,
    candidates: &[SocketAddr],
) -> Arc<dyn IceServerSource> {
    let host =
        options
            .host
            .clone()
            .unwrap_or_else(|| match candidates.first().map(SocketAddr::ip) {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
                None => "localhost".into(),
            });
    let mut urls = Vec::new();
    if let Some(udp) = service.udp_addrs().first() {
        urls.push(format!("turn:{host}:{}?transport=udp", udp.port()));
    }
    if let Some(tcp) = service.tcp_addrs().first() {
        urls.push(format!("turn:{host}:{}?transport=tcp", tcp.port()));
    }
    if let Some(tls) = service.tls_addrs().first() {
        urls.push(format!("turns:{host}:{}?transport=tcp", tls.port()));
    }
    let credentials = service.credentials();
    let ttl = options.credential_ttl;
    Arc::new(move |participant: &str| {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match credentials.mint(participant, unix, ttl) {
            Some((username, credential)) => vec![IceServer {
                urls: urls.clone(),
                username: Some(username),
                credential: Some(credential),
            }],
            None => Vec::new(),
        }
    })
}

/// Resolves on SIGINT or SIGTERM, after telling every client the server is going away.
async fn shutdown_signal(conference: ConferenceHandle) {
    crate::signal::terminated().await;
    tracing::info!("shutting down");
    conference.send(Command::Shutdown).await;
}
