//! TURN providers as HTTP requests and responses, without doing the I/O:
//! [`request`] says what to ask, [`parse`] turns the answer into ICE servers.

use std::time::Duration;

use base64::Engine;
use parley_protocol::IceServer;
use parley_settings::json_path::JsonPath;
use parley_settings::{CustomProvider, Method, ProviderAuth, TurnProvider};
use serde_json::Value;

/// How long provider answers are reused when they do not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// An HTTP request to a provider.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// Method.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Headers, authentication included.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<String>,
}

impl std::fmt::Debug for ProviderRequest {
    /// Headers and the URL may carry secrets: only the host is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self
            .url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("?");
        write!(f, "ProviderRequest({:?} {host}/…)", self.method)
    }
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// The servers, ready for browsers.
    pub servers: Vec<IceServer>,
    /// How long they may be reused.
    pub ttl: Duration,
}

/// Why a provider's answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Not JSON.
    #[error("the provider did not answer with JSON: {0}")]
    NotJson(String),
    /// JSON, but the configured paths found no URLs.
    #[error("no STUN or TURN URLs at {0}")]
    NoUrls(String),
    /// The provider said no (an error status or body).
    #[error("the provider refused: {0}")]
    Refused(String),
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Percent-encodes what may not appear as is in a URL path or query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fills `${NAME}` placeholders.
fn fill(template: &str, custom: &CustomProvider) -> String {
    let mut out = template.to_owned();
    for (name, value) in &custom.variables {
        out = out.replace(&format!("${{{name}}}"), &encode(value));
    }
    out
}

/// The request for `provider`; `None` for none and built-in.
pub fn request(provider: &TurnProvider) -> Option<ProviderRequest> {
    let json = || ("Content-Type".to_owned(), "application/json".to_owned());
    match provider {
        TurnProvider::None | TurnProvider::Builtin => None,
        TurnProvider::Metered { app, api_key } => Some(ProviderRequest {
            method: Method::Get,
            url: format!(
                "https://{}.metered.live/api/v1/turn/credentials?apiKey={}",
                encode(app),
                encode(api_key)
            ),
            headers: Vec::new(),
            body: None,
        }),
        TurnProvider::Twilio {
            account_sid,
            auth_token,
        } => Some(ProviderRequest {
            method: Method::Post,
            url: format!(
                "https://api.twilio.com/2010-04-01/Accounts/{}/Tokens.json",
                encode(account_sid)
            ),
            headers: vec![("Authorization".to_owned(), basic(account_sid, auth_token))],
            body: None,
        }),
        TurnProvider::Xirsys {
            ident,
            secret,
            channel,
        } => Some(ProviderRequest {
            method: Method::Put,
            url: format!("https://global.xirsys.net/_turn/{}", encode(channel)),
            headers: vec![("Authorization".to_owned(), basic(ident, secret)), json()],
            body: Some(r#"{"format":"urls"}"#.to_owned()),
        }),
        TurnProvider::Custom(c) => {
            let mut headers: Vec<(String, String)> = c
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            match &c.auth {
                ProviderAuth::None => {}
                ProviderAuth::Basic { username, password } => {
                    headers.push(("Authorization".to_owned(), basic(username, password)))
                }
                ProviderAuth::Bearer { token } => {
                    headers.push(("Authorization".to_owned(), format!("Bearer {token}")))
                }
                ProviderAuth::Header { name, value } => headers.push((name.clone(), value.clone())),
            }
            if c.body.is_some()
                && !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(json());
            }
            Some(ProviderRequest {
                method: c.method,
                url: fill(&c.url_template, c),
                headers,
                body: c.body.clone(),
            })
        }
    }
}

/// An array of RTCIceServer-like objects: `urls` (string or list, or
/// Twilio's `url`), `username`, `credential`.
fn server_list(list: &Value) -> Vec<IceServer> {
    let Some(items) = list.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let urls: Vec<String> = match item.get("urls").or_else(|| item.get("url")) {
                Some(Value::String(u)) => vec![u.clone()],
                Some(Value::Array(us)) => us
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let urls: Vec<String> = urls.iter().filter_map(|u| usable(u)).collect();
            (!urls.is_empty()).then(|| IceServer {
                urls,
                username: item
                    .get("username")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                credential: item
                    .get("credential")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// Only URLs a browser can use pass; anything else in a provider answer is dropped.
/// The URL as browsers get it, if it is a STUN or TURN URL: without the
/// whitespace around it that the parser forgives and a browser may not.
fn usable(url: &str) -> Option<String> {
    parley_settings::url::IceUrl::parse(url)
        .is_ok()
        .then(|| url.trim().to_owned())
}

fn ttl_from(value: Option<&Value>) -> Duration {
    let secs = match value {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    secs.map_or(DEFAULT_TTL, |s| Duration::from_secs(s.clamp(30, 86_400)))
}

/// Turns a provider's response body into ICE servers.
pub fn parse(provider: &TurnProvider, body: &[u8]) -> Result<ProviderAnswer, ProviderError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| ProviderError::NotJson(e.to_string()))?;
    match provider {
        TurnProvider::None | TurnProvider::Builtin => Ok(ProviderAnswer {
            servers: Vec::new(),
            ttl: DEFAULT_TTL,
        }),
        TurnProvider::Metered { .. } => {
            let servers = server_list(&json);
            if servers.is_empty() {
                return Err(ProviderError::NoUrls("the top-level array".into()));
            }
            Ok(ProviderAnswer {
                servers,
                ttl: DEFAULT_TTL,
            })
        }
        TurnProvider::Twilio { .. } => {
            let servers = server_list(json.get("ice_servers").unwrap_or(&Value::Null));
            if servers.is_empty() {
                return Err(ProviderError::NoUrls("ice_servers".into()));
            }
            // Reuse for at most half the credential's life.
            let ttl = ttl_from(json.get("ttl")) / 2;
            Ok(ProviderAnswer { servers, ttl })
        }
        TurnProvider::Xirsys { .. } => {
            if json
                .get("s")
                .and_then(Value::as_str)
                .is_some_and(|s| s != "ok")
            {
                let why = json.get("v").map(|v| v.to_string()).unwrap_or_default();
                return Err(ProviderError::Refused(why));
            }
            paths(
                &json,
                "v.iceServers.urls",
                "v.iceServers.username",
                "v.iceServers.credential",
                DEFAULT_TTL,
            )
        }
        TurnProvider::Custom(c) => paths(
            &json,
            &c.urls_path,
            &c.username_path,
            &c.credential_path,
            Duration::from_secs(c.cache_seconds),
        ),
    }
}

fn paths(
    json: &Value,
    urls: &str,
    username: &str,
    credential: &str,
    ttl: Duration,
) -> Result<ProviderAnswer, ProviderError> {
    let get = |p: &str| JsonPath::parse(p).map_err(ProviderError::NoUrls);
    let urls_found: Vec<String> = get(urls)?
        .strings(json)
        .iter()
        .filter_map(|u| usable(u))
        .collect();
    if urls_found.is_empty() {
        return Err(ProviderError::NoUrls(urls.to_owned()));
    }
    Ok(ProviderAnswer {
        servers: vec![IceServer {
            urls: urls_found,
            username: get(username)?.first_string(json),
            credential: get(credential)?.first_string(json),
        }],
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use parley_settings::Header;

    use super::*;

    fn custom(paths: (&str, &str, &str)) -> TurnProvider {
        TurnProvider::Custom(CustomProvider {
            url_template: "https://turn.example.org/api/${ROOM}/creds".into(),
            variables: BTreeMap::from([("ROOM".to_owned(), "weekly sync".to_owned())]),
            method: Method::Post,
            headers: vec![Header {
                name: "X-Client".into(),
                value: "parley".into(),
            }],
            auth: ProviderAuth::Bearer {
                token: "tok".into(),
            },
            body: Some("{}".into()),
            urls_path: paths.0.into(),
            username_path: paths.1.into(),
            credential_path: paths.2.into(),
            cache_seconds: 600,
        })
    }

    #[test]
    fn custom_requests_fill_variables_and_add_authentication() {
        let r = request(&custom(("a", "b", "c"))).unwrap();
        assert_eq!(r.url, "https://turn.example.org/api/weekly%20sync/creds");
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Bearer tok".into()))
        );
        assert!(r.headers.contains(&("X-Client".into(), "parley".into())));
        assert!(r.headers.iter().any(|(n, _)| n == "Content-Type"));
        assert!(
            !format!("{r:?}").contains("tok"),
            "no secrets in debug output"
        );
    }

    #[test]
    fn a_xirsys_shaped_answer_through_custom_paths() {
        let body = br#"{"v":{"iceServers":{"username":"xu","urls":["stun:stun.example.org","turn:turn.example.org:3478?transport=udp","nonsense:x"],"credential":"xc"}},"s":"ok"}"#;
        let a = parse(
            &custom((
                "v.iceServers.urls[]",
                "v.iceServers.username",
                "v.iceServers.credential",
            )),
            body,
        )
        .unwrap();
        assert_eq!(a.servers.len(), 1);
        assert_eq!(
            a.servers[0].urls,
            vec![
                "stun:stun.example.org",
                "turn:turn.example.org:3478?transport=udp"
            ]
        );
        assert_eq!(a.servers[0].username.as_deref(), Some("xu"));
        assert_eq!(a.servers[0].credential.as_deref(), Some("xc"));
        assert_eq!(a.ttl, Duration::from_secs(600));
    }

    #[test]
    fn a_twilio_shaped_answer_through_custom_paths_and_the_preset() {
        let body = br#"{"ice_servers":[{"url":"stun:global.stun.twilio.com:3478","urls":"stun:global.stun.twilio.com:3478"},{"url":"turn:global.turn.twilio.com:3478?transport=udp","username":"tu","urls":"turn:global.turn.twilio.com:3478?transport=udp","credential":"tc"}],"ttl":"86400","account_sid":"ACx"}"#;
        let a = parse(
            &custom((
                "ice_servers[].urls",
                "ice_servers[1].username",
                "ice_servers[1].credential",
            )),
            body,
        )
        .unwrap();
        assert_eq!(a.servers[0].urls.len(), 2);
        assert_eq!(a.servers[0].username.as_deref(), Some("tu"));
        let preset = TurnProvider::Twilio {
            account_sid: "ACx".into(),
            auth_token: "t".into(),
        };
        let a = parse(&preset, body).unwrap();
        assert_eq!(a.servers.len(), 2);
        assert_eq!(a.servers[1].credential.as_deref(), Some("tc"));
        assert_eq!(a.ttl, Duration::from_secs(43_200));
        let r = request(&preset).unwrap();
        assert!(r.url.ends_with("/Accounts/ACx/Tokens.json"));
        assert!(r.headers[0].1.starts_with("Basic "));
    }

    /// Found by fuzzing: a URL with whitespace around it passed the check
    /// (the parser trims) and reached browsers as it was.
    #[test]
    fn urls_reach_browsers_without_surrounding_whitespace() {
        let body = br#"{"ice_servers":[{"urls":[" turn:global.turn.twilio.com:3478?transport=udp\n"],"username":"u","credential":"c"}]}"#;
        let twilio = TurnProvider::Twilio {
            account_sid: "AC1".into(),
            auth_token: "t".into(),
        };
        let a = parse(&twilio, body).unwrap();
        assert_eq!(
            a.servers[0].urls,
            ["turn:global.turn.twilio.com:3478?transport=udp"]
        );
        let custom = custom((
            "ice_servers[].urls[]",
            "ice_servers[0].username",
            "ice_servers[0].credential",
        ));
        let a = parse(&custom, body).unwrap();
        assert_eq!(
            a.servers[0].urls,
            ["turn:global.turn.twilio.com:3478?transport=udp"]
        );
    }

    #[test]
    fn unusable_answers_say_why() {
        let p = custom(("data.urls", "data.u", "data.c"));
        assert!(matches!(
            parse(&p, b"<html>"),
            Err(ProviderError::NotJson(_))
        ));
        assert!(matches!(
            parse(&p, br#"{"data":{}}"#),
            Err(ProviderError::NoUrls(_))
        ));
        let x = TurnProvider::Xirsys {
            ident: "i".into(),
            secret: "s".into(),
            channel: "c".into(),
        };
        assert!(matches!(
            parse(&x, br#"{"s":"error","v":"unauthorized"}"#),
            Err(ProviderError::Refused(_))
        ));
    }
}
