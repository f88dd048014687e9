//! Certificates from an ACME certificate authority (Let's Encrypt unless told
//! otherwise) for one-port mode, with HTTP-01 challenges answered on the
//! plain HTTP listener (`/.well-known/acme-challenge/{token}`; the CA asks
//! on port 80 of the host name, so `--http` must be reachable there).
//!
//! The certificate and key live in `{data_dir}/acme/` (readable by this
//! user only) and are the files the HTTPS listener reloads when they
//! change. Until the first certificate arrives a self-signed one stands in.
//! A certificate is renewed when it is 60 days old (ACME certificates last
//! 90) or came from another CA directory or for another name; a failed
//! attempt (or one with no answer within 5 minutes) is tried again after
//! ten minutes, then less often, while the old certificate keeps serving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::{ReloadingCert, TlsFiles};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// A certificate this old is renewed.
const RENEW_AFTER: Duration = Duration::from_secs(60 * 86_400);
/// How often the certificate's age is checked.
const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);
/// First wait after a failed attempt; doubles up to [`CHECK_EVERY`].
const RETRY_FIRST: Duration = Duration::from_secs(600);
/// One whole attempt (account, order, validation, issuance) may take this long.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(300);

/// Where certificates come from.
#[derive(Debug, Clone)]
pub struct AcmeOptions {
    /// The host name to certify.
    pub domain: String,
    /// A contact address for the CA (expiry notices), if any.
    pub email: Option<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// An extra root certificate (PEM) to trust for the CA's own HTTPS, for
    /// a private or test CA.
    pub ca_root: Option<PathBuf>,
}

/// Tokens of the HTTP-01 challenges in progress and their answers.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

impl Challenges {
    /// The key authorization for `token`, while its challenge is open.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0.lock().ok()?.get(token).cloned()
    }

    fn open(&self, token: String, answer: String) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(token, answer);
        }
    }

    fn close(&self, token: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(token);
        }
    }
}

/// Closes the challenges it opened when dropped, however the attempt ends.
struct OpenChallenges<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
}

impl OpenChallenges<'_> {
    fn open(&mut self, token: String, answer: String) {
        self.challenges.open(token.clone(), answer);
        self.tokens.push(token);
    }
}

impl Drop for OpenChallenges<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.challenges.close(token);
        }
    }
}

/// The certificate files ACME keeps in `data_dir`.
pub fn files(data_dir: &Path) -> TlsFiles {
    let dir = data_dir.join("acme");
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

fn placeholder_marker(files: &TlsFiles) -> PathBuf {
    files.cert.with_file_name("self-signed")
}

/// Names the CA and domain the certificate came from: another one (say, from
/// a staging directory to production) is due at once.
fn issued_for(files: &TlsFiles) -> PathBuf {
    files.cert.with_file_name("issued-for")
}

fn origin(options: &AcmeOptions) -> String {
    format!("{} {}\n", options.directory, options.domain)
}

/// Creates the ACME directory, readable by this user only.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))
}

/// Writes `contents` to `path` through a temporary file, readable by this user only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Makes a self-signed certificate for `domain` if there is no certificate
/// yet, so HTTPS can start before the CA answers.
pub fn ensure_certificate(files: &TlsFiles, domain: &str) -> anyhow::Result<()> {
    if let Some(dir) = files.cert.parent() {
        private_dir(dir)?;
    }
    if files.cert.exists() && files.key.exists() && ReloadingCert::load(files).is_ok() {
        return Ok(());
    }
    // Missing, or a pair that does not load (a crash between writes): a
    // stand-in, marked first so it is never taken for an issued one.
    std::fs::write(placeholder_marker(files), b"until the CA issues one\n")?;
    let made = rcgen::generate_simple_self_signed(vec![domain.to_owned()])
        .context("cannot make a stand-in certificate")?;
    write_files(files, &made.cert.pem(), &made.signing_key.serialize_pem())?;
    Ok(())
}

/// Writes a certificate and key (the key readable by this user only).
fn write_files(files: &TlsFiles, cert: &str, key: &str) -> anyhow::Result<()> {
    write_private(&files.key, key.as_bytes())?;
    write_private(&files.cert, cert.as_bytes())
}

/// Whether the certificate should be (re)issued: a stand-in, one from
/// another CA or for another name, or an old one.
fn due(files: &TlsFiles, options: &AcmeOptions) -> bool {
    if placeholder_marker(files).exists() {
        return true;
    }
    if std::fs::read_to_string(issued_for(files)).ok() != Some(origin(options)) {
        return true;
    }
    let age = std::fs::metadata(&files.cert)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    age.is_none_or(|a| a >= RENEW_AFTER)
}

/// Keeps the certificate issued and renewed until the process ends.
pub async fn run(options: AcmeOptions, files: TlsFiles, data_dir: PathBuf, challenges: Challenges) {
    let mut retry = RETRY_FIRST;
    loop {
        if !due(&files, &options) {
            tokio::time::sleep(CHECK_EVERY).await;
            continue;
        }
        tracing::info!(domain = %options.domain, "asking {} for a certificate", options.directory);
        let attempt = tokio::time::timeout(
            ATTEMPT_LIMIT,
            obtain(&options, &files, &data_dir, &challenges),
        )
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "no answer from the CA within {} s",
                ATTEMPT_LIMIT.as_secs()
            ))
        });
        match attempt {
            Ok(()) => {
                tracing::info!(domain = %options.domain, "certificate issued; HTTPS uses it within seconds");
                retry = RETRY_FIRST;
            }
            Err(e) => {
                tracing::error!(domain = %options.domain, "certificate not issued: {e:#}; trying again in {} min", retry.as_secs() / 60);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(CHECK_EVERY);
            }
        }
    }
}

async fn account(options: &AcmeOptions, data_dir: &Path) -> anyhow::Result<Account> {
    let builder = match &options.ca_root {
        Some(root) => Account::builder_with_root(root)
            .with_context(|| format!("cannot use the CA root {}", root.display()))?,
        None => Account::builder().context("cannot set up the ACME client")?,
    };
    let saved = data_dir.join("acme").join("account.json");
    if let Ok(text) = std::fs::read_to_string(&saved)
        && let Ok((directory, credentials)) =
            serde_json::from_str::<(String, AccountCredentials)>(&text)
        && directory == options.directory
    {
        return builder
            .from_credentials(credentials)
            .await
            .context("the saved ACME account was refused");
    }
    let contact: Vec<String> = options
        .email
        .iter()
        .map(|e| format!("mailto:{e}"))
        .collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            options.directory.clone(),
            None,
        )
        .await
        .context("cannot create an ACME account")?;
    // The account's private key: this user only.
    let text = serde_json::to_string(&(&options.directory, &credentials))?;
    write_private(&saved, text.as_bytes())?;
    Ok(account)
}

async fn obtain(
    options: &AcmeOptions,
    files: &TlsFiles,
    data_dir: &Path,
    challenges: &Challenges,
) -> anyhow::Result<()> {
    let account = account(options, data_dir).await?;
    let identifiers = [Identifier::Dns(options.domain.clone())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("the CA refused the order")?;
    let mut open = OpenChallenges {
        challenges,
        tokens: Vec::new(),
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.context("cannot read an authorization")?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => bail!("authorization is {other:?}"),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .context("the CA offers no HTTP-01 challenge")?;
        open.open(
            challenge.token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        challenge
            .set_ready()
            .await
            .context("cannot start the challenge")?;
    }
    let retries = RetryPolicy::default().timeout(Duration::from_secs(120));
    let status = order.poll_ready(&retries).await;
    drop(open);
    let status = status.context("the CA did not validate the challenge")?;
    if status != OrderStatus::Ready {
        bail!(
            "the order is {status:?} (the CA could not fetch /.well-known/acme-challenge/ from port 80 of {})",
            options.domain
        );
    }
    let key = order
        .finalize()
        .await
        .context("cannot finalize the order")?;
    let cert = order
        .poll_certificate(&retries)
        .await
        .context("the CA did not issue the certificate")?;
    write_files(files, &cert, &key)?;
    std::fs::write(issued_for(files), origin(options))?;
    match std::fs::remove_file(placeholder_marker(files)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("cannot remove the stand-in marker"),
    }
}
