//! The authenticated requests: Allocate, Refresh, CreatePermission and
//! ChannelBind (RFC 8656 §7–9, §11).

use super::*;

impl TurnServer {
    /// The allocation of `tuple`, if there is one and `username` made it:
    /// 437 (no allocation) or 441 (someone else's) otherwise.
    fn own_allocation(&self, tuple: &FiveTuple, username: &str) -> Result<&Allocation, u16> {
        let a = self.allocations.get(tuple).ok_or(437u16)?;
        if a.username != username {
            return Err(441);
        }
        Ok(a)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: String,
        key: IntegrityKey,
        ports: &mut dyn RelayPorts,
        out: &mut Outbox,
    ) {
        let key_ref = Some(&key);
        if let Some(a) = self.allocations.get(&tuple) {
            if a.transaction == msg.transaction_id() {
                // A retransmission of the request that made it: the same answer.
                let (relay, lifetime) = (a.relay, a.expires.saturating_duration_since(now));
                self.respond(out, tuple, msg, key_ref, |w, tid| {
                    w.add_attribute(&XorRelayedAddress::new(relay, tid))?;
                    w.add_attribute(&Lifetime(lifetime.as_secs() as u32))?;
                    w.add_attribute(&XorMappedAddress::new(tuple.client, tid))
                });
            } else {
                self.error(out, tuple, msg, 437, key_ref, |_, _| Ok(()));
            }
            return;
        }
        match msg.attribute::<RequestedTransport>() {
            Ok(RequestedTransport(UDP)) => {}
            Ok(_) => return self.error(out, tuple, msg, 442, key_ref, |_, _| Ok(())),
            Err(_) => return self.error(out, tuple, msg, 400, key_ref, |_, _| Ok(())),
        }
        let requested = msg.attribute::<RequestedAddressFamily>().ok();
        let additional = msg.attribute::<AdditionalAddressFamily>().ok();
        let even = msg.attribute::<EvenPort>().ok();
        let malformed = (requested.is_some() && additional.is_some())
            || additional.is_some_and(|a| a.0 != Family::V6)
            || (even.is_some() && msg.has_attribute(RESERVATION_TOKEN))
            || (msg.has_attribute(RequestedAddressFamily::TYPE_) && requested.is_none());
        if malformed {
            return self.error(out, tuple, msg, 400, key_ref, |_, _| Ok(()));
        }
        let family = requested.map_or(Family::V4, |r| r.0);
        let Some(relay_ip) = (match family {
            Family::V4 => self.config.relay_v4,
            Family::V6 => self.config.relay_v6,
        }) else {
            return self.error(out, tuple, msg, 440, key_ref, |_, _| Ok(()));
        };
        if let Err(code) = self
            .quotas
            .take(&username, self.config.max_allocations_per_user)
        {
            self.metrics.quota_refusals += 1;
            tracing::debug!(user = %username, code, client = %tuple.client, "allocation refused: quota reached");
            return self.error(out, tuple, msg, code, key_ref, |_, _| Ok(()));
        }
        let dont_fragment = msg.has_attribute(DontFragment::TYPE_);
        let Some(relay) = self.open_relay(relay_ip, even.is_some(), dont_fragment, ports) else {
            self.quotas.give_back(&username);
            self.metrics.quota_refusals += 1;
            return self.error(out, tuple, msg, 508, key_ref, |_, _| Ok(()));
        };
        let lifetime = self.lifetime(msg);
        let budget = self.config.bandwidth.map(|rate| ByteBudget::new(rate, now));
        let allocation = Allocation::new(
            relay,
            username,
            key.clone(),
            msg.transaction_id(),
            now + lifetime,
            budget,
        );
        tracing::debug!(%relay, client = %tuple.client, user = %allocation.username, "allocation created");
        self.allocations.insert(tuple, allocation);
        self.by_relay.insert(relay, tuple);
        self.metrics.allocations_created += 1;
        // Dual allocations: Parley relays one family per allocation, and says
        // so for the additional one (RFC 8656 §7.2).
        let v6_refused = additional.map(|_| AddressErrorCode {
            family: Family::V6,
            code: 440,
            reason: "Address Family not Supported".into(),
        });
        self.respond(out, tuple, msg, Some(&key), |w, tid| {
            w.add_attribute(&XorRelayedAddress::new(relay, tid))?;
            if let Some(e) = &v6_refused {
                w.add_attribute(e)?;
            }
            w.add_attribute(&Lifetime(lifetime.as_secs() as u32))?;
            w.add_attribute(&XorMappedAddress::new(tuple.client, tid))
        });
    }

    /// RFC 8656 §7.2: the desired lifetime is the requested one capped at the
    /// maximum, but never below the default.
    pub(super) fn lifetime(&self, msg: &Message) -> Duration {
        match msg.attribute::<Lifetime>() {
            Ok(Lifetime(secs)) => Duration::from_secs(u64::from(secs))
                .min(self.config.max_lifetime)
                .max(self.config.default_lifetime),
            Err(_) => self.config.default_lifetime,
        }
    }

    pub(super) fn open_relay(
        &mut self,
        ip: IpAddr,
        even: bool,
        dont_fragment: bool,
        ports: &mut dyn RelayPorts,
    ) -> Option<SocketAddr> {
        let (lo, hi) = (
            *self.config.relay_ports.start(),
            *self.config.relay_ports.end(),
        );
        let span = u64::from(hi - lo) + 1;
        for _ in 0..32 {
            // xorshift64*: fast, and good enough to scatter ports (RFC 8656
            // recommends random relay ports).
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let mut port = lo + (r % span) as u16;
            if even && port % 2 == 1 {
                port = if port > lo { port - 1 } else { port + 1 };
                if port > hi {
                    continue;
                }
            }
            let relay = SocketAddr::new(ip, port);
            if self.by_relay.contains_key(&relay) {
                continue;
            }
            match ports.open(relay, dont_fragment) {
                Ok(()) => return Some(relay),
                Err(e) => tracing::trace!(%relay, "relay port unavailable: {e}"),
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        ports: &mut dyn RelayPorts,
        out: &mut Outbox,
    ) {
        let a = match self.own_allocation(&tuple, username) {
            Ok(a) => a,
            Err(code) => return self.error(out, tuple, msg, code, Some(key), |_, _| Ok(())),
        };
        if self.config.credentials.is_expired(username, self.unix(now)) {
            self.metrics.auth_failures += 1;
            return self.challenge(now, out, tuple, msg, 401);
        }
        if let Ok(RequestedAddressFamily(family)) = msg.attribute::<RequestedAddressFamily>()
            && family != Family::of(a.relay.ip())
        {
            return self.error(out, tuple, msg, 443, Some(key), |_, _| Ok(()));
        }
        let lifetime = match msg.attribute::<Lifetime>() {
            Ok(Lifetime(0)) => Duration::ZERO,
            _ => self.lifetime(msg),
        };
        if lifetime.is_zero() {
            self.remove(&tuple, ports);
        } else if let Some(a) = self.allocations.get_mut(&tuple) {
            a.expires = now + lifetime;
        }
        self.respond(out, tuple, msg, Some(key), |w, _| {
            w.add_attribute(&Lifetime(lifetime.as_secs() as u32))
        });
    }

    pub(super) fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        out: &mut Outbox,
    ) {
        let a = match self.own_allocation(&tuple, username) {
            Ok(a) => a,
            Err(code) => return self.error(out, tuple, msg, code, Some(key), |_, _| Ok(())),
        };
        let relay_family = Family::of(a.relay.ip());
        let tid = msg.transaction_id();
        let mut peers = Vec::new();
        for (_, raw) in msg.iter_attributes() {
            if raw.get_type() != XorPeerAddress::TYPE_ {
                continue;
            }
            match peer_from_raw(&raw, tid) {
                Some(peer) => peers.push(peer),
                None => return self.error(out, tuple, msg, 400, Some(key), |_, _| Ok(())),
            }
        }
        if peers.is_empty() {
            return self.error(out, tuple, msg, 400, Some(key), |_, _| Ok(()));
        }
        // The policy before the family: a forbidden address is refused as such
        // (403) in whatever form it is written.
        for peer in &peers {
            if let Err(reason) = self.config.policy.check_permission(*peer) {
                self.metrics.denied_peers += 1;
                tracing::debug!(peer = %peer.ip(), client = %tuple.client, "permission refused: {reason}");
                return self.error(out, tuple, msg, 403, Some(key), |_, _| Ok(()));
            }
        }
        if peers.iter().any(|p| Family::of(p.ip()) != relay_family) {
            return self.error(out, tuple, msg, 443, Some(key), |_, _| Ok(()));
        }
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        for peer in &peers {
            if !a.permit(peer.ip(), now) {
                return self.error(out, tuple, msg, 508, Some(key), |_, _| Ok(()));
            }
        }
        self.respond(out, tuple, msg, Some(key), |_, _| Ok(()));
    }

    pub(super) fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        out: &mut Outbox,
    ) {
        let a = match self.own_allocation(&tuple, username) {
            Ok(a) => a,
            Err(code) => return self.error(out, tuple, msg, code, Some(key), |_, _| Ok(())),
        };
        let relay_family = Family::of(a.relay.ip());
        let number = msg
            .attribute::<ChannelNumber>()
            .ok()
            .filter(|c| c.is_valid());
        let peer = msg
            .raw_attribute(XorPeerAddress::TYPE_)
            .and_then(|raw| peer_from_raw(&raw, msg.transaction_id()));
        let (Some(ChannelNumber(number)), Some(peer)) = (number, peer) else {
            tracing::debug!(client = %tuple.client, ?number, ?peer, "ChannelBind without a valid channel number or peer");
            return self.error(out, tuple, msg, 400, Some(key), |_, _| Ok(()));
        };
        if let Err(reason) = self.config.policy.check(peer) {
            self.metrics.denied_peers += 1;
            tracing::debug!(%peer, client = %tuple.client, "channel refused: {reason}");
            return self.error(out, tuple, msg, 403, Some(key), |_, _| Ok(()));
        }
        if Family::of(peer.ip()) != relay_family {
            return self.error(out, tuple, msg, 443, Some(key), |_, _| Ok(()));
        }
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        match a.bind(number, peer, now) {
            Ok(()) => {
                a.permit(peer.ip(), now);
                self.respond(out, tuple, msg, Some(key), |_, _| Ok(()));
            }
            Err(BindError::InUse) => {
                tracing::debug!(client = %tuple.client, number, %peer, "ChannelBind clashes with a binding");
                self.error(out, tuple, msg, 400, Some(key), |_, _| Ok(()))
            }
            Err(BindError::Full) => self.error(out, tuple, msg, 508, Some(key), |_, _| Ok(())),
        }
    }
}
