//! Presence and one-to-one calls on a virtual clock: ringing every page of
//! the callee, answering on one, declining, do-not-disturb, busy, the ring
//! timeout, the domain rule, and the end of a call when one side leaves.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod harness;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use parley_signal::{
    Account, CallEndReason, ConnId, ConnMeta, Hub, HubOutput, PresenceStatus, ServerMessage,
};

const ADA: i64 = 1;
const BEA: i64 = 2;
const CY: i64 = 3;

struct World {
    hub: Hub,
    now: Instant,
    sent: Vec<(ConnId, ServerMessage)>,
}

impl World {
    fn new(all_domains: bool) -> Self {
        let mut config = harness::config(9);
        config.rooms.buddies_all_domains = all_domains;
        World {
            hub: Hub::new(config),
            now: Instant::now(),
            sent: Vec::new(),
        }
    }

    fn page(&mut self, n: u64, account: i64, domain: &str) -> ConnId {
        let conn = ConnId(n);
        let meta = ConnMeta {
            ip: Some(IpAddr::from([10, 0, 0, n as u8])),
            account: Some(Account {
                id: account,
                name: format!("user{account}"),
                domain: domain.into(),
            }),
        };
        self.hub.handle_connect_as(self.now, conn, meta);
        self.pump();
        conn
    }

    fn pump(&mut self) {
        while let Some(o) = self.hub.poll_output() {
            if let HubOutput::Send { conn, message } = o {
                self.sent.push((conn, message));
            }
        }
    }

    fn send(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, conn, text);
        self.pump();
    }

    fn take(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        let (mine, rest) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.sent = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    fn incoming(&mut self, conn: ConnId) -> Option<u64> {
        self.take(conn).into_iter().find_map(|m| match m {
            ServerMessage::IncomingCall { call_id, from, .. } => {
                assert_eq!(from.name, "user1");
                Some(call_id)
            }
            _ => None,
        })
    }

    fn ended(&mut self, conn: ConnId) -> Option<CallEndReason> {
        self.take(conn).into_iter().find_map(|m| match m {
            ServerMessage::CallEnded { reason, .. } => Some(reason),
            _ => None,
        })
    }

    fn accepted(&mut self, conn: ConnId) -> Option<String> {
        self.take(conn).into_iter().find_map(|m| match m {
            ServerMessage::CallAccepted { room, .. } => Some(room),
            _ => None,
        })
    }

    fn join(&mut self, conn: ConnId, room: &str) {
        self.send(
            conn,
            &format!(r#"{{"type":"join","version":1,"room":"{room}","name":"x"}}"#),
        );
    }
}

#[test]
fn answering_on_one_page_stops_the_others_and_leaving_ends_the_call() {
    let mut w = World::new(false);
    let ada = w.page(1, ADA, "example.org");
    let bea1 = w.page(2, BEA, "example.org");
    let bea2 = w.page(3, BEA, "example.org");
    w.take(ada);
    w.send(
        ada,
        &format!(r#"{{"type":"call","to":{BEA},"video":true}}"#),
    );
    let call = w.incoming(bea1).expect("first page rings");
    assert_eq!(w.incoming(bea2), Some(call), "second page rings too");
    assert!(
        w.take(ada)
            .iter()
            .any(|m| matches!(m, ServerMessage::CallRinging { .. }))
    );
    assert_eq!(
        w.hub.presence_of(ADA),
        PresenceStatus::Busy,
        "a caller is busy"
    );

    w.send(
        bea1,
        &format!(r#"{{"type":"call_answer","call_id":{call}}}"#),
    );
    let room = w.accepted(ada).expect("the caller is told");
    assert_eq!(
        w.accepted(bea1),
        Some(room.clone()),
        "the answering page too"
    );
    assert_eq!(w.ended(bea2), Some(CallEndReason::AnsweredElsewhere));
    assert!(room.starts_with("call-") && room.len() > 16, "{room}");

    // Both join the call's room (as the call pages do); Ada hangs up.
    let ada_room = w.page(4, ADA, "example.org");
    let bea_room = w.page(5, BEA, "example.org");
    w.join(ada_room, &room);
    w.join(bea_room, &room);
    assert_eq!(
        w.hub.presence_of(BEA),
        PresenceStatus::Busy,
        "in a call is busy"
    );
    w.take(bea_room);
    w.send(ada_room, r#"{"type":"leave"}"#);
    assert_eq!(w.ended(bea_room), Some(CallEndReason::HungUp));
}

#[test]
fn declined_dnd_busy_and_unanswered_calls_say_why() {
    let mut w = World::new(false);
    let ada = w.page(1, ADA, "example.org");
    let bea = w.page(2, BEA, "example.org");

    w.send(ada, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    let call = w.incoming(bea).unwrap();
    w.send(
        bea,
        &format!(r#"{{"type":"call_decline","call_id":{call}}}"#),
    );
    assert_eq!(w.ended(ada), Some(CallEndReason::Declined));

    // Do-not-disturb: the caller is told at once, the callee never rings.
    w.send(bea, r#"{"type":"presence","status":"dnd"}"#);
    w.take(bea);
    w.send(ada, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    assert_eq!(w.ended(ada), Some(CallEndReason::Dnd));
    assert!(w.take(bea).is_empty(), "a dnd callee is not rung");
    w.send(bea, r#"{"type":"presence","status":"available"}"#);

    // Busy in a meeting.
    let bea_room = w.page(3, BEA, "example.org");
    w.join(bea_room, "standup");
    w.send(ada, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    assert_eq!(w.ended(ada), Some(CallEndReason::Busy));
    w.send(bea_room, r#"{"type":"leave"}"#);

    // Nobody answers: both sides hear "no answer" after the ring timeout.
    w.take(bea);
    w.send(ada, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    assert!(w.incoming(bea).is_some());
    // (Pages answer the server's pings, so they are not idle.)
    w.now += Duration::from_secs(29);
    for c in [ada, bea, bea_room] {
        w.hub.handle_activity(w.now, c);
    }
    w.hub.handle_timeout(w.now);
    w.pump();
    assert_eq!(w.ended(ada), None);
    w.now += Duration::from_secs(2);
    for c in [ada, bea, bea_room] {
        w.hub.handle_activity(w.now, c);
    }
    w.hub.handle_timeout(w.now);
    w.pump();
    assert_eq!(w.ended(ada), Some(CallEndReason::NoAnswer));
    assert_eq!(w.ended(bea), Some(CallEndReason::NoAnswer));

    // The caller closes the page while ringing: the callee stops ringing.
    w.send(ada, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    assert!(w.incoming(bea).is_some());
    w.hub.handle_disconnect(w.now, ada);
    w.pump();
    assert_eq!(w.ended(bea), Some(CallEndReason::Cancelled));
}

#[test]
fn presence_and_calls_stay_within_the_domain_unless_allowed() {
    let mut w = World::new(false);
    let ada = w.page(1, ADA, "example.org");
    let cy = w.page(2, CY, "other.example");
    let seen: Vec<_> = w.take(ada);
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMessage::Presence { user: CY, .. })),
        "presence crossed domains: {seen:?}"
    );
    w.send(ada, &format!(r#"{{"type":"call","to":{CY}}}"#));
    assert_eq!(
        w.ended(ada),
        Some(CallEndReason::Offline),
        "invisible looks offline"
    );
    assert!(
        w.take(cy)
            .iter()
            .all(|m| !matches!(m, ServerMessage::IncomingCall { .. }))
    );

    let mut w = World::new(true);
    let ada = w.page(1, ADA, "example.org");
    let cy = w.page(2, CY, "other.example");
    let seen = w.take(ada);
    assert!(seen.iter().any(|m| matches!(
        m,
        ServerMessage::Presence {
            user: CY,
            status: PresenceStatus::Available
        }
    )));
    w.send(cy, r#"{"type":"presence","status":"away"}"#);
    assert!(w.take(ada).iter().any(|m| matches!(
        m,
        ServerMessage::Presence {
            user: CY,
            status: PresenceStatus::Away
        }
    )));
    w.send(ada, &format!(r#"{{"type":"call","to":{CY}}}"#));
    assert!(
        w.take(cy)
            .iter()
            .any(|m| matches!(m, ServerMessage::IncomingCall { .. })),
        "away users still ring"
    );
}

#[test]
fn guests_cannot_use_presence_or_calls() {
    let mut w = World::new(false);
    let guest = ConnId(9);
    w.hub.handle_connect(w.now, guest);
    w.send(guest, &format!(r#"{{"type":"call","to":{BEA}}}"#));
    let msgs = w.take(guest);
    assert!(
        matches!(
            msgs.as_slice(),
            [ServerMessage::Error {
                code: parley_signal::ErrorCode::Forbidden,
                ..
            }]
        ),
        "{msgs:?}"
    );
}
