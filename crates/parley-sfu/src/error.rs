//! Errors the SFU reports to its caller. Each variant says whose fault it is.

use crate::ids::Pc;

/// Why an SFU operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    /// Caller bug: the participant is not (or no longer) in the SFU.
    #[error("unknown participant")]
    UnknownParticipant,
    /// Peer fault: the SDP could not be parsed or applied.
    #[error("{pc} SDP rejected: {reason}", pc = .pc.as_str())]
    BadSdp {
        /// The connection the SDP was for.
        pc: Pc,
        /// What was wrong, in str0m's words.
        reason: String,
    },
    /// Peer fault: an answer arrived while no offer was outstanding.
    #[error("no subscribe offer is outstanding, so there is nothing to answer")]
    NoPendingOffer,
    /// Peer fault: the answer names an offer other than the outstanding one
    /// (typically a late answer to an offer the SFU has since replaced).
    #[error("answer is for subscribe offer {answered}, but offer {outstanding} is outstanding")]
    StaleAnswer {
        /// The offer the answer names.
        answered: u64,
        /// The offer awaiting an answer.
        outstanding: u64,
    },
    /// Peer fault: the ICE candidate line could not be parsed.
    #[error("ICE candidate rejected: {0}")]
    BadCandidate(String),
}
