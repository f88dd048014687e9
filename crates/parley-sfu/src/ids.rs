//! Identifiers the SFU hands out and accepts.

use std::fmt;
use std::str::FromStr;

use str0m::media::Mid;

/// A participant in a conference. Opaque to clients; rendered as `p` followed by
/// 16 hex digits, which is also the `msid` stream id of the participant's tracks
/// in every subscriber's SDP, so a browser can tell whose track arrived.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(u64);

impl ParticipantId {
    /// Wraps a raw value. Callers pick values that are unique for the server's lifetime.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{:016x}", self.0)
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error for a string that is not a participant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a participant id (expected 'p' and 16 hex digits)")]
pub struct BadParticipantId;

impl FromStr for ParticipantId {
    type Err = BadParticipantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix('p').ok_or(BadParticipantId)?;
        if hex.len() != 16 {
            return Err(BadParticipantId);
        }
        u64::from_str_radix(hex, 16)
            .map(ParticipantId)
            .map_err(|_| BadParticipantId)
    }
}

/// A group of participants who receive each other's media.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RoomId(u64);

impl RoomId {
    /// Wraps a raw value chosen by the caller.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }
}

/// Which of a participant's two peer connections a message is about.
///
/// Each participant has a *publish* connection (the client offers, carries the
/// participant's own media to the SFU) and a *subscribe* connection (the SFU
/// offers, carries everyone else's media to the participant). Keeping the two
/// directions apart means each side only ever makes offers on its own
/// connection, so offers never collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Pc {
    /// Client to SFU media; the client makes offers.
    Publish,
    /// SFU to client media; the SFU makes offers.
    Subscribe,
}

impl Pc {
    /// The wire name used in signaling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Pc::Publish => "publish",
            Pc::Subscribe => "subscribe",
        }
    }
}

/// A track published by a participant, named by its publisher and the `mid` of
/// the m-line on the publisher's publish connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TrackKey {
    /// Who sends the track.
    pub publisher: ParticipantId,
    /// The m-line on the publisher's publish connection.
    pub mid: Mid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_id_round_trips_through_text() {
        let id = ParticipantId::new(0xdead_beef_0123_4567);
        let text = id.to_string();
        assert_eq!(text, "pdeadbeef01234567");
        assert_eq!(text.parse::<ParticipantId>(), Ok(id));
    }

    #[test]
    fn participant_id_rejects_malformed_text() {
        for bad in [
            "",
            "p",
            "q0000000000000001",
            "p00000000000000001",
            "pxyz0000000000000",
        ] {
            assert_eq!(bad.parse::<ParticipantId>(), Err(BadParticipantId), "{bad}");
        }
    }
}
