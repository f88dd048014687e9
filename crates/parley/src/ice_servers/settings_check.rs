//! The connectivity check of the settings in force: every STUN and TURN
//! server participants would get, probed with the credentials they would get.

use std::net::SocketAddr;

use parley_settings::{Settings, TransportPolicy, TurnProvider};
use serde::Serialize;

use super::BuiltinEndpoints;
use super::arrivals::Arrivals;
use super::check::{self, Peer, Target, UrlReport};
use super::provider::{self, ProviderStatus};
use crate::media::MediaAddresses;

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
