//! `parley serve`: everything in one process.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use parley_settings::{ConnectionSettings, LogLevel, PortMode, Settings};
use parley_signal::{Hub, HubConfig};
use parley_store::Store;
use parley_stun::Cidr;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{Auth, tokens};
use crate::conference::{Command, Conference, ConferenceHandle};
use crate::db::Db;
use crate::http::{AppState, Services, app};
use crate::ice_servers::arrivals::Arrivals;
use crate::ice_servers::provider::{self, ProviderCache};
use crate::ice_servers::{BuiltinEndpoints, IceComposer, IceService};
use crate::live_settings::{SettingsService, room_policy};
use crate::media::candidates::{interface_addresses, show_addrs};
use crate::media::{MediaAddresses, MediaEndpoints};
use crate::tls::acme::AcmeOptions;
use crate::tls::{ReloadingCert, TlsFiles};
use crate::turn::{TurnService, TurnSettings};

/// What `parley serve` runs with: the command line, environment and config
/// file, resolved and validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Media UDP socket address.
    pub media: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Announced media addresses.
    pub announce: Vec<IpAddr>,
    /// Log level.
    pub log: LogLevel,
    /// Room member limit.
    pub max_room_members: usize,
    /// Media workers (SFU shards).
    pub media_workers: usize,
    /// The built-in TURN server, unless turned off.
    pub turn: Option<TurnOptions>,
    /// One-port mode: the HTTPS address and the certificate.
    pub https: Option<(SocketAddr, TlsFiles)>,
    /// Certificates from an ACME CA (the files are then in the data directory).
    pub acme: Option<AcmeOptions>,
}

/// The built-in TURN server's settings in `parley serve`.
#[derive(Debug, Clone)]
pub struct TurnOptions {
    /// UDP and TCP port.
    pub port: u16,
    /// TLS port, with the certificate.
    pub tls: Option<(u16, TlsFiles)>,
    /// Host in TURN URLs, if not the first media address.
    pub host: Option<String>,
    /// Addresses relay sockets bind to (none: the default).
    pub relay_ips: Vec<IpAddr>,
    /// Relay ports.
    pub relay_ports: RangeInclusive<u16>,
    /// Networks TURN may relay to despite the default policy.
    pub allow_peers: Vec<Cidr>,
    /// Extra REST secrets, besides the one minted at start.
    pub secrets: Vec<String>,
    /// Lifetime of minted credentials, seconds.
    pub credential_ttl: u64,
}

impl ServeConfig {
    /// The settings this command line and config file amount to: what the
    /// server runs with until an administrator saves a section, and what
    /// "reset to defaults" returns a section to.
    pub fn base_settings(&self) -> Settings {
        let mut settings = Settings {
            connection: ConnectionSettings {
                announce: self.announce.clone(),
                ..ConnectionSettings::default()
            },
            ..Settings::default()
        };
        if self.media.port() == 0 {
            settings.connection.mode = PortMode::Dynamic;
        } else {
            settings.connection.udp_port = self.media.port();
            settings.connection.tcp_port = self.media.port();
        }
        settings.rooms.max_members = u32::try_from(self.max_room_members).unwrap_or(20);
        settings.logging.level = self.log;
        settings
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the database in {}", config.data_dir.display()))?;
    let db = Db::new(store);
    let base = config.base_settings();
    let mut settings = crate::live_settings::load(&db, &base);
    if settings.logging.level != config.log {
        crate::logging::set_level(settings.logging.level);
    }

    let acme_challenges = crate::tls::acme::Challenges::default();
    // With ACME, the one port's certificate files are the ones ACME keeps.
    let acme = match (&config.acme, &config.https) {
        (Some(acme), Some((_, files))) => Some((acme.clone(), files.clone())),
        _ => None,
    };
    if let Some((acme, files)) = &acme {
        // A stand-in until the CA issues the real one.
        crate::tls::acme::ensure_certificate(files, &acme.domain)?;
    }
    let mut media = bind_media(&config, &base, &mut settings)?;
    let listener = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let http = listener.local_addr()?;
    // One-port mode: HTTPS and ICE-TCP on one listener.
    let one_port = match &config.https {
        Some((addr, files)) => {
            let cert = ReloadingCert::load(files)?;
            // WebSocket upgrades need HTTP/1.1.
            // (and TURN clients that ask for RFC 7443's ALPN).
            let acceptor = cert.acceptor(&[b"http/1.1", b"stun.turn"])?;
            tokio::spawn(cert.watch());
            let https = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for HTTPS on {addr}"))?;
            let bound = https.local_addr()?;
            let handoff = media.enable_one_port(bound);
            Some((https, bound, acceptor, handoff))
        }
        None => None,
    };

    let turn = match &config.turn {
        Some(options) => Some(Arc::new(
            start_turn(options, config.media.ip(), &media.addresses()).await?,
        )),
        None => None,
    };
    let builtin = match (&turn, &config.turn) {
        (Some(service), Some(options)) => Some(BuiltinEndpoints {
            credentials: service.credentials(),
            host: options.host.clone(),
            port: service.udp_addrs().first().map(SocketAddr::port),
            // TURN over TLS on the one port reaches more networks than 5349.
            tls_port: one_port
                .as_ref()
                .map(|(_, bound, ..)| bound.port())
                .or_else(|| service.tls_addrs().first().map(SocketAddr::port)),
        }),
        _ => None,
    };

    let (settings_tx, _) = watch::channel(Arc::new(settings.clone()));
    let (addresses_tx, addresses_rx) = watch::channel(MediaAddresses::default());
    let provider_cache = ProviderCache::default();
    let credential_ttl = config.turn.as_ref().map_or(6 * 3600, |t| t.credential_ttl);
    let composer = Arc::new(IceComposer::new(
        settings_tx.subscribe(),
        addresses_rx.clone(),
        builtin.clone(),
        provider_cache.clone(),
        credential_ttl,
    ));
    let mut hub_config = HubConfig::new(
        media.candidates().to_vec(),
        rand::random(),
        // Resume tokens: 128 random bits. Times people see: wall clock, ms.
        Arc::new(tokens::random_hex::<16>),
        Arc::new(crate::clock::unix_now_ms),
    );
    hub_config.transport.tcp_candidates = media.tcp_candidates();
    hub_config.media_shards = config.media_workers;
    hub_config.rooms = room_policy(&settings);
    hub_config.ice_servers = composer.clone();
    let arrivals = Arrivals::default();
    let media_shown = format!(
        "{}, {} media worker{}",
        describe_media(&media),
        config.media_workers,
        if config.media_workers == 1 { "" } else { "s" }
    );
    let mut hub = Hub::new(hub_config);
    crate::conference::meetings::load_rooms(&db, &mut hub).context("cannot load room settings")?;
    tokio::spawn(crate::conference::meetings::retention(
        db.clone(),
        settings_tx.subscribe(),
    ));
    let (conference, handle) =
        Conference::new(hub, media, addresses_tx, arrivals.clone(), db.clone());
    let conference_task = tokio::spawn(conference.run());

    let client = provider::http_client()?;
    tokio::spawn(provider::refresh(
        settings_tx.subscribe(),
        provider_cache.clone(),
        client.clone(),
    ));
    if let Some(service) = &turn {
        tokio::spawn(follow_media(service.clone(), addresses_rx));
    }

    let setup = first_run_token(&db)?;
    let services = Arc::new(Services {
        db: db.clone(),
        auth: Auth::new(setup.clone()),
        settings: SettingsService::new(db, base, settings_tx, handle.clone()),
        acme: acme_challenges.clone(),
        ice: IceService {
            composer,
            provider: provider_cache,
            arrivals,
            client,
            builtin,
        },
    });

    tracing::info!(
        "Parley {} ready: http://{http} ({media_shown}; data in {})",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display()
    );
    let base_url = if http.ip().is_unspecified() {
        format!("http://localhost:{}", http.port())
    } else {
        format!("http://{http}")
    };
    if http.ip().is_unspecified() {
        tracing::info!("open {base_url}/ in a browser to start a meeting");
    }
    if let Some(token) = &setup {
        tracing::warn!(
            "no administrator yet: create the first one at {base_url}/setup#token={token} (or run `parley admin create-user`)"
        );
    }

    let app = app(AppState {
        conference: handle.clone(),
        turn: turn.clone(),
        services,
    });
    if let Some((https, bound, acceptor, handoff)) = one_port {
        tracing::info!(
            "one-port mode on {bound} (HTTPS, ICE-TCP{})",
            if turn.is_some() {
                ", TURN over TLS"
            } else {
                ""
            }
        );
        let routes = crate::tls::one_port::Routes {
            app: app.clone(),
            ice_tcp: handoff,
            turn: turn.clone(),
        };
        tokio::spawn(crate::tls::one_port::serve(https, acceptor, routes));
    }
    if let Some((acme, files)) = acme {
        tokio::spawn(crate::tls::acme::run(
            acme,
            files,
            config.data_dir.clone(),
            acme_challenges,
        ));
    }
    crate::http::server::serve_plain(listener, app, shutdown_signal(handle)).await;
    conference_task.await.context("conference task failed")?;
    if let Some(turn) = turn {
        tokio::task::spawn_blocking(move || turn.stop()).await.ok();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds media as the settings say; if stored settings cannot be bound
/// (their port is taken now), falls back to the command line's, loudly.
fn bind_media(
    config: &ServeConfig,
    base: &Settings,
    settings: &mut Settings,
) -> anyhow::Result<MediaEndpoints> {
    let ip = config.media.ip();
    match MediaEndpoints::bind(ip, &settings.connection, interface_addresses()) {
        Ok(media) => Ok(media),
        Err(e) if settings.connection != base.connection => {
            tracing::error!(
                "the saved connection settings cannot be used ({e}); using the command line's until an administrator changes them"
            );
            settings.connection = base.connection.clone();
            MediaEndpoints::bind(ip, &settings.connection, interface_addresses())
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(e) => bail!("{e}"),
    }
}

fn describe_media(media: &MediaEndpoints) -> String {
    let tcp = match media.tcp_local_addr() {
        Some(local) => format!(
            "; ICE-TCP {local}, advertised as {}",
            show_addrs(&media.tcp_candidates())
        ),
        None => String::new(),
    };
    format!(
        "media udp {}, advertised as {}{tcp}",
        media.local_addr(),
        show_addrs(media.candidates())
    )
}

/// A one-time token for creating the first administrator, while there is no account.
fn first_run_token(db: &Db) -> anyhow::Result<Option<String>> {
    let users = db
        .blocking(|s| s.users())
        .context("cannot read the accounts")?;
    Ok(users.is_empty().then(tokens::random_secret))
}

/// Keeps the built-in TURN server able to relay to the SFU's media
/// addresses as they change.
async fn follow_media(turn: Arc<TurnService>, mut addresses: watch::Receiver<MediaAddresses>) {
    while addresses.changed().await.is_ok() {
        let all = addresses.borrow_and_update().all.clone();
        turn.set_always_peers(all);
    }
}

/// Starts the built-in TURN server next to the SFU: on the media address,
/// relaying from it, always allowed to reach the SFU's own media sockets.
async fn start_turn(
    options: &TurnOptions,
    bind_ip: std::net::IpAddr,
    media: &MediaAddresses,
) -> anyhow::Result<TurnService> {
    let mut secrets = vec![tokens::random_hex::<32>()];
    secrets.extend(options.secrets.iter().cloned());
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
        relay_ips: options.relay_ips.clone(),
        relay_ports: options.relay_ports.clone(),
        allow_peers: options.allow_peers.clone(),
        always_peers: media.all.clone(),
        own_ips: media.all.iter().map(SocketAddr::ip).collect(),
        max_allocations: 10_000,
        // Per credential. A browser allocates once per peer connection,
        // TURN URL and local interface: 2 × 3 × a few interfaces for one
        // participant, more where a provider or another service shares one
        // credential between several (as `--turn-secret` users may).
        max_allocations_per_user: 32,
        bandwidth: None,
        software: None,
        workers: std::thread::available_parallelism().map_or(1, usize::from),
    };
    TurnService::start(settings).await
}

/// Resolves on SIGINT or SIGTERM, after telling every client the server is going away.
async fn shutdown_signal(conference: ConferenceHandle) {
    crate::shutdown::terminated().await;
    tracing::info!("shutting down");
    conference.send(Command::Shutdown).await;
}
