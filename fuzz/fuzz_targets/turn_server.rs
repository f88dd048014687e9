//! Fuzzes everything the TURN server parses from the network: STUN
//! messages and ChannelData from clients (over UDP and TCP, including the
//! stream framing) and datagrams from peers, against a server that already
//! has an allocation with a permission and a channel, so the relay paths
//! are reachable without forging MESSAGE-INTEGRITY.

#![no_main]

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use parley_stun::channel_data::{ChannelData, stream_frame_len};
use parley_stun::stun_types::message::Message;
use parley_stun::{
    Credentials, FiveTuple, NonceKey, Outbox, PeerPolicy, Quotas, RelayPorts, ServerConfig,
    Transport, TurnServer,
};

#[derive(Default)]
struct Ports(HashSet<SocketAddr>);

impl RelayPorts for Ports {
    fn open(&mut self, relay: SocketAddr, _: bool) -> std::io::Result<()> {
        self.0.insert(relay);
        Ok(())
    }
    fn close(&mut self, relay: SocketAddr) {
        self.0.remove(&relay);
    }
}

struct State {
    server: TurnServer,
    ports: Ports,
    out: Outbox,
    now: Instant,
    relay: SocketAddr,
}

fn udp() -> FiveTuple {
    FiveTuple {
        client: "198.51.100.1:4000".parse().unwrap(),
        server: "203.0.113.1:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn tcp() -> FiveTuple {
    FiveTuple {
        transport: Transport::Tcp,
        ..udp()
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(setup());
}

/// A server with one allocation for the UDP client, its permission for
/// 192.0.2.9 and channel 0x4000 to 192.0.2.9:9, made through the real
/// request path with a REST credential.
fn setup() -> State {
    use parley_stun::attributes::{ChannelNumber, RequestedTransport, XorPeerAddress, XorRelayedAddress};
    use parley_stun::server::{ALLOCATE, CHANNEL_BIND};
    use parley_stun::stun_types::attribute::{AttributeStaticType, Nonce, Realm, Username};
    use parley_stun::stun_types::message::{
        IntegrityAlgorithm, LongTermKeyCredentials, MessageClass, MessageType, MessageWrite,
        MessageWriteExt, MessageWriteVec, TransactionId,
    };

    let mut creds = Credentials::new("fuzz");
    creds.add_secret(b"secret");
    let mut config = ServerConfig::new(creds, NonceKey::new([1; 32], 600), "203.0.113.1".parse().unwrap());
    config.policy = PeerPolicy { allow: vec!["192.0.2.0/24".parse().unwrap()], ..Default::default() };
    let now = Instant::now();
    let unix = 1_800_000_000;
    let mut server = TurnServer::new(config, Quotas::new(100), now, unix);
    let mut ports = Ports::default();
    let mut out = Outbox::new();
    let (username, password) = parley_stun::mint_rest_credential(b"secret", "fuzzer", unix + 86_400);
    let key = LongTermKeyCredentials::new(username.clone(), password, "fuzz".into()).make_key(IntegrityAlgorithm::Sha1);

    let mut request = |server: &mut TurnServer, method, nonce: Option<&str>, peer: Option<SocketAddr>| -> Vec<u8> {
        let tid = TransactionId::generate();
        let mut w = Message::builder(MessageType::from_class_method(MessageClass::Request, method), tid, MessageWriteVec::new());
        w.add_attribute(&RequestedTransport(17)).unwrap();
        if let Some(peer) = peer {
            w.add_attribute(&ChannelNumber(0x4000)).unwrap();
            w.add_attribute(&XorPeerAddress::new(peer, tid)).unwrap();
        }
        if let Some(nonce) = nonce {
            w.add_attribute(&Username::new(&username).unwrap()).unwrap();
            w.add_attribute(&Realm::new("fuzz").unwrap()).unwrap();
            w.add_attribute(&Nonce::new(nonce).unwrap()).unwrap();
            w.add_message_integrity_with_key(&key, IntegrityAlgorithm::Sha1).unwrap();
        }
        let bytes = w.finish();
        out.clear();
        server.handle_client(now, udp(), &bytes, &mut ports, &mut out);
        out.iter().next().map(|(_, b)| b.to_vec()).unwrap_or_default()
    };
    let challenge = request(&mut server, ALLOCATE, None, None);
    let nonce = Message::from_bytes(&challenge).unwrap().attribute::<Nonce>().unwrap().nonce().to_owned();
    let reply = request(&mut server, ALLOCATE, Some(&nonce), None);
    let msg = Message::from_bytes(&reply).unwrap();
    let relay = msg.attribute::<XorRelayedAddress>().unwrap().addr(msg.transaction_id());
    let bound = request(&mut server, CHANNEL_BIND, Some(&nonce), Some("192.0.2.9:9".parse().unwrap()));
    assert!(!Message::from_bytes(&bound).unwrap().has_attribute(parley_stun::stun_types::attribute::ErrorCode::TYPE));
    State { server, ports, out, now, relay }
}

fuzz_target!(|data: &[u8]| {
    // The parsers on their own.
    let _ = Message::from_bytes(data);
    let _ = ChannelData::parse(data);
    let _ = stream_frame_len(data);

    STATE.with(|state| {
        let mut s = state.borrow_mut();
        let State { server, ports, out, now, relay } = &mut *s;
        *now += Duration::from_millis(1);
        // Chunks separated by 0xFF 0xFF go to different inputs, so one run
        // can mix client datagrams, stream frames and peer datagrams.
        for (i, chunk) in data.split(|b| *b == 0xFF).enumerate() {
            out.clear();
            match i % 3 {
                0 => server.handle_client(*now, udp(), chunk, ports, out),
                1 => {
                    let mut rest = chunk;
                    while let Ok(Some(len)) = stream_frame_len(rest) {
                        if len > rest.len() || len == 0 {
                            break;
                        }
                        server.handle_client(*now, tcp(), &rest[..len], ports, out);
                        rest = &rest[len..];
                    }
                }
                _ => server.handle_peer(*now, *relay, "192.0.2.9:9".parse().unwrap(), chunk, out),
            }
            // Everything the server sends to a client must itself parse
            // (what goes to peers is the clients' data, anything at all).
            for (to, bytes) in out.iter() {
                if !matches!(to, parley_stun::Destination::Client(_)) {
                    continue;
                }
                if bytes.first().is_some_and(|b| *b < 4) {
                    assert!(Message::from_bytes(bytes).is_ok(), "server wrote an unparseable message");
                } else {
                    assert!(ChannelData::parse(bytes).is_ok(), "server wrote bad ChannelData");
                }
            }
        }
    });
});
