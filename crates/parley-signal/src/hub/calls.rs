//! Presence and one-to-one calls between signed-in users.
//!
//! Every signed-in connection (a home page, a room page) makes its user
//! reachable. A user's status is derived, never stored: `busy` while one of
//! their connections is in a room or calling out, `dnd` when they asked for
//! it, `away` when every page of theirs is hidden, else `available`.
//! Changes go to every signed-in connection allowed to see the user (same
//! domain, or all domains when the administrator allows it).
//!
//! A call rings every page of the callee until one answers (the others stop
//! ringing), the callee declines, the caller hangs up, or the ring timeout
//! passes. An answered call becomes a room with an unguessable name that
//! both join; when it drops to one person the call is over for them too.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parley_protocol::RoomName;
use parley_protocol::{CallEndReason, CallParty, PresenceChoice, PresenceStatus, ServerMessage};
use parley_protocol::{ErrorCode, ProtocolError};

use super::{ConnId, Hub};

/// What the hub knows of a signed-in user's pages.
#[derive(Debug, Default)]
pub(crate) struct UserPresence {
    pub(crate) name: String,
    pub(crate) domain: String,
    pub(crate) conns: Vec<ConnId>,
    pub(crate) away: HashSet<ConnId>,
    pub(crate) dnd: bool,
    /// The status last announced, to announce only changes.
    pub(crate) shown: Option<PresenceStatus>,
}

#[derive(Debug, Clone)]
pub(crate) enum CallState {
    Ringing { until: Instant },
    Answered { room: RoomName },
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) caller: i64,
    pub(crate) caller_conn: ConnId,
    pub(crate) callee: i64,
    pub(crate) state: CallState,
}

/// Calls and presence.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) users: HashMap<i64, UserPresence>,
    pub(crate) calls: HashMap<u64, Call>,
    pub(crate) next_call: u64,
}

impl Hub {
    /// A signed-in connection opened.
    pub(crate) fn presence_connect(&mut self, conn: ConnId) {
        let Some(account) = self.conns.get(&conn).and_then(|c| c.meta.account.clone()) else {
            return;
        };
        let user = self.calls.users.entry(account.id).or_default();
        user.name = account.name;
        user.domain = account.domain;
        user.conns.push(conn);
        self.refresh_presence(account.id);
        // The newcomer learns everyone it may see.
        let visible: Vec<(i64, PresenceStatus)> = self
            .calls
            .users
            .iter()
            .filter(|(id, u)| **id != account.id && self.may_see(account.id, u))
            .filter_map(|(id, u)| u.shown.map(|s| (*id, s)))
            .collect();
        for (user, status) in visible {
            self.send(conn, ServerMessage::Presence { user, status });
        }
    }

    /// A signed-in connection closed: it no longer rings, and a call it was
    /// making is cancelled.
    pub(crate) fn presence_disconnect(&mut self, conn: ConnId, account: Option<i64>) {
        let outgoing: Vec<u64> = self
            .calls
            .calls
            .iter()
            .filter(|(_, c)| c.caller_conn == conn && matches!(c.state, CallState::Ringing { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in outgoing {
            self.end_call(id, CallEndReason::Cancelled);
        }
        let Some(account) = account else {
            return;
        };
        if let Some(user) = self.calls.users.get_mut(&account) {
            user.conns.retain(|c| *c != conn);
            user.away.remove(&conn);
        }
        // Ringing calls whose callee has no page left end as unanswered.
        let orphaned: Vec<u64> = self
            .calls
            .calls
            .iter()
            .filter(|(_, c)| c.callee == account && matches!(c.state, CallState::Ringing { .. }))
            .filter(|_| {
                self.calls
                    .users
                    .get(&account)
                    .is_none_or(|u| u.conns.is_empty())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in orphaned {
            self.end_call(id, CallEndReason::NoAnswer);
        }
        self.refresh_presence(account);
        if self
            .calls
            .users
            .get(&account)
            .is_some_and(|u| u.conns.is_empty())
        {
            self.calls.users.remove(&account);
        }
    }

    fn may_see(&self, viewer: i64, target: &UserPresence) -> bool {
        self.config.rooms.buddies_all_domains
            || self
                .calls
                .users
                .get(&viewer)
                .is_some_and(|v| v.domain == target.domain)
    }

    /// A user's status now.
    pub fn presence_of(&self, account: i64) -> PresenceStatus {
        let Some(user) = self.calls.users.get(&account) else {
            return PresenceStatus::Offline;
        };
        if user.conns.is_empty() {
            return PresenceStatus::Offline;
        }
        let in_room = self.members.values().any(|m| m.account == Some(account));
        let calling = self
            .calls
            .calls
            .values()
            .any(|c| c.caller == account && matches!(c.state, CallState::Ringing { .. }));
        if in_room || calling {
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
    pub fn presence(&self) -> Vec<(i64, PresenceStatus)> {
        self.calls
            .users
            .keys()
            .map(|id| (*id, self.presence_of(*id)))
            .collect()
    }

    /// Announces `account`'s status if it changed.
    pub(crate) fn refresh_presence(&mut self, account: i64) {
        let status = self.presence_of(account);
        let Some(user) = self.calls.users.get_mut(&account) else {
            return;
        };
        if user.shown == Some(status) {
            return;
        }
        user.shown = Some(status);
        let all = self.config.rooms.buddies_all_domains;
        let domain = user.domain.clone();
        let targets: Vec<ConnId> = self
            .calls
            .users
            .values()
            .filter(|u| all || u.domain == domain)
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

    fn account_of(&self, conn: ConnId) -> Result<i64, ProtocolError> {
        self.conns
            .get(&conn)
            .and_then(|c| c.meta.account.as_ref().map(|a| a.id))
            .ok_or_else(|| ProtocolError::new(ErrorCode::Forbidden, "sign in first"))
    }

    pub(crate) fn set_presence(
        &mut self,
        conn: ConnId,
        choice: PresenceChoice,
    ) -> Result<(), ProtocolError> {
        let account = self.account_of(conn)?;
        if let Some(user) = self.calls.users.get_mut(&account) {
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
        self.refresh_presence(account);
        Ok(())
    }

    pub(crate) fn place_call(
        &mut self,
        now: Instant,
        conn: ConnId,
        to: i64,
        video: bool,
    ) -> Result<(), ProtocolError> {
        let caller = self.account_of(conn)?;
        if to == caller {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "call: you cannot call yourself",
            ));
        }
        if self.calls.calls.values().any(|c| c.caller_conn == conn) {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "call: this page is already calling; hang up first",
            ));
        }
        let visible = self
            .calls
            .users
            .get(&to)
            .is_some_and(|u| self.may_see(caller, u));
        let refuse = |reason| ServerMessage::CallEnded { call_id: 0, reason };
        if !visible {
            // Offline and invisible look the same: nothing leaks across domains.
            self.send(conn, refuse(CallEndReason::Offline));
            return Ok(());
        }
        match self.presence_of(to) {
            PresenceStatus::Offline => {
                self.send(conn, refuse(CallEndReason::Offline));
                return Ok(());
            }
            PresenceStatus::Dnd => {
                self.send(conn, refuse(CallEndReason::Dnd));
                return Ok(());
            }
            PresenceStatus::Busy => {
                self.send(conn, refuse(CallEndReason::Busy));
                return Ok(());
            }
            PresenceStatus::Available | PresenceStatus::Away => {}
        }
        self.calls.next_call += 1;
        let call_id = self.calls.next_call;
        self.calls.calls.insert(
            call_id,
            Call {
                caller,
                caller_conn: conn,
                callee: to,
                state: CallState::Ringing {
                    until: now + self.config.rooms.ring_timeout,
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
        self.refresh_presence(caller);
        Ok(())
    }

    fn party(&self, account: i64) -> CallParty {
        CallParty {
            id: account,
            name: self
                .calls
                .users
                .get(&account)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        }
    }

    fn user_conns(&self, account: i64) -> Vec<ConnId> {
        self.calls
            .users
            .get(&account)
            .map(|u| u.conns.clone())
            .unwrap_or_default()
    }

    /// The ringing call `call_id`, if `conn`'s user may act on it as `side`.
    fn ringing(
        &self,
        call_id: u64,
        account: i64,
        callee_side: bool,
    ) -> Result<Call, ProtocolError> {
        self.calls
            .calls
            .get(&call_id)
            .filter(|c| matches!(c.state, CallState::Ringing { .. }))
            .filter(|c| {
                if callee_side {
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

    pub(crate) fn answer_call(&mut self, conn: ConnId, call_id: u64) -> Result<(), ProtocolError> {
        let account = self.account_of(conn)?;
        let call = self.ringing(call_id, account, true)?;
        let room = RoomName::parse(&format!(
            "call-{:016x}",
            super::mix(call_id ^ self.config.id_key.rotate_left(17))
        ))
        .expect("a valid generated room name");
        if let Some(c) = self.calls.calls.get_mut(&call_id) {
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
        self.refresh_presence(call.caller);
        Ok(())
    }

    pub(crate) fn decline_call(&mut self, conn: ConnId, call_id: u64) -> Result<(), ProtocolError> {
        let account = self.account_of(conn)?;
        self.ringing(call_id, account, true)?;
        self.end_call(call_id, CallEndReason::Declined);
        Ok(())
    }

    pub(crate) fn hang_up_call(&mut self, conn: ConnId, call_id: u64) -> Result<(), ProtocolError> {
        let account = self.account_of(conn)?;
        self.ringing(call_id, account, false)?;
        self.end_call(call_id, CallEndReason::Cancelled);
        Ok(())
    }

    /// Ends a ringing call for both sides.
    pub(crate) fn end_call(&mut self, call_id: u64, reason: CallEndReason) {
        let Some(call) = self.calls.calls.remove(&call_id) else {
            return;
        };
        let ended = ServerMessage::CallEnded { call_id, reason };
        if self.conns.contains_key(&call.caller_conn) {
            self.send(call.caller_conn, ended.clone());
        }
        for c in self.user_conns(call.callee) {
            self.send(c, ended.clone());
        }
        tracing::info!(call = call_id, ?reason, "call ended");
        self.refresh_presence(call.caller);
    }

    /// Ends calls nobody answered in time; the next such deadline.
    pub(crate) fn call_timeouts(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .calls
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.state, CallState::Ringing { until } if until <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.end_call(id, CallEndReason::NoAnswer);
        }
    }

    pub(crate) fn next_ring_deadline(&self) -> Option<Instant> {
        self.calls
            .calls
            .values()
            .filter_map(|c| match c.state {
                CallState::Ringing { until } => Some(until),
                CallState::Answered { .. } => None,
            })
            .min()
    }

    /// Someone left `room`: if it is a call's room with one person left, the
    /// call is over for them.
    pub(crate) fn call_room_left(&mut self, room: &RoomName) {
        let Some(call_id) = self.calls.calls.iter().find_map(|(id, c)| match &c.state {
            CallState::Answered { room: r } if r == room => Some(*id),
            _ => None,
        }) else {
            return;
        };
        let remaining: Vec<ConnId> = self
            .rooms
            .get(room)
            .map(|r| {
                r.members
                    .iter()
                    .filter_map(|id| self.members.get(id).map(|m| m.conn))
                    .collect()
            })
            .unwrap_or_default();
        if remaining.len() > 1 {
            return;
        }
        self.calls.calls.remove(&call_id);
        for conn in remaining {
            self.send(
                conn,
                ServerMessage::CallEnded {
                    call_id,
                    reason: CallEndReason::HungUp,
                },
            );
        }
    }
}

impl Hub {
    /// Whether `room` is an answered call's room.
    pub(crate) fn is_call_room(&self, room: &RoomName) -> bool {
        self.calls
            .calls
            .values()
            .any(|c| matches!(&c.state, CallState::Answered { room: r } if r == room))
    }
}

/// How long a call rings before it ends unanswered, by default.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);
