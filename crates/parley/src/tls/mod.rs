//! TLS that Parley terminates itself: the certificate of one-port mode and
//! TURN over TLS, read from PEM files and read again when they change, so a
//! renewed certificate (certbot, [`acme`]) is used without a restart; a
//! file that does not load keeps the previous certificate in use, and the
//! log says why. [`one_port`] serves HTTPS, TURN over TLS and ICE-TCP on
//! one TCP port.

pub mod acme;
pub mod one_port;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// How often the files are checked for changes.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The certificate in use, swapped when the files change.
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl ReloadingCert {
    /// Loads the files (an error if they do not hold a matching certificate and key).
    pub fn load(files: &TlsFiles) -> anyhow::Result<Arc<ReloadingCert>> {
        Ok(Arc::new(ReloadingCert {
            files: files.clone(),
            current: RwLock::new(Arc::new(read(files)?)),
        }))
    }

    /// A TLS acceptor with this certificate, offering `alpn` (e.g.
    /// `http/1.1`; none for TURN).
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Checks the files every few seconds and loads them again when either
    /// changed. Runs until the process ends.
    pub async fn watch(self: Arc<Self>) {
        let mut seen = stamps(&self.files);
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let now = stamps(&self.files);
            if now == seen {
                continue;
            }
            seen = now;
            match read(&self.files) {
                Ok(key) => {
                    if let Ok(mut current) = self.current.write() {
                        *current = Arc::new(key);
                    }
                    tracing::info!("TLS certificate {} loaded again", self.files.cert.display());
                }
                Err(e) => {
                    tracing::warn!("TLS certificate not reloaded, the previous one stays: {e:#}")
                }
            }
        }
    }
}

fn stamps(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

fn read(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("cannot read the TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM in {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read the TLS private key {}", files.key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(certs, key, &provider)
        .context("the TLS certificate and key do not match")
}
