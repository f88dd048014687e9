//! Fuzzes the SDP a client sends: publish offers and subscribe answers into
//! the SFU (str0m's parser, Parley's answer rewriting), for a participant
//! whose subscribe connection has an outstanding offer carrying another
//! participant's track. A bad SDP must be refused, never panic the SFU:
//! where str0m panics, the SFU's guard must contain it and refuse the SDP
//! (see `contained.rs`).

#![no_main]

use std::time::Instant;

mod contained;

use libfuzzer_sys::fuzz_target;
use parley_sfu::{ParticipantId, Pc, RoomId, Sfu, SfuEvent, TransportConfig};

const CHROME_OFFER: &str = include_str!("../seeds/sdp/chromium-publish-offer.sdp");

fuzz_target!(|data: &[u8]| contained::run(|| one(data)));

/// Fails when a call panicked inside the SFU's guard and still succeeded.
fn refused_if_panicked<T, E>(before: u64, result: &Result<T, E>, what: &str) {
    if contained::panics() > before {
        assert!(result.is_err(), "{what} panicked inside str0m and was not refused");
    }
}

fn one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let config = TransportConfig {
        host_candidates: vec!["203.0.113.7:10000".parse().unwrap()],
        tcp_candidates: vec!["203.0.113.7:10000".parse().unwrap()],
    };
    let now = Instant::now();
    let mut sfu = Sfu::new(config);
    let room = RoomId::new(1);
    let (a, b) = (ParticipantId::new(1), ParticipantId::new(2));
    sfu.add_participant(now, a, room);
    // A real browser offer publishes A's tracks, so B gets a subscribe offer with media.
    let _ = sfu.handle_publish_offer(now, a, CHROME_OFFER);
    sfu.add_participant(now, b, room);
    let mut offer_id = None;
    while let Some(e) = sfu.poll_event() {
        if let SfuEvent::SubscribeOffer { participant, offer_id: id, .. } = e
            && participant == b
        {
            offer_id = Some(id);
        }
    }
    // Half the inputs as B's publish offer, all as B's subscribe answer.
    if data.first().is_some_and(|x| x % 2 == 0) {
        let before = contained::panics();
        let answer = sfu.handle_publish_offer(now, b, &text);
        refused_if_panicked(before, &answer, "the publish offer");
        if let Ok(answer) = answer {
            assert!(answer.starts_with("v=0"), "an answer is SDP");
        }
    }
    let before = contained::panics();
    let answered = sfu.handle_subscribe_answer(now, b, offer_id, &text);
    refused_if_panicked(before, &answered, "the subscribe answer");
    let before = contained::panics();
    let added = sfu.add_remote_candidate(now, b, Pc::Publish, &text);
    refused_if_panicked(before, &added, "the candidate");
}
