//! Errors sent to clients: a code for programs and a message for people.

use serde::{Deserialize, Serialize};

/// The `code` of an `error` message; see `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object, or a binary frame.
    BadJson,
    /// `type` missing or unknown.
    UnknownType,
    /// A field is missing, mistyped or breaks its rules.
    BadField,
    /// Larger than the message limit.
    TooLarge,
    /// Too many messages.
    RateLimited,
    /// `join` asked for a protocol version the server does not speak.
    UnsupportedVersion,
    /// The message needs a joined room.
    NotJoined,
    /// `join` while in a room.
    AlreadyJoined,
    /// The room is at its member limit.
    RoomFull,
    /// The administrator has turned conferencing off.
    ConferencingDisabled,
    /// `reaction` with an emoji the administrator does not allow.
    ReactionNotAllowed,
    /// `answer` without an outstanding offer.
    NoPendingOffer,
    /// `answer` naming an offer other than the outstanding one.
    StaleAnswer,
    /// The SDP could not be parsed or applied.
    SdpRejected,
    /// The ICE candidate could not be parsed.
    BadCandidate,
    /// A media connection failed.
    MediaFailed,
    /// The room has a password and `join` gave none.
    PasswordRequired,
    /// `join` gave the wrong password.
    WrongPassword,
    /// A moderator locked the room.
    RoomLocked,
    /// A moderator turned the request to join away, or the meeting ended
    /// while waiting in the lobby.
    LobbyRejected,
    /// A moderator removed this participant and blocked their return.
    Blocked,
    /// The participant's role does not allow this.
    Forbidden,
    /// A chat message over the length limit.
    MessageTooLong,
    /// No such participant in this room (or in its lobby).
    UnknownParticipant,
    /// Someone else is sharing their screen and the room allows one share.
    ScreenBusy,
    /// `resume` named no participant that is still in its room with that
    /// token (the grace period ended, or the server restarted): join afresh.
    ResumeFailed,
    /// This client can decode none of the codecs a publisher's video is
    /// sent or could be sent in: it gets that publisher's audio only.
    NoCommonCodec,
}

/// A refusal of something a client sent: always the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// For programs.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// The `type` of the refused message.
    pub in_reply_to: Option<String>,
}

impl ProtocolError {
    /// An error with no `in_reply_to`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
            in_reply_to: None,
        }
    }

    /// Names the message type this error answers.
    pub fn in_reply_to(mut self, kind: &str) -> Self {
        self.in_reply_to = Some(kind.to_owned());
        self
    }
}
