//! The TURN server state machine (RFC 8656, with STUN Binding from RFC 8489).
//!
//! Sans-IO: the driver feeds what arrives from clients
//! ([`TurnServer::handle_client`]) and from peers on relay sockets
//! ([`TurnServer::handle_peer`]), with the time, and sends what lands in the
//! [`Outbox`]. Relay sockets are opened and closed through the
//! [`RelayPorts`] the driver passes in, so a port that cannot be bound is
//! never promised to a client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stun_types::attribute::{
    Attribute, AttributeStaticType, AttributeType, ErrorCode, Fingerprint, MessageIntegrity,
    MessageIntegritySha256, Nonce, RawAttribute, Realm, Software, UnknownAttributes, Username,
    XorMappedAddress,
};
use stun_types::message::{
    IntegrityAlgorithm, IntegrityKey, Message, MessageClass, MessageWrite, MessageWriteExt,
    MessageWriteMutSlice, Method, StunWriteError, TransactionId,
};

use crate::allocation::{Allocation, BindError, ByteBudget, FiveTuple};
use crate::attributes::{
    AdditionalAddressFamily, AddressErrorCode, ChannelNumber, Data, DontFragment, EvenPort, Family,
    KNOWN, Lifetime, RESERVATION_TOKEN, RequestedAddressFamily, RequestedTransport, UDP,
    XorPeerAddress, XorRelayedAddress,
};
use crate::channel_data::{self, ChannelData, Kind};
use crate::credentials::{CredentialError, Credentials};
use crate::metrics::Metrics;
use crate::nonce::{NonceError, NonceKey};
use crate::outbox::{Destination, Outbox};
use crate::policy::PeerPolicy;

/// STUN Binding (RFC 8489 §18).
pub const BINDING: Method = Method::new(0x0001);
/// Allocate (RFC 8656 §7).
pub const ALLOCATE: Method = Method::new(0x0003);
/// Refresh (RFC 8656 §8).
pub const REFRESH: Method = Method::new(0x0004);
/// Send indication (RFC 8656 §10.1).
pub const SEND: Method = Method::new(0x0006);
/// Data indication (RFC 8656 §10.2).
pub const DATA: Method = Method::new(0x0007);
/// CreatePermission (RFC 8656 §9).
pub const CREATE_PERMISSION: Method = Method::new(0x0008);
/// ChannelBind (RFC 8656 §11).
pub const CHANNEL_BIND: Method = Method::new(0x0009);

/// The largest message the server writes.
const MAX_MESSAGE: usize = 1500;
/// The largest relayed payload accepted (a UDP datagram's worth).
const MAX_PAYLOAD: usize = 65_507;

/// STUN attributes (comprehension-required range) a request may carry besides TURN's.
const STUN_KNOWN: &[AttributeType] = &[
    AttributeType::new(0x0001), // MAPPED-ADDRESS
    AttributeType::new(0x0006), // USERNAME
    AttributeType::new(0x0008), // MESSAGE-INTEGRITY
    AttributeType::new(0x0009), // ERROR-CODE
    AttributeType::new(0x000A), // UNKNOWN-ATTRIBUTES
    AttributeType::new(0x0014), // REALM
    AttributeType::new(0x0015), // NONCE
    AttributeType::new(0x001C), // MESSAGE-INTEGRITY-SHA256
    AttributeType::new(0x001D), // PASSWORD-ALGORITHM
    AttributeType::new(0x001E), // USERHASH
    AttributeType::new(0x0020), // XOR-MAPPED-ADDRESS
    AttributeType::new(0x0024), // PRIORITY (ICE checks sent to a STUN server)
    AttributeType::new(0x0025), // USE-CANDIDATE
];

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Who may allocate.
    pub credentials: Credentials,
    /// Signs nonces; share it between workers so any worker accepts any nonce.
    pub nonce: NonceKey,
    /// Which peers may be relayed to.
    pub policy: PeerPolicy,
    /// Address relay sockets bind to (and that clients are told), IPv4.
    pub relay_v4: Option<IpAddr>,
    /// Address relay sockets bind to (and that clients are told), IPv6.
    pub relay_v6: Option<IpAddr>,
    /// Ports relay sockets may use.
    pub relay_ports: RangeInclusive<u16>,
    /// Most allocations one username may hold at once.
    pub max_allocations_per_user: usize,
    /// Bytes per second one allocation may relay (both directions), if limited.
    pub bandwidth: Option<u64>,
    /// SOFTWARE attribute value; none is sent unless set.
    pub software: Option<String>,
    /// Allocation lifetime without a LIFETIME request (RFC 8656: 600 s).
    pub default_lifetime: Duration,
    /// The longest lifetime granted (RFC 8656: 3600 s).
    pub max_lifetime: Duration,
    /// Unauthenticated requests (Binding, and requests answered 401) per
    /// second per client IP, on average.
    pub unauthenticated_rate: f64,
    /// Burst of unauthenticated requests per client IP.
    pub unauthenticated_burst: f64,
    /// Seed for relay port choice.
    pub seed: u64,
}

impl ServerConfig {
    /// Defaults for `credentials` relaying from `relay_v4`.
    pub fn new(credentials: Credentials, nonce: NonceKey, relay_v4: IpAddr) -> Self {
        ServerConfig {
            credentials,
            nonce,
            policy: PeerPolicy::default(),
            relay_v4: Some(relay_v4).filter(IpAddr::is_ipv4),
            relay_v6: Some(relay_v4).filter(IpAddr::is_ipv6),
            relay_ports: 49152..=65535,
            max_allocations_per_user: 20,
            bandwidth: None,
            software: None,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            // Generous enough for an office of hundreds behind one NAT
            // joining at once; a flood from one address is still cut off.
            unauthenticated_rate: 100.0,
            unauthenticated_burst: 200.0,
            seed: 0x5eed,
        }
    }
}

/// Limits shared by every worker of one TURN server.
#[derive(Debug)]
pub struct Quotas {
    max_total: usize,
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, usize>>,
}

impl Quotas {
    /// At most `max_total` allocations at once.
    pub fn new(max_total: usize) -> Arc<Self> {
        Arc::new(Quotas {
            max_total,
            total: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
        })
    }

    /// Live allocations across all workers.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    fn take(&self, user: &str, per_user: usize) -> Result<(), u16> {
        let Ok(mut users) = self.per_user.lock() else {
            return Err(508);
        };
        let held = users.get(user).copied().unwrap_or(0);
        if held >= per_user {
            return Err(486);
        }
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(486);
        }
        users.insert(user.to_owned(), held + 1);
        Ok(())
    }

    fn give_back(&self, user: &str) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut users) = self.per_user.lock()
            && let Some(n) = users.get_mut(user)
        {
            *n -= 1;
            if *n == 0 {
                users.remove(user);
            }
        }
    }
}

/// Opens and closes relay sockets for the server core.
pub trait RelayPorts {
    /// Binds a UDP socket at `relay`, setting the DF bit on what it sends
    /// when `dont_fragment` (RFC 8656 §7.2). An error (port in use) makes the
    /// server try another port.
    fn open(&mut self, relay: SocketAddr, dont_fragment: bool) -> std::io::Result<()>;
    /// Closes the socket at `relay`.
    fn close(&mut self, relay: SocketAddr);
}

/// A token bucket for unauthenticated requests from one IP.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The outcome of authenticating a request.
enum Auth {
    Ok { username: String, key: IntegrityKey },
    Reject(u16),
    Silence,
}

/// The TURN server core. See the module documentation.
#[derive(Debug)]
pub struct TurnServer {
    config: ServerConfig,
    quotas: Arc<Quotas>,
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    limits: HashMap<IpAddr, Bucket>,
    metrics: Metrics,
    /// `(instant, unix seconds)` at construction: the unix clock REST
    /// credentials and nonces need, derived from the instants fed in.
    epoch: (Instant, u64),
    rng: u64,
    next_sweep: Instant,
}

impl TurnServer {
    /// A server; `now` and `unix_now` describe the same moment.
    pub fn new(config: ServerConfig, quotas: Arc<Quotas>, now: Instant, unix_now: u64) -> Self {
        let rng = config.seed | 1;
        TurnServer {
            config,
            quotas,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            limits: HashMap::new(),
            metrics: Metrics::default(),
            epoch: (now, unix_now),
            rng,
            next_sweep: now + Duration::from_secs(1),
        }
    }

    /// Counters since start.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// Live allocations on this server.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// The allocation of a client, if any.
    pub fn allocation(&self, tuple: &FiveTuple) -> Option<&Allocation> {
        self.allocations.get(tuple)
    }

    /// Updates the peer policy (e.g. when the SFU's addresses change).
    pub fn set_policy(&mut self, policy: PeerPolicy) {
        self.config.policy = policy;
    }

    fn unix(&self, now: Instant) -> u64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs()
    }

    /// When [`TurnServer::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.allocations.is_empty() || !self.limits.is_empty()).then_some(self.next_sweep)
    }

    /// Expires allocations, permissions and channels.
    pub fn handle_timeout(&mut self, now: Instant, ports: &mut dyn RelayPorts) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + Duration::from_secs(1);
        let expired: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        for tuple in expired {
            self.remove(&tuple, ports);
        }
        for a in self.allocations.values_mut() {
            a.expire(now);
        }
        let rate = self.config.unauthenticated_rate;
        let burst = self.config.unauthenticated_burst;
        self.limits.retain(|_, b| {
            let refilled = b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate;
            refilled < burst
        });
    }

    /// The client's transport connection closed (TCP/TLS): its allocation
    /// ends with it (RFC 8656 §6.2).
    pub fn handle_client_closed(&mut self, tuple: &FiveTuple, ports: &mut dyn RelayPorts) {
        self.remove(tuple, ports);
    }

    fn remove(&mut self, tuple: &FiveTuple, ports: &mut dyn RelayPorts) {
        if let Some(a) = self.allocations.remove(tuple) {
            self.by_relay.remove(&a.relay);
            ports.close(a.relay);
            self.quotas.give_back(&a.username);
            self.metrics.allocations_ended += 1;
            tracing::debug!(relay = %a.relay, client = %tuple.client, "allocation ended");
        }
    }

    /// Something a client sent on `tuple`: a STUN message or ChannelData.
    pub fn handle_client(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        ports: &mut dyn RelayPorts,
        out: &mut Outbox,
    ) {
        match channel_data::kind(data) {
            Kind::ChannelData => self.client_channel_data(now, tuple, data, out),
            Kind::Stun => self.client_stun(now, tuple, data, ports, out),
            Kind::Other => {}
        }
    }

    fn client_channel_data(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        out: &mut Outbox,
    ) {
        let Ok(cd) = ChannelData::parse(data) else {
            return;
        };
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let Some(peer) = a.channel_peer(cd.channel, now) else {
            self.metrics.dropped += 1;
            return;
        };
        if !a.permits(peer.ip(), now) || !a.spend(now, cd.data.len()) {
            self.metrics.dropped += 1;
            return;
        }
        let relay = a.relay;
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += cd.data.len() as u64;
        out.push_parts(Destination::Peer { relay, peer }, &[], cd.data, 0);
    }

    /// A datagram from `peer` arrived on the relay socket at `relay`.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    ) {
        let Some(tuple) = self.by_relay.get(&relay).copied() else {
            return;
        };
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        if !a.permits(peer.ip(), now) || !a.spend(now, data.len()) {
            self.metrics.dropped += 1;
            return;
        }
        self.metrics.packets_to_clients += 1;
        self.metrics.bytes_to_clients += data.len() as u64;
        let to = Destination::Client(tuple);
        if let Some(channel) = a.peer_channel(peer, now) {
            // Streams need ChannelData padded to a multiple of four (RFC 8656 §12.5).
            let pad_to = if tuple.transport.is_stream() {
                (channel_data::HEADER + data.len()).next_multiple_of(4)
            } else {
                0
            };
            out.push_parts(to, &ChannelData::header(channel, data.len()), data, pad_to);
            return;
        }
        let software = self.config.software.clone();
        out.push_with(to, data.len() + 64, |buf| {
            let mut w = Message::builder(
                stun_types::message::MessageType::from_class_method(MessageClass::Indication, DATA),
                TransactionId::generate(),
                MessageWriteMutSlice::new(buf),
            );
            let tid = w.transaction_id();
            let written = (|| -> Result<(), StunWriteError> {
                w.add_attribute(&XorPeerAddress::new(peer, tid))?;
                w.add_attribute(&Data(data))?;
                if let Some(s) = &software {
                    add_software(&mut w, s)?;
                }
                Ok(())
            })();
            if written.is_err() { 0 } else { w.finish() }
        });
    }

    fn client_stun(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        ports: &mut dyn RelayPorts,
        out: &mut Outbox,
    ) {
        // Garbage, truncated messages and bad fingerprints get no answer:
        // answering unauthenticated junk only helps reflection attacks.
        let Ok(msg) = Message::from_bytes(data) else {
            return;
        };
        let class = msg.class();
        let method = msg.method();
        if class == MessageClass::Indication && method == SEND {
            self.send_indication(now, tuple, &msg, out);
            return;
        }
        if class != MessageClass::Request {
            return;
        }
        if method == BINDING {
            if !self.allow_unauthenticated(now, tuple.client.ip()) {
                return;
            }
            self.metrics.bindings += 1;
            self.respond(out, tuple, &msg, None, |w, tid| {
                w.add_attribute(&XorMappedAddress::new(tuple.client, tid))
            });
            return;
        }
        let unknown: Vec<AttributeType> = msg
            .iter_attributes()
            .map(|(_, a)| a.get_type())
            .filter(|t| u16::from(*t) < 0x8000 && !KNOWN.contains(t) && !STUN_KNOWN.contains(t))
            .collect();
        if !unknown.is_empty() {
            self.error(out, tuple, &msg, 420, None, |w, _| {
                w.add_attribute(&UnknownAttributes::new(&unknown))
            });
            return;
        }
        let known_method = [ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND].contains(&method);
        if !known_method {
            self.error(out, tuple, &msg, 400, None, |_, _| Ok(()));
            return;
        }
        let (username, key) = match self.authenticate(now, tuple, &msg) {
            Auth::Ok { username, key } => (username, key),
            Auth::Silence => return,
            Auth::Reject(code) => {
                self.challenge(now, out, tuple, &msg, code);
                return;
            }
        };
        match method {
            ALLOCATE => self.allocate(now, tuple, &msg, username, key, ports, out),
            REFRESH => self.refresh(now, tuple, &msg, &username, &key, ports, out),
            CREATE_PERMISSION => self.create_permission(now, tuple, &msg, &username, &key, out),
            _ => self.channel_bind(now, tuple, &msg, &username, &key, out),
        }
    }

    /// Counts an unauthenticated request against the client IP's budget.
    fn allow_unauthenticated(&mut self, now: Instant, ip: IpAddr) -> bool {
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
    fn authenticate(&mut self, now: Instant, tuple: FiveTuple, msg: &Message) -> Auth {
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
    fn challenge(
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

    #[allow(clippy::too_many_arguments)]
    fn allocate(
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
    fn lifetime(&self, msg: &Message) -> Duration {
        match msg.attribute::<Lifetime>() {
            Ok(Lifetime(secs)) => Duration::from_secs(u64::from(secs))
                .min(self.config.max_lifetime)
                .max(self.config.default_lifetime),
            Err(_) => self.config.default_lifetime,
        }
    }

    fn open_relay(
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
    fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        ports: &mut dyn RelayPorts,
        out: &mut Outbox,
    ) {
        let Some(a) = self.allocations.get(&tuple) else {
            return self.error(out, tuple, msg, 437, Some(key), |_, _| Ok(()));
        };
        if a.username != username {
            return self.error(out, tuple, msg, 441, Some(key), |_, _| Ok(()));
        }
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

    fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        out: &mut Outbox,
    ) {
        let Some(a) = self.allocations.get(&tuple) else {
            return self.error(out, tuple, msg, 437, Some(key), |_, _| Ok(()));
        };
        if a.username != username {
            return self.error(out, tuple, msg, 441, Some(key), |_, _| Ok(()));
        }
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
            if let Err(reason) = self.config.policy.check_ip(peer.ip()) {
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

    fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        username: &str,
        key: &IntegrityKey,
        out: &mut Outbox,
    ) {
        let Some(a) = self.allocations.get(&tuple) else {
            return self.error(out, tuple, msg, 437, Some(key), |_, _| Ok(()));
        };
        if a.username != username {
            return self.error(out, tuple, msg, 441, Some(key), |_, _| Ok(()));
        }
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

    fn send_indication(&mut self, now: Instant, tuple: FiveTuple, msg: &Message, out: &mut Outbox) {
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let peer = msg
            .raw_attribute(XorPeerAddress::TYPE_)
            .and_then(|raw| peer_from_raw(&raw, msg.transaction_id()));
        let data = msg.raw_attribute(Data::TYPE_);
        let (Some(peer), Some(data)) = (peer, data) else {
            self.metrics.dropped += 1;
            return;
        };
        if data.value.len() > MAX_PAYLOAD {
            self.metrics.dropped += 1;
            return;
        }
        if self.config.policy.check(peer).is_err() {
            self.metrics.denied_peers += 1;
            return;
        }
        if !a.permits(peer.ip(), now) || !a.spend(now, data.value.len()) {
            self.metrics.dropped += 1;
            return;
        }
        let relay = a.relay;
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += data.value.len() as u64;
        out.push_parts(Destination::Peer { relay, peer }, &[], &data.value, 0);
    }

    /// A success response, with MESSAGE-INTEGRITY when `key` is given.
    fn respond(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        self.write_response(out, tuple, req, None, key, attrs);
    }

    /// An error response with `code`. MESSAGE-INTEGRITY is added when `key`
    /// is given (the request was authenticated); 400, 401, 420 and 438 never
    /// carry it (RFC 8489 §9.2.4).
    fn error(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        code: u16,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        let key = key.filter(|_| !matches!(code, 400 | 401 | 420 | 438));
        self.write_response(out, tuple, req, Some(code), key, attrs);
    }

    fn write_response(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        code: Option<u16>,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        let software = self.config.software.as_deref();
        let fingerprint = req.has_attribute(Fingerprint::TYPE);
        out.push_with(Destination::Client(tuple), MAX_MESSAGE, |buf| {
            let w = MessageWriteMutSlice::new(buf);
            let mut w = match code {
                Some(_) => Message::builder_error(req, w),
                None => Message::builder_success(req, w),
            };
            let tid = req.transaction_id();
            let written = (|| -> Result<(), StunWriteError> {
                if let Some(code) = code {
                    w.add_attribute(&ErrorCode::builder(code).build()?)?;
                }
                attrs(&mut w, tid)?;
                if let Some(s) = software {
                    add_software(&mut w, s)?;
                }
                if let Some(key) = key {
                    w.add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)?;
                }
                if fingerprint {
                    w.add_fingerprint()?;
                }
                Ok(())
            })();
            match written {
                Ok(()) => w.finish(),
                Err(e) => {
                    tracing::warn!("could not write a STUN response: {e}");
                    0
                }
            }
        });
    }
}

fn add_software(w: &mut MessageWriteMutSlice<'_>, software: &str) -> Result<(), StunWriteError> {
    w.add_attribute(&Software::new(software)?)
}

/// An XOR-PEER-ADDRESS, in canonical form (IPv4-mapped IPv6 as IPv4).
fn peer_from_raw(raw: &RawAttribute<'_>, tid: TransactionId) -> Option<SocketAddr> {
    use stun_types::attribute::AttributeFromRaw;
    let peer = XorPeerAddress::from_raw_ref(raw).ok()?.addr(tid);
    Some(SocketAddr::new(peer.ip().to_canonical(), peer.port()))
}
