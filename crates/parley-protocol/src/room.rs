//! What a room's participants see of each other and of the room: roles,
//! security, the lobby, chat, tile sizes and media paths.

use serde::{Deserialize, Serialize};

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
