//! What clients send (`docs/protocol.md`), and the one parser that turns a
//! text frame into a message or an error naming what is wrong with it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calls::PresenceChoice;
use crate::error::{ErrorCode, ProtocolError};
use crate::room::{ConnectionReport, ModerateAction, Role, SecurityChange, VideoSize};
use crate::{MAX_MESSAGE_BYTES, PcName};

fn yes() -> bool {
    true
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Enter a room.
    Join {
        /// Protocol version the client speaks.
        version: u32,
        /// Room name, validated by [`RoomName`](crate::RoomName).
        room: String,
        /// Display name, validated by [`DisplayName`](crate::DisplayName).
        name: String,
        /// Whether the microphone starts on.
        #[serde(default = "yes")]
        mic: bool,
        /// Whether the camera starts on.
        #[serde(default = "yes")]
        camera: bool,
        /// The room's password, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// The client's offer (publish connection only).
    Offer {
        /// Must be `publish`.
        pc: PcName,
        /// The SDP.
        sdp: String,
    },
    /// The client's answer (subscribe connection only).
    Answer {
        /// Must be `subscribe`.
        pc: PcName,
        /// The `offer_id` of the offer answered; when present it must be
        /// the outstanding offer's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer_id: Option<u64>,
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate; empty for end of candidates.
    Candidate {
        /// The connection the candidate belongs to.
        pc: PcName,
        /// The `candidate:...` line.
        candidate: String,
    },
    /// Microphone and camera state.
    Media {
        /// Microphone on; unchanged when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mic: Option<bool>,
        /// Camera on; unchanged when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        camera: Option<bool>,
    },
    /// A reaction, shown to everyone in the room; only the emojis the
    /// administrator allows (listed in `joined.reactions`).
    Reaction {
        /// One emoji from the allowed list.
        emoji: String,
    },
    /// A chat message to the room, or to one participant.
    Chat {
        /// The text, at most [`MAX_CHAT_CHARS`] characters.
        text: String,
        /// A participant id for a private message; the room when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Raise or lower one's hand.
    Hand {
        /// Raised.
        raised: bool,
    },
    /// Start or stop sharing the screen: the mid of the publish connection's
    /// screen track, or null when the share stopped.
    Screen {
        /// The screen track's mid.
        mid: Option<String>,
    },
    /// The size each received video is shown at, so the server sends no
    /// larger simulcast layer than needed (and none to a hidden tile).
    VideoSizes {
        /// One entry per video; at most [`MAX_VIDEO_SIZES`].
        sizes: Vec<VideoSize>,
    },
    /// Change the room's security (moderators only). Absent fields stay.
    Security(SecurityChange),
    /// How this client's media reaches the server (its publish connection's
    /// selected path, round-trip time and loss), for moderators and the
    /// administrator.
    Connection(ConnectionReport),
    /// Let people waiting in the lobby in (moderators only).
    Admit {
        /// One waiting participant; absent with `all`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Everyone waiting.
        #[serde(default)]
        all: bool,
    },
    /// Turn people waiting in the lobby away (moderators only).
    Reject {
        /// One waiting participant; absent with `all`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Everyone waiting.
        #[serde(default)]
        all: bool,
    },
    /// A moderator acts on a participant.
    Moderate {
        /// What to do.
        action: ModerateAction,
        /// To whom.
        participant: String,
        /// With `mute`: the participant may not unmute until allowed.
        #[serde(default)]
        forbid_unmute: bool,
        /// With `remove`: the participant may not come back to this meeting.
        #[serde(default)]
        block: bool,
        /// With `role`: the new role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
    },
    /// End the meeting for everyone (moderators only).
    EndMeeting,
    /// Set one's presence (signed-in users): `away` while the page is
    /// hidden, `dnd` to not be rung.
    Presence {
        /// The status chosen.
        status: PresenceChoice,
    },
    /// Ring another user (signed-in users).
    Call {
        /// The callee's account id.
        to: i64,
        /// A video call (else audio only).
        #[serde(default)]
        video: bool,
    },
    /// Answer a ringing call on this page.
    CallAnswer {
        /// Which call.
        call_id: u64,
    },
    /// Decline a ringing call.
    CallDecline {
        /// Which call.
        call_id: u64,
    },
    /// Stop ringing (the caller hangs up before an answer).
    CallHangup {
        /// Which call.
        call_id: u64,
    },
    /// Leave the room, keep the connection.
    Leave,
    /// Liveness check.
    Ping,
    /// Take up one's place in a room again on a new connection, after the
    /// old one dropped: the reply is `joined` with `resumed: true`.
    Resume {
        /// The participant id from `joined`.
        participant: String,
        /// The `resume_token` from `joined`.
        token: String,
    },
}

/// Message types a client may send, for telling an unknown type from a bad field.
const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "media",
    "reaction",
    "chat",
    "hand",
    "screen",
    "video_sizes",
    "security",
    "admit",
    "reject",
    "moderate",
    "end_meeting",
    "presence",
    "call",
    "call_answer",
    "call_decline",
    "call_hangup",
    "leave",
    "ping",
    "resume",
    "connection",
];

impl ClientMessage {
    /// Parses one text frame, naming the problem if it is not a valid message.
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}",
                    text.len()
                ),
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("not JSON: {e}")))?;
        let Value::Object(object) = &value else {
            return Err(ProtocolError::new(
                ErrorCode::BadJson,
                "expected a JSON object",
            ));
        };
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => {
                return Err(ProtocolError::new(
                    ErrorCode::UnknownType,
                    "`type` must be a string",
                ));
            }
            None => {
                return Err(ProtocolError::new(ErrorCode::UnknownType, "missing `type`"));
            }
        };
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            let shown: String = kind.chars().take(40).collect();
            return Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!("unknown message type {shown:?}"),
            ));
        }
        serde_json::from_value(value).map_err(|e| {
            let message = match wrong_field(text, &kind, &e) {
                Some(field) => format!("{kind}: field `{field}`: {e}"),
                None => format!("{kind}: {e}"),
            };
            ProtocolError::new(ErrorCode::BadField, message).in_reply_to(&kind)
        })
    }

    /// The `type` of this message on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Media { .. } => "media",
            ClientMessage::Reaction { .. } => "reaction",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::Hand { .. } => "hand",
            ClientMessage::Screen { .. } => "screen",
            ClientMessage::VideoSizes { .. } => "video_sizes",
            ClientMessage::Security(_) => "security",
            ClientMessage::Admit { .. } => "admit",
            ClientMessage::Reject { .. } => "reject",
            ClientMessage::Moderate { .. } => "moderate",
            ClientMessage::EndMeeting => "end_meeting",
            ClientMessage::Presence { .. } => "presence",
            ClientMessage::Call { .. } => "call",
            ClientMessage::CallAnswer { .. } => "call_answer",
            ClientMessage::CallDecline { .. } => "call_decline",
            ClientMessage::CallHangup { .. } => "call_hangup",
            ClientMessage::Leave => "leave",
            ClientMessage::Ping => "ping",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Connection(_) => "connection",
        }
    }
}

/// Fields looked at to name the one a type error is about.
const MAX_PROBED_FIELDS: usize = 64;

/// The field a deserialization error is about, when serde did not say:
/// serde reads an internally tagged message through a buffer that loses the
/// path, so a type error reads `invalid type: string "1", expected u32`
/// without naming `version`. The field is the one that, alone with `type`,
/// gives the same error. Only on the error path; at most
/// [`MAX_PROBED_FIELDS`] fields, each probe costing that field's size.
fn wrong_field(text: &str, kind: &str, error: &serde_json::Error) -> Option<String> {
    let error = error.to_string();
    if error.starts_with("missing field") {
        return None; // names the field already
    }
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    object
        .into_iter()
        .filter(|(key, _)| key != "type")
        .take(MAX_PROBED_FIELDS)
        .find(|(key, value)| {
            let mut alone = serde_json::Map::new();
            alone.insert("type".into(), Value::String(kind.to_owned()));
            alone.insert(key.clone(), value.clone());
            serde_json::from_value::<ClientMessage>(Value::Object(alone))
                .is_err_and(|e| e.to_string() == error)
        })
        .map(|(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> ErrorCode {
        ClientMessage::parse(text).unwrap_err().code
    }

    #[test]
    fn join_parses_with_defaults() {
        let m = ClientMessage::parse(r#"{"type":"join","version":1,"room":"r","name":"Ada"}"#);
        assert_eq!(
            m.unwrap(),
            ClientMessage::Join {
                version: 1,
                room: "r".into(),
                name: "Ada".into(),
                mic: true,
                camera: true,
                password: None,
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let m = ClientMessage::parse(r#"{"type":"ping","future":{"x":1}}"#);
        assert_eq!(m.unwrap(), ClientMessage::Ping);
    }

    #[test]
    fn malformed_messages_name_the_problem() {
        assert_eq!(code_of("not json"), ErrorCode::BadJson);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code_of("\"join\""), ErrorCode::BadJson);
        assert_eq!(code_of("{}"), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":"dance"}"#), ErrorCode::UnknownType);

        let e = ClientMessage::parse(r#"{"type":"join","version":1,"name":"x"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadField);
        assert!(e.message.contains("room"), "{}", e.message);
        assert_eq!(e.in_reply_to.as_deref(), Some("join"));

        let e = ClientMessage::parse(r#"{"type":"offer","pc":"sideways","sdp":""}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadField);
        assert!(e.message.contains("sideways"), "{}", e.message);

        let e = ClientMessage::parse(r#"{"type":"media","mic":"loud"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadField);
    }

    /// Every `bad_field` names its field, type errors too (serde's own
    /// message for them does not).
    #[test]
    fn wrong_types_name_their_field() {
        for (text, field) in [
            (r#"{"type":"join","version":1,"room":1,"name":"x"}"#, "room"),
            (
                r#"{"type":"join","version":1,"room":"r","name":null}"#,
                "name",
            ),
            (
                r#"{"type":"join","version":"1","room":"r","name":"x"}"#,
                "version",
            ),
            (r#"{"type":"media","mic":"loud"}"#, "mic"),
            (r#"{"type":"offer","pc":"sideways","sdp":""}"#, "pc"),
            (
                r#"{"type":"video_sizes","sizes":[{"mid":"0","width":-1,"height":0}]}"#,
                "sizes",
            ),
            (r#"{"type":"security","lobby":"yes"}"#, "lobby"),
            (r#"{"type":"call","to":"bob"}"#, "to"),
        ] {
            let e = ClientMessage::parse(text).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadField, "{text}");
            assert!(
                e.message.contains(&format!("`{field}`")),
                "{text}: {}",
                e.message
            );
        }
        let e = ClientMessage::parse(r#"{"type":"join","version":1,"name":"x"}"#).unwrap_err();
        assert!(e.message.contains("missing field `room`"), "{}", e.message);
    }

    #[test]
    fn oversized_messages_are_refused_before_parsing() {
        let big = format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code_of(&big), ErrorCode::TooLarge);
    }

    /// The list that tells an unknown type from a bad field is serde's own.
    #[test]
    fn client_types_are_the_variants() {
        let error = serde_json::from_str::<ClientMessage>(r#"{"type":"?"}"#)
            .unwrap_err()
            .to_string();
        let mut listed: Vec<&str> = error.split('`').skip(3).step_by(2).collect();
        let mut known = CLIENT_TYPES.to_vec();
        listed.sort_unstable();
        known.sort_unstable();
        assert_eq!(listed, known, "{error}");
    }
}
