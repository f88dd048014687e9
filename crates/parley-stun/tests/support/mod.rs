//! A TURN client made of `stun-types` calls, a fake relay-socket table and
//! a virtual clock, for driving the server core in tests.

#![allow(clippy::unwrap_used, dead_code)] // test harness code: a panic is a failed test

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_stun::attributes::{
    ChannelNumber, Data, Lifetime, RequestedTransport, UDP, XorPeerAddress,
};
use parley_stun::server::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, REFRESH, SEND};
use parley_stun::stun_types::attribute::{
    AttributeWrite, ErrorCode, Nonce, Realm, Username, XorMappedAddress,
};
use parley_stun::stun_types::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass, MessageWrite,
    MessageWriteExt, MessageWriteVec, Method, TransactionId,
};
use parley_stun::{
    Credentials, Destination, FiveTuple, NonceKey, Outbox, PeerPolicy, Quotas, RelayPorts,
    ServerConfig, Transport, TurnServer,
};

pub const REALM: &str = "parley.test";
pub const SECRET: &[u8] = b"shared-secret";
pub const SERVER: &str = "203.0.113.1:3478";
pub const RELAY_IP: &str = "203.0.113.1";

/// Relay sockets as a set; ports listed in `busy` fail to open.
#[derive(Default)]
pub struct Ports {
    pub open: HashSet<SocketAddr>,
    pub busy: HashSet<u16>,
    pub dont_fragment: Vec<SocketAddr>,
}

impl RelayPorts for Ports {
    fn open(&mut self, relay: SocketAddr, dont_fragment: bool) -> std::io::Result<()> {
        if self.busy.contains(&relay.port()) || self.busy.contains(&0) {
            return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        if dont_fragment {
            self.dont_fragment.push(relay);
        }
        assert!(self.open.insert(relay), "opened twice: {relay}");
        Ok(())
    }
    fn close(&mut self, relay: SocketAddr) {
        assert!(
            self.open.remove(&relay),
            "closed a port never opened: {relay}"
        );
    }
}

pub fn config() -> ServerConfig {
    let mut creds = Credentials::new(REALM);
    creds.add_user("alice", "wonderland");
    creds.add_user("bob", "builder");
    creds.add_secret(SECRET);
    let mut c = ServerConfig::new(
        creds,
        NonceKey::new([3; 32], 600),
        RELAY_IP.parse().unwrap(),
    );
    c.relay_ports = 50000..=50099;
    c
}

/// The server, its ports, a clock and an outbox.
pub struct Lab {
    pub server: TurnServer,
    pub ports: Ports,
    pub now: Instant,
    pub out: Outbox,
    pub unix_start: u64,
    pub start: Instant,
}

impl Lab {
    pub fn new() -> Self {
        Lab::with(config(), 1000)
    }

    pub fn with(config: ServerConfig, max_total: usize) -> Self {
        let now = Instant::now();
        let unix_start = 1_800_000_000;
        Lab {
            server: TurnServer::new(config, Quotas::new(max_total), now, unix_start),
            ports: Ports::default(),
            now,
            out: Outbox::new(),
            unix_start,
            start: now,
        }
    }

    pub fn unix(&self) -> u64 {
        self.unix_start + (self.now - self.start).as_secs()
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.server.handle_timeout(self.now, &mut self.ports);
    }

    /// Sends raw bytes from `tuple`; returns everything the server sent.
    pub fn send(&mut self, tuple: FiveTuple, bytes: &[u8]) -> Vec<(Destination, Vec<u8>)> {
        self.out.clear();
        self.server
            .handle_client(self.now, tuple, bytes, &mut self.ports, &mut self.out);
        self.out.iter().map(|(d, b)| (d, b.to_vec())).collect()
    }

    /// Sends a request and returns the one response, parsed into owned bytes.
    pub fn request(&mut self, tuple: FiveTuple, bytes: &[u8]) -> Vec<u8> {
        let out = self.send(tuple, bytes);
        assert_eq!(out.len(), 1, "expected one response, got {out:?}");
        assert_eq!(out[0].0, Destination::Client(tuple));
        out[0].1.clone()
    }

    pub fn peer_sends(
        &mut self,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) -> Vec<(Destination, Vec<u8>)> {
        self.out.clear();
        self.server
            .handle_peer(self.now, relay, peer, data, &mut self.out);
        self.out.iter().map(|(d, b)| (d, b.to_vec())).collect()
    }
}

pub fn udp_client(n: u8) -> FiveTuple {
    FiveTuple {
        client: format!("198.51.100.{n}:40000").parse().unwrap(),
        server: SERVER.parse().unwrap(),
        transport: Transport::Udp,
    }
}

/// Who a test client is and what it learned from the challenge.
#[derive(Clone)]
pub struct Client {
    pub tuple: FiveTuple,
    pub username: String,
    pub password: String,
    pub nonce: Option<String>,
    pub fingerprint: bool,
}

impl Client {
    pub fn new(tuple: FiveTuple, username: &str, password: &str) -> Self {
        Client {
            tuple,
            username: username.into(),
            password: password.into(),
            nonce: None,
            fingerprint: true,
        }
    }

    /// A client with a REST credential expiring `ttl` seconds after `unix`.
    pub fn rest(tuple: FiveTuple, user: &str, unix: u64, ttl: u64) -> Self {
        let (username, password) = parley_stun::mint_rest_credential(SECRET, user, unix + ttl);
        Client::new(tuple, &username, &password)
    }

    /// A request of `method`, signed if the client has a nonce.
    pub fn build(&self, method: Method, attrs: &[&dyn AttributeWrite]) -> Vec<u8> {
        self.build_with(method, TransactionId::generate(), attrs)
    }

    pub fn build_with(
        &self,
        method: Method,
        tid: TransactionId,
        attrs: &[&dyn AttributeWrite],
    ) -> Vec<u8> {
        let mut w = Message::builder(
            parley_stun::stun_types::message::MessageType::from_class_method(
                MessageClass::Request,
                method,
            ),
            tid,
            MessageWriteVec::new(),
        );
        for a in attrs {
            w.add_attribute(*a).unwrap();
        }
        if let Some(nonce) = &self.nonce {
            w.add_attribute(&Username::new(&self.username).unwrap())
                .unwrap();
            w.add_attribute(&Realm::new(REALM).unwrap()).unwrap();
            w.add_attribute(&Nonce::new(nonce).unwrap()).unwrap();
            let key = LongTermKeyCredentials::new(
                self.username.clone(),
                self.password.clone(),
                REALM.into(),
            )
            .make_key(IntegrityAlgorithm::Sha1);
            w.add_message_integrity_with_key(&key, IntegrityAlgorithm::Sha1)
                .unwrap();
        }
        if self.fingerprint {
            w.add_fingerprint().unwrap();
        }
        w.finish()
    }

    pub fn indication(&self, method: Method, attrs: &[&dyn AttributeWrite]) -> Vec<u8> {
        let mut w = Message::builder(
            parley_stun::stun_types::message::MessageType::from_class_method(
                MessageClass::Indication,
                method,
            ),
            TransactionId::generate(),
            MessageWriteVec::new(),
        );
        for a in attrs {
            w.add_attribute(*a).unwrap();
        }
        w.finish()
    }

    /// Learns a nonce the way clients do: an unsigned Allocate answered 401.
    pub fn challenge(&mut self, lab: &mut Lab) {
        let saved = self.nonce.take();
        let reply = lab.request(
            self.tuple,
            &self.build(ALLOCATE, &[&RequestedTransport(UDP)]),
        );
        let msg = Message::from_bytes(&reply).unwrap();
        assert_eq!(error_code(&msg), Some(401));
        self.nonce = Some(msg.attribute::<Nonce>().unwrap().nonce().to_owned());
        let _ = saved;
    }

    /// Sends a signed request, retrying once with a fresh nonce on 438 as
    /// real clients do; returns the response bytes.
    pub fn exchange(
        &mut self,
        lab: &mut Lab,
        method: Method,
        attrs: &[&dyn AttributeWrite],
    ) -> Vec<u8> {
        if self.nonce.is_none() {
            self.challenge(lab);
        }
        let reply = lab.request(self.tuple, &self.build(method, attrs));
        let msg = Message::from_bytes(&reply).unwrap();
        if error_code(&msg) == Some(438) {
            self.nonce = Some(msg.attribute::<Nonce>().unwrap().nonce().to_owned());
            return lab.request(self.tuple, &self.build(method, attrs));
        }
        reply
    }

    /// Allocates: challenge first, then the signed request. Returns the
    /// success response's relayed address, or the error code.
    pub fn allocate(
        &mut self,
        lab: &mut Lab,
        extra: &[&dyn AttributeWrite],
    ) -> Result<SocketAddr, u16> {
        let transport = RequestedTransport(UDP);
        let mut attrs: Vec<&dyn AttributeWrite> = vec![&transport];
        attrs.extend_from_slice(extra);
        let reply = self.exchange(lab, ALLOCATE, &attrs);
        let msg = Message::from_bytes(&reply).unwrap();
        if let Some(code) = error_code(&msg) {
            return Err(code);
        }
        self.check_integrity(&msg);
        let relayed = msg
            .attribute::<parley_stun::attributes::XorRelayedAddress>()
            .unwrap()
            .addr(msg.transaction_id());
        let mapped = msg
            .attribute::<XorMappedAddress>()
            .unwrap()
            .addr(msg.transaction_id());
        assert_eq!(mapped, self.tuple.client);
        Ok(relayed)
    }

    pub fn check_integrity(&self, msg: &Message) {
        let key =
            LongTermKeyCredentials::new(self.username.clone(), self.password.clone(), REALM.into())
                .make_key(IntegrityAlgorithm::Sha1);
        msg.validate_integrity_with_key(&key)
            .expect("response integrity");
    }

    /// Sends a signed request and returns the error code (None on success).
    pub fn call(
        &mut self,
        lab: &mut Lab,
        method: Method,
        attrs: &[&dyn AttributeWrite],
    ) -> Option<u16> {
        let reply = self.exchange(lab, method, attrs);
        let msg = Message::from_bytes(&reply).unwrap();
        let code = error_code(&msg);
        if code.is_none() {
            self.check_integrity(&msg);
        }
        code
    }

    /// A signed request whose attributes depend on the transaction id
    /// (XOR-PEER-ADDRESS), with the 438 retry.
    fn exchange_with_tid(
        &mut self,
        lab: &mut Lab,
        method: Method,
        attrs: impl Fn(TransactionId) -> Vec<Box<dyn AttributeWrite>>,
    ) -> Message<'static> {
        for _ in 0..2 {
            let tid = TransactionId::generate();
            let owned = attrs(tid);
            let refs: Vec<&dyn AttributeWrite> = owned.iter().map(|b| b.as_ref()).collect();
            let bytes = self.build_with(method, tid, &refs);
            let reply: &'static [u8] =
                Box::leak(lab.request(self.tuple, &bytes).into_boxed_slice());
            let msg = Message::from_bytes(reply).unwrap();
            if error_code(&msg) == Some(438) {
                self.nonce = Some(msg.attribute::<Nonce>().unwrap().nonce().to_owned());
                continue;
            }
            return msg;
        }
        panic!("two stale nonces in a row");
    }

    pub fn permit(&mut self, lab: &mut Lab, peer: SocketAddr) -> Option<u16> {
        let msg = self.exchange_with_tid(lab, CREATE_PERMISSION, |tid| {
            vec![Box::new(XorPeerAddress::new(peer, tid))]
        });
        error_code(&msg)
    }

    pub fn bind(&mut self, lab: &mut Lab, channel: u16, peer: SocketAddr) -> Option<u16> {
        let msg = self.exchange_with_tid(lab, CHANNEL_BIND, |tid| {
            vec![
                Box::new(ChannelNumber(channel)),
                Box::new(XorPeerAddress::new(peer, tid)),
            ]
        });
        error_code(&msg)
    }

    pub fn refresh(&mut self, lab: &mut Lab, lifetime: Option<u32>) -> Result<u32, u16> {
        let l;
        let mut attrs: Vec<&dyn AttributeWrite> = Vec::new();
        if let Some(secs) = lifetime {
            l = Lifetime(secs);
            attrs.push(&l);
        }
        let reply = self.exchange(lab, REFRESH, &attrs);
        let msg = Message::from_bytes(&reply).unwrap();
        match error_code(&msg) {
            Some(code) => Err(code),
            None => Ok(msg.attribute::<Lifetime>().unwrap().0),
        }
    }

    pub fn send_indication(
        &self,
        lab: &mut Lab,
        peer: SocketAddr,
        data: &[u8],
    ) -> Vec<(Destination, Vec<u8>)> {
        let tid = TransactionId::generate();
        let mut w = Message::builder(
            parley_stun::stun_types::message::MessageType::from_class_method(
                MessageClass::Indication,
                SEND,
            ),
            tid,
            MessageWriteVec::new(),
        );
        w.add_attribute(&XorPeerAddress::new(peer, tid)).unwrap();
        w.add_attribute(&Data(data)).unwrap();
        lab.send(self.tuple, &w.finish())
    }
}

pub fn error_code(msg: &Message) -> Option<u16> {
    if msg.class() == MessageClass::Error {
        Some(msg.attribute::<ErrorCode>().unwrap().code())
    } else {
        None
    }
}

pub fn open_policy() -> PeerPolicy {
    PeerPolicy {
        allow: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        always: Vec::new(),
        ..Default::default()
    }
}
