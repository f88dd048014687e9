//! The TURN server core against a scripted client, on a virtual clock.
//! Test names state the behaviour; RFC 8656 sections are cited where they decide it.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use parley_stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, DontFragment, EvenPort, Family, Lifetime,
    RequestedAddressFamily, RequestedTransport, XorRelayedAddress,
};
use parley_stun::channel_data::ChannelData;
use parley_stun::server::{ALLOCATE, BINDING, DATA, REFRESH};
use parley_stun::stun_types::attribute::{
    AttributeStaticType, Nonce, RawAttribute, Software, UnknownAttributes, XorMappedAddress,
};
use parley_stun::stun_types::message::{Message, MessageClass};
use parley_stun::{Destination, FiveTuple, PeerPolicy, Transport};

use support::*;

fn peer(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn binding_answers_with_the_reflexive_address() {
    let mut lab = Lab::new();
    let c = Client::new(udp_client(1), "alice", "wonderland");
    let reply = lab.request(c.tuple, &c.build(BINDING, &[]));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.class(), MessageClass::Success);
    assert_eq!(
        msg.attribute::<XorMappedAddress>()
            .unwrap()
            .addr(msg.transaction_id()),
        c.tuple.client
    );
    assert!(msg.has_attribute(parley_stun::stun_types::attribute::Fingerprint::TYPE));
    assert!(
        !msg.has_attribute(Software::TYPE),
        "no SOFTWARE unless configured"
    );
}

#[test]
fn software_is_sent_only_when_configured() {
    let mut config = config();
    config.software = Some("parley".into());
    let mut lab = Lab::with(config, 10);
    let c = Client::new(udp_client(1), "alice", "wonderland");
    let msg_bytes = lab.request(c.tuple, &c.build(BINDING, &[]));
    let msg = Message::from_bytes(&msg_bytes).unwrap();
    assert_eq!(msg.attribute::<Software>().unwrap().software(), "parley");
}

#[test]
fn allocate_without_credentials_is_challenged_with_realm_and_nonce() {
    let mut lab = Lab::new();
    let c = Client::new(udp_client(1), "alice", "wonderland");
    let reply = lab.request(c.tuple, &c.build(ALLOCATE, &[&RequestedTransport(17)]));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(error_code(&msg), Some(401));
    assert_eq!(
        msg.attribute::<parley_stun::stun_types::attribute::Realm>()
            .unwrap()
            .realm(),
        REALM
    );
    assert_eq!(msg.attribute::<Nonce>().unwrap().nonce().len(), 32);
    assert!(!msg.has_attribute(parley_stun::stun_types::attribute::MessageIntegrity::TYPE));
}

#[test]
fn a_static_user_allocates_a_relay_in_the_port_range_for_ten_minutes() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c.allocate(&mut lab, &[]).unwrap();
    assert_eq!(relay.ip(), RELAY_IP.parse::<std::net::IpAddr>().unwrap());
    assert!((50000..=50099).contains(&relay.port()));
    assert!(lab.ports.open.contains(&relay));
    assert_eq!(lab.server.allocation_count(), 1);
    // Ten minutes by default (RFC 8656 §7.2); it ends when they pass.
    lab.advance(Duration::from_secs(599));
    assert_eq!(lab.server.allocation_count(), 1);
    lab.advance(Duration::from_secs(2));
    assert_eq!(lab.server.allocation_count(), 0);
    assert!(lab.ports.open.is_empty(), "the relay socket is closed");
}

#[test]
fn rest_credentials_work_with_any_configured_secret_until_they_expire() {
    let mut config = config();
    config.credentials.add_secret(b"next-secret");
    let mut lab = Lab::with(config, 10);
    let unix = lab.unix();
    let mut c = Client::rest(udp_client(1), "carol", unix, 120);
    c.allocate(&mut lab, &[]).unwrap();

    // A credential minted with the second (rotated-in) secret works too.
    let (username, password) =
        parley_stun::mint_rest_credential(b"next-secret", "dave", unix + 120);
    let mut d = Client::new(udp_client(2), &username, &password);
    d.allocate(&mut lab, &[]).unwrap();

    // Expired credentials are refused at Allocate...
    let mut e = Client::rest(udp_client(3), "erin", unix, 0);
    lab.advance(Duration::from_secs(2));
    assert_eq!(e.allocate(&mut lab, &[]), Err(401));
    // ...and at Refresh, once the allocation outlives them.
    lab.advance(Duration::from_secs(119));
    assert_eq!(c.refresh(&mut lab, Some(600)), Err(401));
}

#[test]
fn wrong_passwords_and_unknown_users_are_refused_and_counted() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "not-it");
    assert_eq!(c.allocate(&mut lab, &[]), Err(401));
    let mut d = Client::new(udp_client(2), "mallory", "x");
    assert_eq!(d.allocate(&mut lab, &[]), Err(401));
    assert_eq!(lab.server.metrics().auth_failures, 2);
    assert_eq!(lab.server.allocation_count(), 0);
}

#[test]
fn a_stale_nonce_gets_438_and_a_fresh_nonce() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    lab.advance(Duration::from_secs(601));
    // The allocation expired with the nonce; allocate again with the old nonce.
    let reply = lab.request(c.tuple, &c.build(ALLOCATE, &[&RequestedTransport(17)]));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(error_code(&msg), Some(438));
    let fresh = msg.attribute::<Nonce>().unwrap().nonce().to_owned();
    assert_ne!(Some(fresh.clone()), c.nonce);
    c.nonce = Some(fresh);
    c.allocate(&mut lab, &[]).unwrap();
}

#[test]
fn a_nonce_from_another_address_is_not_accepted() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    let mut thief = Client::new(udp_client(9), "alice", "wonderland");
    thief.nonce = c.nonce.clone();
    let reply = lab.request(
        thief.tuple,
        &thief.build(ALLOCATE, &[&RequestedTransport(17)]),
    );
    assert_eq!(error_code(&Message::from_bytes(&reply).unwrap()), Some(401));
}

#[test]
fn a_retransmitted_allocate_gets_the_same_relay_and_another_gets_437() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    let tid = parley_stun::stun_types::message::TransactionId::generate();
    let first = c.build_with(ALLOCATE, tid, &[&RequestedTransport(17)]);
    // The original Allocate of this 5-tuple is the one above; a new one is a mismatch.
    let reply = lab.request(c.tuple, &first);
    assert_eq!(error_code(&Message::from_bytes(&reply).unwrap()), Some(437));
}

#[test]
fn a_retransmission_of_the_creating_allocate_is_answered_again() {
    let mut lab = Lab::new();
    let mut d = Client::new(udp_client(2), "alice", "wonderland");
    d.challenge(&mut lab);
    let tid = parley_stun::stun_types::message::TransactionId::generate();
    let bytes = d.build_with(ALLOCATE, tid, &[&RequestedTransport(17)]);
    let first = Message::from_bytes(&lab.request(d.tuple, &bytes))
        .unwrap()
        .attribute::<XorRelayedAddress>()
        .unwrap()
        .addr(tid);
    let second = Message::from_bytes(&lab.request(d.tuple, &bytes))
        .unwrap()
        .attribute::<XorRelayedAddress>()
        .unwrap()
        .addr(tid);
    assert_eq!(first, second);
    assert_eq!(lab.ports.open.len(), 1, "no second socket");
}

#[test]
fn transports_other_than_udp_get_442_and_a_missing_one_400() {
    let mut lab = Lab::new();
    let mut d = Client::new(udp_client(2), "alice", "wonderland");
    assert_eq!(
        d.call(&mut lab, ALLOCATE, &[&RequestedTransport(6)]),
        Some(442)
    );
    assert_eq!(d.call(&mut lab, ALLOCATE, &[]), Some(400));
}

#[test]
fn address_families_follow_rfc_6156() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    // No IPv6 relay address configured.
    assert_eq!(
        c.allocate(&mut lab, &[&RequestedAddressFamily(Family::V6)]),
        Err(440)
    );

    let mut config = config();
    config.relay_v6 = Some("2001:db8::1".parse().unwrap());
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c
        .allocate(&mut lab, &[&RequestedAddressFamily(Family::V6)])
        .unwrap();
    assert!(relay.is_ipv6());
    // An IPv4 peer on an IPv6 allocation: 443.
    assert_eq!(c.permit(&mut lab, peer("8.8.8.8:1")), Some(443));
    assert_eq!(c.permit(&mut lab, peer("[2606:4700::1111]:1")), None);
    // Refresh naming the other family: 443 too.
    assert_eq!(
        c.call(&mut lab, REFRESH, &[&RequestedAddressFamily(Family::V4)]),
        Some(443)
    );
}

#[test]
fn an_additional_ipv6_family_is_declined_in_the_success_response() {
    let mut lab = Lab::new();
    let mut d = Client::new(udp_client(2), "alice", "wonderland");
    d.challenge(&mut lab);
    let reply = lab.request(
        d.tuple,
        &d.build(
            ALLOCATE,
            &[
                &RequestedTransport(17),
                &AdditionalAddressFamily(Family::V6),
            ],
        ),
    );
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(error_code(&msg), None);
    let refused = msg.attribute::<AddressErrorCode>().unwrap();
    assert_eq!((refused.family, refused.code), (Family::V6, 440));
    // Both families at once, or IPv4 as the additional one: 400.
    let mut e = Client::new(udp_client(3), "alice", "wonderland");
    assert_eq!(
        e.call(
            &mut lab,
            ALLOCATE,
            &[
                &RequestedTransport(17),
                &AdditionalAddressFamily(Family::V4)
            ]
        ),
        Some(400)
    );
    assert_eq!(
        e.call(
            &mut lab,
            ALLOCATE,
            &[
                &RequestedTransport(17),
                &AdditionalAddressFamily(Family::V6),
                &RequestedAddressFamily(Family::V4)
            ]
        ),
        Some(400)
    );
}

#[test]
fn unknown_comprehension_required_attributes_get_420() {
    let mut lab = Lab::new();
    let c = Client::new(udp_client(1), "alice", "wonderland");
    struct Mystery;
    impl std::fmt::Debug for Mystery {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Mystery")
        }
    }
    let raw = RawAttribute::new(0x0022.into(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    let reply = lab.request(
        c.tuple,
        &c.build(ALLOCATE, &[&RequestedTransport(17), &raw]),
    );
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(error_code(&msg), Some(420));
    assert!(
        msg.attribute::<UnknownAttributes>()
            .unwrap()
            .has_attribute(0x0022.into())
    );
    // Comprehension-optional ones are ignored.
    let optional = RawAttribute::new(0x8877.into(), &[0; 4]);
    let reply = lab.request(
        c.tuple,
        &c.build(ALLOCATE, &[&RequestedTransport(17), &optional]),
    );
    assert_eq!(error_code(&Message::from_bytes(&reply).unwrap()), Some(401));
    let _ = Mystery;
}

#[test]
fn lifetimes_are_clamped_and_a_zero_refresh_deletes() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[&Lifetime(30)]).unwrap();
    assert_eq!(
        c.refresh(&mut lab, Some(30)),
        Ok(600),
        "never below the default"
    );
    assert_eq!(
        c.refresh(&mut lab, Some(86_400)),
        Ok(3600),
        "never above the maximum"
    );
    assert_eq!(c.refresh(&mut lab, None), Ok(600));
    lab.advance(Duration::from_secs(590));
    assert_eq!(c.refresh(&mut lab, Some(1200)), Ok(1200));
    lab.advance(Duration::from_secs(1100));
    assert_eq!(lab.server.allocation_count(), 1, "the refresh extended it");
    assert_eq!(c.refresh(&mut lab, Some(0)), Ok(0));
    assert_eq!(lab.server.allocation_count(), 0);
    assert!(lab.ports.open.is_empty());
    assert_eq!(c.refresh(&mut lab, None), Err(437));
}

#[test]
fn another_user_on_the_same_five_tuple_gets_441() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    let mut b = Client::new(udp_client(1), "bob", "builder");
    assert_eq!(b.refresh(&mut lab, None), Err(441));
    assert_eq!(b.permit(&mut lab, peer("8.8.8.8:9")), Some(441));
}

#[test]
fn send_indications_reach_permitted_peers_only() {
    let mut config = config();
    config.policy = open_policy();
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c.allocate(&mut lab, &[]).unwrap();
    let p = peer("192.0.2.50:7000");
    assert!(
        c.send_indication(&mut lab, p, b"before").is_empty(),
        "no permission yet"
    );
    assert_eq!(c.permit(&mut lab, p), None);
    let out = c.send_indication(&mut lab, p, b"hello peer");
    assert_eq!(
        out,
        vec![(Destination::Peer { relay, peer: p }, b"hello peer".to_vec())]
    );
    // The permission is for the IP: another port of the same host works too.
    let p2 = peer("192.0.2.50:7001");
    assert_eq!(c.send_indication(&mut lab, p2, b"x").len(), 1);
    // After five minutes without refresh it is gone.
    lab.advance(Duration::from_secs(301));
    assert!(c.send_indication(&mut lab, p, b"late").is_empty());
}

#[test]
fn peer_data_comes_back_as_data_indications_or_channel_data() {
    let mut config = config();
    config.policy = open_policy();
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c.allocate(&mut lab, &[]).unwrap();
    let p = peer("192.0.2.50:7000");

    assert!(
        lab.peer_sends(relay, p, b"unasked").is_empty(),
        "no permission, no delivery"
    );
    assert_eq!(c.permit(&mut lab, p), None);
    let out = lab.peer_sends(relay, p, b"via indication");
    assert_eq!(out.len(), 1);
    let msg = Message::from_bytes(&out[0].1).unwrap();
    assert_eq!(msg.class(), MessageClass::Indication);
    assert_eq!(msg.method(), DATA);
    assert_eq!(
        msg.attribute::<parley_stun::attributes::XorPeerAddress>()
            .unwrap()
            .addr(msg.transaction_id()),
        p
    );
    assert_eq!(
        &msg.raw_attribute(0x0013.into()).unwrap().value[..],
        b"via indication"
    );

    assert_eq!(c.bind(&mut lab, 0x4001, p), None);
    let out = lab.peer_sends(relay, p, b"via channel");
    let cd = ChannelData::parse(&out[0].1).unwrap();
    assert_eq!((cd.channel, cd.data), (0x4001, &b"via channel"[..]));
    // And the client's ChannelData reaches the peer.
    let mut frame = ChannelData::header(0x4001, 4).to_vec();
    frame.extend_from_slice(b"ping");
    assert_eq!(
        lab.send(c.tuple, &frame),
        vec![(Destination::Peer { relay, peer: p }, b"ping".to_vec())]
    );
    // An unbound channel is dropped.
    let mut frame = ChannelData::header(0x4002, 4).to_vec();
    frame.extend_from_slice(b"ping");
    assert!(lab.send(c.tuple, &frame).is_empty());
    let m = lab.server.metrics();
    assert_eq!((m.packets_to_peers, m.packets_to_clients), (1, 2));
}

#[test]
fn channel_data_on_streams_is_padded_to_four_bytes() {
    let mut config = config();
    config.policy = open_policy();
    let mut lab = Lab::with(config, 10);
    let tuple = FiveTuple {
        transport: Transport::Tcp,
        ..udp_client(1)
    };
    let mut c = Client::new(tuple, "alice", "wonderland");
    let relay = c.allocate(&mut lab, &[]).unwrap();
    let p = peer("192.0.2.50:7000");
    assert_eq!(c.bind(&mut lab, 0x4000, p), None);
    let out = lab.peer_sends(relay, p, b"12345");
    assert_eq!(out[0].1.len(), 12);
    assert_eq!(ChannelData::parse(&out[0].1).unwrap().data, b"12345");
    // The connection closing ends the allocation.
    lab.server.handle_client_closed(&tuple, &mut lab.ports);
    assert_eq!(lab.server.allocation_count(), 0);
    assert!(lab.ports.open.is_empty());
}

#[test]
fn channel_binds_are_checked_as_the_rfc_says() {
    let mut config = config();
    config.policy = open_policy();
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    assert_eq!(
        c.bind(&mut lab, 0x3FFF, peer("192.0.2.1:1")),
        Some(400),
        "below the range"
    );
    assert_eq!(
        c.bind(&mut lab, 0x8000, peer("192.0.2.1:1")),
        Some(400),
        "above the range"
    );
    assert_eq!(c.bind(&mut lab, 0x4000, peer("192.0.2.1:1")), None);
    assert_eq!(
        c.bind(&mut lab, 0x4000, peer("192.0.2.2:1")),
        Some(400),
        "number in use"
    );
    assert_eq!(
        c.bind(&mut lab, 0x4001, peer("192.0.2.1:1")),
        Some(400),
        "peer in use"
    );
    assert_eq!(
        c.bind(&mut lab, 0x4000, peer("192.0.2.1:1")),
        None,
        "refresh"
    );
}

/// Every peer the default policy must refuse, in each spelling.
const DENIED: &[&str] = &[
    "0.0.0.0:5000",
    "0.1.2.3:5000",
    "127.0.0.1:5000",
    "10.0.0.1:5000",
    "172.16.5.4:5000",
    "192.168.0.1:5000",
    "100.64.0.1:5000",
    "169.254.169.254:80",
    "224.0.0.251:5353",
    "255.255.255.255:5000",
    "[::ffff:127.0.0.1]:5000",
    "[::ffff:10.0.0.1]:5000",
    "[::ffff:192.168.1.1]:5000",
    "198.18.0.1:5000",
    "198.19.255.254:5000",
    "192.0.2.1:5000",
    "203.0.113.9:5000",
    "[::ffff:198.18.0.1]:5000",
];

const DENIED_V6: &[&str] = &[
    "[::]:5000",
    "[::1]:5000",
    "[fd00::1]:5000",
    "[fe80::1]:5000",
    "[ff02::1]:5000",
    "[2002:7f00:1::1]:5000",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:5000",
    "[64:ff9b::7f00:1]:5000",
    "[64:ff9b::c612:1]:5000",
    "[2001:2::1]:5000",
    "[3fff::1]:5000",
    "[100::1]:5000",
];

#[test]
fn every_denied_address_family_gets_403_on_permission_and_channel() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    for (i, p) in DENIED.iter().enumerate() {
        assert_eq!(
            c.permit(&mut lab, peer(p)),
            Some(403),
            "CreatePermission {p}"
        );
        assert_eq!(
            c.bind(&mut lab, 0x4000 + i as u16, peer(p)),
            Some(403),
            "ChannelBind {p}"
        );
    }
    let mut config = config();
    config.relay_v6 = Some("2001:db8::1".parse().unwrap());
    let mut lab6 = Lab::with(config, 10);
    let mut c6 = Client::new(udp_client(1), "alice", "wonderland");
    c6.allocate(&mut lab6, &[&RequestedAddressFamily(Family::V6)])
        .unwrap();
    for (i, p) in DENIED_V6.iter().chain(DENIED.iter()).enumerate() {
        assert_eq!(
            c6.permit(&mut lab6, peer(p)),
            Some(403),
            "CreatePermission {p}"
        );
        assert_eq!(
            c6.bind(&mut lab6, 0x4000 + i as u16, peer(p)),
            Some(403),
            "ChannelBind {p}"
        );
    }
    assert!(lab.server.metrics().denied_peers >= 2 * DENIED.len() as u64);
}

/// A client must not make the server relay into itself: its own relayed
/// address, another allocation's, or the listening port, even where the
/// allow list covers the server's address.
#[test]
fn relaying_to_the_servers_own_relays_and_ports_is_refused() {
    let mut config = config();
    config.policy = open_policy();
    config.policy.own.ips.push(RELAY_IP.parse().unwrap());
    config.policy.own.ports.push(3478..=3478);
    let mut lab = Lab::with(config, 10);
    let mut a = Client::new(udp_client(1), "alice", "wonderland");
    let mut b = Client::new(udp_client(2), "bob", "builder");
    let relay_a = a.allocate(&mut lab, &[]).unwrap();
    let relay_b = b.allocate(&mut lab, &[]).unwrap();
    let listener = peer(SERVER);
    for target in [relay_a, relay_b, listener] {
        assert_eq!(
            a.permit(&mut lab, target),
            Some(403),
            "CreatePermission {target}"
        );
        assert_eq!(
            a.bind(&mut lab, 0x4000, target),
            Some(403),
            "ChannelBind {target}"
        );
    }
    // A permission for the server's address on another port (the allow list
    // covers it) still lets nothing reach its sockets.
    assert_eq!(a.permit(&mut lab, peer("203.0.113.1:7000")), None);
    for target in [relay_a, relay_b, listener] {
        assert!(
            a.send_indication(&mut lab, target, b"loop").is_empty(),
            "Send to {target}"
        );
    }
    assert_eq!(
        a.send_indication(&mut lab, peer("203.0.113.1:7000"), b"ok")
            .len(),
        1
    );
}

/// docs/turn.md: port 0 is refused on CreatePermission as on ChannelBind.
#[test]
fn a_permission_or_channel_to_port_zero_gets_403() {
    let mut config = config();
    config.policy = open_policy();
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    assert_eq!(c.permit(&mut lab, peer("8.8.8.8:0")), Some(403));
    assert_eq!(c.bind(&mut lab, 0x4000, peer("8.8.8.8:0")), Some(403));
    assert_eq!(c.permit(&mut lab, peer("8.8.8.8:9")), None);
}

#[test]
fn send_to_a_denied_peer_is_dropped_even_with_a_permission_for_its_ip() {
    // The SFU at 127.0.0.1:10000 is always reachable, but only on that port.
    let mut config = config();
    config.policy = PeerPolicy {
        allow: Vec::new(),
        always: vec![peer("127.0.0.1:10000")],
        ..Default::default()
    };
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c.allocate(&mut lab, &[]).unwrap();
    assert_eq!(c.permit(&mut lab, peer("127.0.0.1:10000")), None);
    assert_eq!(
        c.send_indication(&mut lab, peer("127.0.0.1:10000"), b"media")
            .len(),
        1
    );
    assert!(
        c.send_indication(&mut lab, peer("127.0.0.1:22"), b"ssh?")
            .is_empty()
    );
    assert!(
        c.send_indication(&mut lab, peer("[::ffff:127.0.0.1]:22"), b"ssh?")
            .is_empty()
    );
    assert_eq!(c.bind(&mut lab, 0x4000, peer("127.0.0.1:22")), Some(403));
    assert_eq!(c.bind(&mut lab, 0x4000, peer("127.0.0.1:10000")), None);
    let _ = relay;
}

#[test]
fn allow_lists_open_on_premises_networks() {
    let mut config = config();
    config.policy = PeerPolicy {
        allow: vec!["10.1.0.0/16".parse().unwrap()],
        always: Vec::new(),
        ..Default::default()
    };
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    assert_eq!(c.permit(&mut lab, peer("10.1.2.3:9")), None);
    assert_eq!(c.permit(&mut lab, peer("10.2.0.1:9")), Some(403));
}

#[test]
fn quotas_refuse_with_486_and_a_full_port_range_with_508() {
    let mut config = config();
    config.max_allocations_per_user = 2;
    let mut lab = Lab::with(config, 3);
    let mut clients: Vec<Client> = (1..=4)
        .map(|n| Client::new(udp_client(n), "alice", "wonderland"))
        .collect();
    assert!(clients[0].allocate(&mut lab, &[]).is_ok());
    assert!(clients[1].allocate(&mut lab, &[]).is_ok());
    assert_eq!(clients[2].allocate(&mut lab, &[]), Err(486), "per user");
    let mut b = Client::new(udp_client(5), "bob", "builder");
    assert!(b.allocate(&mut lab, &[]).is_ok());
    let mut b2 = Client::new(udp_client(6), "bob", "builder");
    assert_eq!(b2.allocate(&mut lab, &[]), Err(486), "in total");
    // Freeing one makes room again.
    assert_eq!(clients[0].refresh(&mut lab, Some(0)), Ok(0));
    assert!(b2.allocate(&mut lab, &[]).is_ok());

    let mut lab = Lab::new();
    lab.ports.busy.insert(0);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    assert_eq!(c.allocate(&mut lab, &[]), Err(508));
    assert_eq!(lab.server.metrics().quota_refusals, 1);
}

#[test]
fn even_port_and_dont_fragment_are_honoured() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    let relay = c
        .allocate(&mut lab, &[&EvenPort { reserve: false }, &DontFragment])
        .unwrap();
    assert_eq!(relay.port() % 2, 0);
    assert_eq!(lab.ports.dont_fragment, vec![relay]);
}

#[test]
fn unauthenticated_floods_are_cut_off_per_address() {
    let mut lab = Lab::new();
    let c = Client::new(udp_client(1), "alice", "wonderland");
    let request = c.build(BINDING, &[]);
    let answered = (0..300)
        .filter(|_| !lab.send(c.tuple, &request).is_empty())
        .count();
    assert_eq!(answered, 200, "the burst, then silence");
    // 401 challenges count against the same budget.
    let challenge = c.build(ALLOCATE, &[&RequestedTransport(17)]);
    assert!(lab.send(c.tuple, &challenge).is_empty());
    // Another address is unaffected; and after a while this one is served again.
    let other = Client::new(udp_client(2), "alice", "wonderland");
    assert_eq!(lab.send(other.tuple, &request).len(), 1);
    lab.advance(Duration::from_secs(1));
    assert!(!lab.send(c.tuple, &request).is_empty());
    assert!(lab.server.metrics().rate_limited >= 100);
}

#[test]
fn bandwidth_per_allocation_is_enforced() {
    let mut config = config();
    config.policy = open_policy();
    config.bandwidth = Some(10_000);
    let mut lab = Lab::with(config, 10);
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    let p = peer("192.0.2.9:9");
    c.bind(&mut lab, 0x4000, p);
    let mut frame = ChannelData::header(0x4000, 1000).to_vec();
    frame.extend_from_slice(&[7; 1000]);
    let sent = (0..20)
        .filter(|_| !lab.send(c.tuple, &frame).is_empty())
        .count();
    assert_eq!(sent, 10, "10 kB/s allows ten 1000-byte datagrams at once");
    lab.now += Duration::from_millis(500);
    let sent = (0..20)
        .filter(|_| !lab.send(c.tuple, &frame).is_empty())
        .count();
    assert_eq!(sent, 5);
}

#[test]
fn garbage_gets_no_answer() {
    let mut lab = Lab::new();
    let tuple = udp_client(1);
    for junk in [
        &b""[..],
        b"\x00",
        b"\x00\x01\x00\x00",
        b"GET / HTTP/1.1\r\n",
        &[0xff; 40],
        &[0x40, 0x00, 0xff, 0xff],
    ] {
        assert!(lab.send(tuple, junk).is_empty(), "{junk:?}");
    }
    // A valid message with a corrupted fingerprint.
    let c = Client::new(tuple, "alice", "wonderland");
    let mut bytes = c.build(BINDING, &[]);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(lab.send(tuple, &bytes).is_empty());
}

#[test]
fn responses_are_signed_with_the_requesters_key() {
    let mut lab = Lab::new();
    let mut c = Client::new(udp_client(1), "alice", "wonderland");
    c.allocate(&mut lab, &[]).unwrap();
    let reply = lab.request(c.tuple, &c.build(REFRESH, &[&Lifetime(600)]));
    let msg = Message::from_bytes(&reply).unwrap();
    c.check_integrity(&msg);
    // Errors for authenticated requests are signed too (437 here).
    lab.server.handle_client_closed(&c.tuple, &mut lab.ports);
    let reply = lab.request(c.tuple, &c.build(REFRESH, &[]));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(error_code(&msg), Some(437));
    c.check_integrity(&msg);
}
