//! Running a meeting, on a virtual clock: owner and moderators, the lobby,
//! room passwords, handing moderation over, chat, and moderator actions.
//! The driver's password hashing is played by the test: the "hash" of `p`
//! is `hash:p`.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod harness;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_signal::{
    Account, ConnId, ConnMeta, ErrorCode, Hub, HubOutput, LeaveReason, ModerateAction, Role,
    RoomName, ServerMessage,
};

struct Meeting {
    hub: Hub,
    now: Instant,
    /// Every message sent, in order, not yet looked at.
    sent: Vec<(ConnId, ServerMessage)>,
    stored_rooms: usize,
    stored_chat: Vec<String>,
    /// When set, password hashing and checking wait in `held` until
    /// [`Meeting::release`], as a busy driver's would.
    hold: bool,
    held: Vec<HubOutput>,
}

impl Meeting {
    fn new() -> Self {
        let mut config = harness::config(7);
        config.wall_clock = Arc::new(|| 1_700_000_000_000);
        Meeting {
            hub: Hub::new(config),
            now: Instant::now(),
            sent: Vec::new(),
            stored_rooms: 0,
            stored_chat: Vec::new(),
            hold: false,
            held: Vec::new(),
        }
    }

    /// A connection from `ip`, signed in as `account` if given.
    fn connect(&mut self, n: u64, account: Option<i64>, ip: [u8; 4]) -> ConnId {
        let conn = ConnId(n);
        let meta = ConnMeta {
            ip: Some(IpAddr::from(ip)),
            account: account.map(|id| Account {
                id,
                name: format!("user{id}"),
                domain: "example.org".into(),
            }),
        };
        self.hub.handle_connect_as(self.now, conn, meta);
        conn
    }

    /// Sends a message and plays the driver for whatever the hub asks.
    fn send(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, conn, text);
        self.pump();
    }

    /// Answers the held hashing and checking requests, oldest first or (with
    /// `newest_first`) in the reverse order.
    fn release(&mut self, newest_first: bool) {
        let mut held = std::mem::take(&mut self.held);
        if newest_first {
            held.reverse();
        }
        let hold = std::mem::replace(&mut self.hold, false);
        for o in held {
            self.answer(o);
        }
        self.pump();
        self.hold = hold;
    }

    fn pump(&mut self) {
        while let Some(o) = self.hub.poll_output() {
            if self.hold
                && matches!(
                    o,
                    HubOutput::HashPassword { .. } | HubOutput::CheckPassword { .. }
                )
            {
                self.held.push(o);
                continue;
            }
            self.answer(o);
        }
    }

    fn answer(&mut self, o: HubOutput) {
        {
            match o {
                HubOutput::Send { conn, message } => self.sent.push((conn, message)),
                HubOutput::HashPassword {
                    room,
                    ticket,
                    password,
                } => self
                    .hub
                    .handle_password_hashed(&room, ticket, format!("hash:{password}")),
                HubOutput::CheckPassword {
                    conn,
                    ticket,
                    phc,
                    password,
                } => {
                    let ok = phc == format!("hash:{password}");
                    self.hub.handle_password_checked(self.now, conn, ticket, ok);
                }
                HubOutput::StoreRoom { .. } => self.stored_rooms += 1,
                HubOutput::StoreChat { message, .. } => self.stored_chat.push(message.text),
                _ => {}
            }
        }
    }

    fn join(&mut self, conn: ConnId, name: &str, password: Option<&str>) {
        let password = password.map_or(String::new(), |p| format!(r#","password":"{p}""#));
        self.send(
            conn,
            &format!(r#"{{"type":"join","version":1,"room":"board","name":"{name}"{password}}}"#),
        );
    }

    fn take(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        let (mine, rest) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.sent = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    /// The id in the `joined` this connection got.
    fn joined(&mut self, conn: ConnId) -> (String, Role) {
        let msgs = self.take(conn);
        for m in &msgs {
            if let ServerMessage::Joined { me, .. } = m {
                return (me.id.clone(), me.role);
            }
        }
        panic!("no joined for {conn:?} in {msgs:?}");
    }

    fn error(&mut self, conn: ConnId) -> ErrorCode {
        let msgs = self.take(conn);
        msgs.iter()
            .find_map(|m| match m {
                ServerMessage::Error { code, .. } => Some(*code),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no error for {conn:?} in {msgs:?}"))
    }

    /// The latest lobby list a connection got.
    fn lobby(&mut self, conn: ConnId) -> Vec<String> {
        self.take(conn)
            .into_iter()
            .rev()
            .find_map(|m| match m {
                ServerMessage::Lobby { waiting } => {
                    Some(waiting.into_iter().map(|k| k.id).collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no lobby message for {conn:?}"))
    }
}

#[test]
fn lobby_guests_see_nothing_until_admitted_and_rejected_ones_are_told() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    let (_, role) = m.joined(owner);
    assert_eq!(
        role,
        Role::Moderator,
        "the first account holder owns the room"
    );
    assert_eq!(m.stored_rooms, 1, "ownership is stored");
    m.send(owner, r#"{"type":"security","lobby":true}"#);
    m.send(owner, r#"{"type":"chat","text":"before the guest"}"#);
    m.take(owner);

    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", None);
    let msgs = m.take(guest);
    assert!(
        matches!(msgs.as_slice(), [ServerMessage::LobbyWaiting { .. }]),
        "the guest only learns it waits: {msgs:?}"
    );
    let waiting = m.lobby(owner);
    assert_eq!(waiting.len(), 1);

    // Nothing of the room reaches it; nothing it sends reaches the room.
    m.send(owner, r#"{"type":"chat","text":"secret"}"#);
    assert!(m.take(guest).is_empty());
    for text in [
        r#"{"type":"chat","text":"hello?"}"#,
        r#"{"type":"offer","pc":"publish","sdp":"v=0"}"#,
        &format!(r#"{{"type":"admit","id":"{}"}}"#, waiting[0]),
    ] {
        m.send(guest, text);
        assert_eq!(m.error(guest), ErrorCode::NotJoined, "{text}");
    }
    m.take(owner);

    m.send(
        owner,
        &format!(r#"{{"type":"admit","id":"{}"}}"#, waiting[0]),
    );
    let msgs = m.take(guest);
    let Some(ServerMessage::Joined { chat, .. }) = msgs.first() else {
        panic!("admitted guest gets joined: {msgs:?}");
    };
    let texts: Vec<_> = chat.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        ["before the guest", "secret"],
        "chat so far is replayed"
    );

    let other = m.connect(3, None, [10, 0, 0, 3]);
    m.join(other, "Other", None);
    m.take(other);
    m.send(owner, r#"{"type":"reject","all":true}"#);
    assert_eq!(m.error(other), ErrorCode::LobbyRejected);
}

#[test]
fn room_password_is_checked_limited_and_cannot_be_skipped() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    m.send(owner, r#"{"type":"security","password":"open sesame"}"#);
    let msgs = m.take(owner);
    assert!(
        msgs.iter()
            .any(|x| matches!(x, ServerMessage::Security { security } if security.password)),
        "{msgs:?}"
    );

    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", None);
    assert_eq!(m.error(guest), ErrorCode::PasswordRequired);
    m.join(guest, "Guest", Some("guess"));
    assert_eq!(m.error(guest), ErrorCode::WrongPassword);
    m.send(guest, r#"{"type":"chat","text":"let me in"}"#);
    assert_eq!(m.error(guest), ErrorCode::NotJoined);
    m.join(guest, "Guest", Some("open sesame"));
    m.joined(guest);

    // Five wrong passwords from one address, then a wait even for the right one.
    let pest = m.connect(3, None, [10, 0, 0, 3]);
    for _ in 0..5 {
        m.join(pest, "Pest", Some("nope"));
        assert_eq!(m.error(pest), ErrorCode::WrongPassword);
    }
    m.join(pest, "Pest", Some("open sesame"));
    assert_eq!(m.error(pest), ErrorCode::RateLimited);
    m.now += Duration::from_secs(13);
    m.join(pest, "Pest", Some("open sesame"));
    m.joined(pest);

    // The owner's account needs no password.
    m.send(owner, r#"{"type":"leave"}"#);
    m.take(owner);
    m.join(owner, "Owner", None);
    m.joined(owner);
}

/// A moderator's new password is in force from the moment it is asked for,
/// not from when its hash is done: no join passes without it meanwhile,
/// and a hash that comes back late for a password changed since is dropped.
#[test]
fn a_new_password_holds_while_it_is_hashed_and_a_stale_hash_is_dropped() {
    let mut m = Meeting::new();
    m.hold = true;
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    m.send(owner, r#"{"type":"security","password":"first"}"#);
    let msgs = m.take(owner);
    assert!(
        msgs.iter()
            .any(|x| matches!(x, ServerMessage::Security { security } if security.password)),
        "announced with a password before the hash is done: {msgs:?}"
    );
    assert_eq!(m.held.len(), 1, "the hash is still being made");

    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", None);
    assert_eq!(m.error(guest), ErrorCode::PasswordRequired);
    m.join(guest, "Guest", Some("guess"));
    assert_eq!(m.error(guest), ErrorCode::WrongPassword);
    m.join(guest, "Guest", Some("first"));
    m.joined(guest);

    // Changed again before the first hash came back; the hashes return in
    // reverse order, and the first one must not win.
    m.send(owner, r#"{"type":"security","password":"second"}"#);
    m.take(owner);
    m.release(true);
    let late = m.connect(3, None, [10, 0, 0, 3]);
    m.join(late, "Late", Some("first"));
    m.release(false);
    assert_eq!(m.error(late), ErrorCode::WrongPassword);
    m.join(late, "Late", Some("second"));
    m.release(false);
    m.joined(late);
}

/// A join whose password is being checked against the old hash when the
/// moderator changes the password does not enter on the old one.
#[test]
fn a_join_checked_against_a_replaced_password_does_not_enter() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    m.send(owner, r#"{"type":"security","password":"old"}"#);
    m.take(owner);
    m.hold = true;
    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", Some("old"));
    assert!(m.take(guest).is_empty(), "still being checked");
    m.send(owner, r#"{"type":"security","password":"new"}"#);
    assert_eq!(m.error(guest), ErrorCode::WrongPassword);
    m.release(false);
    assert!(
        m.take(guest).is_empty(),
        "the old check's answer is ignored"
    );

    // Removing the password lets a join being checked in.
    m.release(false);
    let other = m.connect(3, None, [10, 0, 0, 3]);
    m.join(other, "Other", Some("new"));
    m.send(owner, r#"{"type":"security","password":""}"#);
    m.joined(other);
}

/// Passwords are capped at 256 bytes: a longer one is a bad field, not a
/// wrong password, whether or not the room has one.
#[test]
fn an_overlong_password_is_a_bad_field() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    let long = "x".repeat(5000);
    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", Some(&long));
    assert_eq!(m.error(guest), ErrorCode::BadField);
    m.send(owner, r#"{"type":"security","password":"set"}"#);
    m.take(owner);
    m.join(guest, "Guest", Some(&long));
    assert_eq!(m.error(guest), ErrorCode::BadField);
    m.send(
        owner,
        &format!(r#"{{"type":"security","password":"{long}"}}"#),
    );
    assert_eq!(m.error(owner), ErrorCode::BadField);
}

#[test]
fn moderator_rights_follow_the_account_across_a_reload() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    let user = m.connect(2, Some(20), [10, 0, 0, 2]);
    m.join(user, "User", None);
    let (user_id, role) = m.joined(user);
    assert_eq!(role, Role::Participant);
    m.send(
        owner,
        &format!(
            r#"{{"type":"moderate","action":"role","participant":"{user_id}","role":"moderator"}}"#
        ),
    );
    let msgs = m.take(user);
    assert!(msgs.iter().any(|x| matches!(x, ServerMessage::ParticipantUpdated { participant } if participant.role == Role::Moderator)));

    // A reload: the connection goes, a new one comes with the same account.
    m.hub.handle_disconnect(m.now, user);
    m.pump();
    let again = m.connect(3, Some(20), [10, 0, 0, 2]);
    m.join(again, "User", None);
    assert_eq!(m.joined(again).1, Role::Moderator);
}

#[test]
fn when_the_last_moderator_leaves_someone_can_still_admit() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    m.send(owner, r#"{"type":"security","lobby":true}"#);
    let user = m.connect(2, Some(20), [10, 0, 0, 2]);
    m.join(user, "User", None);
    m.take(user);
    let waiting = m.lobby(owner);
    m.send(
        owner,
        &format!(r#"{{"type":"admit","id":"{}"}}"#, waiting[0]),
    );
    m.joined(user);

    let guest = m.connect(3, None, [10, 0, 0, 3]);
    m.join(guest, "Guest", None);
    m.take(guest);
    m.send(owner, r#"{"type":"leave"}"#);

    // The account holder left in the room takes over, and sees the lobby.
    let waiting = m.lobby(user);
    assert_eq!(waiting.len(), 1);
    m.send(
        user,
        &format!(r#"{{"type":"admit","id":"{}"}}"#, waiting[0]),
    );
    m.joined(guest);
}

#[test]
fn with_no_account_holder_left_the_lobby_opens() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    m.joined(owner);
    m.send(owner, r#"{"type":"security","lobby":true,"locked":false}"#);
    let first = m.connect(2, None, [10, 0, 0, 2]);
    m.join(first, "First", None);
    let waiting = m.lobby(owner);
    m.send(owner, r#"{"type":"admit","all":true}"#);
    m.joined(first);
    assert_eq!(waiting.len(), 1);
    let second = m.connect(3, None, [10, 0, 0, 3]);
    m.join(second, "Second", None);
    m.take(second);
    m.send(owner, r#"{"type":"leave"}"#);
    m.joined(second);
    // And later arrivals walk in.
    let third = m.connect(4, None, [10, 0, 0, 4]);
    m.join(third, "Third", None);
    m.joined(third);
}

#[test]
fn chat_is_limited_private_when_addressed_and_stored() {
    let mut m = Meeting::new();
    let a = m.connect(1, None, [10, 0, 0, 1]);
    m.join(a, "Ada", None);
    m.joined(a);
    let b = m.connect(2, None, [10, 0, 0, 2]);
    m.join(b, "Bob", None);
    let (b_id, _) = m.joined(b);
    let c = m.connect(3, None, [10, 0, 0, 3]);
    m.join(c, "Cy", None);
    m.joined(c);
    m.take(a);
    m.take(b);

    let long = "x".repeat(4001);
    m.send(a, &format!(r#"{{"type":"chat","text":"{long}"}}"#));
    assert_eq!(m.error(a), ErrorCode::MessageTooLong);
    m.send(
        a,
        &format!(r#"{{"type":"chat","text":"psst","to":"{b_id}"}}"#),
    );
    assert!(
        m.take(c).is_empty(),
        "a private message reaches only its recipient"
    );
    let to_b = m.take(b);
    assert!(
        matches!(to_b.as_slice(), [ServerMessage::Chat { message }] if message.text == "psst" && message.at == 1_700_000_000_000)
    );
    assert_eq!(m.take(a).len(), 1, "the sender gets its copy");
    m.send(a, r#"{"type":"chat","text":"<b>hi</b>"}"#);
    assert_eq!(m.take(c).len(), 1);
    assert_eq!(m.stored_chat, ["psst", "<b>hi</b>"]);
}

#[test]
fn moderator_mute_can_forbid_unmuting_and_participants_cannot_moderate() {
    let mut m = Meeting::new();
    let owner = m.connect(1, Some(10), [10, 0, 0, 1]);
    m.join(owner, "Owner", None);
    let (owner_id, _) = m.joined(owner);
    let guest = m.connect(2, None, [10, 0, 0, 2]);
    m.join(guest, "Guest", None);
    let (guest_id, _) = m.joined(guest);

    m.send(
        guest,
        &format!(r#"{{"type":"moderate","action":"mute","participant":"{owner_id}"}}"#),
    );
    assert_eq!(m.error(guest), ErrorCode::Forbidden);
    m.send(guest, r#"{"type":"security","lobby":true}"#);
    assert_eq!(m.error(guest), ErrorCode::Forbidden);

    m.send(
        owner,
        &format!(r#"{{"type":"moderate","action":"mute","participant":"{guest_id}","forbid_unmute":true}}"#),
    );
    let msgs = m.take(guest);
    assert!(msgs.iter().any(|x| matches!(
        x,
        ServerMessage::Moderation {
            action: ModerateAction::Mute,
            forbid_unmute: true,
            ..
        }
    )));
    m.send(guest, r#"{"type":"media","mic":true}"#);
    assert_eq!(m.error(guest), ErrorCode::Forbidden);
    m.send(
        owner,
        &format!(r#"{{"type":"moderate","action":"allow_unmute","participant":"{guest_id}"}}"#),
    );
    m.take(guest);
    m.send(guest, r#"{"type":"media","mic":true}"#);
    assert!(m.take(guest).is_empty(), "unmuting is allowed again");

    // Removal with a block keeps the guest's address out of this meeting.
    m.send(
        owner,
        &format!(
            r#"{{"type":"moderate","action":"remove","participant":"{guest_id}","block":true}}"#
        ),
    );
    let msgs = m.take(guest);
    assert!(msgs.iter().any(|x| matches!(
        x,
        ServerMessage::Removed {
            reason: LeaveReason::Removed,
            blocked: true,
            ..
        }
    )));
    m.join(guest, "Guest", None);
    assert_eq!(m.error(guest), ErrorCode::Blocked);

    m.send(owner, r#"{"type":"end_meeting"}"#);
    let msgs = m.take(owner);
    assert!(msgs.iter().any(|x| matches!(
        x,
        ServerMessage::Removed {
            reason: LeaveReason::Ended,
            ..
        }
    )));
    assert!(m.hub.rooms().is_empty());
    let _ = RoomName::parse("board").unwrap();
}
