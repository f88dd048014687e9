//! Media through the whole hub: in-memory str0m clients, a virtual clock and
//! a virtual network. Ten simulated seconds run in well under a second.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::Duration;

use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use support::{World, answer_offer, layer_frame_size, publish_only};

#[test]
fn two_participants_receive_each_others_audio_and_video() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    w.publish(a);
    w.publish(b);
    w.run(Duration::from_secs(3));

    let (ca, cb) = (&w.clients[a], &w.clients[b]);
    assert!(
        cb.got(ca, MediaKind::Audio) > 50,
        "B heard A {} times",
        cb.got(ca, MediaKind::Audio)
    );
    assert!(
        cb.got(ca, MediaKind::Video) > 30,
        "B saw A {} times",
        cb.got(ca, MediaKind::Video)
    );
    assert!(ca.got(cb, MediaKind::Audio) > 50);
    assert!(ca.got(cb, MediaKind::Video) > 30);
    assert_eq!(
        ca.got(ca, MediaKind::Video),
        0,
        "nobody receives themselves"
    );
    // Subscribers start on a keyframe.
    assert!(cb.keyframes_received.get(&ca.id).copied().unwrap_or(0) >= 1);
}

#[test]
fn rooms_on_different_sfu_shards_each_get_their_media() {
    let mut w = World::with_shards(2);
    let a = w.join("one", "Ada");
    let b = w.join("one", "Grace");
    let c = w.join("two", "Lin");
    let d = w.join("two", "Mae");
    for i in [a, b, c, d] {
        w.publish(i);
    }
    w.run(Duration::from_secs(3));
    let shard = |w: &World, i: usize| w.hub.sfu().shard_of(w.clients[i].id.parse().unwrap());
    assert_eq!(shard(&w, a), shard(&w, b));
    assert_eq!(shard(&w, c), shard(&w, d));
    assert_ne!(
        shard(&w, a),
        shard(&w, c),
        "the second room went to the idle shard"
    );
    for (to, from) in [(a, b), (b, a), (c, d), (d, c)] {
        let (ct, cf) = (&w.clients[to], &w.clients[from]);
        assert!(ct.got(cf, MediaKind::Video) > 30, "{to} from {from}");
        assert!(ct.got(cf, MediaKind::Audio) > 50, "{to} from {from}");
    }
    assert_eq!(
        w.clients[a].got(&w.clients[c], MediaKind::Video),
        0,
        "nothing crosses rooms"
    );
}

#[test]
fn a_late_joiner_gets_a_keyframe_at_once_and_everything_after() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    let b = w.join("room", "Grace");
    w.run(Duration::from_secs(2));
    let requests_before = w.clients[a].keyframe_requests_seen;

    let c = w.join("room", "Lin");
    // Far less than the publisher's own 3 s keyframe interval.
    w.run(Duration::from_millis(800));
    let (ca, cc) = (&w.clients[a], &w.clients[c]);
    assert!(
        ca.keyframe_requests_seen > requests_before,
        "the SFU asks the publisher for a keyframe for the newcomer"
    );
    assert!(cc.keyframes_received.get(&ca.id).copied().unwrap_or(0) >= 1);
    assert!(
        cc.got(ca, MediaKind::Video) >= 10,
        "{}",
        cc.got(ca, MediaKind::Video)
    );
    assert!(cc.got(ca, MediaKind::Audio) >= 20);
    assert!(w.clients[b].got(ca, MediaKind::Video) > 60);
}

#[test]
fn a_joiner_whose_keyframe_starts_out_of_order_still_gets_all_of_it() {
    // (Not H.264: an IDR slice that overtakes its parameter sets is taken
    // as the entry point, and the parameter sets behind it are dropped. A
    // late parameter-set packet is an entry point when no IDR start came
    // first, as after a loss; see `starts_keyframe`'s unit test.)
    for codec in [Codec::Vp8, Codec::Vp9] {
        let mut w = World::new();
        let a = w.join("room", "Ada");
        publish_only(&mut w, a, codec);
        w.run(Duration::from_secs(2));
        let requests_before = w.clients[a].keyframe_requests_seen;

        // The keyframe asked for the newcomer reaches the server second
        // packet first. Whoever enters there still needs the packet that
        // came before.
        w.reorder_frame_from = Some(w.clients[a].publish_addr);
        let b = w.join("room", "Grace");
        w.run(Duration::from_millis(800));
        assert_eq!(
            w.reorder_frame_from, None,
            "{codec:?}: a frame was reordered"
        );
        let (ca, cb) = (&w.clients[a], &w.clients[b]);
        assert!(
            cb.keyframes_received.get(&ca.id).copied().unwrap_or(0) >= 1,
            "{codec:?}: the newcomer got a keyframe"
        );
        assert_eq!(
            cb.video_sizes[&ca.id].first(),
            Some(&layer_frame_size(1, true)),
            "{codec:?}: its first frame is the whole keyframe"
        );
        let got = cb.got(ca, MediaKind::Video);
        assert!(got >= 10, "{codec:?}: {got} frames");
        assert_eq!(
            ca.keyframe_requests_seen - requests_before,
            1,
            "{codec:?}: one keyframe request"
        );
    }
}

#[test]
fn a_publisher_leaving_is_renegotiated_away_and_the_rest_keep_going() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    let c = w.join("room", "Lin");
    for i in [a, b, c] {
        w.publish(i);
    }
    w.run(Duration::from_secs(2));
    let offers_before = w.clients[c].subscribe_offers;
    w.leave(a);
    w.run(Duration::from_secs(1));

    let got_b_before = w.clients[c].got(&w.clients[b], MediaKind::Video);
    let got_a_before = w.clients[c].got(&w.clients[a], MediaKind::Video);
    w.run(Duration::from_secs(1));
    let cc = &w.clients[c];
    assert!(cc.subscribe_offers > offers_before, "removal renegotiates");
    assert_eq!(
        cc.got(&w.clients[a], MediaKind::Video),
        got_a_before,
        "nothing from A after it left"
    );
    assert!(
        cc.got(&w.clients[b], MediaKind::Video) > got_b_before + 20,
        "B still flows"
    );
    assert_eq!(w.hub.sfu().participant_count(), 2);
}

#[test]
fn publishing_a_second_video_track_mid_call_reaches_the_others() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    w.publish(a);
    w.run(Duration::from_secs(1));
    assert_eq!(w.clients[b].sources.len(), 2);

    // A renegotiates its publish connection to add a second video (a screen, say).
    let c = &mut w.clients[a];
    let mut api = c.publish.sdp_api();
    let extra = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    c.pending_publish = Some(pending);
    w.send(
        a,
        serde_json::json!({"type": "offer", "pc": "publish", "sdp": offer.to_sdp_string()}),
    );
    w.run(Duration::from_millis(200));
    assert_eq!(
        w.clients[b].sources.len(),
        3,
        "the new track was offered to B"
    );
    let from_a = w.clients[b]
        .sources
        .values()
        .filter(|(who, _)| *who == w.clients[a].id)
        .count();
    assert_eq!(from_a, 3);
    let _ = extra;
}

#[test]
fn an_answer_to_an_older_offer_is_refused_and_the_right_one_accepted() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    let b = w.join("room", "Grace");
    let (offer_id, renew, sdp) = w.hold_next_offer(b);
    assert!(!renew);
    let mut reply = answer_offer(&mut w.clients[b], w.now, offer_id, renew, &sdp);
    reply["offer_id"] = serde_json::json!(offer_id + 7);
    w.send(b, reply.clone());
    assert_eq!(
        w.clients[b].errors,
        vec![parley_signal::ErrorCode::StaleAnswer]
    );

    reply["offer_id"] = serde_json::json!(offer_id);
    w.send(b, reply);
    w.clients[b].answer_offers = true;
    w.run(Duration::from_secs(1));
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 10);
}

#[test]
fn an_unanswered_offer_renews_the_subscribe_connection() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    let b = w.join("room", "Grace");
    w.clients[b].answer_offers = false;
    w.run(Duration::from_secs(5));
    assert_eq!(w.clients[b].held.len(), 1, "one offer out at a time");
    assert_eq!(w.clients[b].got(&w.clients[a], MediaKind::Video), 0);

    // The client wakes up after the offer timed out; the server has moved on.
    w.clients[b].answer_offers = true;
    w.run(parley_sfu_offer_timeout());
    assert_eq!(
        w.clients[b].renewals, 1,
        "the next offer asks for a new connection"
    );
    w.run(Duration::from_secs(1));
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 10);
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Audio) > 20);
}

#[test]
fn an_answer_that_cannot_be_applied_renews_the_subscribe_connection() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    let b = w.join("room", "Grace");
    let (offer_id, _, _) = w.hold_next_offer(b);
    // A well-formed SDP that answers nothing the server offered.
    let bogus = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    w.clients[b].answer_offers = true;
    w.send(
        b,
        serde_json::json!({"type": "answer", "pc": "subscribe", "offer_id": offer_id, "sdp": bogus}),
    );
    assert_eq!(
        w.clients[b].errors,
        vec![parley_signal::ErrorCode::SdpRejected]
    );
    w.run(Duration::from_secs(1));
    assert_eq!(w.clients[b].renewals, 1);
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 10);
}

fn parley_sfu_offer_timeout() -> Duration {
    Duration::from_secs(12)
}

#[test]
fn a_publish_offer_without_fingerprint_fails_cleanly_and_a_good_one_recovers() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    // An offer stripped of its DTLS fingerprint: str0m refuses it and closes
    // the connection, as the fingerprint is what authenticates the media.
    let c = &mut w.clients[a];
    let mut api = c.publish.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let stripped: String = offer
        .to_sdp_string()
        .split("\r\n")
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect::<Vec<_>>()
        .join("\r\n");
    w.send(
        a,
        serde_json::json!({"type": "offer", "pc": "publish", "sdp": stripped}),
    );
    w.run(Duration::from_millis(50));
    let errors = w.clients[a].errors.clone();
    assert_eq!(
        errors.first(),
        Some(&parley_signal::ErrorCode::SdpRejected),
        "{errors:?}"
    );
    assert!(
        errors.contains(&parley_signal::ErrorCode::MediaFailed),
        "{errors:?}"
    );

    // A fresh client-side connection and a proper offer: media flows.
    let now = w.now;
    let c = &mut w.clients[a];
    let addr = c.publish_addr;
    c.publish = Rtc::new(now);
    c.publish
        .add_local_candidate(Candidate::host(addr, "udp").unwrap());
    c.publish_timeout = now;
    w.publish(a);
    w.run(Duration::from_secs(2));
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 20);
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Audio) > 40);
}

#[test]
fn a_duplicate_answer_is_refused_and_changes_nothing() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    let b = w.join("room", "Grace");
    let (offer_id, renew, sdp) = w.hold_next_offer(b);
    let reply = answer_offer(&mut w.clients[b], w.now, offer_id, renew, &sdp);
    w.send(b, reply.clone());
    w.send(b, reply);
    assert_eq!(
        w.clients[b].errors,
        vec![parley_signal::ErrorCode::NoPendingOffer]
    );
    w.clients[b].answer_offers = true;
    w.run(Duration::from_secs(1));
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 10);
}

#[test]
fn the_last_one_left_keeps_a_working_subscribe_connection() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    w.publish(a);
    w.publish(b);
    w.run(Duration::from_secs(1));
    // Grace leaves: every media m-line of Ada's subscribe connection stops.
    w.leave(b);
    w.run(Duration::from_secs(2));
    assert!(w.clients[a].errors.is_empty(), "{:?}", w.clients[a].errors);
    assert_eq!(w.clients[a].renewals, 0);
    // Someone new arrives and Ada receives them on the same connection.
    let c = w.join("room", "Lin");
    w.publish(c);
    w.run(Duration::from_secs(1));
    assert!(w.clients[a].got(&w.clients[c], MediaKind::Video) > 10);
    assert!(w.clients[a].errors.is_empty(), "{:?}", w.clients[a].errors);
}

#[test]
fn subscriptions_that_end_before_the_connection_is_up_do_not_strand_it() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    w.run(Duration::from_millis(500));
    // Grace joins and answers, but Ada leaves before Grace's connection is up.
    let b = w.join("room", "Grace");
    w.leave(a);
    w.run(Duration::from_millis(300));
    let c = w.join("room", "Lin");
    w.publish(c);
    w.run(Duration::from_secs(2));
    assert!(w.clients[b].got(&w.clients[c], MediaKind::Video) > 10);
    assert!(w.clients[b].got(&w.clients[c], MediaKind::Audio) > 20);
    assert!(w.clients[b].errors.is_empty(), "{:?}", w.clients[b].errors);
}

#[test]
fn a_lost_video_packet_is_retransmitted_and_no_frame_is_missing() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    let b = w.join("room", "Grace");
    w.publish(a);
    w.run(Duration::from_secs(2));
    let video_written = |w: &World| w.clients[a].frames_sent.div_ceil(7);
    let received = |w: &World| w.clients[b].got(&w.clients[a], MediaKind::Video);

    // Lose two video packets on their way to Grace, then give NACK and the
    // retransmission a moment.
    let (sent0, got0) = (video_written(&w), received(&w));
    w.lose_video_to = Some((w.clients[b].subscribe_addr, 2));
    w.run(Duration::from_millis(1500));
    assert_eq!(
        w.lose_video_to.map(|l| l.1),
        Some(0),
        "two packets were lost"
    );
    // Frames still on the wire when the window closes get a moment to land.
    let sent1 = video_written(&w);
    w.run(Duration::from_millis(50));
    let got1 = received(&w);
    assert!(
        got1 - got0 >= sent1 - sent0,
        "every frame written in the window reached Grace ({} written, {} received)",
        sent1 - sent0,
        got1 - got0
    );
}
