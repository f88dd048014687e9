//! Long-term credential checks (RFC 8489 §9.2.4) and the rate limit on
//! unauthenticated requests.

use super::*;

impl TurnServer {
    /// Counts an unauthenticated request against the client IP's budget.
    pub(super) fn allow_unauthenticated(&mut self, now: Instant, ip: IpAddr) -> bool {
        let rate = self.config.unauthenticated_rate;
        let burst = self.config.unauthenticated_burst;
        if self.limits.len() > 100_000 {
            // Under a spray from many addresses keep memory bounded.
            self.limits.clear();
        }
        let b = self.limits.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens =
            (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            self.metrics.rate_limited += 1;
            false
        }
    }

    /// RFC 8489 §9.2.4, for long-term credentials.
    pub(super) fn authenticate(&mut self, now: Instant, tuple: FiveTuple, msg: &Message) -> Auth {
        let unix = self.unix(now);
        if !msg.has_attribute(MessageIntegrity::TYPE)
            && !msg.has_attribute(MessageIntegritySha256::TYPE)
        {
            // The normal first request of every client: answer with a challenge, within limits.
            if !self.allow_unauthenticated(now, tuple.client.ip()) {
                return Auth::Silence;
            }
            return Auth::Reject(401);
        }
        let (Ok(username), Ok(realm), Ok(nonce)) = (
            msg.attribute::<Username>(),
            msg.attribute::<Realm>(),
            msg.attribute::<Nonce>(),
        ) else {
            return Auth::Reject(400);
        };
        if let Err(e) = self
            .config
            .nonce
            .check(nonce.nonce(), tuple.client.ip(), unix)
        {
            return Auth::Reject(match e {
                NonceError::Stale => 438,
                NonceError::Invalid => 401,
            });
        }
        let username = username.username().to_owned();
        let reject = |server: &mut Self| {
            server.metrics.auth_failures += 1;
            if server.allow_unauthenticated(now, tuple.client.ip()) {
                Auth::Reject(401)
            } else {
                Auth::Silence
            }
        };
        if realm.realm() != self.config.credentials.realm() {
            return reject(self);
        }
        // An allocation's own key first: refreshes and permissions cost no key derivation.
        if let Some(a) = self.allocations.get(&tuple)
            && a.username == username
            && msg.validate_integrity_with_key(&a.key).is_ok()
        {
            let key = a.key.clone();
            return Auth::Ok { username, key };
        }
        let keys = match self.config.credentials.keys_for(&username, unix) {
            Ok(keys) => keys,
            Err(CredentialError::Unknown | CredentialError::Expired(_)) => return reject(self),
        };
        match keys
            .into_iter()
            .find(|k| msg.validate_integrity_with_key(k).is_ok())
        {
            Some(key) => Auth::Ok { username, key },
            None => reject(self),
        }
    }

    /// A 401 or 438 with a fresh nonce and the realm; a 400 for a malformed request.
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        tuple: FiveTuple,
        msg: &Message,
        code: u16,
    ) {
        if code == 400 {
            self.error(out, tuple, msg, 400, None, |_, _| Ok(()));
            return;
        }
        let nonce = self.config.nonce.mint(tuple.client.ip(), self.unix(now));
        let realm = self.config.credentials.realm().to_owned();
        self.error(out, tuple, msg, code, None, |w, _| {
            w.add_attribute(&Realm::new(&realm)?)?;
            w.add_attribute(&Nonce::new(&nonce)?)
        });
    }
}
