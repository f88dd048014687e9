//! What the server sends (`docs/protocol.md`).

use serde::{Deserialize, Serialize};

use crate::PcName;
use crate::calls::{CallEndReason, CallParty, PresenceStatus};
use crate::error::{ErrorCode, ProtocolError};
use crate::ice::{IceServer, IceTransportPolicy};
use crate::room::{
    ChatMessage, Knocker, LeaveReason, MediaPath, ModerateAction, ParticipantInfo, Security,
};

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// You are in the room.
    Joined {
        /// The protocol version in use.
        version: u32,
        /// The normalised room name.
        room: String,
        /// You, as others see you.
        #[serde(rename = "self")]
        me: ParticipantInfo,
        /// Everyone else, in order of arrival.
        participants: Vec<ParticipantInfo>,
        /// For `RTCConfiguration.iceServers`.
        ice_servers: Vec<IceServer>,
        /// For `RTCConfiguration.iceTransportPolicy`.
        #[serde(default)]
        ice_transport_policy: IceTransportPolicy,
        /// The reactions this server allows, in the order to show them.
        #[serde(default)]
        reactions: Vec<String>,
        /// The room's security.
        #[serde(default)]
        security: Security,
        /// The meeting's chat so far (room messages, oldest first).
        #[serde(default)]
        chat: Vec<ChatMessage>,
        /// Send with `resume` on a new connection to keep this place in the
        /// room after the connection drops. Secret: it stands for you.
        #[serde(default)]
        resume_token: String,
        /// This `joined` answers `resume`: the same participant, its media
        /// connections kept (the subscribe connection is renewed).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// The room has a lobby: wait until a moderator admits you (`joined`
    /// follows) or turns you away (error `lobby_rejected`).
    LobbyWaiting {
        /// The normalised room name.
        room: String,
    },
    /// Who is waiting in the lobby (to moderators, whenever it changes).
    Lobby {
        /// In order of arrival.
        waiting: Vec<Knocker>,
    },
    /// A chat message.
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// The room's security changed.
    Security {
        /// The new state.
        security: Security,
    },
    /// A moderator did something to you.
    Moderation {
        /// What: `mute`, `allow_unmute`, `ask_camera`, `stop_screen`, `lower_hand`, `role`.
        action: ModerateAction,
        /// The moderator's name.
        by: String,
        /// With `mute`: you may not unmute until allowed.
        #[serde(default)]
        forbid_unmute: bool,
    },
    /// A user's presence changed (to signed-in users who may see them).
    Presence {
        /// The account id.
        user: i64,
        /// The new status.
        status: PresenceStatus,
    },
    /// Someone is calling you (to every page of yours).
    IncomingCall {
        /// Answer or decline with this.
        call_id: u64,
        /// The caller.
        from: CallParty,
        /// A video call.
        video: bool,
    },
    /// Your call is ringing on the callee's pages.
    CallRinging {
        /// The call.
        call_id: u64,
        /// The callee.
        to: CallParty,
    },
    /// The call was answered: join this room (to the caller and the page that answered).
    CallAccepted {
        /// The call.
        call_id: u64,
        /// The call's room.
        room: String,
    },
    /// The call is over, or never started.
    CallEnded {
        /// The call (0 when it was refused before it had one).
        call_id: u64,
        /// Why.
        reason: CallEndReason,
    },
    /// A participant's media path, round trip and loss (to moderators).
    ConnectionStats {
        /// Whose.
        participant: String,
        /// The selected path.
        path: MediaPath,
        /// Round-trip time in milliseconds.
        rtt_ms: u32,
        /// Loss per thousand.
        loss_permille: u16,
    },
    /// The room's active speaker changed (from the audio levels in their
    /// packets; a muted participant never becomes it).
    ActiveSpeaker {
        /// Who speaks now.
        id: String,
    },
    /// You are out of the meeting: removed by a moderator, or it ended.
    Removed {
        /// `removed` or `ended`.
        reason: LeaveReason,
        /// The moderator's name.
        by: String,
        /// You may not come back to this meeting.
        #[serde(default)]
        blocked: bool,
    },
    /// Someone entered.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone's microphone or camera state changed.
    ParticipantUpdated {
        /// Who, with the new state.
        participant: ParticipantInfo,
    },
    /// Someone left.
    ParticipantLeft {
        /// Their id.
        id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// Someone reacted.
    Reaction {
        /// Who (their id; the sender gets its own reaction back too).
        participant: String,
        /// The emoji.
        emoji: String,
    },
    /// The administrator changed what this room's participants may do
    /// (sent to everyone in a room when it changes).
    RoomSettings {
        /// The reactions now allowed, as in `joined`.
        reactions: Vec<String>,
    },
    /// The server's answer (publish connection).
    Answer {
        /// Always `publish`.
        pc: PcName,
        /// The SDP.
        sdp: String,
    },
    /// The server's offer (subscribe connection).
    Offer {
        /// Always `subscribe`.
        pc: PcName,
        /// Numbers the offers on this participant's subscribe connection;
        /// the answer repeats it.
        offer_id: u64,
        /// Replace the subscribe peer connection with a new one before
        /// applying this offer (the server started its side afresh).
        #[serde(default)]
        renew: bool,
        /// The SDP.
        sdp: String,
    },
    /// `leave` done.
    Left,
    /// Reply to `ping`.
    Pong,
    /// Send the publish track `mid` in `codec`: someone in the room cannot
    /// decode the codec it is sent in, and everyone can decode this one. The
    /// client puts `codec` first in that track's codec preferences and
    /// offers again.
    PublishCodec {
        /// The track's mid on the publish connection.
        mid: String,
        /// `vp8`, `vp9`, `h264` or `av1`.
        codec: String,
    },
    /// Something the client sent was refused.
    Error {
        /// For programs.
        code: ErrorCode,
        /// For people.
        message: String,
        /// The `type` of the refused message, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<String>,
    },
}

impl From<ProtocolError> for ServerMessage {
    fn from(e: ProtocolError) -> Self {
        ServerMessage::Error {
            code: e.code,
            message: e.message,
            in_reply_to: e.in_reply_to,
        }
    }
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_use_the_documented_shape() {
        let m = ServerMessage::ParticipantLeft {
            id: "p1".into(),
            reason: LeaveReason::Timeout,
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"participant_left","id":"p1","reason":"timeout"}"#
        );
        let m = ServerMessage::Error {
            code: ErrorCode::NoPendingOffer,
            message: "m".into(),
            in_reply_to: None,
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"error","code":"no_pending_offer","message":"m"}"#
        );
    }
}
