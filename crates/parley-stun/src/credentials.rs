//! Long-term credentials (RFC 8489 §9.2): static users, and the TURN REST API
//! time-limited credentials (`username = expiry[:user]`,
//! `password = base64(HMAC-SHA1(secret, username))`) that other servers mint
//! with a shared secret, with several secrets at once for rotation.

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use stun_types::message::{IntegrityAlgorithm, IntegrityKey, LongTermKeyCredentials};

type HmacSha1 = Hmac<Sha1>;

/// Why a username cannot authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Neither a static user nor a REST username for any configured secret.
    #[error("unknown user")]
    Unknown,
    /// A REST username whose expiry has passed.
    #[error("credentials expired at {0}")]
    Expired(u64),
}

/// Everything that can authenticate to this TURN server.
#[derive(Clone, Default)]
pub struct Credentials {
    realm: String,
    /// Username → key (MD5 of `username:realm:password`), computed once.
    users: HashMap<String, IntegrityKey>,
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys or secrets.
        f.debug_struct("Credentials")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Credentials {
    /// Credentials for `realm` with no users and no secrets (nobody can allocate).
    pub fn new(realm: impl Into<String>) -> Self {
        Credentials {
            realm: realm.into(),
            ..Default::default()
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Adds a static user.
    pub fn add_user(&mut self, username: &str, password: &str) {
        let key = long_term_key(username, &self.realm, password);
        self.users.insert(username.to_owned(), key);
    }

    /// Adds a REST API shared secret. Several may be active for rotation;
    /// the first one mints credentials.
    pub fn add_secret(&mut self, secret: &[u8]) {
        self.secrets.push(secret.to_vec());
    }

    /// Whether anyone at all can authenticate.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.secrets.is_empty()
    }

    /// The keys that may have signed a request from `username` at `unix_now`:
    /// the static user's key and one per REST secret. The caller tries each.
    pub fn keys_for(
        &self,
        username: &str,
        unix_now: u64,
    ) -> Result<Vec<IntegrityKey>, CredentialError> {
        let mut keys = Vec::new();
        if let Some(key) = self.users.get(username) {
            keys.push(key.clone());
        }
        if !self.secrets.is_empty()
            && let Some(expiry) = rest_expiry(username)
        {
            if expiry < unix_now {
                if keys.is_empty() {
                    return Err(CredentialError::Expired(expiry));
                }
            } else {
                for secret in &self.secrets {
                    let password = rest_password(secret, username);
                    keys.push(long_term_key(username, &self.realm, &password));
                }
            }
        }
        if keys.is_empty() {
            Err(CredentialError::Unknown)
        } else {
            Ok(keys)
        }
    }

    /// Whether `username` is a REST username that has expired at `unix_now`
    /// (checked again on every Refresh).
    pub fn is_expired(&self, username: &str, unix_now: u64) -> bool {
        !self.users.contains_key(username)
            && rest_expiry(username).is_some_and(|expiry| expiry < unix_now)
    }

    /// Mints a REST credential valid for `ttl_secs`, named after `user`, with
    /// the first secret; `None` without secrets.
    pub fn mint(&self, user: &str, unix_now: u64, ttl_secs: u64) -> Option<(String, String)> {
        let secret = self.secrets.first()?;
        Some(mint_rest_credential(secret, user, unix_now + ttl_secs))
    }
}

/// A REST API credential expiring at `expiry` (unix seconds) for `user`.
pub fn mint_rest_credential(secret: &[u8], user: &str, expiry: u64) -> (String, String) {
    let username = if user.is_empty() {
        expiry.to_string()
    } else {
        format!("{expiry}:{user}")
    };
    let password = rest_password(secret, &username);
    (username, password)
}

/// The expiry of a REST username (`expiry` or `expiry:user`).
fn rest_expiry(username: &str) -> Option<u64> {
    let stamp = username.split(':').next()?;
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stamp.parse().ok()
}

fn rest_password(secret: &[u8], username: &str) -> String {
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn long_term_key(username: &str, realm: &str, password: &str) -> IntegrityKey {
    LongTermKeyCredentials::new(username.to_owned(), password.to_owned(), realm.to_owned())
        .make_key(IntegrityAlgorithm::Sha1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_follow_the_turn_rest_api() {
        // The shape coturn's --use-auth-secret and Synapse's turn_shared_secret produce.
        let (username, password) = mint_rest_credential(b"north", "alice", 1_700_000_000);
        assert_eq!(username, "1700000000:alice");
        let mut mac = HmacSha1::new_from_slice(b"north").unwrap();
        mac.update(username.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(password, expected);
        assert_eq!(mint_rest_credential(b"north", "", 5).0, "5");
    }

    #[test]
    fn any_configured_secret_is_accepted_until_expiry() {
        let mut creds = Credentials::new("example.org");
        creds.add_secret(b"new");
        creds.add_secret(b"old");
        let keys = creds.keys_for("2000:bob", 1999).unwrap();
        assert_eq!(keys.len(), 2, "one candidate key per secret");
        assert_eq!(
            creds.keys_for("2000:bob", 2001),
            Err(CredentialError::Expired(2000))
        );
        assert!(creds.is_expired("2000:bob", 2001));
        assert!(!creds.is_expired("2000:bob", 1999));
        assert_eq!(creds.keys_for("bob", 0), Err(CredentialError::Unknown));
        assert_eq!(creds.keys_for(":bob", 0), Err(CredentialError::Unknown));
    }

    #[test]
    fn static_users_and_rest_users_coexist() {
        let mut creds = Credentials::new("example.org");
        creds.add_user("carol", "pw");
        creds.add_secret(b"s");
        assert_eq!(creds.keys_for("carol", 0).unwrap().len(), 1);
        assert_eq!(creds.keys_for("99:carol", 0).unwrap().len(), 1);
        assert!(!creds.is_expired("carol", u64::MAX));
        let minted = creds.mint("dave", 100, 60).unwrap();
        assert_eq!(minted.0, "160:dave");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut creds = Credentials::new("r");
        creds.add_secret(b"very-secret");
        creds.add_user("u", "hunter2");
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
