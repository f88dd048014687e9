//! The hub's front door: a text frame becomes a message, and each message
//! goes to the part of the hub that owns what it is about.

use std::time::Instant;

use parley_protocol::{ClientMessage, ErrorCode, LeaveReason, ProtocolError, ServerMessage};
use parley_sfu::ParticipantId;

use super::{ConnId, Hub, access};

impl Hub {
    /// A text frame from a client.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_activity = c.last_activity.max(now);
        if !c.limiter.try_take(now) {
            self.reply_error(
                conn,
                ProtocolError::new(
                    ErrorCode::RateLimited,
                    "too many messages; this one was dropped",
                ),
            );
            return;
        }
        match ClientMessage::parse(text) {
            Ok(message) => {
                let kind = message.kind();
                if let Err(e) = self.handle_message(now, conn, message) {
                    let e = if e.in_reply_to.is_none() {
                        e.in_reply_to(kind)
                    } else {
                        e
                    };
                    self.reply_error(conn, e);
                }
            }
            Err(e) => self.reply_error(conn, e),
        }
        self.pump_sfu();
    }

    /// A binary frame, which the protocol does not use.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId) {
        self.handle_activity(now, conn);
        self.reply_error(
            conn,
            ProtocolError::new(
                ErrorCode::BadJson,
                "binary frames are not part of the protocol; send JSON text",
            ),
        );
    }

    pub(crate) fn joined_participant(&self, conn: ConnId) -> Result<ParticipantId, ProtocolError> {
        self.conns
            .get(&conn)
            .and_then(|c| c.participant)
            .ok_or_else(|| ProtocolError::new(ErrorCode::NotJoined, "join a room first"))
    }

    /// Routes one message to the part that owns what it is about.
    fn handle_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: ClientMessage,
    ) -> Result<(), ProtocolError> {
        match message {
            ClientMessage::Join {
                version,
                room,
                name,
                mic,
                camera,
                password,
            } => self.join(
                now,
                conn,
                access::JoinRequest {
                    version,
                    room,
                    name,
                    mic,
                    camera,
                    password,
                },
            ),
            m @ (ClientMessage::Offer { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::Candidate { .. }) => {
                let id = self.joined_participant(conn)?;
                self.handle_media_message(now, conn, id, m)
            }
            m @ (ClientMessage::Media { .. }
            | ClientMessage::Reaction { .. }
            | ClientMessage::Chat { .. }
            | ClientMessage::Hand { .. }
            | ClientMessage::VideoSizes { .. }
            | ClientMessage::Screen { .. }) => {
                let id = self.joined_participant(conn)?;
                self.handle_conversation(now, id, m)
            }
            m @ (ClientMessage::Security(_)
            | ClientMessage::Admit { .. }
            | ClientMessage::Reject { .. }
            | ClientMessage::Moderate { .. }
            | ClientMessage::EndMeeting) => {
                let moderator = self.moderator(conn)?;
                self.handle_moderation(now, moderator, m)
            }
            m @ (ClientMessage::Presence { .. }
            | ClientMessage::Call { .. }
            | ClientMessage::CallAnswer { .. }
            | ClientMessage::CallDecline { .. }
            | ClientMessage::CallHangup { .. }) => self.handle_call_message(now, conn, m),
            ClientMessage::Leave => {
                if let Some(pending) = self.conns.get_mut(&conn).and_then(|c| c.pending.take()) {
                    self.drop_pending(conn, &pending);
                    self.send(conn, ServerMessage::Left);
                    return Ok(());
                }
                let id = self.joined_participant(conn)?;
                self.leave(now, id, LeaveReason::Left);
                self.send(conn, ServerMessage::Left);
                Ok(())
            }
            ClientMessage::Ping => {
                self.send(conn, ServerMessage::Pong);
                Ok(())
            }
            ClientMessage::Resume { participant, token } => {
                self.resume(now, conn, &participant, &token)
            }
            ClientMessage::Connection(report) => {
                let id = self.joined_participant(conn)?;
                self.report_path(id, report)
            }
        }
    }
}
