//! Login attempts per client address and per login: a few a minute, so a
//! password cannot be guessed by trying.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parley_signal::TokenBucket;

/// Attempts per minute, per address and per login.
const PER_MINUTE: f64 = 10.0;
/// Attempts allowed at once.
const BURST: f64 = 10.0;
/// Buckets kept before old ones are dropped.
const MAX_KEYS: usize = 10_000;

/// See the module documentation.
#[derive(Default)]
pub struct LoginLimiter {
    buckets: Mutex<HashMap<String, (TokenBucket, Instant)>>,
}

impl LoginLimiter {
    /// Takes one attempt for `ip` and `login`; `Err` carries how long to wait.
    pub fn attempt(&self, ip: IpAddr, login: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > MAX_KEYS {
            buckets.retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(120));
        }
        let keys = [
            format!("ip:{}", ip.to_canonical()),
            format!("login:{}", login.to_lowercase()),
        ];
        let mut allowed = true;
        for key in &keys {
            let (bucket, last) = buckets
                .entry(key.clone())
                .or_insert_with(|| (TokenBucket::new(now, PER_MINUTE / 60.0, BURST), now));
            *last = now;
            allowed &= bucket.try_take(now);
        }
        if allowed {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(60.0 / PER_MINUTE))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_guesses_is_stopped() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert!(limiter.attempt(ip, "ada@example.org").is_ok());
        }
        assert!(limiter.attempt(ip, "ada@example.org").is_err());
        // Another address guessing the same login is stopped too.
        assert!(
            limiter
                .attempt("192.0.2.2".parse().unwrap(), "ADA@example.org")
                .is_err()
        );
        // Another login from another address is not.
        assert!(
            limiter
                .attempt("192.0.2.3".parse().unwrap(), "grace@example.org")
                .is_ok()
        );
    }
}
