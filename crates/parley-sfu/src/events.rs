//! What the SFU tells its driver, and the counters it keeps.

use crate::ids::{ParticipantId, Pc, RoomId};
use crate::transport::TransportState;

/// What the SFU tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// Send this subscribe offer to the participant; answer with
    /// [`Sfu::handle_subscribe_answer`](crate::Sfu::handle_subscribe_answer).
    SubscribeOffer {
        /// Who the offer is for.
        participant: ParticipantId,
        /// Numbers the participant's offers; the answer names it.
        offer_id: u64,
        /// The SFU replaced the subscribe connection: the client must replace
        /// its own peer connection too before applying this offer.
        renew: bool,
        /// The SDP.
        sdp: String,
    },
    /// The room's active speaker changed (from RFC 6464 audio levels).
    ActiveSpeaker {
        /// Which room.
        room: RoomId,
        /// Who speaks now.
        participant: ParticipantId,
    },
    /// Ask the publisher to send its track `mid` in `codec` (put it first
    /// in the track's codec preferences and offer again): a subscriber
    /// cannot decode the codec it sends, and every subscriber of the track
    /// can decode this one.
    PublishCodec {
        /// The publisher.
        participant: ParticipantId,
        /// The track's mid on its publish connection.
        mid: String,
        /// The codec's name, as [`codec_name`](crate::codec_name) writes it.
        codec: &'static str,
    },
    /// A subscriber can decode none of the codecs a publisher's video is
    /// sent or could be sent in: it gets no video from that publisher.
    NoCommonCodec {
        /// The subscriber.
        participant: ParticipantId,
        /// The publisher.
        publisher: ParticipantId,
        /// The codec the publisher sends.
        codec: &'static str,
        /// The codecs the subscriber's answer accepted for that video.
        accepted: Vec<&'static str>,
    },
    /// A connection changed state.
    TransportState {
        /// Whose connection.
        participant: ParticipantId,
        /// Which one.
        pc: Pc,
        /// The new state.
        state: TransportState,
    },
}

/// Counters for what the SFU refused or could not place.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SfuStats {
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub malformed_datagrams: u64,
    /// Datagrams no connection recognised (unknown peer, or one that left).
    pub unrouted_datagrams: u64,
    /// Frames forwarded to subscribers (one per subscriber).
    pub frames_forwarded: u64,
}
