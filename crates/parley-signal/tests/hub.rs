//! The hub's signaling behaviour, on a virtual clock, without any network.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod harness;

use std::time::{Duration, Instant};

use harness::{Harness, config, connect_signed_in};

use parley_signal::{ConnId, ErrorCode, Hub, HubOutput, LeaveReason, RoomPolicy, ServerMessage};

#[test]
fn joining_lists_those_present_and_announces_the_newcomer() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    let ada = h.join(a, "standup", "Ada");

    h.send(
        b,
        r#"{"type":"join","version":1,"room":"Standup","name":" Grace ","camera":false}"#,
    );
    let out = h.drain();
    let joined = out
        .iter()
        .find_map(|(c, m)| match m {
            ServerMessage::Joined {
                room,
                me,
                participants,
                ..
            } if *c == b => Some((room.clone(), me.clone(), participants.clone())),
            _ => None,
        })
        .expect("joined");
    assert_eq!(joined.0, "standup", "room names fold case");
    assert_eq!(joined.1.name, "Grace");
    assert!(!joined.1.camera);
    assert_eq!(joined.2.len(), 1);
    assert_eq!(joined.2[0].id, ada);

    let announced = out.iter().any(|(c, m)| {
        *c == a
            && matches!(m, ServerMessage::ParticipantJoined { participant } if participant.name == "Grace")
    });
    assert!(announced, "{out:?}");
}

#[test]
fn media_state_changes_reach_the_others_only() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    let ada = h.join(a, "r", "Ada");
    h.join(b, "r", "Grace");
    h.drain();

    h.send(a, r#"{"type":"media","camera":false}"#);
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    let (to, ServerMessage::ParticipantUpdated { participant }) = &out[0] else {
        panic!("{out:?}");
    };
    assert_eq!(*to, b);
    assert_eq!(participant.id, ada);
    assert!(!participant.camera);
    assert!(participant.mic, "an absent field keeps its value");

    // No change, no message.
    h.send(a, r#"{"type":"media","camera":false}"#);
    assert!(h.drain().is_empty());
}

#[test]
fn leaving_and_disconnecting_are_announced_with_the_reason() {
    let mut h = Harness::new();
    let (a, b, c) = (h.connect(1), h.connect(2), h.connect(3));
    h.join(a, "r", "Ada");
    let grace = h.join(b, "r", "Grace");
    let lin = h.join(c, "r", "Lin");
    h.drain();

    h.send(b, r#"{"type":"leave"}"#);
    let out = h.drain();
    assert!(out.contains(&(b, ServerMessage::Left)));
    assert!(out.contains(&(
        a,
        ServerMessage::ParticipantLeft {
            id: grace.clone(),
            reason: LeaveReason::Left
        }
    )));

    // A dropped connection keeps its place for the grace period ...
    h.hub.handle_disconnect(h.now, c);
    let out = h.drain();
    assert!(
        matches!(&out[..], [(to, ServerMessage::ParticipantUpdated { participant })]
            if *to == a && participant.id == lin && participant.reconnecting),
        "{out:?}"
    );
    assert_eq!(h.hub.participant_count(), 2);
    h.now += Duration::from_secs(29);
    h.send(a, r#"{"type":"ping"}"#);
    h.send(b, r#"{"type":"ping"}"#);
    h.hub.handle_timeout(h.now);
    let leaves = |out: Vec<(ConnId, ServerMessage)>| {
        out.into_iter()
            .filter(|(_, m)| matches!(m, ServerMessage::ParticipantLeft { .. }))
            .collect::<Vec<_>>()
    };
    assert!(leaves(h.drain()).is_empty());
    // ... and leaves when it ends.
    h.now += Duration::from_secs(1);
    h.send(a, r#"{"type":"ping"}"#);
    h.hub.handle_timeout(h.now);
    let out = leaves(h.drain());
    assert_eq!(
        out,
        vec![(
            a,
            ServerMessage::ParticipantLeft {
                id: lin,
                reason: LeaveReason::Disconnected
            }
        )]
    );
    assert_eq!(h.hub.participant_count(), 1);

    // The connection that left may join again.
    h.join(b, "r", "Grace");
    assert_eq!(h.hub.participant_count(), 2);
}

#[test]
fn a_silent_connection_is_closed_and_its_participant_leaves_after_the_grace_period() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    h.join(a, "r", "Ada");
    let grace = h.join(b, "r", "Grace");
    h.drain();

    // Ada keeps talking, Grace goes quiet.
    for _ in 0..5 {
        h.advance(Duration::from_secs(7));
        h.hub.handle_activity(h.now, a);
    }
    let out: Vec<HubOutput> = std::iter::from_fn(|| h.hub.poll_output()).collect();
    assert!(out.contains(&HubOutput::Close {
        conn: b,
        reason: "idle timeout"
    }));
    // A silent connection is a dropped network: the place is kept for the
    // grace period, shown as reconnecting ...
    assert!(out.iter().any(|o| matches!(o,
        HubOutput::Send { conn, message: ServerMessage::ParticipantUpdated { participant } }
            if *conn == a && participant.id == grace && participant.reconnecting)));
    assert!(
        !out.iter()
            .any(|o| matches!(o, HubOutput::Close { conn, .. } if *conn == a))
    );
    assert_eq!(h.hub.participant_count(), 2);
    // ... and given up when it ends.
    for _ in 0..5 {
        h.advance(Duration::from_secs(7));
        h.hub.handle_activity(h.now, a);
    }
    let out: Vec<HubOutput> = std::iter::from_fn(|| h.hub.poll_output()).collect();
    assert!(out.contains(&HubOutput::Send {
        conn: a,
        message: ServerMessage::ParticipantLeft {
            id: grace,
            reason: LeaveReason::Disconnected
        }
    }));
    assert_eq!(h.hub.participant_count(), 1);
}

#[test]
fn the_timeout_is_reported_for_the_driver() {
    let mut h = Harness::new();
    let a = h.connect(1);
    let deadline = h.hub.poll_timeout().expect("idle deadline");
    assert!(deadline <= h.now + Duration::from_secs(30));
    h.now += Duration::from_secs(10);
    h.hub.handle_activity(h.now, a);
    assert!(h.hub.poll_timeout().unwrap() > deadline);
}

#[test]
fn rooms_are_opened_and_closed_for_the_store() {
    let mut h = Harness::new();
    let a = h.connect(1);
    h.send(
        a,
        r#"{"type":"join","version":1,"room":"team","name":"Ada"}"#,
    );
    let out: Vec<HubOutput> = std::iter::from_fn(|| h.hub.poll_output()).collect();
    assert!(
        out.iter()
            .any(|o| matches!(o, HubOutput::RoomOpened { room } if room.as_str() == "team"))
    );
    h.send(a, r#"{"type":"leave"}"#);
    let out: Vec<HubOutput> = std::iter::from_fn(|| h.hub.poll_output()).collect();
    assert!(
        out.iter()
            .any(|o| matches!(o, HubOutput::RoomClosed { room } if room.as_str() == "team"))
    );
    assert!(h.hub.room_names().is_empty());
}

#[test]
fn a_full_room_refuses_the_next_joiner() {
    let mut h = Harness::with_limit(2);
    let (a, b, c) = (h.connect(1), h.connect(2), h.connect(3));
    h.join(a, "r", "Ada");
    h.join(b, "r", "Grace");
    h.drain();
    let code = h.error_code(c, r#"{"type":"join","version":1,"room":"r","name":"Lin"}"#);
    assert_eq!(code, ErrorCode::RoomFull);
    // Another room is fine.
    h.join(c, "other", "Lin");
}

#[test]
fn malformed_messages_get_errors_and_the_room_survives() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    h.join(a, "r", "Ada");
    h.join(b, "r", "Grace");
    h.drain();

    let cases: &[(&str, ErrorCode)] = &[
        ("", ErrorCode::BadJson),
        ("{", ErrorCode::BadJson),
        ("null", ErrorCode::BadJson),
        ("{\"type\":\"join\"", ErrorCode::BadJson),
        (r#"{"kind":"join"}"#, ErrorCode::UnknownType),
        (r#"{"type":"shout"}"#, ErrorCode::UnknownType),
        (r#"{"type":"offer"}"#, ErrorCode::BadField),
        (
            r#"{"type":"offer","pc":"subscribe","sdp":"v=0"}"#,
            ErrorCode::BadField,
        ),
        (
            r#"{"type":"answer","pc":"publish","sdp":"v=0"}"#,
            ErrorCode::BadField,
        ),
        (
            r#"{"type":"offer","pc":"publish","sdp":"this is not sdp"}"#,
            ErrorCode::SdpRejected,
        ),
        (
            // The subscribe offer made at join is outstanding; this answers nothing.
            r#"{"type":"answer","pc":"subscribe","sdp":"v=0"}"#,
            ErrorCode::SdpRejected,
        ),
        (
            r#"{"type":"candidate","pc":"publish","candidate":"candidate:garbage"}"#,
            ErrorCode::BadCandidate,
        ),
        (
            r#"{"type":"candidate","pc":"upward","candidate":""}"#,
            ErrorCode::BadField,
        ),
        (r#"{"type":"media","mic":1}"#, ErrorCode::BadField),
        (
            r#"{"type":"join","version":1,"room":"r","name":"Ada"}"#,
            ErrorCode::AlreadyJoined,
        ),
    ];
    for (text, code) in cases {
        assert_eq!(h.error_code(a, text), *code, "for {text:?}");
    }
    h.hub.handle_binary(h.now, a);
    assert!(matches!(
        h.messages_to(a).as_slice(),
        [ServerMessage::Error {
            code: ErrorCode::BadJson,
            ..
        }]
    ));

    // Ada is still in the room and still heard.
    assert_eq!(h.hub.participant_count(), 2);
    h.send(a, r#"{"type":"media","mic":false}"#);
    assert!(matches!(
        h.messages_to(b).as_slice(),
        [ServerMessage::ParticipantUpdated { .. }]
    ));
    // A harmless mDNS candidate and end-of-candidates are accepted silently.
    h.send(a, r#"{"type":"candidate","pc":"publish","candidate":"candidate:1 1 udp 2122260223 3f1c0b7e-0000-4000-8000-000000000000.local 54400 typ host"}"#);
    h.send(a, r#"{"type":"candidate","pc":"subscribe","candidate":""}"#);
    assert!(h.messages_to(a).is_empty());
}

#[test]
fn messages_out_of_order_are_refused() {
    let mut h = Harness::new();
    let a = h.connect(1);
    for text in [
        r#"{"type":"offer","pc":"publish","sdp":"v=0"}"#,
        r#"{"type":"answer","pc":"subscribe","sdp":"v=0"}"#,
        r#"{"type":"candidate","pc":"publish","candidate":""}"#,
        r#"{"type":"media","mic":false}"#,
        r#"{"type":"leave"}"#,
    ] {
        assert_eq!(h.error_code(a, text), ErrorCode::NotJoined, "for {text}");
    }
    h.join(a, "r", "Ada");
}

#[test]
fn bad_join_fields_are_named() {
    let mut h = Harness::new();
    let a = h.connect(1);
    h.send(
        a,
        r#"{"type":"join","version":1,"room":"no spaces","name":"Ada"}"#,
    );
    let msgs = h.messages_to(a);
    let [
        ServerMessage::Error {
            code,
            message,
            in_reply_to,
        },
    ] = msgs.as_slice()
    else {
        panic!("{msgs:?}");
    };
    assert_eq!(*code, ErrorCode::BadField);
    assert!(message.contains("room"), "{message}");
    assert_eq!(in_reply_to.as_deref(), Some("join"));

    assert_eq!(
        h.error_code(a, r#"{"type":"join","version":1,"room":"ok","name":"   "}"#),
        ErrorCode::BadField
    );
    assert_eq!(
        h.error_code(a, r#"{"type":"join","version":2,"room":"ok","name":"Ada"}"#),
        ErrorCode::UnsupportedVersion
    );
    // Still free to join properly.
    h.join(a, "ok", "Ada");
}

#[test]
fn oversized_and_flooding_messages_are_dropped_with_an_error() {
    let mut h = Harness::new();
    let a = h.connect(1);
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70_000));
    assert_eq!(h.error_code(a, &big), ErrorCode::TooLarge);

    // A burst of 100 is fine, the 101st at the same instant is not.
    for _ in 0..99 {
        h.send(a, r#"{"type":"ping"}"#);
    }
    assert_eq!(h.messages_to(a).len(), 99);
    assert_eq!(
        h.error_code(a, r#"{"type":"ping"}"#),
        ErrorCode::RateLimited
    );
    // After a second the connection may speak again.
    h.now += Duration::from_secs(1);
    h.send(a, r#"{"type":"ping"}"#);
    assert_eq!(h.messages_to(a), vec![ServerMessage::Pong]);
}

#[test]
fn participant_ids_are_unique_and_not_sequential() {
    let mut h = Harness::new();
    let mut ids = Vec::new();
    for n in 0..20 {
        let c = h.connect(n);
        ids.push(h.join(c, "big", &format!("P{n}")));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert_ne!(sorted, ids, "ids should not come out in order");
}

#[test]
fn each_participant_gets_its_own_ice_servers() {
    let mut config = config(42);
    config.ice_servers = std::sync::Arc::new(|participant: &str| parley_signal::IceConfig {
        servers: vec![parley_signal::IceServer {
            urls: vec!["turn:203.0.113.1:3478?transport=udp".into()],
            username: Some(format!("1800000000:{participant}")),
            credential: Some("minted".into()),
        }],
        policy: parley_signal::IceTransportPolicy::Relay,
    });
    let mut h = Harness {
        hub: Hub::new(config),
        now: Instant::now(),
    };
    let a = h.connect(1);
    h.send(a, r#"{"type":"join","version":1,"room":"r","name":"Ada"}"#);
    let joined = h.messages_to(a).into_iter().find_map(|m| match m {
        ServerMessage::Joined {
            me,
            ice_servers,
            ice_transport_policy,
            ..
        } => Some((me, ice_servers, ice_transport_policy)),
        _ => None,
    });
    let (me, servers, policy) = joined.expect("joined");
    assert_eq!(policy, parley_signal::IceTransportPolicy::Relay);
    assert_eq!(servers.len(), 1);
    assert_eq!(
        servers[0].username.as_deref(),
        Some(format!("1800000000:{}", me.id).as_str())
    );
}

#[test]
fn reactions_from_the_allowed_list_reach_everyone_others_are_refused() {
    let mut h = Harness::new();
    h.hub.set_room_policy(RoomPolicy {
        reactions: vec!["🎉".into(), "👍🏽".into()],
        ..RoomPolicy::default()
    });
    let (a, b) = (h.connect(1), h.connect(2));
    let ada = h.join(a, "r", "Ada");
    h.send(
        b,
        r#"{"type":"join","version":1,"room":"r","name":"Grace"}"#,
    );
    let joined = h.messages_to(b).into_iter().find_map(|m| match m {
        ServerMessage::Joined { reactions, .. } => Some(reactions),
        _ => None,
    });
    assert_eq!(joined.expect("joined"), vec!["🎉", "👍🏽"]);

    h.send(a, r#"{"type":"reaction","emoji":"👍🏽"}"#);
    let out = h.drain();
    for conn in [a, b] {
        assert!(
            out.iter().any(|(c, m)| *c == conn
                && *m
                    == ServerMessage::Reaction {
                        participant: ada.clone(),
                        emoji: "👍🏽".into()
                    }),
            "{conn:?} missed the reaction: {out:?}"
        );
    }

    h.send(a, r#"{"type":"reaction","emoji":"💩"}"#);
    let out = h.drain();
    assert_eq!(out.len(), 1, "only the sender hears of it: {out:?}");
    match &out[0] {
        (
            c,
            ServerMessage::Error {
                code,
                message,
                in_reply_to,
            },
        ) => {
            assert_eq!(*c, a);
            assert_eq!(*code, ErrorCode::ReactionNotAllowed);
            assert!(
                message.contains("💩") && message.contains("🎉"),
                "{message}"
            );
            assert_eq!(in_reply_to.as_deref(), Some("reaction"));
        }
        other => panic!("{other:?}"),
    }

    let c = h.connect(3);
    assert_eq!(
        h.error_code(c, r#"{"type":"reaction","emoji":"🎉"}"#),
        ErrorCode::NotJoined
    );
    h.hub.set_room_policy(RoomPolicy {
        reactions: Vec::new(),
        ..RoomPolicy::default()
    });
    let told = h.drain();
    for conn in [a, b] {
        assert!(
            told.contains(&(
                conn,
                ServerMessage::RoomSettings {
                    reactions: Vec::new()
                }
            )),
            "{conn:?} was told of the new list: {told:?}"
        );
    }
    assert_eq!(
        h.error_code(a, r#"{"type":"reaction","emoji":"🎉"}"#),
        ErrorCode::ReactionNotAllowed
    );
}

#[test]
fn room_settings_apply_to_the_next_join() {
    let mut h = Harness::new();
    let (a, b, c) = (h.connect(1), h.connect(2), h.connect(3));
    h.join(a, "r", "Ada");
    h.join(b, "r", "Grace");
    h.hub.set_room_policy(RoomPolicy {
        max_members: 2,
        ..RoomPolicy::default()
    });
    assert_eq!(
        h.error_code(
            c,
            r#"{"type":"join","version":1,"room":"r","name":"Linus"}"#
        ),
        ErrorCode::RoomFull
    );
    assert_eq!(h.hub.participant_count(), 2, "nobody present was removed");
    h.hub.set_room_policy(RoomPolicy {
        enabled: false,
        ..RoomPolicy::default()
    });
    assert_eq!(
        h.error_code(
            c,
            r#"{"type":"join","version":1,"room":"other","name":"Linus"}"#
        ),
        ErrorCode::ConferencingDisabled
    );
    h.hub.set_room_policy(RoomPolicy::default());
    h.join(c, "r", "Linus");
}

#[test]
fn media_paths_reach_moderators_and_the_administrator_and_bad_ones_are_refused() {
    let mut h = Harness::new();
    let a = connect_signed_in(&mut h, 1);
    let (b, c) = (h.connect(2), h.connect(3));
    h.join(a, "r", "Ada");
    let grace = h.join(b, "r", "Grace");
    h.join(c, "r", "Lin");
    h.drain();

    h.send(
        b,
        r#"{"type":"connection","path":"turn_tls","rtt_ms":42,"loss_permille":5}"#,
    );
    let out = h.drain();
    let stats: Vec<_> = out
        .iter()
        .filter(|(_, m)| matches!(m, ServerMessage::ConnectionStats { .. }))
        .collect();
    assert_eq!(
        stats,
        vec![&(
            a,
            ServerMessage::ConnectionStats {
                participant: grace.clone(),
                path: parley_signal::MediaPath::TurnTls,
                rtt_ms: 42,
                loss_permille: 5
            }
        )],
        "only the moderator hears it"
    );
    let rooms = h.hub.rooms();
    let (_, members) = &rooms[0];
    let reported: Vec<_> = members
        .iter()
        .map(|(info, path)| (info.name.clone(), path.map(|p| p.path)))
        .collect();
    assert!(reported.contains(&("Grace".into(), Some(parley_signal::MediaPath::TurnTls))));
    assert!(reported.contains(&("Lin".into(), None)));

    for bad in [
        r#"{"type":"connection","path":"carrier_pigeon"}"#,
        r#"{"type":"connection","path":"udp","rtt_ms":60001}"#,
        r#"{"type":"connection","path":"udp","loss_permille":1001}"#,
    ] {
        assert_eq!(h.error_code(c, bad), ErrorCode::BadField, "{bad}");
    }
}
