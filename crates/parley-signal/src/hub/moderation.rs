//! What moderators do: the room's security, acting on participants, roles,
//! ending the meeting, and who moderates when the last moderator leaves.

use std::time::Instant;

use parley_sfu::ParticipantId;

use parley_protocol::RoomName;
use parley_protocol::{ErrorCode, ProtocolError};
use parley_protocol::{
    Handover, LeaveReason, MAX_ROOM_PASSWORD_BYTES, ModerateAction, Role, SecurityChange,
    ServerMessage,
};

use super::room::{Grantee, NewPassword};
use super::{ConnId, Hub, HubOutput, Stage, not_for};
use parley_protocol::ClientMessage;

/// One `moderate` message.
pub(crate) struct Act<'a> {
    pub(crate) action: ModerateAction,
    pub(crate) target: &'a str,
    pub(crate) forbid_unmute: bool,
    pub(crate) block: bool,
    pub(crate) role: Option<Role>,
}

impl Hub {
    /// What moderator `moderator` does to the room and the people in it.
    pub(crate) fn handle_moderation(
        &mut self,
        now: Instant,
        moderator: ParticipantId,
        message: ClientMessage,
    ) -> Result<(), ProtocolError> {
        match message {
            ClientMessage::Security(change) => self.change_security(now, moderator, change),
            ClientMessage::Admit { id, all } => self.admit(now, moderator, id.as_deref(), all),
            ClientMessage::Reject { id, all } => self.reject(moderator, id.as_deref(), all),
            ClientMessage::Moderate {
                action,
                participant,
                forbid_unmute,
                block,
                role,
            } => self.moderate(
                now,
                moderator,
                Act {
                    action,
                    target: &participant,
                    forbid_unmute,
                    block,
                    role,
                },
            ),
            ClientMessage::EndMeeting => {
                self.end_meeting(now, moderator);
                Ok(())
            }
            other => Err(not_for(&other, "moderation")),
        }
    }

    /// The connection's participant, if it moderates its room.
    pub(crate) fn moderator(&self, conn: ConnId) -> Result<ParticipantId, ProtocolError> {
        let id = self.joined_participant(conn)?;
        if self.role_of(id) != Role::Moderator {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "only the room's moderators can do this",
            ));
        }
        Ok(id)
    }

    fn store_room(&mut self, room: &RoomName) {
        let config = self.room_config(room).clone();
        self.outputs.push_back(HubOutput::StoreRoom {
            room: room.clone(),
            config,
        });
    }

    fn send_security(&mut self, room: &RoomName) {
        let config = self.room_config(room);
        let hashing = self.new_passwords.contains_key(room);
        let Some(security) = self.rooms.get(room).map(|r| r.security(config, hashing)) else {
            return;
        };
        self.broadcast(room, None, ServerMessage::Security { security });
    }

    pub(crate) fn change_security(
        &mut self,
        now: Instant,
        moderator: ParticipantId,
        change: SecurityChange,
    ) -> Result<(), ProtocolError> {
        let room = self.member_room(moderator);
        if let Some(password) = &change.password
            && password.len() > MAX_ROOM_PASSWORD_BYTES
        {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                format!("security: password is longer than {MAX_ROOM_PASSWORD_BYTES} bytes"),
            ));
        }
        let mut stored = false;
        match change.password {
            Some(p) if p.is_empty() => {
                let config = self.room_configs.entry(room.clone()).or_default();
                stored |= config.password.take().is_some();
                stored |= self.new_passwords.remove(&room).is_some();
                self.password_changed(now, &room);
            }
            Some(password) => {
                // In force at once; the hash replaces it when it is done.
                let ticket = self.next_ticket();
                self.new_passwords.insert(
                    room.clone(),
                    NewPassword {
                        ticket,
                        password: password.clone(),
                    },
                );
                self.password_changed(now, &room);
                self.outputs.push_back(HubOutput::HashPassword {
                    room: room.clone(),
                    ticket,
                    password,
                });
            }
            None => {}
        }
        let config = self.room_configs.entry(room.clone()).or_default();
        if let Some(lobby) = change.lobby {
            stored |= config.lobby != lobby;
            config.lobby = lobby;
        }
        if let Some(handover) = change.on_moderator_leave {
            stored |= config.on_moderator_leave != handover;
            config.on_moderator_leave = handover;
        }
        let lobby_off = change.lobby == Some(false);
        let mut regate = false;
        if let Some(r) = self.rooms.get_mut(&room) {
            if let Some(locked) = change.locked {
                r.locked = locked;
            }
            if let Some(multiple) = change.multiple_shares {
                r.multiple_shares = multiple;
            }
            if let Some(presenter_mode) = change.presenter_mode {
                regate = r.presenter_mode != presenter_mode;
                r.presenter_mode = presenter_mode;
            }
        }
        if stored {
            self.store_room(&room);
        }
        if lobby_off {
            // Turning the lobby off lets everyone waiting in.
            self.admit(now, moderator, None, true)?;
        }
        if regate {
            let members = self
                .rooms
                .get(&room)
                .map(|r| r.members.clone())
                .unwrap_or_default();
            for id in members {
                self.update_gate(now, id);
            }
        }
        tracing::info!(%room, "room security changed");
        self.send_security(&room);
        Ok(())
    }

    /// Sets up a room ahead of its meeting (a scheduled conference): its
    /// owner if it has none, a new password hash, the lobby.
    pub fn configure_room(
        &mut self,
        room: &RoomName,
        owner: i64,
        password: Option<String>,
        lobby: Option<bool>,
    ) {
        let config = self.room_configs.entry(room.clone()).or_default();
        if config.owner.is_none() {
            config.owner = Some(owner);
        }
        if password.is_some() {
            config.password = password;
            self.new_passwords.remove(room);
        }
        if let Some(lobby) = lobby {
            config.lobby = lobby;
        }
        self.store_room(room);
        self.send_security(room);
    }

    /// The driver's answer to [`HubOutput::HashPassword`]. The hash of a
    /// password changed or removed since is dropped.
    pub fn handle_password_hashed(&mut self, room: &RoomName, ticket: u64, phc: String) {
        if self
            .new_passwords
            .get(room)
            .is_none_or(|p| p.ticket != ticket)
        {
            return;
        }
        self.new_passwords.remove(room);
        self.room_configs.entry(room.clone()).or_default().password = Some(phc);
        self.store_room(room);
    }

    /// The room's password changed: joins whose password is being checked
    /// against the old one are answered now (let in when the room has no
    /// password any more, refused otherwise), so none enters on a password
    /// that no longer holds.
    fn password_changed(&mut self, now: Instant, room: &RoomName) {
        let checking: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.pending.as_ref().is_some_and(|p| {
                    &p.room == room && matches!(p.stage, Stage::CheckingPassword { .. })
                })
            })
            .map(|(id, _)| *id)
            .collect();
        let open =
            self.room_config(room).password.is_none() && !self.new_passwords.contains_key(room);
        for conn in checking {
            let Some(pending) = self.conns.get_mut(&conn).and_then(|c| c.pending.take()) else {
                continue;
            };
            if open {
                self.admit_or_wait(now, conn, pending);
            } else {
                self.reply_error(
                    conn,
                    ProtocolError::new(
                        ErrorCode::WrongPassword,
                        "the room's password changed while yours was checked; enter the new one",
                    )
                    .in_reply_to("join"),
                );
            }
        }
    }

    pub(crate) fn moderate(
        &mut self,
        now: Instant,
        moderator: ParticipantId,
        act: Act<'_>,
    ) -> Result<(), ProtocolError> {
        let room = self.member_room(moderator);
        let target = self
            .members
            .iter()
            .find(|(id, m)| m.room == room && id.to_string() == act.target)
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::UnknownParticipant,
                    "no participant with that id in this room",
                )
            })?;
        let by = self.members[&moderator].name.as_str().to_owned();
        let target_conn = self.members[&target].conn;
        let is_owner = self.info(target).is_some_and(|i| i.owner);
        let notice = |action, forbid_unmute| ServerMessage::Moderation {
            action,
            by: by.clone(),
            forbid_unmute,
        };
        match act.action {
            ModerateAction::Mute => {
                if let Some(m) = self.members.get_mut(&target) {
                    m.mic = false;
                    m.mic_forced = true;
                    m.mic_locked = act.forbid_unmute;
                }
                self.update_gate(now, target);
                self.send(target_conn, notice(ModerateAction::Mute, act.forbid_unmute));
            }
            ModerateAction::AllowUnmute => {
                if let Some(m) = self.members.get_mut(&target) {
                    m.mic_locked = false;
                }
                self.send(target_conn, notice(ModerateAction::AllowUnmute, false));
            }
            ModerateAction::AskCamera => {
                self.send(target_conn, notice(ModerateAction::AskCamera, false));
                return Ok(());
            }
            ModerateAction::StopScreen => {
                let Some(mid) = self.members.get_mut(&target).and_then(|m| m.screen.take()) else {
                    return Err(ProtocolError::new(
                        ErrorCode::BadField,
                        "moderate: that participant is not sharing a screen",
                    ));
                };
                if let Some(m) = self.members.get_mut(&target) {
                    m.stopped_tracks.push(mid);
                }
                self.update_gate(now, target);
                self.send(target_conn, notice(ModerateAction::StopScreen, false));
            }
            ModerateAction::LowerHand => {
                if let Some(m) = self.members.get_mut(&target) {
                    m.hand = None;
                }
                self.send(target_conn, notice(ModerateAction::LowerHand, false));
            }
            ModerateAction::Remove => {
                if is_owner {
                    return Err(ProtocolError::new(
                        ErrorCode::Forbidden,
                        "the room's owner cannot be removed",
                    ));
                }
                let (account, ip) = {
                    let m = &self.members[&target];
                    (m.account, m.ip)
                };
                if act.block
                    && let Some(r) = self.rooms.get_mut(&room)
                {
                    match (account, ip) {
                        (Some(a), _) => {
                            r.banned_accounts.insert(a);
                        }
                        (None, Some(ip)) => {
                            r.banned_addresses.insert(ip);
                        }
                        (None, None) => {}
                    }
                }
                let removed = ServerMessage::Removed {
                    reason: LeaveReason::Removed,
                    by,
                    blocked: act.block,
                };
                self.remember_farewell(now, target, removed.clone());
                self.send(target_conn, removed);
                tracing::info!(%room, participant = %target, block = act.block, "removed by a moderator");
                self.leave(now, target, LeaveReason::Removed);
                return Ok(());
            }
            ModerateAction::Role => {
                let Some(role) = act.role else {
                    return Err(ProtocolError::new(
                        ErrorCode::BadField,
                        "moderate: `role` is needed with action \"role\"",
                    ));
                };
                if is_owner {
                    return Err(ProtocolError::new(
                        ErrorCode::Forbidden,
                        "the room's owner is always a moderator",
                    ));
                }
                self.set_role(now, &room, target, role);
                self.send(target_conn, notice(ModerateAction::Role, false));
            }
        }
        self.announce(target);
        Ok(())
    }

    /// Gives `target` a role. A signed-in moderator stays one in later
    /// meetings; other roles, and guests' roles, last for this meeting.
    fn set_role(&mut self, now: Instant, room: &RoomName, target: ParticipantId, role: Role) {
        let account = self.members.get(&target).and_then(|m| m.account);
        let grantee = account.map_or(Grantee::Guest(target), Grantee::Account);
        let config = self.room_configs.entry(room.clone()).or_default();
        let mut stored = false;
        if let Some(a) = account {
            let was = config.moderators.contains(&a);
            config.moderators.retain(|m| *m != a);
            if role == Role::Moderator {
                config.moderators.push(a);
            }
            stored = was != (role == Role::Moderator);
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.granted.remove(&Grantee::Guest(target));
            if role == Role::Participant {
                r.granted.remove(&grantee);
            } else {
                r.granted.insert(grantee, role);
            }
        }
        if stored {
            self.store_room(room);
        }
        self.update_gate(now, target);
        if role == Role::Moderator {
            self.send_lobby(room);
        }
    }

    pub(crate) fn end_meeting(&mut self, now: Instant, moderator: ParticipantId) {
        let room = self.member_room(moderator);
        let by = self.members[&moderator].name.as_str().to_owned();
        tracing::info!(%room, "meeting ended by a moderator");
        let (members, lobby) = self
            .rooms
            .get(&room)
            .map(|r| (r.members.clone(), r.lobby.clone()))
            .unwrap_or_default();
        for conn in lobby {
            self.turn_away(&room, conn, "the meeting ended");
        }
        for id in members {
            if let Some(conn) = self.conn_of(id) {
                let ended = ServerMessage::Removed {
                    reason: LeaveReason::Ended,
                    by: by.clone(),
                    blocked: false,
                };
                self.remember_farewell(now, id, ended.clone());
                self.send(conn, ended);
            }
            self.leave(now, id, LeaveReason::Ended);
        }
        self.rooms.remove(&room);
    }

    /// After someone left: if members remain and none moderates, moderation
    /// passes on (the room's `on_moderator_leave`), never to nobody.
    pub(crate) fn hand_over(&mut self, now: Instant, room: &RoomName) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        if r.members.is_empty() {
            // Nobody to hand over to; whoever waits keeps waiting for a
            // moderator, as they would in an empty room.
            return;
        }
        let members = r.members.clone();
        if members
            .iter()
            .any(|id| self.role_of(*id) == Role::Moderator)
        {
            return;
        }
        let heir = (self.room_config(room).on_moderator_leave == Handover::NextAccount)
            .then(|| {
                members
                    .iter()
                    .copied()
                    .find(|id| self.members.get(id).is_some_and(|m| m.account.is_some()))
            })
            .flatten();
        if let Some(heir) = heir {
            let account = self.members[&heir].account.expect("heir has an account");
            if let Some(r) = self.rooms.get_mut(room) {
                r.granted.insert(Grantee::Account(account), Role::Moderator);
            }
            tracing::info!(%room, participant = %heir, "moderation passed on");
            if let Some(conn) = self.conn_of(heir) {
                self.send(
                    conn,
                    ServerMessage::Moderation {
                        action: ModerateAction::Role,
                        by: String::new(),
                        forbid_unmute: false,
                    },
                );
            }
            self.update_gate(now, heir);
            self.announce(heir);
            self.send_lobby(room);
            return;
        }
        // No account holder to take over: open the door rather than leave
        // people knocking at a room nobody can open.
        tracing::info!(%room, "no moderator left; the lobby and lock open");
        if let Some(r) = self.rooms.get_mut(room) {
            r.open = true;
            r.locked = false;
        }
        let waiting: Vec<ConnId> = self
            .rooms
            .get(room)
            .map(|r| r.lobby.clone())
            .unwrap_or_default();
        self.let_in(now, room, waiting);
        self.send_security(room);
    }
}
