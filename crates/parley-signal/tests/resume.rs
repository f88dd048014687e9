//! A participant whose connection dropped takes its place again with
//! `resume`, on a virtual clock: the token, the grace period, the old
//! connection closed, and a farewell for one removed meanwhile.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod harness;

use std::time::Duration;

use harness::{Harness, connect_signed_in};
use parley_signal::{ConnId, ErrorCode, HubOutput, LeaveReason, ServerMessage};

/// Joins `room` as `name` on `conn`: the participant id and resume token.
fn join_with_token(h: &mut Harness, conn: ConnId, room: &str, name: &str) -> (String, String) {
    h.send(
        conn,
        &format!(r#"{{"type":"join","version":1,"room":"{room}","name":"{name}"}}"#),
    );
    h.messages_to(conn)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::Joined {
                me, resume_token, ..
            } => Some((me.id, resume_token)),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_dropped_connection_resumes_its_place_on_a_new_one_and_nobody_sees_it_leave() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    h.join(a, "r", "Ada");
    let (grace, token) = join_with_token(&mut h, b, "r", "Grace");
    assert!(
        token.starts_with("token-"),
        "the token comes from the configured source: {token}"
    );

    h.hub.handle_disconnect(h.now, b);
    h.drain();
    h.now += Duration::from_secs(20);
    h.hub.handle_timeout(h.now);
    let b2 = h.connect(3);
    h.send(
        b2,
        &format!(r#"{{"type":"resume","participant":"{grace}","token":"{token}"}}"#),
    );
    let out = h.drain();
    let to_b2: Vec<_> = out
        .iter()
        .filter(|(c, _)| *c == b2)
        .map(|(_, m)| m)
        .collect();
    assert!(
        matches!(to_b2[0], ServerMessage::Joined { me, participants, resumed: true, .. }
            if me.id == grace && !me.reconnecting && participants.len() == 1),
        "{to_b2:?}"
    );
    assert!(
        to_b2
            .iter()
            .any(|m| matches!(m, ServerMessage::Offer { renew: true, .. })),
        "a renewed subscribe offer follows: {to_b2:?}"
    );
    // (Ada's own subscribe offer went unanswered in this media-less test
    // and was renewed meanwhile; only what concerns Grace counts here.)
    let to_a: Vec<_> = out
        .iter()
        .filter(|(c, m)| *c == a && !matches!(m, ServerMessage::Offer { .. }))
        .map(|(_, m)| m)
        .collect();
    assert!(
        matches!(&to_a[..], [ServerMessage::ParticipantUpdated { participant }]
            if participant.id == grace && !participant.reconnecting),
        "{to_a:?}"
    );
    // Long after the first grace period would have ended, still there.
    for _ in 0..6 {
        h.now += Duration::from_secs(10);
        h.send(a, r#"{"type":"ping"}"#);
        h.send(b2, r#"{"type":"ping"}"#);
        h.hub.handle_timeout(h.now);
    }
    assert!(
        !h.drain()
            .iter()
            .any(|(_, m)| matches!(m, ServerMessage::ParticipantLeft { .. }))
    );
    assert_eq!(h.hub.participant_count(), 2);
}

#[test]
fn resume_needs_the_token_and_the_grace_period() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    h.join(a, "r", "Ada");
    let grace = h.join(b, "r", "Grace");
    h.hub.handle_disconnect(h.now, b);
    h.drain();
    let b2 = h.connect(3);
    let wrong = format!(
        r#"{{"type":"resume","participant":"{grace}","token":"{}"}}"#,
        "0".repeat(32)
    );
    assert_eq!(h.error_code(b2, &wrong), ErrorCode::ResumeFailed);
    let nobody = r#"{"type":"resume","participant":"nobody","token":"x"}"#;
    assert_eq!(h.error_code(b2, nobody), ErrorCode::ResumeFailed);
    // A member cannot be resumed from a connection that is in a room already.
    let ada_id = {
        let c = h.connect(4);
        h.join(c, "r", "Lin")
    };
    let c = ConnId(4);
    let again = format!(r#"{{"type":"resume","participant":"{ada_id}","token":"x"}}"#);
    assert_eq!(h.error_code(c, &again), ErrorCode::AlreadyJoined);

    h.now += Duration::from_secs(20);
    h.send(a, r#"{"type":"ping"}"#);
    h.now += Duration::from_secs(11);
    h.hub.handle_timeout(h.now);
    assert!(h.drain().iter().any(|(to, m)| *to == a
        && matches!(m, ServerMessage::ParticipantLeft { id, .. } if *id == grace)));
}

#[test]
fn resuming_while_the_old_connection_still_looks_open_closes_it() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    h.join(a, "r", "Ada");
    let (grace, token) = join_with_token(&mut h, b, "r", "Grace");
    // The client moved networks; the server has not seen the old socket drop.
    let b2 = h.connect(3);
    h.send(
        b2,
        &format!(r#"{{"type":"resume","participant":"{grace}","token":"{token}"}}"#),
    );
    let mut closed = false;
    while let Some(o) = h.hub.poll_output() {
        if let HubOutput::Close { conn, .. } = o {
            closed |= conn == b;
        }
    }
    assert!(closed, "the old connection is closed");
    // Its late disconnect changes nothing.
    h.hub.handle_disconnect(h.now, b);
    assert!(h.drain().is_empty());
    assert_eq!(h.hub.participant_count(), 2);
}

#[test]
fn a_participant_removed_while_away_hears_it_on_resume_instead_of_coming_back() {
    let mut h = Harness::new();
    // Ada signs in, so she owns the room and moderates it.
    let a = connect_signed_in(&mut h, 1);
    let b = h.connect(2);
    h.join(a, "r", "Ada");
    let (grace, token) = join_with_token(&mut h, b, "r", "Grace");
    h.hub.handle_disconnect(h.now, b);
    h.send(
        a,
        &format!(r#"{{"type":"moderate","action":"remove","participant":"{grace}"}}"#),
    );
    h.drain();
    let b2 = h.connect(3);
    h.send(
        b2,
        &format!(r#"{{"type":"resume","participant":"{grace}","token":"{token}"}}"#),
    );
    let to_b2 = h.messages_to(b2);
    assert!(
        matches!(
            &to_b2[..],
            [
                ServerMessage::Removed {
                    reason: LeaveReason::Removed,
                    ..
                },
                ServerMessage::Error {
                    code: ErrorCode::ResumeFailed,
                    ..
                }
            ]
        ),
        "{to_b2:?}"
    );
    assert_eq!(h.hub.participant_count(), 1);
}
