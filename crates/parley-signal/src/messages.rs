//! The wire format of `docs/protocol.md`: what clients send and what the
//! server sends back. Both directions serialize and deserialize, so the same
//! types serve the server, its tests and Rust clients such as the load generator.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, ProtocolError};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 65_536;

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcName {
    /// The client's own media; the client offers.
    Publish,
    /// Everyone else's media; the server offers.
    Subscribe,
}

impl From<PcName> for parley_sfu::Pc {
    fn from(pc: PcName) -> Self {
        match pc {
            PcName::Publish => parley_sfu::Pc::Publish,
            PcName::Subscribe => parley_sfu::Pc::Subscribe,
        }
    }
}

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

/// The presence a user chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceChoice {
    /// Reachable.
    Available,
    /// The page is hidden or idle.
    Away,
    /// Do not ring.
    Dnd,
}

/// A user's presence as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// On a Parley page and reachable.
    Available,
    /// Every Parley page of theirs is hidden or idle; still rung.
    Away,
    /// In a meeting or a call; not rung.
    Busy,
    /// Do not disturb; not rung.
    Dnd,
    /// No Parley page open.
    Offline,
}

/// One side of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallParty {
    /// Account id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// The callee declined.
    Declined,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The callee is in a meeting or a call.
    Busy,
    /// The callee set do-not-disturb.
    Dnd,
    /// The callee has no Parley page open.
    Offline,
    /// The caller hung up before an answer.
    Cancelled,
    /// Answered on another page of the callee's.
    AnsweredElsewhere,
    /// The other side left the call.
    HungUp,
}

/// The longest room password, in bytes.
pub const MAX_ROOM_PASSWORD_BYTES: usize = 256;

/// The longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 4000;

/// A participant's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes part; publishes unless the room is in presenter mode.
    Participant,
    /// May publish video and screen in presenter mode.
    Presenter,
    /// Runs the room: security, lobby, moderation, roles.
    Moderator,
}

/// What a moderator can do to a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModerateAction {
    /// Turn their microphone off (the server stops forwarding it).
    Mute,
    /// Let a participant muted with `forbid_unmute` unmute again.
    AllowUnmute,
    /// Ask them to turn their camera on.
    AskCamera,
    /// Stop their screen share.
    StopScreen,
    /// Lower their raised hand.
    LowerHand,
    /// Take them out of the meeting.
    Remove,
    /// Give them another role.
    Role,
}

/// What happens when the last moderator leaves a room with others in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handover {
    /// The longest-present account holder becomes moderator; with none
    /// there, the lobby opens to all.
    #[default]
    NextAccount,
    /// The lobby opens to all (and the lock comes off) until a moderator is back.
    OpenLobby,
}

/// A change to a room's security; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecurityChange {
    /// A new password; the empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Newcomers wait in the lobby until a moderator admits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lobby: Option<bool>,
    /// Nobody new gets in (moderators' accounts excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Only presenters and moderators publish video and screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presenter_mode: Option<bool>,
    /// Several participants may share their screens at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_shares: Option<bool>,
    /// What happens when the last moderator leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_moderator_leave: Option<Handover>,
}

/// A room's security as participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Security {
    /// A password is needed to enter.
    pub password: bool,
    /// Newcomers wait in the lobby.
    pub lobby: bool,
    /// Nobody new gets in.
    pub locked: bool,
    /// Only presenters and moderators publish video and screen.
    pub presenter_mode: bool,
    /// Several screens may be shared at once.
    pub multiple_shares: bool,
    /// What happens when the last moderator leaves.
    pub on_moderator_leave: Handover,
}

/// Someone waiting in the lobby, as moderators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knocker {
    /// Id to admit or reject with.
    pub id: String,
    /// The name they gave.
    pub name: String,
    /// They are signed in.
    pub account: bool,
}

/// A chat message as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Sender's participant id.
    pub from: String,
    /// Sender's display name when sent.
    pub name: String,
    /// Plain text; clients must show it as text, never as HTML.
    pub text: String,
    /// The recipient's id for a private message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When the server received it, milliseconds since the Unix epoch.
    pub at: u64,
}

/// Most entries one `video_sizes` message may carry.
pub const MAX_VIDEO_SIZES: usize = 100;

/// The tile size of one received video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSize {
    /// The video's mid in the subscribe connection.
    pub mid: String,
    /// Width in pixels; 0 when not shown.
    pub width: u32,
    /// Height in pixels; 0 when not shown.
    pub height: u32,
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

/// The network path a client's media takes to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaPath {
    /// UDP straight to the media port.
    Udp,
    /// ICE-TCP straight to the media port (UDP blocked).
    Tcp,
    /// Relayed by a TURN server reached over UDP.
    TurnUdp,
    /// Relayed by a TURN server reached over TCP.
    TurnTcp,
    /// Relayed by a TURN server reached over TLS.
    TurnTls,
}

/// A client's report of its media path (`connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// The selected path.
    pub path: MediaPath,
    /// Round-trip time to the server in milliseconds (at most 60 000).
    #[serde(default)]
    pub rtt_ms: u32,
    /// Packets lost on the way to the server, per thousand (at most 1000).
    #[serde(default)]
    pub loss_permille: u16,
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Opaque id; also the `msid` stream id of the participant's tracks.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Microphone on.
    pub mic: bool,
    /// Camera on.
    pub camera: bool,
    /// Their role in the room.
    pub role: Role,
    /// The room's owner.
    #[serde(default)]
    pub owner: bool,
    /// Signed in (false: a guest who came by link).
    #[serde(default)]
    pub account: bool,
    /// Place in the raised-hands queue (lower came first), when raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
    /// The mid of their screen track while they share their screen; the
    /// track's id is `{id}-{mid}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// A moderator muted them and has not let them unmute.
    #[serde(default)]
    pub mic_locked: bool,
    /// Their connection dropped; they keep their place while they reconnect
    /// (until the grace period ends, then they leave).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconnecting: bool,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Which ICE candidates the browser may use (`RTCConfiguration.iceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IceTransportPolicy {
    /// Any candidate.
    #[default]
    All,
    /// Relayed candidates only: media always goes through TURN.
    Relay,
}

/// What a participant's peer connections are configured with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// For `RTCConfiguration.iceServers`.
    pub servers: Vec<IceServer>,
    /// For `RTCConfiguration.iceTransportPolicy`.
    pub policy: IceTransportPolicy,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its connection closed.
    Disconnected,
    /// Its connection went silent.
    Timeout,
    /// A moderator removed it.
    Removed,
    /// A moderator ended the meeting.
    Ended,
}

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
