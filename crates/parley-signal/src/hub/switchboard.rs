//! Presence and one-to-one calls between signed-in users: the hub's part
//! that owns who is reachable on which pages and which calls ring.
//!
//! Every signed-in connection (a home page, a room page) makes its user
//! reachable. A user's status is derived, never stored: `busy` while they are
//! in a room or calling out, `dnd` when they asked for it, `away` when every
//! page of theirs is hidden, else `available`. Changes go to every signed-in
//! connection allowed to see the user (same domain, or all domains when the
//! administrator allows it).
//!
//! A call rings every page of the callee until one answers (the others stop
//! ringing), the callee declines, the caller hangs up, or the ring timeout
//! passes. An answered call becomes a room with an unguessable name that
//! both join; when it drops to one person the call is over for them too.
//!
//! The switchboard knows accounts and connections only, never rooms'
//! members: the hub tells it when an account enters or leaves a room. What
//! it says is a queue of messages to connections ([`Switchboard::drain`]).
//! That narrow edge is where a cross-node bus can stand later.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parley_protocol::{
    CallEndReason, CallParty, ErrorCode, PresenceChoice, PresenceStatus, ProtocolError, RoomName,
    ServerMessage,
};

use super::{Account, ConnId, mix};

/// How long a call rings before it ends unanswered, by default.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// What the switchboard knows of a signed-in user's pages.
#[derive(Debug, Default)]
struct UserPresence {
    name: String,
    domain: String,
    conns: Vec<ConnId>,
    away: HashSet<ConnId>,
    dnd: bool,
    /// The status last announced, to announce only changes.
    shown: Option<PresenceStatus>,
}

#[derive(Debug, Clone)]
enum CallState {
    Ringing { until: Instant },
    Answered { room: RoomName },
}

#[derive(Debug, Clone)]
struct Call {
    caller: i64,
    caller_conn: ConnId,
    callee: i64,
    state: CallState,
}

/// Presence and calls; see the module documentation.
#[derive(Debug)]
pub(crate) struct Switchboard {
    users: HashMap<i64, UserPresence>,
    /// Rooms each user is in (a meeting may be open on two pages). Kept
    /// apart from `users`: a member whose page dropped keeps its place for
    /// the reconnect grace, and is still busy when a new page connects.
    in_rooms: HashMap<i64, usize>,
    calls: HashMap<u64, Call>,
    next_call: u64,
    /// Users see other domains' users too.
    all_domains: bool,
    ring_timeout: Duration,
    /// Keys the mix that names call rooms, so they cannot be guessed.
    room_key: u64,
    out: Vec<(ConnId, ServerMessage)>,
}

impl Switchboard {
    pub(crate) fn new(all_domains: bool, ring_timeout: Duration, room_key: u64) -> Self {
        Switchboard {
            users: HashMap::new(),
            in_rooms: HashMap::new(),
            calls: HashMap::new(),
            next_call: 0,
            all_domains,
            ring_timeout,
            room_key,
            out: Vec::new(),
        }
    }

    /// Applies the administrator's buddy-list scope and ring timeout; calls
    /// already ringing keep their deadline.
    pub(crate) fn configure(&mut self, all_domains: bool, ring_timeout: Duration) {
        self.all_domains = all_domains;
        self.ring_timeout = ring_timeout;
    }

    /// The messages to send, in order.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, (ConnId, ServerMessage)> {
        self.out.drain(..)
    }

    fn send(&mut self, conn: ConnId, message: ServerMessage) {
        self.out.push((conn, message));
    }

    /// A signed-in connection opened: its user is reachable there, and it
    /// learns everyone it may see.
    pub(crate) fn connect(&mut self, conn: ConnId, account: &Account) {
        let user = self.users.entry(account.id).or_default();
        user.name.clone_from(&account.name);
        user.domain.clone_from(&account.domain);
        user.conns.push(conn);
        self.refresh(account.id);
        let visible: Vec<(i64, PresenceStatus)> = self
            .users
            .iter()
            .filter(|(id, u)| **id != account.id && self.may_see(account.id, u))
            .filter_map(|(id, u)| u.shown.map(|s| (*id, s)))
            .collect();
        for (user, status) in visible {
            self.send(conn, ServerMessage::Presence { user, status });
        }
    }

    /// A connection closed (signed in as `account`, if any): it no longer
    /// rings, and a call it was making is cancelled.
    pub(crate) fn disconnect(&mut self, conn: ConnId, account: Option<i64>) {
        // The page is gone first: nothing that follows is sent to it.
        let mut pageless = false;
        if let Some(user) = account.and_then(|a| self.users.get_mut(&a)) {
            user.conns.retain(|c| *c != conn);
            user.away.remove(&conn);
            pageless = user.conns.is_empty();
        }
        let outgoing: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.caller_conn == conn && c.is_ringing())
            .map(|(id, _)| *id)
            .collect();
        for id in outgoing {
            self.end(id, CallEndReason::Cancelled, Some(conn));
        }
        let Some(account) = account else {
            return;
        };
        if pageless {
            // Ringing calls whose callee has no page left end as unanswered.
            let orphaned: Vec<u64> = self
                .calls
                .iter()
                .filter(|(_, c)| c.callee == account && c.is_ringing())
                .map(|(id, _)| *id)
                .collect();
            for id in orphaned {
                self.end(id, CallEndReason::NoAnswer, None);
            }
        }
        self.refresh(account);
        if self.users.get(&account).is_some_and(|u| u.conns.is_empty()) {
            self.users.remove(&account);
        }
    }

    /// `account` entered a room: busy until it leaves.
    pub(crate) fn entered_room(&mut self, account: i64) {
        *self.in_rooms.entry(account).or_default() += 1;
        self.refresh(account);
    }

    /// `account` left a room.
    pub(crate) fn left_room(&mut self, account: i64) {
        if let Some(rooms) = self.in_rooms.get_mut(&account) {
            *rooms = rooms.saturating_sub(1);
            if *rooms == 0 {
                self.in_rooms.remove(&account);
            }
        }
        self.refresh(account);
    }

    fn may_see(&self, viewer: i64, target: &UserPresence) -> bool {
        self.all_domains
            || self
                .users
                .get(&viewer)
                .is_some_and(|v| v.domain == target.domain)
    }

    /// A user's status now.
    pub(crate) fn presence_of(&self, account: i64) -> PresenceStatus {
        let Some(user) = self.users.get(&account) else {
            return PresenceStatus::Offline;
        };
        if user.conns.is_empty() {
            return PresenceStatus::Offline;
        }
        let calling = self
            .calls
            .values()
            .any(|c| c.caller == account && c.is_ringing());
        if self.in_rooms.contains_key(&account) || calling {
            PresenceStatus::Busy
        } else if user.dnd {
            PresenceStatus::Dnd
        } else if user.conns.iter().all(|c| user.away.contains(c)) {
            PresenceStatus::Away
        } else {
            PresenceStatus::Available
        }
    }

    /// Every online user's status (for the buddy list).
    pub(crate) fn presence(&self) -> Vec<(i64, PresenceStatus)> {
        self.users
            .keys()
            .map(|id| (*id, self.presence_of(*id)))
            .collect()
    }

    /// Announces `account`'s status if it changed.
    pub(crate) fn refresh(&mut self, account: i64) {
        let status = self.presence_of(account);
        let Some(user) = self.users.get_mut(&account) else {
            return;
        };
        if user.shown == Some(status) {
            return;
        }
        user.shown = Some(status);
        let domain = user.domain.clone();
        let targets: Vec<ConnId> = self
            .users
            .values()
            .filter(|u| self.all_domains || u.domain == domain)
            .flat_map(|u| u.conns.iter().copied())
            .collect();
        for conn in targets {
            self.send(
                conn,
                ServerMessage::Presence {
                    user: account,
                    status,
                },
            );
        }
    }

    /// The status `account` chose on page `conn`.
    pub(crate) fn set_presence(&mut self, conn: ConnId, account: i64, choice: PresenceChoice) {
        if let Some(user) = self.users.get_mut(&account) {
            match choice {
                PresenceChoice::Available => {
                    user.away.remove(&conn);
                    user.dnd = false;
                }
                PresenceChoice::Away => {
                    user.away.insert(conn);
                }
                PresenceChoice::Dnd => {
                    user.away.remove(&conn);
                    user.dnd = true;
                }
            }
        }
        self.refresh(account);
    }

    /// `caller`, on page `conn`, calls `to`: every page of the callee rings,
    /// or the caller hears at once why not.
    pub(crate) fn place_call(
        &mut self,
        now: Instant,
        conn: ConnId,
        caller: i64,
        to: i64,
        video: bool,
    ) -> Result<(), ProtocolError> {
        if to == caller {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "call: you cannot call yourself",
            ));
        }
        if self.calls.values().any(|c| c.caller_conn == conn) {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "call: this page is already calling; hang up first",
            ));
        }
        let visible = self.users.get(&to).is_some_and(|u| self.may_see(caller, u));
        // Offline and invisible look the same: nothing leaks across domains.
        let refusal = if visible {
            match self.presence_of(to) {
                PresenceStatus::Offline => Some(CallEndReason::Offline),
                PresenceStatus::Dnd => Some(CallEndReason::Dnd),
                PresenceStatus::Busy => Some(CallEndReason::Busy),
                PresenceStatus::Available | PresenceStatus::Away => None,
            }
        } else {
            Some(CallEndReason::Offline)
        };
        if let Some(reason) = refusal {
            self.send(conn, ServerMessage::CallEnded { call_id: 0, reason });
            return Ok(());
        }
        self.next_call += 1;
        let call_id = self.next_call;
        self.calls.insert(
            call_id,
            Call {
                caller,
                caller_conn: conn,
                callee: to,
                state: CallState::Ringing {
                    until: now + self.ring_timeout,
                },
            },
        );
        let from = self.party(caller);
        let callee = self.party(to);
        for c in self.user_conns(to) {
            self.send(
                c,
                ServerMessage::IncomingCall {
                    call_id,
                    from: from.clone(),
                    video,
                },
            );
        }
        self.send(
            conn,
            ServerMessage::CallRinging {
                call_id,
                to: callee,
            },
        );
        tracing::info!(call = call_id, "ringing");
        self.refresh(caller);
        Ok(())
    }

    fn party(&self, account: i64) -> CallParty {
        CallParty {
            id: account,
            name: self
                .users
                .get(&account)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        }
    }

    fn user_conns(&self, account: i64) -> Vec<ConnId> {
        self.users
            .get(&account)
            .map(|u| u.conns.clone())
            .unwrap_or_default()
    }

    /// The ringing call `call_id`, if `account` is its callee (or caller).
    fn ringing(&self, call_id: u64, account: i64, callee: bool) -> Result<Call, ProtocolError> {
        self.calls
            .get(&call_id)
            .filter(|c| c.is_ringing())
            .filter(|c| {
                if callee {
                    c.callee == account
                } else {
                    c.caller == account
                }
            })
            .cloned()
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::BadField,
                    "no such ringing call (it may have ended)",
                )
            })
    }

    /// The callee answered on page `conn`: both sides are told the call's
    /// room, and the callee's other pages stop ringing.
    pub(crate) fn answer(
        &mut self,
        conn: ConnId,
        account: i64,
        call_id: u64,
    ) -> Result<(), ProtocolError> {
        let call = self.ringing(call_id, account, true)?;
        let room = RoomName::parse(&format!(
            "call-{:016x}",
            mix(call_id ^ self.room_key.rotate_left(17))
        ))
        .map_err(|e| ProtocolError::new(ErrorCode::BadField, e))?;
        if let Some(c) = self.calls.get_mut(&call_id) {
            c.state = CallState::Answered { room: room.clone() };
        }
        let accepted = ServerMessage::CallAccepted {
            call_id,
            room: room.to_string(),
        };
        self.send(call.caller_conn, accepted.clone());
        self.send(conn, accepted);
        for other in self.user_conns(account) {
            if other != conn {
                self.send(
                    other,
                    ServerMessage::CallEnded {
                        call_id,
                        reason: CallEndReason::AnsweredElsewhere,
                    },
                );
            }
        }
        tracing::info!(call = call_id, %room, "answered");
        self.refresh(call.caller);
        Ok(())
    }

    /// The callee turned the call down.
    pub(crate) fn decline(&mut self, account: i64, call_id: u64) -> Result<(), ProtocolError> {
        self.ringing(call_id, account, true)?;
        self.end(call_id, CallEndReason::Declined, None);
        Ok(())
    }

    /// The caller hung up before an answer.
    pub(crate) fn hang_up(&mut self, account: i64, call_id: u64) -> Result<(), ProtocolError> {
        self.ringing(call_id, account, false)?;
        self.end(call_id, CallEndReason::Cancelled, None);
        Ok(())
    }

    /// Ends a ringing call for both sides (not to `gone`, a page that closed).
    fn end(&mut self, call_id: u64, reason: CallEndReason, gone: Option<ConnId>) {
        let Some(call) = self.calls.remove(&call_id) else {
            return;
        };
        let ended = ServerMessage::CallEnded { call_id, reason };
        if gone != Some(call.caller_conn) {
            self.send(call.caller_conn, ended.clone());
        }
        for c in self.user_conns(call.callee) {
            self.send(c, ended.clone());
        }
        tracing::info!(call = call_id, ?reason, "call ended");
        self.refresh(call.caller);
    }

    /// Ends calls nobody answered in time.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.state, CallState::Ringing { until } if until <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.end(id, CallEndReason::NoAnswer, None);
        }
    }

    /// When the next ringing call times out.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| match c.state {
                CallState::Ringing { until } => Some(until),
                CallState::Answered { .. } => None,
            })
            .min()
    }

    /// Someone left `room`, where `remaining` are still: if it is a call's
    /// room with one person left, the call is over for them.
    pub(crate) fn room_left(&mut self, room: &RoomName, remaining: &[ConnId]) {
        let Some(call_id) = self.calls.iter().find_map(|(id, c)| match &c.state {
            CallState::Answered { room: r } if r == room => Some(*id),
            _ => None,
        }) else {
            return;
        };
        if remaining.len() > 1 {
            return;
        }
        self.calls.remove(&call_id);
        for conn in remaining {
            self.send(
                *conn,
                ServerMessage::CallEnded {
                    call_id,
                    reason: CallEndReason::HungUp,
                },
            );
        }
    }

    /// Whether `room` is an answered call's room.
    pub(crate) fn is_call_room(&self, room: &RoomName) -> bool {
        self.calls
            .values()
            .any(|c| matches!(&c.state, CallState::Answered { room: r } if r == room))
    }
}

impl Call {
    fn is_ringing(&self) -> bool {
        matches!(self.state, CallState::Ringing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64, domain: &str) -> Account {
        Account {
            id,
            name: format!("user{id}"),
            domain: domain.into(),
        }
    }

    fn sent(s: &mut Switchboard) -> Vec<(u64, ServerMessage)> {
        s.drain().map(|(c, m)| (c.0, m)).collect()
    }

    fn board() -> Switchboard {
        Switchboard::new(false, DEFAULT_RING_TIMEOUT, 7)
    }

    #[test]
    fn status_follows_pages_rooms_and_choices() {
        let mut s = board();
        assert_eq!(s.presence_of(1), PresenceStatus::Offline);
        s.connect(ConnId(1), &account(1, "a"));
        assert_eq!(s.presence_of(1), PresenceStatus::Available);
        s.set_presence(ConnId(1), 1, PresenceChoice::Away);
        assert_eq!(s.presence_of(1), PresenceStatus::Away);
        s.connect(ConnId(2), &account(1, "a"));
        assert_eq!(
            s.presence_of(1),
            PresenceStatus::Available,
            "one page is not hidden"
        );
        s.set_presence(ConnId(2), 1, PresenceChoice::Dnd);
        assert_eq!(s.presence_of(1), PresenceStatus::Dnd);
        s.entered_room(1);
        assert_eq!(s.presence_of(1), PresenceStatus::Busy);
        s.left_room(1);
        assert_eq!(s.presence_of(1), PresenceStatus::Dnd);
        s.disconnect(ConnId(1), Some(1));
        s.disconnect(ConnId(2), Some(1));
        assert_eq!(s.presence_of(1), PresenceStatus::Offline);
        assert!(s.presence().is_empty());
    }

    #[test]
    fn a_member_whose_only_page_dropped_is_still_busy_when_a_page_comes_back() {
        let mut s = board();
        s.connect(ConnId(1), &account(1, "a"));
        s.entered_room(1);
        // The page's network drops; the member keeps its place in the room
        // for the reconnect grace.
        s.disconnect(ConnId(1), Some(1));
        assert_eq!(s.presence_of(1), PresenceStatus::Offline);
        s.connect(ConnId(2), &account(1, "a"));
        assert_eq!(s.presence_of(1), PresenceStatus::Busy);
        s.connect(ConnId(3), &account(2, "a"));
        s.place_call(Instant::now(), ConnId(3), 2, 1, false)
            .unwrap();
        assert!(
            sent(&mut s).iter().any(|(c, m)| *c == 3
                && matches!(
                    m,
                    ServerMessage::CallEnded {
                        reason: CallEndReason::Busy,
                        ..
                    }
                )),
            "a call to someone in a meeting ends as busy"
        );
        s.left_room(1);
        assert_eq!(s.presence_of(1), PresenceStatus::Available);
    }

    #[test]
    fn changes_reach_the_same_domain_only_unless_all_domains_are_allowed() {
        let mut s = board();
        s.connect(ConnId(1), &account(1, "a"));
        s.connect(ConnId(2), &account(2, "b"));
        sent(&mut s);
        s.set_presence(ConnId(1), 1, PresenceChoice::Dnd);
        let to: Vec<u64> = sent(&mut s).into_iter().map(|(c, _)| c).collect();
        assert_eq!(to, vec![1], "the other domain hears nothing");

        let mut s = Switchboard::new(true, DEFAULT_RING_TIMEOUT, 7);
        s.connect(ConnId(1), &account(1, "a"));
        sent(&mut s);
        s.connect(ConnId(2), &account(2, "b"));
        let told: Vec<_> = sent(&mut s);
        assert!(told.iter().any(|(c, m)| *c == 2
            && *m
                == ServerMessage::Presence {
                    user: 1,
                    status: PresenceStatus::Available
                }));
    }

    #[test]
    fn a_call_rings_every_page_and_an_answer_stops_the_others() {
        let now = Instant::now();
        let mut s = board();
        s.connect(ConnId(1), &account(1, "a"));
        s.connect(ConnId(2), &account(2, "a"));
        s.connect(ConnId(3), &account(2, "a"));
        sent(&mut s);
        s.place_call(now, ConnId(1), 1, 2, true).unwrap();
        let rung: Vec<u64> = sent(&mut s)
            .into_iter()
            .filter(|(_, m)| matches!(m, ServerMessage::IncomingCall { .. }))
            .map(|(c, _)| c)
            .collect();
        assert_eq!(rung, vec![2, 3]);
        assert_eq!(
            s.presence_of(1),
            PresenceStatus::Busy,
            "calling out is busy"
        );
        s.answer(ConnId(3), 2, 1).unwrap();
        let out = sent(&mut s);
        let room = out
            .iter()
            .find_map(|(c, m)| match m {
                ServerMessage::CallAccepted { room, .. } if *c == 1 => Some(room.clone()),
                _ => None,
            })
            .expect("the caller hears the room");
        assert!(room.starts_with("call-"));
        assert!(out.iter().any(|(c, m)| *c == 2
            && matches!(
                m,
                ServerMessage::CallEnded {
                    reason: CallEndReason::AnsweredElsewhere,
                    ..
                }
            )));
        let room = RoomName::parse(&room).unwrap();
        assert!(s.is_call_room(&room));
        s.room_left(&room, &[ConnId(3)]);
        assert!(!s.is_call_room(&room), "one person left: the call is over");
    }

    #[test]
    fn unanswered_calls_end_at_the_timeout_and_busy_or_unseen_callees_refuse_at_once() {
        let now = Instant::now();
        let mut s = board();
        s.connect(ConnId(1), &account(1, "a"));
        s.connect(ConnId(2), &account(2, "a"));
        s.connect(ConnId(4), &account(4, "other"));
        s.place_call(now, ConnId(1), 1, 2, false).unwrap();
        let deadline = s.poll_timeout().expect("a ringing call has a deadline");
        assert_eq!(deadline, now + DEFAULT_RING_TIMEOUT);
        sent(&mut s);
        s.handle_timeout(deadline);
        let ended: Vec<u64> = sent(&mut s)
            .into_iter()
            .filter(|(_, m)| {
                matches!(
                    m,
                    ServerMessage::CallEnded {
                        reason: CallEndReason::NoAnswer,
                        ..
                    }
                )
            })
            .map(|(c, _)| c)
            .collect();
        assert_eq!(ended, vec![1, 2]);
        assert_eq!(s.poll_timeout(), None);

        s.entered_room(2);
        sent(&mut s);
        s.place_call(now, ConnId(1), 1, 2, false).unwrap();
        assert_eq!(
            sent(&mut s),
            vec![(
                1,
                ServerMessage::CallEnded {
                    call_id: 0,
                    reason: CallEndReason::Busy
                }
            )]
        );
        s.place_call(now, ConnId(1), 1, 4, false).unwrap();
        assert_eq!(
            sent(&mut s),
            vec![(
                1,
                ServerMessage::CallEnded {
                    call_id: 0,
                    reason: CallEndReason::Offline
                }
            )],
            "another domain's user looks offline"
        );
    }

    #[test]
    fn a_closed_caller_page_cancels_its_call_and_a_pageless_callee_ends_it() {
        let now = Instant::now();
        let mut s = board();
        s.connect(ConnId(1), &account(1, "a"));
        s.connect(ConnId(2), &account(2, "a"));
        s.place_call(now, ConnId(1), 1, 2, false).unwrap();
        sent(&mut s);
        s.disconnect(ConnId(1), Some(1));
        let out = sent(&mut s);
        assert!(out.iter().all(|(c, _)| *c != 1), "nothing to a closed page");
        assert!(out.iter().any(|(c, m)| *c == 2
            && matches!(
                m,
                ServerMessage::CallEnded {
                    reason: CallEndReason::Cancelled,
                    ..
                }
            )));

        s.connect(ConnId(5), &account(1, "a"));
        s.place_call(now, ConnId(5), 1, 2, false).unwrap();
        sent(&mut s);
        s.disconnect(ConnId(2), Some(2));
        assert!(sent(&mut s).iter().any(|(c, m)| *c == 5
            && matches!(
                m,
                ServerMessage::CallEnded {
                    reason: CallEndReason::NoAnswer,
                    ..
                }
            )));
        assert!(s.hang_up(1, 2).is_err(), "no such ringing call any more");
    }
}
