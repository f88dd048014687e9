//! A connectivity probe for one STUN or TURN URL, sans-IO: it writes the
//! requests and reads the responses, the driver moves the bytes and keeps
//! time. A TURN probe does what a browser would: Allocate (answering the
//! 401 challenge), CreatePermission for Parley's media address, a Send
//! indication with a probe payload, and a final Refresh with lifetime 0.

use std::net::SocketAddr;

use parley_stun::attributes::{
    Data, Lifetime, RequestedTransport, UDP, XorPeerAddress, XorRelayedAddress,
};
use parley_stun::server::{ALLOCATE, BINDING, CREATE_PERMISSION, REFRESH, SEND};
use parley_stun::stun_types::attribute::{
    AttributeStaticType, ErrorCode, MessageIntegrity, Nonce, Realm, Username, XorMappedAddress,
};
use parley_stun::stun_types::message::{
    IntegrityAlgorithm, IntegrityKey, LongTermKeyCredentials, Message, MessageClass, MessageType,
    MessageWrite, MessageWriteExt, MessageWriteVec, Method, TransactionId,
};

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `binding`, `allocate`, `permission`, `relay` or `release` (and, from
    /// drivers, `connect`).
    pub name: &'static str,
    /// Whether it worked.
    pub ok: bool,
    /// Why it failed, for programs; `None` when it worked.
    pub reason: Option<Reason>,
    /// What happened, for the administrator.
    pub detail: String,
}

/// Why a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer in time.
    Timeout,
    /// The server refused the credentials.
    Auth,
    /// REST credentials are refused because the clocks disagree (found by a driver
    /// that retries with a long-lived credential).
    ClockSkew,
    /// The server answered with an error, or refused the connection.
    Refused,
    /// The TURN server will not relay to Parley's media address.
    PeerPolicy,
    /// The relayed test packet never arrived.
    NotDelivered,
    /// The answer made no sense.
    Protocol,
    /// The name did not resolve or the network is unreachable.
    Unreachable,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
}

impl Reason {
    /// The name in reports and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Auth => "auth",
            Reason::ClockSkew => "clock_skew",
            Reason::Refused => "refused",
            Reason::PeerPolicy => "peer_policy",
            Reason::NotDelivered => "not_delivered",
            Reason::Protocol => "protocol",
            Reason::Unreachable => "unreachable",
            Reason::Tls => "tls",
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this request and wait for its response.
    Request(Vec<u8>),
    /// Send this indication (no response); then report with [`Probe::delivered`]
    /// whether the payload reached the peer.
    Indication(Vec<u8>),
    /// Nothing more.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Binding,
    Challenge,
    Allocate,
    Permission,
    Relay,
    Release,
    Done,
}

/// A probe of one URL.
#[derive(Debug)]
pub struct Probe {
    state: State,
    credentials: Option<(String, String)>,
    peer: SocketAddr,
    payload: Vec<u8>,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<IntegrityKey>,
    tid: TransactionId,
    stale_retries: u8,
    steps: Vec<Step>,
    mapped: Option<SocketAddr>,
    relay: Option<SocketAddr>,
}

fn build(method: Method, class: MessageClass, tid: TransactionId) -> MessageWriteVec {
    Message::builder(
        MessageType::from_class_method(class, method),
        tid,
        MessageWriteVec::new(),
    )
}

fn code_of(msg: &Message) -> Option<(u16, String)> {
    (msg.class() == MessageClass::Error).then(|| {
        msg.attribute::<ErrorCode>()
            .map(|e| (e.code(), e.reason().to_owned()))
            .unwrap_or((0, "error without a code".into()))
    })
}

impl Probe {
    /// A STUN probe: one Binding request.
    pub fn stun() -> Probe {
        Probe::new(
            None,
            "0.0.0.0:9"
                .parse()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9))),
            Vec::new(),
            State::Binding,
        )
    }

    /// A TURN probe with the credentials clients get, relaying `payload` to `peer`.
    pub fn turn(username: &str, credential: &str, peer: SocketAddr, payload: Vec<u8>) -> Probe {
        Probe::new(
            Some((username.to_owned(), credential.to_owned())),
            peer,
            payload,
            State::Challenge,
        )
    }

    fn new(
        credentials: Option<(String, String)>,
        peer: SocketAddr,
        payload: Vec<u8>,
        state: State,
    ) -> Probe {
        Probe {
            state,
            credentials,
            peer,
            payload,
            realm: None,
            nonce: None,
            key: None,
            tid: TransactionId::generate(),
            stale_retries: 0,
            steps: Vec::new(),
            mapped: None,
            relay: None,
        }
    }

    /// The steps so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether every step worked and the probe is over.
    pub fn succeeded(&self) -> bool {
        self.state == State::Done && !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    /// The reflexive address the server saw, after Binding or Allocate.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The relayed address, after Allocate.
    pub fn relay(&self) -> Option<SocketAddr> {
        self.relay
    }

    fn step(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) {
        self.steps.push(Step {
            name,
            ok,
            reason: (!ok).then_some(Reason::Protocol),
            detail: detail.into(),
        });
    }

    fn fail(&mut self, name: &'static str, reason: Reason, detail: impl Into<String>) -> Next {
        self.steps.push(Step {
            name,
            ok: false,
            reason: Some(reason),
            detail: detail.into(),
        });
        self.state = State::Done;
        Next::Done
    }

    /// The first request.
    pub fn start(&mut self) -> Next {
        match self.state {
            State::Binding => Next::Request(self.request(BINDING, &[], false)),
            State::Challenge => {
                let transport = RequestedTransport(UDP);
                Next::Request(self.request(ALLOCATE, &[&transport], false))
            }
            _ => Next::Done,
        }
    }

    fn request(
        &mut self,
        method: Method,
        attrs: &[&dyn parley_stun::stun_types::attribute::AttributeWrite],
        signed: bool,
    ) -> Vec<u8> {
        self.tid = TransactionId::generate();
        let mut w = build(method, MessageClass::Request, self.tid);
        let mut ok = attrs.iter().all(|a| w.add_attribute(*a).is_ok());
        if signed
            && let (Some((user, _)), Some(realm), Some(nonce), Some(key)) =
                (&self.credentials, &self.realm, &self.nonce, &self.key)
        {
            ok &= Username::new(user).is_ok_and(|u| w.add_attribute(&u).is_ok());
            ok &= Realm::new(realm).is_ok_and(|r| w.add_attribute(&r).is_ok());
            ok &= Nonce::new(nonce).is_ok_and(|n| w.add_attribute(&n).is_ok());
            ok &= w
                .add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)
                .is_ok();
        }
        let _ = w.add_fingerprint();
        if ok { w.finish() } else { Vec::new() }
    }

    /// Reading what the driver could not deliver: the current step timed out.
    pub fn timed_out(&mut self, after: &str) -> Next {
        let name = self.current_name();
        self.fail(
            name,
            Reason::Timeout,
            format!(
                "no answer within {after}: nothing listens there, or a firewall drops the packets"
            ),
        )
    }

    fn current_name(&self) -> &'static str {
        match self.state {
            State::Binding => "binding",
            State::Challenge | State::Allocate => "allocate",
            State::Permission => "permission",
            State::Relay => "relay",
            State::Release => "release",
            State::Done => "done",
        }
    }

    /// A response arrived; returns what to do next. Responses to other
    /// transactions are ignored (`Next::Done` is never returned for them).
    pub fn handle(&mut self, bytes: &[u8]) -> Option<Next> {
        let msg = Message::from_bytes(bytes).ok()?;
        if msg.transaction_id() != self.tid || !msg.is_response() {
            return None;
        }
        Some(match self.state {
            State::Binding => match code_of(&msg) {
                None => {
                    self.mapped = msg
                        .attribute::<XorMappedAddress>()
                        .ok()
                        .map(|a| a.addr(msg.transaction_id()));
                    let detail = match self.mapped {
                        Some(a) => format!("the server sees this machine as {a}"),
                        None => "answered without an address".into(),
                    };
                    self.step("binding", self.mapped.is_some(), detail);
                    self.state = State::Done;
                    Next::Done
                }
                Some((code, reason)) => self.fail(
                    "binding",
                    Reason::Refused,
                    format!("refused: {code} {reason}"),
                ),
            },
            State::Challenge => match code_of(&msg) {
                Some((401, _)) => {
                    let (Ok(realm), Ok(nonce)) =
                        (msg.attribute::<Realm>(), msg.attribute::<Nonce>())
                    else {
                        return Some(self.fail(
                            "allocate",
                            Reason::Protocol,
                            "the 401 challenge has no realm or nonce",
                        ));
                    };
                    self.realm = Some(realm.realm().to_owned());
                    self.nonce = Some(nonce.nonce().to_owned());
                    if let Some((user, password)) = &self.credentials {
                        self.key = Some(
                            LongTermKeyCredentials::new(
                                user.clone(),
                                password.clone(),
                                realm.realm().to_owned(),
                            )
                            .make_key(IntegrityAlgorithm::Sha1),
                        );
                    }
                    self.state = State::Allocate;
                    let transport = RequestedTransport(UDP);
                    Next::Request(self.request(ALLOCATE, &[&transport], true))
                }
                None => self.allocated(&msg),
                Some((code, reason)) => self.fail(
                    "allocate",
                    Reason::Refused,
                    format!("refused before authentication: {code} {reason}"),
                ),
            },
            State::Allocate => match code_of(&msg) {
                None => self.allocated(&msg),
                Some((438, _)) if self.stale_retries < 2 => {
                    self.stale_retries += 1;
                    if let Ok(n) = msg.attribute::<Nonce>() {
                        self.nonce = Some(n.nonce().to_owned());
                    }
                    let transport = RequestedTransport(UDP);
                    Next::Request(self.request(ALLOCATE, &[&transport], true))
                }
                Some((401, _)) => {
                    let user = self
                        .credentials
                        .as_ref()
                        .map(|c| c.0.clone())
                        .unwrap_or_default();
                    let hint = match user.split(':').next().and_then(|s| s.parse::<u64>().ok()) {
                        Some(expiry) => format!(
                            "authentication failed for REST credential {user:?}: check the shared secret, and that this server's clock and the TURN server's agree (the credential expires at unix time {expiry})"
                        ),
                        None => format!(
                            "authentication failed for user {user:?}: wrong username or password"
                        ),
                    };
                    self.fail("allocate", Reason::Auth, hint)
                }
                Some((code, reason)) => self.fail(
                    "allocate",
                    Reason::Refused,
                    format!("refused: {code} {reason}"),
                ),
            },
            State::Permission => match code_of(&msg) {
                None => {
                    self.step("permission", true, format!("may relay to {}", self.peer));
                    self.state = State::Relay;
                    let tid = TransactionId::generate();
                    let mut w = build(SEND, MessageClass::Indication, tid);
                    let ok = w
                        .add_attribute(&XorPeerAddress::new(self.peer, tid))
                        .is_ok()
                        && w.add_attribute(&Data(&self.payload)).is_ok();
                    Next::Indication(if ok { w.finish() } else { Vec::new() })
                }
                Some((403, _)) => self.fail(
                    "permission",
                    Reason::PeerPolicy,
                    format!(
                        "the TURN server refuses to relay to {} (its peer policy)",
                        self.peer
                    ),
                ),
                Some((code, reason)) => self.fail(
                    "permission",
                    Reason::Refused,
                    format!("refused: {code} {reason}"),
                ),
            },
            State::Release => {
                match code_of(&msg) {
                    None => self.step("release", true, "allocation released"),
                    Some((code, reason)) => self.steps.push(Step {
                        name: "release",
                        ok: false,
                        reason: Some(Reason::Refused),
                        detail: format!("refused: {code} {reason}"),
                    }),
                }
                self.state = State::Done;
                Next::Done
            }
            State::Relay | State::Done => return None,
        })
    }

    fn allocated(&mut self, msg: &Message) -> Next {
        if msg.has_attribute(MessageIntegrity::TYPE)
            && let Some(key) = &self.key
            && msg.validate_integrity_with_key(key).is_err()
        {
            return self.fail(
                "allocate",
                Reason::Auth,
                "the response's integrity check failed: wrong password?",
            );
        }
        self.relay = msg
            .attribute::<XorRelayedAddress>()
            .ok()
            .map(|a| a.addr(msg.transaction_id()));
        self.mapped = msg
            .attribute::<XorMappedAddress>()
            .ok()
            .map(|a| a.addr(msg.transaction_id()));
        let Some(relay) = self.relay else {
            return self.fail(
                "allocate",
                Reason::Protocol,
                "success without a relayed address",
            );
        };
        self.step("allocate", true, format!("relayed address {relay}"));
        self.state = State::Permission;
        // The peer address is XOR-ed with this request's own transaction id.
        let tid = TransactionId::generate();
        self.tid = tid;
        let mut w = build(CREATE_PERMISSION, MessageClass::Request, tid);
        let mut ok = w
            .add_attribute(&XorPeerAddress::new(self.peer, tid))
            .is_ok();
        if let (Some((user, _)), Some(realm), Some(nonce), Some(key)) =
            (&self.credentials, &self.realm, &self.nonce, &self.key)
        {
            ok &= Username::new(user).is_ok_and(|u| w.add_attribute(&u).is_ok());
            ok &= Realm::new(realm).is_ok_and(|r| w.add_attribute(&r).is_ok());
            ok &= Nonce::new(nonce).is_ok_and(|n| w.add_attribute(&n).is_ok());
            ok &= w
                .add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)
                .is_ok();
        }
        let _ = w.add_fingerprint();
        Next::Request(if ok { w.finish() } else { Vec::new() })
    }

    /// After a [`Next::Indication`]: whether the payload reached the peer.
    /// Returns the release request.
    pub fn delivered(&mut self, arrived: bool) -> Next {
        if arrived {
            self.step(
                "relay",
                true,
                format!("a test packet relayed to {} arrived", self.peer),
            );
        } else {
            self.steps.push(Step {
                name: "relay",
                ok: false,
                reason: Some(Reason::NotDelivered),
                detail: format!("a test packet relayed to {} never arrived", self.peer),
            });
        }
        self.state = State::Release;
        let lifetime = Lifetime(0);
        Next::Request(self.request(REFRESH, &[&lifetime], true))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use parley_stun::{
        Credentials, Destination, FiveTuple, NonceKey, Outbox, PeerPolicy, Quotas, RelayPorts,
        ServerConfig, Transport, TurnServer,
    };

    use super::*;

    struct Ports;
    impl RelayPorts for Ports {
        fn open(&mut self, _: SocketAddr, _: bool) -> std::io::Result<()> {
            Ok(())
        }
        fn close(&mut self, _: SocketAddr) {}
    }

    fn server() -> TurnServer {
        let mut creds = Credentials::new("probe.test");
        creds.add_user("alice", "pw");
        let mut config = ServerConfig::new(
            creds,
            NonceKey::new([9; 32], 600),
            "203.0.113.1".parse().unwrap(),
        );
        config.policy = PeerPolicy {
            allow: Vec::new(),
            always: vec!["127.0.0.1:10000".parse().unwrap()],
            ..Default::default()
        };
        TurnServer::new(config, Quotas::new(10), Instant::now(), 1_800_000_000)
    }

    /// Runs a probe against the in-memory server; `arrives` decides delivery.
    fn run(mut probe: Probe, server: &mut TurnServer) -> Probe {
        let tuple = FiveTuple {
            client: "198.51.100.1:5000".parse().unwrap(),
            server: "203.0.113.1:3478".parse().unwrap(),
            transport: Transport::Udp,
        };
        let mut next = probe.start();
        for _ in 0..10 {
            match next {
                Next::Done => break,
                Next::Request(bytes) => {
                    let mut out = Outbox::new();
                    server.handle_client(Instant::now(), tuple, &bytes, &mut Ports, &mut out);
                    let reply = out
                        .iter()
                        .next()
                        .map(|(_, b)| b.to_vec())
                        .expect("a response");
                    next = probe.handle(&reply).expect("for this transaction");
                }
                Next::Indication(bytes) => {
                    let mut out = Outbox::new();
                    server.handle_client(Instant::now(), tuple, &bytes, &mut Ports, &mut out);
                    let arrived = out
                        .iter()
                        .any(|(to, b)| matches!(to, Destination::Peer { .. }) && b == b"probe");
                    next = probe.delivered(arrived);
                }
            }
        }
        probe
    }

    #[test]
    fn a_turn_probe_allocates_permits_relays_and_releases() {
        let mut s = server();
        let p = run(
            Probe::turn(
                "alice",
                "pw",
                "127.0.0.1:10000".parse().unwrap(),
                b"probe".to_vec(),
            ),
            &mut s,
        );
        let names: Vec<_> = p.steps().iter().map(|s| (s.name, s.ok)).collect();
        assert_eq!(
            names,
            vec![
                ("allocate", true),
                ("permission", true),
                ("relay", true),
                ("release", true)
            ],
            "{:?}",
            p.steps()
        );
        assert!(p.succeeded());
        assert_eq!(s.allocation_count(), 0, "released");
    }

    #[test]
    fn wrong_credentials_are_reported_as_such() {
        let p = run(
            Probe::turn(
                "alice",
                "nope",
                "127.0.0.1:10000".parse().unwrap(),
                b"probe".to_vec(),
            ),
            &mut server(),
        );
        assert!(!p.succeeded());
        assert!(
            p.steps()[0].detail.contains("wrong username or password"),
            "{:?}",
            p.steps()
        );
        assert_eq!(p.steps()[0].reason, Some(Reason::Auth));
        let p = run(
            Probe::turn(
                "1800000100:p",
                "nope",
                "127.0.0.1:10000".parse().unwrap(),
                b"probe".to_vec(),
            ),
            &mut server(),
        );
        assert!(p.steps()[0].detail.contains("clock"), "{:?}", p.steps());
    }

    #[test]
    fn a_refused_peer_is_named() {
        let p = run(
            Probe::turn(
                "alice",
                "pw",
                "127.0.0.2:10000".parse().unwrap(),
                b"probe".to_vec(),
            ),
            &mut server(),
        );
        let last = p.steps().last().unwrap();
        assert_eq!(
            (last.name, last.ok),
            ("permission", false),
            "{:?}",
            p.steps()
        );
        assert!(last.detail.contains("peer policy"));
        assert_eq!(last.reason, Some(Reason::PeerPolicy));
    }

    #[test]
    fn a_relay_to_a_port_the_policy_closes_never_arrives() {
        // The IP is the SFU's, so the permission is granted; port 22 is not the SFU's.
        let p = run(
            Probe::turn(
                "alice",
                "pw",
                "127.0.0.1:22".parse().unwrap(),
                b"probe".to_vec(),
            ),
            &mut server(),
        );
        let relay = p.steps().iter().find(|s| s.name == "relay").unwrap();
        assert!(!relay.ok);
        assert_eq!(relay.reason, Some(Reason::NotDelivered));
        assert!(!p.succeeded());
    }

    #[test]
    fn a_stun_probe_learns_the_mapped_address_and_a_timeout_is_explained() {
        let p = run(Probe::stun(), &mut server());
        assert!(p.succeeded());
        assert_eq!(p.mapped(), Some("198.51.100.1:5000".parse().unwrap()));
        let mut q = Probe::stun();
        q.start();
        q.timed_out("3 s");
        assert!(q.steps()[0].detail.contains("nothing listens"));
        assert_eq!(q.steps()[0].reason, Some(Reason::Timeout));
        assert!(p.steps().iter().all(|s| s.ok && s.reason.is_none()));
    }
}
