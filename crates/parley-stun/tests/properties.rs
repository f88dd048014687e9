//! Property tests: every attribute round-trips, and whatever a client sends,
//! every message the server builds parses, carries a valid fingerprint when
//! asked, and is signed with the requester's key when it should be.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_stun::attributes::{
    AddressErrorCode, ChannelNumber, DontFragment, EvenPort, Family, Lifetime,
    RequestedAddressFamily, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use parley_stun::channel_data::{self, ChannelData};
use parley_stun::server::{ALLOCATE, BINDING, CHANNEL_BIND, CREATE_PERMISSION, REFRESH};
use parley_stun::stun_types::attribute::{
    AttributeFromRaw, AttributeStaticType, AttributeWrite, Fingerprint, MessageIntegrity,
    RawAttribute,
};
use parley_stun::stun_types::message::{Message, MessageClass, TransactionId};
use parley_stun::{Destination, FiveTuple, Transport};
use proptest::prelude::*;

use support::*;

fn any_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

fn round_trip<A>(attr: &A) -> A
where
    A: AttributeWrite + for<'a> AttributeFromRaw<'a> + AttributeStaticType,
{
    let raw = RawAttribute::from(attr);
    let bytes = raw.to_bytes();
    assert_eq!(bytes.len() % 4, 0, "attributes are padded to 32 bits");
    A::from_raw(RawAttribute::from_bytes(&bytes).unwrap()).unwrap()
}

proptest! {
    #[test]
    fn attributes_round_trip(
        lifetime in any::<u32>(),
        channel in any::<u16>(),
        transport in any::<u8>(),
        reserve in any::<bool>(),
        v6 in any::<bool>(),
        addr in any_addr(),
        tid in any::<u128>(),
        code in 300u16..700,
        reason in "[ -~]{0,60}",
    ) {
        let tid = TransactionId::from(tid);
        let family = if v6 { Family::V6 } else { Family::V4 };
        prop_assert_eq!(round_trip(&Lifetime(lifetime)), Lifetime(lifetime));
        prop_assert_eq!(round_trip(&ChannelNumber(channel)), ChannelNumber(channel));
        prop_assert_eq!(round_trip(&RequestedTransport(transport)), RequestedTransport(transport));
        prop_assert_eq!(round_trip(&EvenPort { reserve }), EvenPort { reserve });
        prop_assert_eq!(round_trip(&DontFragment), DontFragment);
        prop_assert_eq!(round_trip(&RequestedAddressFamily(family)), RequestedAddressFamily(family));
        prop_assert_eq!(round_trip(&XorPeerAddress::new(addr, tid)).addr(tid), addr);
        prop_assert_eq!(round_trip(&XorRelayedAddress::new(addr, tid)).addr(tid), addr);
        let e = AddressErrorCode { family, code, reason: reason.clone() };
        prop_assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn channel_data_round_trips(channel in 0x4000u16..=0x7FFF, data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut frame = ChannelData::header(channel, data.len()).to_vec();
        frame.extend_from_slice(&data);
        let parsed = ChannelData::parse(&frame).unwrap();
        prop_assert_eq!(parsed.channel, channel);
        prop_assert_eq!(parsed.data, &data[..]);
        prop_assert_eq!(channel_data::stream_frame_len(&frame).unwrap(), Some((4 + data.len()).next_multiple_of(4)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_server(bytes in proptest::collection::vec(any::<u8>(), 0..600), tcp in any::<bool>()) {
        let mut lab = Lab::new();
        let tuple = FiveTuple { transport: if tcp { Transport::Tcp } else { Transport::Udp }, ..udp_client(1) };
        let _ = lab.send(tuple, &bytes);
        let _ = lab.peer_sends("203.0.113.1:50000".parse().unwrap(), "8.8.8.8:1".parse().unwrap(), &bytes);
        let _ = channel_data::stream_frame_len(&bytes);
    }
}

/// One step a scripted client may take.
#[derive(Debug, Clone)]
enum Step {
    Binding,
    Allocate {
        lifetime: Option<u32>,
        family_v6: bool,
        even: bool,
    },
    Refresh(Option<u32>),
    Permit(usize),
    Bind(u16, usize),
    Send(usize, Vec<u8>),
    Channel(u16, Vec<u8>),
    FromPeer(usize, Vec<u8>),
    Wait(u16),
}

const PEERS: &[&str] = &[
    "8.8.8.8:3478",
    "1.1.1.1:9",
    "127.0.0.1:22",
    "10.0.0.1:80",
    "[::ffff:127.0.0.1]:5",
    "[2606:4700::1111]:443",
];

fn step() -> impl Strategy<Value = Step> {
    let payload = proptest::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        Just(Step::Binding),
        (
            proptest::option::of(0u32..5000),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(lifetime, family_v6, even)| Step::Allocate {
                lifetime,
                family_v6,
                even
            }),
        proptest::option::of(0u32..5000).prop_map(Step::Refresh),
        (0..PEERS.len()).prop_map(Step::Permit),
        (0x3ff0u16..0x4010, 0..PEERS.len()).prop_map(|(c, p)| Step::Bind(c, p)),
        (0..PEERS.len(), payload.clone()).prop_map(|(p, d)| Step::Send(p, d)),
        (0x3ff0u16..0x4010, payload.clone()).prop_map(|(c, d)| Step::Channel(c, d)),
        (0..PEERS.len(), payload).prop_map(|(p, d)| Step::FromPeer(p, d)),
        (0u16..700).prop_map(Step::Wait),
    ]
}

/// Every packet for a client is a well-formed STUN message or ChannelData.
fn check_outputs(lab: &Lab, c: &Client, out: &[(Destination, Vec<u8>)], signed: bool) {
    for (to, bytes) in out {
        let Destination::Client(tuple) = to else {
            continue;
        };
        assert_eq!(*tuple, c.tuple);
        if channel_data::kind(bytes) == channel_data::Kind::ChannelData {
            ChannelData::parse(bytes).expect("server ChannelData parses");
            continue;
        }
        let msg = Message::from_bytes(bytes).expect("server messages parse, fingerprints valid");
        if msg.class() == MessageClass::Indication {
            continue;
        }
        assert!(
            msg.has_attribute(Fingerprint::TYPE),
            "the request had a fingerprint"
        );
        let code = error_code(&msg);
        let must_sign = signed && !matches!(code, Some(400 | 401 | 420 | 438));
        assert_eq!(
            msg.has_attribute(MessageIntegrity::TYPE),
            must_sign,
            "{code:?}"
        );
        if must_sign {
            c.check_integrity(&msg);
        }
    }
    let _ = lab;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_message_the_server_builds_parses(steps in proptest::collection::vec(step(), 1..40)) {
        let mut config = config();
        config.relay_v6 = Some("2001:db8::1".parse().unwrap());
        let mut lab = Lab::with(config, 100);
        let mut c = Client::new(udp_client(1), "alice", "wonderland");
        c.challenge(&mut lab);
        let mut relay: Option<SocketAddr> = None;
        for step in steps {
            let peer = |i: usize| PEERS[i].parse::<SocketAddr>().unwrap();
            let (out, signed) = match step {
                Step::Binding => (lab.send(c.tuple, &c.build(BINDING, &[])), false),
                Step::Allocate { lifetime, family_v6, even } => {
                    let transport = RequestedTransport(17);
                    let l = lifetime.map(Lifetime);
                    let f = RequestedAddressFamily(Family::V6);
                    let e = EvenPort { reserve: false };
                    let mut attrs: Vec<&dyn AttributeWrite> = vec![&transport];
                    if let Some(l) = &l { attrs.push(l); }
                    if family_v6 { attrs.push(&f); }
                    if even { attrs.push(&e); }
                    let out = lab.send(c.tuple, &c.build(ALLOCATE, &attrs));
                    if let Some((_, bytes)) = out.first() {
                        let msg = Message::from_bytes(bytes).unwrap();
                        if let Ok(r) = msg.attribute::<XorRelayedAddress>() {
                            relay = Some(r.addr(msg.transaction_id()));
                        }
                    }
                    (out, true)
                }
                Step::Refresh(l) => {
                    let l = l.map(Lifetime);
                    let attrs: Vec<&dyn AttributeWrite> = l.iter().map(|l| l as &dyn AttributeWrite).collect();
                    (lab.send(c.tuple, &c.build(REFRESH, &attrs)), true)
                }
                Step::Permit(p) => {
                    let tid = TransactionId::generate();
                    (lab.send(c.tuple, &c.build_with(CREATE_PERMISSION, tid, &[&XorPeerAddress::new(peer(p), tid)])), true)
                }
                Step::Bind(ch, p) => {
                    let tid = TransactionId::generate();
                    (lab.send(c.tuple, &c.build_with(CHANNEL_BIND, tid, &[&ChannelNumber(ch), &XorPeerAddress::new(peer(p), tid)])), true)
                }
                Step::Send(p, d) => (c.send_indication(&mut lab, peer(p), &d), false),
                Step::Channel(ch, d) => {
                    let mut frame = ChannelData::header(ch, d.len()).to_vec();
                    frame.extend_from_slice(&d);
                    (lab.send(c.tuple, &frame), false)
                }
                Step::FromPeer(p, d) => match relay {
                    Some(r) => (lab.peer_sends(r, peer(p), &d), false),
                    None => (Vec::new(), false),
                },
                Step::Wait(secs) => {
                    lab.advance(Duration::from_secs(u64::from(secs)));
                    (Vec::new(), false)
                }
            };
            check_outputs(&lab, &c, &out, signed);
            // Nothing leaks: every open relay socket belongs to a live allocation.
            prop_assert_eq!(lab.ports.open.len(), lab.server.allocation_count());
            // Nothing reaches a denied peer.
            for (to, _) in &out {
                if let Destination::Peer { peer, .. } = to {
                    prop_assert!(parley_stun::policy::classify(peer.ip()).is_none(), "relayed to {}", peer);
                }
            }
        }
    }
}
