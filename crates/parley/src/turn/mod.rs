//! The TURN service: workers (one per core) on UDP, TCP and TLS listeners,
//! around the sans-IO core in `parley-stun`. Used by `parley serve` (TURN for
//! the SFU's participants) and `parley turn` (TURN alone, for other servers).

mod stream;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use parley_stun::{
    Credentials, NonceKey, OwnAddresses, PeerPolicy, Quotas, ServerConfig, TurnServer,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::media::candidates::{interface_addresses, show_addrs};
use crate::metrics::TurnMetrics;
use crate::tls::{ReloadingCert, TlsFiles};
use worker::{StreamEvent, Worker, WorkerInbox, WorkerStats};

/// Everything the TURN service needs to start.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// UDP and TCP listening addresses.
    pub listen: Vec<SocketAddr>,
    /// TLS listening addresses (used only with `tls`).
    pub tls_listen: Vec<SocketAddr>,
    /// Certificate for TURN over TLS.
    pub tls: Option<TlsFiles>,
    /// The realm of the long-term credentials.
    pub realm: String,
    /// TURN REST API shared secrets.
    pub secrets: Vec<String>,
    /// Static users.
    pub users: Vec<(String, String)>,
    /// Addresses relay sockets bind to: at most one IPv4 and one IPv6.
    pub relay_ips: Vec<IpAddr>,
    /// Ports for relay sockets.
    pub relay_ports: RangeInclusive<u16>,
    /// Networks peers may be in despite the default denials.
    pub allow_peers: Vec<parley_stun::Cidr>,
    /// Exact addresses always reachable (the SFU's media sockets).
    pub always_peers: Vec<SocketAddr>,
    /// Addresses of this server besides its listening and relay addresses
    /// (those announced for the SFU, e.g. a public address in front of
    /// NAT), refused as peers like them.
    pub own_ips: Vec<IpAddr>,
    /// Most allocations at once.
    pub max_allocations: usize,
    /// Most allocations per username at once.
    pub max_allocations_per_user: usize,
    /// Bytes per second per allocation, if limited.
    pub bandwidth: Option<u64>,
    /// SOFTWARE attribute value, if any.
    pub software: Option<String>,
    /// Worker threads.
    pub workers: usize,
}

/// The running TURN service.
pub struct TurnService {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    relay_ips: Vec<IpAddr>,
    credentials: Credentials,
    quotas: Arc<Quotas>,
    stats: Vec<Arc<Mutex<WorkerStats>>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    inboxes: Arc<Vec<WorkerInbox>>,
    /// The peer policy without the SFU's addresses, which change with the
    /// media settings.
    policy: PeerPolicy,
    /// Round robin over the workers for connections handed over.
    next_adopted: std::sync::atomic::AtomicUsize,
}

impl TurnService {
    /// Binds every listener and starts the workers. Must run inside a tokio
    /// runtime (TCP and TLS connections are tokio tasks).
    pub async fn start(settings: TurnSettings) -> anyhow::Result<TurnService> {
        if settings.listen.is_empty() {
            bail!("TURN needs at least one listening address");
        }
        let mut credentials = Credentials::new(settings.realm.clone());
        for (user, password) in &settings.users {
            credentials.add_user(user, password);
        }
        for secret in &settings.secrets {
            credentials.add_secret(secret.as_bytes());
        }
        if credentials.is_empty() {
            bail!("TURN needs at least one --secret or --user, or nobody could ever allocate");
        }
        let relay_ips = relay_ips(&settings)?;
        let relay_v4 = relay_ips.iter().copied().find(IpAddr::is_ipv4);
        let relay_v6 = relay_ips.iter().copied().find(IpAddr::is_ipv6);
        let nonce = NonceKey::new(rand::random(), 600);
        let quotas = Quotas::new(settings.max_allocations);
        let stop = Arc::new(AtomicBool::new(false));
        let (now, unix_now) = clock();

        // TCP first: a TCP listener cannot share its port with another
        // process, while UDP sockets with SO_REUSEPORT (which the workers
        // need) could silently share one with another server of the same
        // user. It also resolves port 0 for the UDP sockets.
        let mut tcp_listeners = Vec::new();
        for addr in &settings.listen {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for TURN on tcp {addr}"))?;
            tcp_listeners.push(listener);
        }
        let listen: Vec<SocketAddr> = tcp_listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<_, _>>()?;

        let policy = PeerPolicy {
            allow: settings.allow_peers.clone(),
            always: Vec::new(),
            own: own_addresses(&listen, &relay_ips, &settings.own_ips),
        };
        let workers = settings.workers.max(1);
        let mut inboxes = Vec::new();
        let mut stats = Vec::new();
        let mut threads = Vec::new();
        for i in 0..workers {
            let mut config = ServerConfig::new(
                credentials.clone(),
                nonce.clone(),
                relay_v4
                    .or(relay_v6)
                    .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            );
            config.relay_v4 = relay_v4;
            config.relay_v6 = relay_v6;
            config.relay_ports = settings.relay_ports.clone();
            config.max_allocations_per_user = settings.max_allocations_per_user;
            config.bandwidth = settings.bandwidth;
            config.software = settings.software.clone();
            config.seed = rand::random();
            config.policy = PeerPolicy {
                always: settings.always_peers.clone(),
                ..policy.clone()
            };
            let core = TurnServer::new(config, quotas.clone(), now, unix_now);
            let worker_stats = Arc::new(Mutex::new(WorkerStats::default()));
            let created = Worker::new(core, &listen, worker_stats.clone(), stop.clone())
                .with_context(|| format!("cannot listen for TURN on udp {}", show_addrs(&listen)));
            let (worker, inbox) = match created {
                Ok(w) => w,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            let thread = std::thread::Builder::new()
                .name(format!("turn-{i}"))
                .spawn(move || worker.run())
                .context("cannot start a TURN worker thread")?;
            threads.push(thread);
            inboxes.push(inbox);
            stats.push(worker_stats);
        }
        let inboxes = Arc::new(inboxes);

        let mut acceptors = Vec::new();
        let tcp = listen.clone();
        for listener in tcp_listeners {
            acceptors.push(tokio::spawn(stream::serve(listener, None, inboxes.clone())));
        }
        let mut tls = Vec::new();
        if let Some(files) = &settings.tls {
            let acceptor = tls_acceptor(files)?;
            for addr in &settings.tls_listen {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen for TURN over TLS on {addr}"))?;
                tls.push(listener.local_addr()?);
                acceptors.push(tokio::spawn(stream::serve(
                    listener,
                    Some(acceptor.clone()),
                    inboxes.clone(),
                )));
            }
        }
        tracing::info!(
            "TURN ready: udp and tcp {}{}; relaying from {} ports {}-{}; {} worker(s)",
            show_addrs(&listen),
            if tls.is_empty() {
                String::new()
            } else {
                format!(", tls {}", show_addrs(&tls))
            },
            relay_ips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            settings.relay_ports.start(),
            settings.relay_ports.end(),
            workers
        );
        Ok(TurnService {
            udp: listen.clone(),
            tcp,
            tls,
            relay_ips,
            credentials,
            quotas,
            stats,
            stop,
            threads: Mutex::new(threads),
            acceptors,
            inboxes,
            policy,
            next_adopted: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Serves a TURN-over-TLS connection another listener accepted and
    /// decrypted (one-port mode); returns when it ends.
    pub async fn serve_tls_stream<S>(&self, stream: S, client: SocketAddr, server: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        stream::adopt(stream, client, server, &self.inboxes, &self.next_adopted).await;
    }

    /// UDP listening addresses.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// TCP listening addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// TLS listening addresses.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// Addresses relay sockets bind to.
    pub fn relay_ips(&self) -> &[IpAddr] {
        &self.relay_ips
    }

    /// A REST credential for `user`, valid `ttl_secs`.
    pub fn mint(&self, user: &str, ttl_secs: u64) -> Option<(String, String)> {
        self.credentials.mint(user, clock().1, ttl_secs)
    }

    /// The counters of all workers.
    pub fn metrics(&self) -> TurnMetrics {
        let mut m = TurnMetrics {
            allocations: self.quotas.total(),
            ..Default::default()
        };
        for s in &self.stats {
            if let Ok(s) = s.lock() {
                m.core.add(&s.metrics);
                m.send_drops += s.send_drops;
            }
        }
        m
    }

    /// Stops the workers and listeners, waiting for the workers to finish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for a in &self.acceptors {
            a.abort();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Changes the addresses relayed to whatever the peer policy says
    /// (Parley's own media sockets, after a port change).
    pub fn set_always_peers(&self, always: Vec<SocketAddr>) {
        for inbox in self.inboxes.iter() {
            inbox.send(StreamEvent::Policy(PeerPolicy {
                always: always.clone(),
                ..self.policy.clone()
            }));
        }
    }

    /// The credentials it accepts, to mint REST credentials from elsewhere.
    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }
}

/// The relay addresses: configured ones, else each specific listening
/// address, else the machine's first IPv4 interface address.
fn relay_ips(settings: &TurnSettings) -> anyhow::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = settings.relay_ips.clone();
    if ips.is_empty() {
        ips = settings
            .listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect();
    }
    if ips.is_empty() {
        let interfaces = interface_addresses();
        let pick = interfaces
            .iter()
            .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
            .or_else(|| interfaces.iter().find(|ip| ip.is_ipv4()))
            .copied();
        ips.extend(pick);
    }
    ips.sort();
    ips.dedup_by_key(|ip| ip.is_ipv4());
    if ips.is_empty() {
        bail!("no address to relay from; pass --relay-ip");
    }
    if ips.iter().any(IpAddr::is_unspecified) {
        bail!("relay addresses must be specific, not 0.0.0.0 or ::");
    }
    Ok(ips)
}

/// The server as a peer it must refuse: its relay addresses and listening
/// addresses (every interface address for a wildcard listener) on its UDP
/// listening ports; the core adds the relay port range itself.
fn own_addresses(listen: &[SocketAddr], relay_ips: &[IpAddr], other: &[IpAddr]) -> OwnAddresses {
    let mut ips: Vec<IpAddr> = relay_ips.iter().chain(other).copied().collect();
    if listen.iter().any(|a| a.ip().is_unspecified()) {
        ips.extend(interface_addresses());
    }
    ips.extend(
        listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified()),
    );
    ips.sort();
    ips.dedup();
    let mut ports: Vec<RangeInclusive<u16>> = listen.iter().map(|a| a.port()..=a.port()).collect();
    ports.dedup();
    OwnAddresses { ips, ports }
}

/// TURN's TLS acceptor: the certificate files, reloaded when they change
/// (no ALPN: TURN clients do not ask for one).
fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let cert = ReloadingCert::load(files)?;
    let acceptor = cert.acceptor(&[])?;
    tokio::spawn(cert.watch());
    Ok(acceptor)
}

/// Now, as an instant and as unix seconds.
fn clock() -> (Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), unix)
}

/// `parley turn`: runs the TURN service (and `/metrics` on `metrics`, if
/// given) until SIGINT or SIGTERM.
pub async fn run(settings: TurnSettings, metrics: Option<SocketAddr>) -> anyhow::Result<()> {
    let service = Arc::new(TurnService::start(settings).await?);
    if let Some(addr) = metrics {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for /metrics on {addr}"))?;
        tracing::info!("metrics at http://{}/metrics", listener.local_addr()?);
        let service = service.clone();
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let service = service.clone();
                    async move { crate::metrics::render(None, Some(service.metrics())) }
                }),
            );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("metrics server failed: {e}");
            }
        });
    }
    crate::shutdown::terminated().await;
    tracing::info!("shutting down");
    let stopping = service.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .ok();
    Ok(())
}
