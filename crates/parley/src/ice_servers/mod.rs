//! Which ICE servers participants get, live from the settings, and the
//! connectivity check that proves they work.

pub mod arrivals;
pub mod check;
pub mod provider;
mod settings_check;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parley_ice::compose::{BuiltinTurn, compose};
use parley_settings::Settings;
use parley_signal::{IceConfig, IceServerSource};
use parley_stun::Credentials;
use tokio::sync::watch;

use crate::media::MediaAddresses;
use arrivals::Arrivals;
use provider::ProviderCache;
pub use settings_check::{CheckContext, CheckReport, check_settings};

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
