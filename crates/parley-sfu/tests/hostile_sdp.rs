//! SDP that fuzzing found to trip str0m, through the SFU's public API as a
//! client's offers and answers reach it: each is refused with a reason, the
//! SFU goes on, and a good answer afterwards still works.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::time::Instant;

use parley_sfu::{ParticipantId, RoomId, Sfu, SfuError, SfuEvent, TransportConfig};

const PUBLISH_OFFER: &str = include_str!("../../../fuzz/seeds/sdp/chromium-publish-offer.sdp");

fn sfu() -> Sfu {
    Sfu::new(TransportConfig {
        host_candidates: vec!["203.0.113.7:10000".parse().unwrap()],
        tcp_candidates: vec![],
    })
}

/// A publishing and B with an outstanding subscribe offer carrying A's tracks.
fn with_offer_to_b(sfu: &mut Sfu, now: Instant) -> (ParticipantId, Option<u64>) {
    let room = RoomId::new(1);
    let (a, b) = (ParticipantId::new(1), ParticipantId::new(2));
    sfu.add_participant(now, a, room);
    sfu.handle_publish_offer(now, a, PUBLISH_OFFER).unwrap();
    sfu.add_participant(now, b, room);
    let mut offer = None;
    while let Some(e) = sfu.poll_event() {
        if let SfuEvent::SubscribeOffer {
            participant,
            offer_id,
            ..
        } = e
            && participant == b
        {
            offer = Some(offer_id);
        }
    }
    assert!(offer.is_some(), "B was offered A's tracks");
    (b, offer)
}

fn reason(result: Result<impl std::fmt::Debug, SfuError>) -> String {
    match result {
        Err(SfuError::BadSdp { reason, .. }) => reason,
        other => panic!("expected the SDP refused, got {other:?}"),
    }
}

#[test]
fn one_payload_type_for_two_codecs_is_refused_by_number() {
    let now = Instant::now();
    let mut sfu = sfu();
    let id = ParticipantId::new(1);
    sfu.add_participant(now, id, RoomId::new(1));
    // The video section's VP8 given the audio section's Opus number.
    let offer = PUBLISH_OFFER
        .replace("a=rtpmap:96 VP8/90000", "a=rtpmap:111 VP8/90000")
        .replace("UDP/TLS/RTP/SAVPF 96 ", "UDP/TLS/RTP/SAVPF 111 ");
    let why = reason(sfu.handle_publish_offer(now, id, &offer));
    assert!(why.contains("payload type 111"), "{why}");
    // The same participant's good offer goes through afterwards.
    assert!(sfu.handle_publish_offer(now, id, PUBLISH_OFFER).is_ok());
}

/// Found by `scripts/fuzz` (kept as a seed): an audio section carrying
/// video payload types (H.264 127 without its parameters among them),
/// which made str0m lock 127 for two of its H.264 configurations and
/// assert.
/// Not all of it is UTF-8; read as the server reads a frame's text.
const CLAIMED_TWICE: &[u8] =
    include_bytes!("../../../fuzz/seeds/sdp/str0m-payload-type-claimed-twice.sdp");

#[test]
fn sdp_that_made_str0m_claim_a_payload_type_twice_is_refused_by_number() {
    let now = Instant::now();
    let mut sfu = sfu();
    let (b, offer) = with_offer_to_b(&mut sfu, now);
    let sdp = String::from_utf8_lossy(CLAIMED_TWICE);
    let why = reason(sfu.handle_publish_offer(now, b, &sdp));
    assert!(
        why.contains("one number must mean one codec configuration"),
        "{why}"
    );
    let why = reason(sfu.handle_subscribe_answer(now, b, offer, &sdp));
    assert!(
        why.contains("one number must mean one codec configuration"),
        "{why}"
    );
    // Refused before str0m saw it: both connections are still usable.
    assert!(sfu.handle_publish_offer(now, b, PUBLISH_OFFER).is_ok());
}
