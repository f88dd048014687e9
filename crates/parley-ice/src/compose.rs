//! The ICE servers one participant gets, from the settings, Parley's own
//! TURN server and the provider's latest answer.

use parley_protocol::{IceConfig, IceServer, IceTransportPolicy};
use parley_settings::{Settings, TransportPolicy, TurnProvider};
use parley_stun::{Credentials, mint_rest_credential};

/// Parley's built-in TURN server, as clients reach it.
#[derive(Debug, Clone)]
pub struct BuiltinTurn {
    /// Mints credentials it accepts.
    pub credentials: Credentials,
    /// `turn:`/`turns:` URLs.
    pub turn_urls: Vec<String>,
    /// The `stun:` URL of its STUN side.
    pub stun_url: String,
}

/// Builds the ICE servers for `participant`; REST credentials are minted to
/// expire `ttl_secs` after `unix_now`.
pub fn compose(
    settings: &Settings,
    builtin: Option<&BuiltinTurn>,
    provider_servers: &[IceServer],
    participant: &str,
    unix_now: u64,
    ttl_secs: u64,
) -> IceConfig {
    let mut servers = Vec::new();
    let mut stun_urls = Vec::new();
    if settings.stun.builtin
        && let Some(b) = builtin
    {
        stun_urls.push(b.stun_url.clone());
    }
    stun_urls.extend(settings.stun.servers.iter().cloned());
    if !stun_urls.is_empty() {
        servers.push(IceServer {
            urls: stun_urls,
            username: None,
            credential: None,
        });
    }
    for t in &settings.turn.servers {
        let (username, credential) = match &t.secret {
            Some(secret) => {
                let (u, c) =
                    mint_rest_credential(secret.as_bytes(), participant, unix_now + ttl_secs);
                (Some(u), Some(c))
            }
            None => (t.username.clone(), t.credential.clone()),
        };
        servers.push(IceServer {
            urls: t.urls.clone(),
            username,
            credential,
        });
    }
    match &settings.turn_provider {
        TurnProvider::None => {}
        TurnProvider::Builtin => {
            if let Some(b) = builtin
                && let Some((u, c)) = b.credentials.mint(participant, unix_now, ttl_secs)
            {
                servers.push(IceServer {
                    urls: b.turn_urls.clone(),
                    username: Some(u),
                    credential: Some(c),
                });
            }
        }
        _ => servers.extend(provider_servers.iter().cloned()),
    }
    IceConfig {
        servers,
        policy: match settings.turn.transport_policy {
            TransportPolicy::All => IceTransportPolicy::All,
            TransportPolicy::Relay => IceTransportPolicy::Relay,
        },
    }
}

#[cfg(test)]
mod tests {
    use parley_settings::{StunSettings, TurnServer, TurnSettings};

    use super::*;

    fn builtin() -> BuiltinTurn {
        let mut credentials = Credentials::new("parley");
        credentials.add_secret(b"s");
        BuiltinTurn {
            credentials,
            turn_urls: vec!["turn:192.0.2.1:3478?transport=udp".into()],
            stun_url: "stun:192.0.2.1:3478".into(),
        }
    }

    #[test]
    fn the_defaults_give_the_builtin_stun_and_turn_with_fresh_credentials() {
        let c = compose(&Settings::default(), Some(&builtin()), &[], "p1", 1000, 60);
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[0].urls, vec!["stun:192.0.2.1:3478"]);
        assert_eq!(c.servers[1].username.as_deref(), Some("1060:p1"));
        assert_eq!(c.policy, IceTransportPolicy::All);
    }

    #[test]
    fn configured_servers_and_policy_are_passed_on() {
        let settings = Settings {
            stun: StunSettings {
                builtin: false,
                servers: vec!["stun:stun.example.org".into()],
            },
            turn: TurnSettings {
                servers: vec![
                    TurnServer {
                        urls: vec!["turn:a.example.org".into()],
                        username: Some("u".into()),
                        credential: Some("p".into()),
                        secret: None,
                    },
                    TurnServer {
                        urls: vec!["turns:b.example.org".into()],
                        username: None,
                        credential: None,
                        secret: Some("shared".into()),
                    },
                ],
                transport_policy: TransportPolicy::Relay,
            },
            turn_provider: TurnProvider::None,
            ..Default::default()
        };
        let c = compose(&settings, Some(&builtin()), &[], "p2", 1000, 60);
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[0].urls, vec!["stun:stun.example.org"]);
        assert_eq!(c.servers[1].username.as_deref(), Some("u"));
        assert_eq!(c.servers[2].username.as_deref(), Some("1060:p2"));
        assert_eq!(c.policy, IceTransportPolicy::Relay);
    }

    #[test]
    fn provider_answers_are_included_for_hosted_providers() {
        let settings = Settings {
            turn_provider: TurnProvider::Metered {
                app: "a".into(),
                api_key: "k".into(),
            },
            ..Default::default()
        };
        let answer = [IceServer {
            urls: vec!["turn:relay.metered.ca:80".into()],
            username: Some("mu".into()),
            credential: Some("mc".into()),
        }];
        let c = compose(&settings, Some(&builtin()), &answer, "p3", 0, 60);
        assert_eq!(c.servers.last(), Some(&answer[0]));
    }
}
