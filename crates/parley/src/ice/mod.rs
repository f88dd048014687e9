//! Which ICE servers participants get, live from the settings, and the
//! connectivity check that proves they work.

pub mod arrivals;
pub mod check;
pub mod cli;
pub mod provider;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parley_ice::compose::{BuiltinTurn, compose};
use parley_settings::{Settings, TransportPolicy, TurnProvider};
use parley_signal::{IceConfig, IceServerSource};
use parley_stun::Credentials;
use serde::Serialize;
use tokio::sync::watch;

use crate::media::MediaAddresses;
use arrivals::Arrivals;
use check::{Peer, Target, UrlReport};
use provider::{ProviderCache, ProviderStatus};

/// Parley's own TURN server as participants reach it.
#[derive(Clone)]
pub struct BuiltinEndpoints {
    /// Mints the credentials it accepts.
    pub credentials: Credentials,
    /// Host in URLs; the first media address when not set.
    pub host: Option<String>,
    /// UDP and TCP port.
    pub port: Option<u16>,
    /// TLS port.
    pub tls_port: Option<u16>,
}

impl BuiltinEndpoints {
    /// URLs with the host given, or the first advertised media address.
    fn resolve(&self, media: &[SocketAddr]) -> Option<BuiltinTurn> {
        let host = self
            .host
            .clone()
            .unwrap_or_else(|| match media.first().map(SocketAddr::ip) {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
                None => "localhost".into(),
            });
        let port = self.port?;
        let mut turn_urls = vec![
            format!("turn:{host}:{port}?transport=udp"),
            format!("turn:{host}:{port}?transport=tcp"),
        ];
        if let Some(tls) = self.tls_port {
            turn_urls.push(format!("turns:{host}:{tls}?transport=tcp"));
        }
        Some(BuiltinTurn {
            credentials: self.credentials.clone(),
            turn_urls,
            stun_url: format!("stun:{host}:{port}"),
        })
    }
}

/// Composes each joining participant's ICE servers from the settings in
/// force at that moment.
pub struct IceComposer {
    settings: watch::Receiver<Arc<Settings>>,
    media: watch::Receiver<MediaAddresses>,
    builtin: Option<BuiltinEndpoints>,
    provider: ProviderCache,
    ttl: u64,
}

impl IceComposer {
    /// A composer; REST credentials last `ttl` seconds.
    pub fn new(
        settings: watch::Receiver<Arc<Settings>>,
        media: watch::Receiver<MediaAddresses>,
        builtin: Option<BuiltinEndpoints>,
        provider: ProviderCache,
        ttl: u64,
    ) -> IceComposer {
        IceComposer {
            settings,
            media,
            builtin,
            provider,
            ttl,
        }
    }

    /// What `participant` would be given now.
    pub fn compose_for(&self, participant: &str) -> IceConfig {
        let settings = self.settings.borrow().clone();
        let builtin = self.builtin_turn();
        compose(
            &settings,
            builtin.as_ref(),
            &self.provider.servers(),
            participant,
            crate::clock::unix_now(),
            self.ttl,
        )
    }

    fn builtin_turn(&self) -> Option<BuiltinTurn> {
        let media = self.media.borrow().current.clone();
        self.builtin.as_ref().and_then(|b| b.resolve(&media))
    }
}

impl IceServerSource for IceComposer {
    fn ice_config(&self, participant: &str) -> IceConfig {
        self.compose_for(participant)
    }
}

/// Everything ICE the HTTP side needs.
pub struct IceService {
    /// Composes participants' servers.
    pub composer: Arc<IceComposer>,
    /// The provider's cached answer.
    pub provider: ProviderCache,
    /// Test packets reaching the media port.
    pub arrivals: Arrivals,
    /// For provider requests.
    pub client: reqwest::Client,
    /// The built-in TURN server, if on.
    pub builtin: Option<BuiltinEndpoints>,
}

/// The connectivity check's report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Whether everything worked.
    pub ok: bool,
    /// Where TURN checks relayed their test packet.
    pub media_address: Option<SocketAddr>,
    /// The TURN provider's answer, for hosted providers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderStatus>,
    /// Each URL.
    pub results: Vec<UrlReport>,
    /// Things the administrator should know.
    pub notes: Vec<String>,
}

/// What the check needs from the running server.
pub struct CheckContext<'a> {
    /// The built-in TURN server, if on.
    pub builtin: Option<&'a BuiltinEndpoints>,
    /// The media addresses.
    pub media: &'a MediaAddresses,
    /// Reports test packets reaching the media port.
    pub arrivals: &'a Arrivals,
    /// For hosted providers.
    pub client: &'a reqwest::Client,
}

/// Checks every STUN and TURN server `settings` give participants: each URL
/// with the credentials participants get, relaying to Parley's media port.
pub async fn check_settings(settings: &Settings, ctx: CheckContext<'_>) -> CheckReport {
    let builtin = ctx.builtin.and_then(|b| b.resolve(&ctx.media.current));
    let mut notes = Vec::new();
    let mut targets = Vec::new();
    let now = crate::clock::unix_now();
    let ttl = 600;
    if settings.stun.builtin {
        match &builtin {
            Some(b) => targets.push(Target {
                url: b.stun_url.clone(),
                source: "builtin",
                credentials: None,
                secret: None,
            }),
            None => notes.push(
                "the built-in STUN server is selected but the built-in TURN server is off (--no-turn), so participants do not get it".into(),
            ),
        }
    }
    for url in &settings.stun.servers {
        targets.push(Target {
            url: url.clone(),
            source: "stun",
            credentials: None,
            secret: None,
        });
    }
    for server in &settings.turn.servers {
        let credentials = match &server.secret {
            Some(secret) => Some(parley_stun::mint_rest_credential(
                secret.as_bytes(),
                "parley-check",
                now + ttl,
            )),
            None => server.username.clone().zip(server.credential.clone()),
        };
        for url in &server.urls {
            targets.push(Target {
                url: url.clone(),
                source: "turn",
                credentials: credentials.clone(),
                secret: server.secret.clone(),
            });
        }
    }
    let mut provider_status = None;
    match &settings.turn_provider {
        TurnProvider::None => {}
        TurnProvider::Builtin => match &builtin {
            Some(b) => {
                let credentials = b.credentials.mint("parley-check", now, ttl);
                for url in &b.turn_urls {
                    targets.push(Target {
                        url: url.clone(),
                        source: "builtin",
                        credentials: credentials.clone(),
                        secret: None,
                    });
                }
            }
            None => notes
                .push("the TURN provider is the built-in server, but it is off (--no-turn)".into()),
        },
        hosted => {
            let kind = provider::kind(hosted).to_owned();
            match provider::fetch(ctx.client, hosted).await {
                Ok(answer) => {
                    provider_status = Some(ProviderStatus {
                        kind,
                        ok: Some(true),
                        detail: format!("{} server(s)", answer.servers.len()),
                        servers: answer.servers.len(),
                        fetched_at: Some(now),
                        expires_at: Some(now + answer.ttl.as_secs()),
                    });
                    for server in answer.servers {
                        let credentials = server.username.clone().zip(server.credential.clone());
                        for url in server.urls {
                            targets.push(Target {
                                url,
                                source: "provider",
                                credentials: credentials.clone(),
                                secret: None,
                            });
                        }
                    }
                }
                Err(why) => {
                    provider_status = Some(ProviderStatus {
                        kind,
                        ok: Some(false),
                        detail: why,
                        ..Default::default()
                    });
                }
            }
        }
    }
    let has_turn = targets.iter().any(|t| t.credentials.is_some());
    let unreachable = settings.turn.transport_policy == TransportPolicy::Relay && !has_turn;
    if unreachable {
        notes.push(
            "the transport policy is relay but no TURN server is configured: nobody can connect"
                .into(),
        );
    }
    if targets.is_empty() {
        notes.push("no STUN or TURN server is configured: participants connect only directly to the media port".into());
    }
    let media_address = ctx.media.current.first().copied();
    let peer = Peer::Parley {
        address: media_address.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9))),
        arrivals: ctx.arrivals.clone(),
    };
    let results =
        futures_util::future::join_all(targets.iter().map(|t| check::check(t, &peer))).await;
    let ok = results.iter().all(|r| r.ok)
        && provider_status.as_ref().is_none_or(|p| p.ok == Some(true))
        && !unreachable;
    CheckReport {
        ok,
        media_address,
        provider: provider_status,
        results,
        notes,
    }
}
