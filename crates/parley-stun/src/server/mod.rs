//! The TURN server state machine (RFC 8656, with STUN Binding from RFC 8489).
//!
//! Sans-IO: the driver feeds what arrives from clients
//! ([`TurnServer::handle_client`]) and from peers on relay sockets
//! ([`TurnServer::handle_peer`]), with the time, and sends what lands in the
//! [`Outbox`]. Relay sockets are opened and closed through the
//! [`RelayPorts`] the driver passes in, so a port that cannot be bound is
//! never promised to a client.

mod auth;
mod relay;
mod requests;
mod respond;

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

impl ServerConfig {
    /// `policy` with this server's relay sockets among its own addresses: a
    /// peer on the relay IPs in the relay port range is another allocation
    /// of this server (or of a worker sharing its addresses), never a peer.
    fn with_own_relays(&self, mut policy: PeerPolicy) -> PeerPolicy {
        for ip in [self.relay_v4, self.relay_v6].into_iter().flatten() {
            if !policy.own.ips.contains(&ip) {
                policy.own.ips.push(ip);
            }
        }
        if !policy.own.ports.contains(&self.relay_ports) {
            policy.own.ports.push(self.relay_ports.clone());
        }
        policy
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
    pub fn new(mut config: ServerConfig, quotas: Arc<Quotas>, now: Instant, unix_now: u64) -> Self {
        let rng = config.seed | 1;
        config.policy = config.with_own_relays(config.policy.clone());
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

    /// Updates the peer policy (e.g. when the SFU's addresses change). The
    /// server's relay addresses and ports are added to its own addresses.
    pub fn set_policy(&mut self, policy: PeerPolicy) {
        self.config.policy = self.config.with_own_relays(policy);
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
