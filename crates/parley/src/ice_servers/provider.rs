//! Fetching TURN credentials from a hosted provider: server-side, cached
//! until the provider's answer expires, refreshed ahead of time, and never
//! logged (only the provider's host appears in messages).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use parley_ice::provider::{self, ProviderAnswer};
use parley_settings::{Settings, TurnProvider};
use parley_signal::IceServer;
use serde::Serialize;
use tokio::sync::watch;

/// The most a provider's answer may weigh.
const MAX_BODY: usize = 1 << 20;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays after a failure: 5 s, doubling, at most 5 min.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The provider's last answer, as the console shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProviderStatus {
    /// `none`, `builtin`, `metered`, `twilio`, `xirsys` or `custom`.
    pub kind: String,
    /// Whether the last request worked; absent before the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// What happened, for the administrator.
    pub detail: String,
    /// Servers in the cached answer.
    pub servers: usize,
    /// Unix seconds of the last successful request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<u64>,
    /// Unix seconds when the cached answer expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

#[derive(Default)]
struct Cached {
    servers: Vec<IceServer>,
    expires: Option<Instant>,
    status: ProviderStatus,
}

/// The cached answer, shared with whoever composes participants' servers.
#[derive(Clone, Default)]
pub struct ProviderCache {
    inner: Arc<RwLock<Cached>>,
}

impl ProviderCache {
    /// The servers of the last answer, unless it has expired.
    pub fn servers(&self) -> Vec<IceServer> {
        let Ok(c) = self.inner.read() else {
            return Vec::new();
        };
        match c.expires {
            Some(t) if Instant::now() < t => c.servers.clone(),
            _ => Vec::new(),
        }
    }

    /// What the console shows.
    pub fn status(&self) -> ProviderStatus {
        self.inner
            .read()
            .map(|c| c.status.clone())
            .unwrap_or_default()
    }

    fn set(&self, f: impl FnOnce(&mut Cached)) {
        if let Ok(mut c) = self.inner.write() {
            f(&mut c);
        }
    }
}

/// The provider's kind, as in the settings.
pub fn kind(provider: &TurnProvider) -> &'static str {
    match provider {
        TurnProvider::None => "none",
        TurnProvider::Builtin => "builtin",
        TurnProvider::Metered { .. } => "metered",
        TurnProvider::Twilio { .. } => "twilio",
        TurnProvider::Xirsys { .. } => "xirsys",
        TurnProvider::Custom(_) => "custom",
    }
}

/// An HTTP client for providers: TLS verified against the system's roots.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("Parley/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()?)
}

/// Asks `provider` for servers once. Errors name the host, never the URL's
/// path or query (they often carry the API key).
pub async fn fetch(
    client: &reqwest::Client,
    provider: &TurnProvider,
) -> Result<ProviderAnswer, String> {
    let Some(request) = provider::request(provider) else {
        return Err("this provider is not fetched over HTTP".into());
    };
    let host = host_of(&request.url);
    let method = match request.method {
        parley_settings::Method::Get => reqwest::Method::GET,
        parley_settings::Method::Post => reqwest::Method::POST,
        parley_settings::Method::Put => reqwest::Method::PUT,
        parley_settings::Method::Patch => reqwest::Method::PATCH,
    };
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let response = builder.send().await.map_err(|e| {
        let why = if e.is_timeout() {
            format!("no answer within {} s", TIMEOUT.as_secs())
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            e.without_url().to_string()
        };
        format!("{host}: {why}")
    })?;
    let status = response.status();
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{host}: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{host}: the answer is larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        // Providers explain refusals in the body; show a little of it.
        let text = String::from_utf8_lossy(&body);
        let shown: String = text.chars().take(200).collect();
        return Err(format!("{host}: HTTP {status}: {shown}"));
    }
    provider::parse(provider, &body).map_err(|e| format!("{host}: {e}"))
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?']).next())
        .and_then(|h| h.rsplit('@').next())
        .unwrap_or("the provider")
        .to_owned()
}

/// Keeps `cache` filled with the configured provider's answer: fetched when
/// the provider setting changes, refreshed at 80% of the answer's lifetime,
/// retried with backoff after failures (the old answer serves until it expires).
pub async fn refresh(
    mut settings: watch::Receiver<Arc<Settings>>,
    cache: ProviderCache,
    client: reqwest::Client,
) {
    let mut current: Option<TurnProvider> = None;
    let mut due: Option<Instant> = None;
    let mut retry = RETRY_FIRST;
    loop {
        let provider = settings.borrow_and_update().turn_provider.clone();
        let changed = current.as_ref() != Some(&provider);
        if changed {
            retry = RETRY_FIRST;
            cache.set(|c| {
                *c = Cached {
                    status: ProviderStatus {
                        kind: kind(&provider).into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }
            });
            due = provider::request(&provider).map(|_| Instant::now());
            current = Some(provider.clone());
        }
        if due.is_some_and(|t| Instant::now() >= t) {
            match fetch(&client, &provider).await {
                Ok(answer) => {
                    let ttl = answer.ttl.max(Duration::from_secs(60));
                    tracing::info!(
                        provider = kind(&provider),
                        "TURN provider answered with {} server(s), valid {} s",
                        answer.servers.len(),
                        ttl.as_secs()
                    );
                    let now = crate::clock::unix_now();
                    cache.set(|c| {
                        c.expires = Some(Instant::now() + ttl);
                        c.status = ProviderStatus {
                            kind: kind(&provider).into(),
                            ok: Some(true),
                            detail: format!("{} server(s)", answer.servers.len()),
                            servers: answer.servers.len(),
                            fetched_at: Some(now),
                            expires_at: Some(now + ttl.as_secs()),
                        };
                        c.servers = answer.servers;
                    });
                    retry = RETRY_FIRST;
                    due = Some(Instant::now() + ttl.mul_f64(0.8));
                }
                Err(why) => {
                    tracing::warn!(
                        provider = kind(&provider),
                        "TURN provider request failed, retrying in {} s: {why}",
                        retry.as_secs()
                    );
                    cache.set(|c| {
                        c.status.kind = kind(&provider).into();
                        c.status.ok = Some(false);
                        c.status.detail = why;
                    });
                    due = Some(Instant::now() + retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        let sleep = async {
            match due {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = settings.changed() => if changed.is_err() { return },
            () = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_is_shown() {
        assert_eq!(
            host_of("https://app.metered.live/api/v1/turn/credentials?apiKey=SECRET"),
            "app.metered.live"
        );
        assert_eq!(
            host_of("https://user:pw@global.xirsys.net/_turn/x"),
            "global.xirsys.net"
        );
        assert_eq!(host_of("garbage"), "the provider");
    }
}
