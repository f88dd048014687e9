//! Stateless, expiring nonces (RFC 8489 §9.2): the server keeps nothing per
//! client. A nonce carries its expiry and a MAC over the expiry and the
//! client's IP address, so it cannot be forged, replayed after expiry, or
//! used from another address.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Why a nonce is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not one of ours, or for another client address.
    Invalid,
    /// Ours, but past its expiry: the client should retry with a fresh one (438).
    Stale,
}

/// Mints and checks nonces with a secret key.
#[derive(Clone)]
pub struct NonceKey {
    key: [u8; 32],
    lifetime_secs: u64,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key; nonces live `lifetime_secs`.
    pub fn new(key: [u8; 32], lifetime_secs: u64) -> Self {
        NonceKey { key, lifetime_secs }
    }

    fn mac(&self, expiry: u64, client: IpAddr) -> [u8; 8] {
        let mut mac = HmacSha1::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(&expiry.to_be_bytes());
        match client.to_canonical() {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let out = mac.finalize().into_bytes();
        let mut tag = [0; 8];
        tag.copy_from_slice(&out[..8]);
        tag
    }

    /// A fresh nonce for `client`: 32 hex digits (expiry, then MAC).
    pub fn mint(&self, client: IpAddr, unix_now: u64) -> String {
        let expiry = unix_now + self.lifetime_secs;
        let mut s = format!("{expiry:016x}");
        for b in self.mac(expiry, client) {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Checks a nonce the client sent back.
    pub fn check(&self, nonce: &str, client: IpAddr, unix_now: u64) -> Result<(), NonceError> {
        if nonce.len() != 32 || !nonce.is_ascii() {
            return Err(NonceError::Invalid);
        }
        let expiry = u64::from_str_radix(&nonce[..16], 16).map_err(|_| NonceError::Invalid)?;
        let mut tag = [0u8; 8];
        for (i, t) in tag.iter_mut().enumerate() {
            *t = u8::from_str_radix(&nonce[16 + 2 * i..18 + 2 * i], 16)
                .map_err(|_| NonceError::Invalid)?;
        }
        let expected = self.mac(expiry, client);
        // Constant time: the comparison must not leak how many bytes matched.
        let diff = tag
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(NonceError::Invalid);
        }
        if expiry < unix_now {
            return Err(NonceError::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NonceKey {
        NonceKey::new([7; 32], 600)
    }

    #[test]
    fn a_nonce_is_good_for_its_client_until_it_expires() {
        let client: IpAddr = "198.51.100.4".parse().unwrap();
        let nonce = key().mint(client, 1000);
        assert_eq!(nonce.len(), 32);
        assert_eq!(key().check(&nonce, client, 1000), Ok(()));
        assert_eq!(key().check(&nonce, client, 1600), Ok(()));
        assert_eq!(key().check(&nonce, client, 1601), Err(NonceError::Stale));
        assert_eq!(
            key().check(&nonce, "198.51.100.5".parse().unwrap(), 1000),
            Err(NonceError::Invalid)
        );
    }

    #[test]
    fn forged_and_garbled_nonces_are_invalid() {
        let client: IpAddr = "2001:db8::1".parse().unwrap();
        let nonce = key().mint(client, 1000);
        let other = NonceKey::new([8; 32], 600);
        assert_eq!(other.check(&nonce, client, 1000), Err(NonceError::Invalid));
        // Pushing the expiry forward breaks the MAC.
        let extended = format!("{:016x}{}", 999_999u64, &nonce[16..]);
        assert_eq!(
            key().check(&extended, client, 1000),
            Err(NonceError::Invalid)
        );
        for bad in ["", "xyz", &"z".repeat(32), "é".repeat(16).as_str()] {
            assert_eq!(
                key().check(bad, client, 1000),
                Err(NonceError::Invalid),
                "{bad}"
            );
        }
    }
}
