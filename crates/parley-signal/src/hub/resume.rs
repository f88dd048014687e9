//! Keeping a participant's place when its connection drops: it stays in its
//! room, shown to the others as reconnecting, for the grace period; a new
//! connection that sends `resume` with the participant's secret token takes
//! the place back, gets `joined` again (with `resumed: true`) and a renewed
//! subscribe connection. The publish connection is kept; the client restarts
//! its ICE with a new offer.

use std::time::{Duration, Instant};

use parley_sfu::ParticipantId;

use super::{ConnId, Hub, HubOutput};
use parley_protocol::{ErrorCode, ProtocolError};
use parley_protocol::{PROTOCOL_VERSION, ParticipantInfo, Role, ServerMessage};

/// How long a farewell is kept at least (longer with a longer grace period).
const FAREWELL_KEPT: Duration = Duration::from_secs(120);

/// Why a place ended while its client may have been away.
pub(crate) struct Farewell {
    token: String,
    message: ServerMessage,
    at: Instant,
}

impl Hub {
    /// Keeps the `removed` message sent to member `id`, so a client that
    /// missed it (its connection was down) hears it when it tries to resume.
    pub(crate) fn remember_farewell(
        &mut self,
        now: Instant,
        id: ParticipantId,
        message: ServerMessage,
    ) {
        if let Some(m) = self.members.get(&id) {
            self.farewells.insert(
                id,
                Farewell {
                    token: m.token.clone(),
                    message,
                    at: now,
                },
            );
        }
    }

    /// Drops farewells old enough that no client can still be reconnecting.
    pub(crate) fn forget_farewells(&mut self, now: Instant) {
        let kept = FAREWELL_KEPT.max(self.config.rooms.reconnect_grace * 2);
        self.farewells
            .retain(|_, f| now.saturating_duration_since(f.at) < kept);
    }

    /// `joined` for member `id`, as it stands now.
    pub(crate) fn joined_message(&self, id: ParticipantId, resumed: bool) -> Option<ServerMessage> {
        let member = self.members.get(&id)?;
        let room = self.rooms.get(&member.room)?;
        let others: Vec<ParticipantInfo> = room
            .members
            .iter()
            .filter(|other| **other != id)
            .filter_map(|other| self.info(*other))
            .collect();
        let ice = self.config.ice_servers.ice_config(&id.to_string());
        Some(ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            room: member.room.to_string(),
            me: self.info(id)?,
            participants: others,
            ice_servers: ice.servers,
            ice_transport_policy: ice.policy,
            reactions: self.config.rooms.reactions.clone(),
            security: room.security(
                self.room_config(&member.room),
                self.new_passwords.contains_key(&member.room),
            ),
            chat: room.chat.iter().cloned().collect(),
            resume_token: member.token.clone(),
            resumed,
        })
    }

    /// The member's connection dropped: it keeps its place, and the others
    /// see it as reconnecting.
    pub(crate) fn go_away(&mut self, now: Instant, id: ParticipantId) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.away_since.is_none() {
            m.away_since = Some(now);
            let room = m.room.clone();
            tracing::info!(%room, participant = %id, "connection dropped; keeping the place");
            if let Some(info) = self.info(id) {
                self.broadcast(
                    &room,
                    Some(id),
                    ServerMessage::ParticipantUpdated { participant: info },
                );
            }
        }
    }

    /// `resume` on connection `conn`.
    pub(crate) fn resume(
        &mut self,
        now: Instant,
        conn: ConnId,
        participant: &str,
        token: &str,
    ) -> Result<(), ProtocolError> {
        let c = self
            .conns
            .get(&conn)
            .ok_or_else(|| ProtocolError::new(ErrorCode::NotJoined, "no such connection"))?;
        if c.participant.is_some() || c.pending.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this connection is in a room already",
            ));
        }
        let account = c.meta.account.as_ref().map(|a| a.id);
        let failed = || {
            ProtocolError::new(
                ErrorCode::ResumeFailed,
                "no place to resume (the grace period ended or the server restarted); join again",
            )
        };
        let id: ParticipantId = participant.parse().map_err(|_| failed())?;
        if let Some(farewell) = self.farewells.get(&id)
            && same_secret(&farewell.token, token)
        {
            // Removed, or the meeting ended, while this client was away:
            // it hears so now, and does not come back by itself.
            let message = farewell.message.clone();
            self.farewells.remove(&id);
            self.send(conn, message);
            return Err(failed());
        }
        let m = self.members.get(&id).ok_or_else(failed)?;
        // The token stands for the participant; a signed-in member resumes
        // only under the same account.
        if !same_secret(&m.token, token) || m.account != account {
            return Err(failed());
        }
        let old = m.conn;
        if old != conn && self.conns.contains_key(&old) {
            // The server had not noticed the old connection drop yet.
            if let Some(c) = self.conns.remove(&old) {
                let account = c.meta.account.map(|a| a.id);
                self.switchboard(|s| s.disconnect(old, account));
            }
            self.outputs.push_back(HubOutput::Close {
                conn: old,
                reason: "resumed on another connection",
            });
        }
        let fresh = (self.config.tokens)();
        if let Some(m) = self.members.get_mut(&id) {
            m.conn = conn;
            m.away_since = None;
            // A new secret each time: one seen on the old connection is spent.
            m.token = fresh;
            tracing::info!(room = %m.room, participant = %id, "resumed");
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.participant = Some(id);
        }
        if let Some(joined) = self.joined_message(id, true) {
            self.send(conn, joined);
        }
        self.announce(id);
        if self.role_of(id) == Role::Moderator
            && let Some(room) = self.members.get(&id).map(|m| m.room.clone())
        {
            // People who knocked meanwhile were told to no one.
            self.send_lobby(&room);
        }
        // Offers sent while away were lost: a fresh subscribe connection,
        // offered now, carries everything.
        self.sfu.renew_subscribe(now, id);
        if let Some(account) = account {
            self.switchboard(|s| s.refresh(account));
        }
        Ok(())
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
