//! Getting into a room: names and limits, blocks, the lock, the password
//! (checked off the media path), the lobby, and entering.
//!
//! Nothing of a room reaches a connection before it enters: while its
//! password is checked or it waits in the lobby it is not a member, so no
//! broadcast, chat or media can find it.

use std::time::Instant;

use parley_sfu::{ParticipantId, RoomId};

use crate::ratelimit::TokenBucket;
use parley_protocol::{DisplayName, RoomName};
use parley_protocol::{ErrorCode, ProtocolError};
use parley_protocol::{Knocker, MAX_ROOM_PASSWORD_BYTES, PROTOCOL_VERSION, Role, ServerMessage};

use super::room::Room;
use super::{ConnId, Hub, HubOutput, Member, PASSWORD_BURST, PASSWORD_RATE, PendingJoin, Stage};

/// A `join` as the client sent it.
pub(crate) struct JoinRequest {
    pub(crate) version: u32,
    pub(crate) room: String,
    pub(crate) name: String,
    pub(crate) mic: bool,
    pub(crate) camera: bool,
    pub(crate) password: Option<String>,
}

impl Hub {
    pub(crate) fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: JoinRequest,
    ) -> Result<(), ProtocolError> {
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
        };
        if c.participant.is_some() || c.pending.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "already in a room (or waiting to enter one); send leave first",
            ));
        }
        let account = c.meta.account.as_ref().map(|a| a.id);
        let ip = c.meta.ip;
        if request.version != PROTOCOL_VERSION {
            return Err(ProtocolError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "this server speaks protocol version {PROTOCOL_VERSION}, not {}",
                    request.version
                ),
            ));
        }
        if !self.config.rooms.enabled {
            return Err(ProtocolError::new(
                ErrorCode::ConferencingDisabled,
                "conferencing is turned off on this server; ask its administrator",
            ));
        }
        let room = RoomName::parse(&request.room)
            .map_err(|e| ProtocolError::new(ErrorCode::BadField, format!("join: room {e}")))?;
        let name = DisplayName::parse(&request.name)
            .map_err(|e| ProtocolError::new(ErrorCode::BadField, format!("join: name {e}")))?;
        let config = self.room_config(&room);
        let moderator = config.is_standing_moderator(account);
        let phc = config.password.clone().filter(|_| !moderator);
        let hashing = !moderator && self.new_passwords.contains_key(&room);
        if let Some(r) = self.rooms.get(&room) {
            let banned = account.is_some_and(|a| r.banned_accounts.contains(&a))
                || ip.is_some_and(|ip| r.banned_addresses.contains(&ip));
            if banned && !moderator {
                return Err(ProtocolError::new(
                    ErrorCode::Blocked,
                    "a moderator removed you from this meeting and blocked your return",
                ));
            }
            if r.locked && !moderator {
                return Err(ProtocolError::new(
                    ErrorCode::RoomLocked,
                    "a moderator locked this room; nobody new can enter",
                ));
            }
        }
        self.check_room_size(&room)?;

        let id = self.new_participant_id();
        let mut pending = PendingJoin {
            id,
            room: room.clone(),
            name,
            mic: request.mic,
            camera: request.camera,
            stage: Stage::Lobby,
        };
        if let Some(password) = &request.password
            && password.len() > MAX_ROOM_PASSWORD_BYTES
        {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                format!("join: password is longer than {MAX_ROOM_PASSWORD_BYTES} bytes"),
            ));
        }
        if phc.is_some() || hashing {
            let Some(password) = request.password.filter(|p| !p.is_empty()) else {
                return Err(ProtocolError::new(
                    ErrorCode::PasswordRequired,
                    "this room has a password; enter it to join",
                ));
            };
            if let Some(ip) = ip {
                let bucket = self
                    .password_limits
                    .entry(ip)
                    .or_insert_with(|| TokenBucket::new(now, PASSWORD_RATE, PASSWORD_BURST));
                if !bucket.has_token(now) {
                    let wait = bucket.wait_secs(now).max(1);
                    return Err(ProtocolError::new(
                        ErrorCode::RateLimited,
                        format!("too many wrong passwords; try again in {wait} s"),
                    ));
                }
            }
            // A password still being hashed is checked here and now.
            if let Some(new) = self.new_passwords.get(&room).filter(|_| hashing) {
                if new.matches(&password) {
                    self.admit_or_wait(now, conn, pending);
                    return Ok(());
                }
                self.wrong_password(now, ip, &room);
                return Err(ProtocolError::new(
                    ErrorCode::WrongPassword,
                    "wrong password",
                ));
            }
            let Some(phc) = phc else {
                return Ok(());
            };
            let ticket = self.next_ticket();
            pending.stage = Stage::CheckingPassword { ticket };
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending = Some(pending);
            }
            self.outputs.push_back(HubOutput::CheckPassword {
                conn,
                ticket,
                phc,
                password,
            });
            return Ok(());
        }
        self.admit_or_wait(now, conn, pending);
        Ok(())
    }

    /// The driver's answer to [`HubOutput::CheckPassword`].
    pub fn handle_password_checked(&mut self, now: Instant, conn: ConnId, ticket: u64, ok: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(pending) = c
            .pending
            .take_if(|p| p.stage == Stage::CheckingPassword { ticket })
        else {
            return;
        };
        let ip = c.meta.ip;
        if ok {
            self.admit_or_wait(now, conn, pending);
        } else {
            self.wrong_password(now, ip, &pending.room);
            self.reply_error(
                conn,
                ProtocolError::new(ErrorCode::WrongPassword, "wrong password").in_reply_to("join"),
            );
        }
        self.pump_sfu();
    }

    /// A wrong room password from `ip`: it costs a token of its allowance.
    fn wrong_password(&mut self, now: Instant, ip: Option<std::net::IpAddr>, room: &RoomName) {
        if let Some(ip) = ip
            && let Some(bucket) = self.password_limits.get_mut(&ip)
        {
            bucket.try_take(now);
        }
        tracing::info!(%room, "wrong room password");
    }

    fn check_room_size(&self, room: &RoomName) -> Result<(), ProtocolError> {
        let size = self.rooms.get(room).map_or(0, |r| r.members.len());
        if size >= self.config.rooms.max_members {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                format!(
                    "the room is full ({} participants)",
                    self.config.rooms.max_members
                ),
            ));
        }
        Ok(())
    }

    fn moderator_present(&self, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|r| {
            r.members
                .iter()
                .any(|id| self.role_of(*id) == Role::Moderator)
        })
    }

    /// Past the password: enters, or waits in the lobby when the room has
    /// one and somebody could open it (a moderator is in, or nobody is yet:
    /// the first guests wait for the host).
    pub(super) fn admit_or_wait(&mut self, now: Instant, conn: ConnId, mut pending: PendingJoin) {
        let account = self
            .conns
            .get(&conn)
            .and_then(|c| c.meta.account.as_ref().map(|a| a.id));
        let config = self.room_config(&pending.room);
        let open = self.rooms.get(&pending.room).is_some_and(|r| r.open);
        let occupied = self
            .rooms
            .get(&pending.room)
            .is_some_and(|r| !r.members.is_empty());
        let waits = config.lobby
            && !config.is_standing_moderator(account)
            && !open
            && (self.moderator_present(&pending.room) || !occupied);
        if !waits {
            self.enter(now, conn, pending);
            return;
        }
        pending.stage = Stage::Lobby;
        let room = pending.room.clone();
        self.room_entry(&room).lobby.push(conn);
        self.send(
            conn,
            ServerMessage::LobbyWaiting {
                room: room.to_string(),
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending = Some(pending);
        }
        tracing::info!(%room, "waiting in the lobby");
        self.send_lobby(&room);
    }

    /// The room, made if it does not exist yet.
    fn room_entry(&mut self, room: &RoomName) -> &mut Room {
        if !self.rooms.contains_key(room) {
            let id = RoomId::new(self.next_id);
            self.next_id += 1;
            self.rooms.insert(room.clone(), Room::new(id));
        }
        // Inserted just above if it was missing.
        self.rooms.get_mut(room).expect("room exists")
    }

    /// Tells the room's moderators who waits in the lobby.
    pub(crate) fn send_lobby(&mut self, room: &RoomName) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let waiting: Vec<Knocker> = r
            .lobby
            .iter()
            .filter_map(|conn| {
                let c = self.conns.get(conn)?;
                let p = c.pending.as_ref()?;
                Some(Knocker {
                    id: p.id.to_string(),
                    name: p.name.as_str().to_owned(),
                    account: c.meta.account.is_some(),
                })
            })
            .collect();
        let moderators: Vec<ConnId> = r
            .members
            .iter()
            .filter(|id| self.role_of(**id) == Role::Moderator)
            .filter_map(|id| self.members.get(id).map(|m| m.conn))
            .collect();
        for conn in moderators {
            self.send(
                conn,
                ServerMessage::Lobby {
                    waiting: waiting.clone(),
                },
            );
        }
    }

    /// A waiting or checking connection gave up (left, closed, timed out).
    pub(crate) fn drop_pending(&mut self, conn: ConnId, pending: &PendingJoin) {
        if pending.stage != Stage::Lobby {
            return;
        }
        if let Some(r) = self.rooms.get_mut(&pending.room) {
            r.lobby.retain(|c| *c != conn);
        }
        self.send_lobby(&pending.room);
        if self.rooms.get(&pending.room).is_some_and(Room::is_empty) {
            self.rooms.remove(&pending.room);
        }
    }

    /// Lets waiting connections of the moderator's room in: one by id, or all.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        moderator: ParticipantId,
        id: Option<&str>,
        all: bool,
    ) -> Result<(), ProtocolError> {
        let room = self.member_room(moderator);
        let chosen = self.lobby_targets(&room, id, all)?;
        self.let_in(now, &room, chosen);
        self.send_lobby(&room);
        Ok(())
    }

    /// Takes `waiting` out of the room's lobby and in, as far as the room
    /// has space (the others are told it is full).
    pub(crate) fn let_in(&mut self, now: Instant, room: &RoomName, waiting: Vec<ConnId>) {
        for conn in waiting {
            let pending = self.conns.get_mut(&conn).and_then(|c| c.pending.take());
            if let Some(r) = self.rooms.get_mut(room) {
                r.lobby.retain(|c| *c != conn);
            }
            if let Some(pending) = pending {
                if let Err(e) = self.check_room_size(room) {
                    self.reply_error(conn, e.in_reply_to("join"));
                    continue;
                }
                self.enter(now, conn, pending);
            }
        }
    }

    /// Turns waiting connections of the moderator's room away.
    pub(crate) fn reject(
        &mut self,
        moderator: ParticipantId,
        id: Option<&str>,
        all: bool,
    ) -> Result<(), ProtocolError> {
        let room = self.member_room(moderator);
        let chosen = self.lobby_targets(&room, id, all)?;
        for conn in chosen {
            self.turn_away(&room, conn, "a moderator declined your request to join");
        }
        self.send_lobby(&room);
        Ok(())
    }

    /// Ends a wait in the lobby with `lobby_rejected`.
    pub(crate) fn turn_away(&mut self, room: &RoomName, conn: ConnId, why: &str) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending = None;
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.lobby.retain(|c| *c != conn);
        }
        self.reply_error(
            conn,
            ProtocolError::new(ErrorCode::LobbyRejected, why).in_reply_to("join"),
        );
    }

    fn lobby_targets(
        &self,
        room: &RoomName,
        id: Option<&str>,
        all: bool,
    ) -> Result<Vec<ConnId>, ProtocolError> {
        let lobby = self
            .rooms
            .get(room)
            .map(|r| r.lobby.clone())
            .unwrap_or_default();
        if all {
            return Ok(lobby);
        }
        let Some(id) = id else {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "name a waiting participant with `id`, or set `all`",
            ));
        };
        lobby
            .into_iter()
            .find(|conn| {
                self.conns
                    .get(conn)
                    .and_then(|c| c.pending.as_ref())
                    .is_some_and(|p| p.id.to_string() == id)
            })
            .map(|conn| vec![conn])
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::UnknownParticipant,
                    "nobody with that id waits in the lobby (they may have left)",
                )
            })
    }

    pub(crate) fn member_room(&self, id: ParticipantId) -> RoomName {
        self.members
            .get(&id)
            .map(|m| m.room.clone())
            .expect("moderator() checked membership")
    }

    /// Makes the connection a member: `joined` to it, `participant_joined`
    /// to the others, media through the SFU.
    pub(crate) fn enter(&mut self, now: Instant, conn: ConnId, pending: PendingJoin) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.pending = None;
        let account = c.meta.account.as_ref().map(|a| a.id);
        let ip = c.meta.ip;
        let PendingJoin {
            id,
            room,
            name,
            mic,
            camera,
            ..
        } = pending;
        let first = self.rooms.get(&room).is_none_or(|r| r.members.is_empty());
        let room_id = self.room_entry(&room).id;
        if first {
            self.outputs
                .push_back(HubOutput::RoomOpened { room: room.clone() });
        }
        // The first account holder in a room nobody owns becomes its owner.
        let config = self.room_configs.entry(room.clone()).or_default();
        if config.owner.is_none()
            && let Some(account) = account
        {
            config.owner = Some(account);
            let config = config.clone();
            self.outputs.push_back(HubOutput::StoreRoom {
                room: room.clone(),
                config,
            });
        }
        self.members.insert(
            id,
            Member {
                conn,
                room: room.clone(),
                name,
                account,
                ip,
                mic,
                camera,
                hand: None,
                screen: None,
                mic_forced: false,
                mic_locked: false,
                stopped_tracks: Vec::new(),
                token: (self.config.tokens)(),
                away_since: None,
                path: None,
            },
        );
        self.room_entry(&room).members.push(id);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.participant = Some(id);
        }
        let info = self.info(id).expect("member just added");
        let call = self.switchboard.is_call_room(&room);
        self.outputs.push_back(HubOutput::MemberJoined {
            room: room.clone(),
            participant: id.to_string(),
            account,
            name: info.name.clone(),
            call,
        });
        if info.role == Role::Moderator
            && let Some(r) = self.rooms.get_mut(&room)
        {
            r.open = false;
        }
        tracing::info!(%room, participant = %id, "joined");
        // `joined` goes out before the subscribe offer the SFU makes next.
        if let Some(joined) = self.joined_message(id, false) {
            self.send(conn, joined);
        }
        self.broadcast(
            &room,
            Some(id),
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        if let Some(worker) = self.sfu.add_participant(now, id, room_id) {
            tracing::info!(%room, worker, "room's media placed on a worker");
        }
        self.update_gate(now, id);
        if info.role == Role::Moderator {
            // Whoever waited for a moderator is shown at once.
            self.send_lobby(&room);
        }
        if let Some(account) = account {
            self.switchboard(|s| s.entered_room(account));
        }
    }
}
