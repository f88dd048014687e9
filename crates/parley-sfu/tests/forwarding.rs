//! The SFU alone, on a virtual clock and network: media both ways, a late
//! joiner's first keyframe, simulcast layers chosen by tile size, a
//! publisher leaving, moderation's gate, and garbage on the media socket.
//! The same behaviour through the hub's protocol is tested in
//! `parley-signal/tests/`.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod common;

use std::time::Duration;

use common::{Net, SERVER};
use parley_peer::layer_frame_size;
use parley_sfu::{Protocol, PublishGate};
use str0m::media::MediaKind;

#[test]
fn two_participants_receive_each_others_audio_and_video() {
    let mut net = Net::new();
    let (a, b) = (net.join(1), net.join(1));
    net.publish(a);
    net.publish(b);
    net.run(Duration::from_secs(2));
    for (to, from) in [(a, b), (b, a)] {
        let (to, from) = (&net.peers[to], &net.peers[from]);
        assert!(to.got(from, MediaKind::Audio) > 50, "{:?}", to.received);
        assert!(to.got(from, MediaKind::Video) > 30, "{:?}", to.received);
        assert_eq!(
            to.got(to, MediaKind::Video),
            0,
            "nobody gets their own media"
        );
    }
    assert!(net.sfu.stats().frames_forwarded > 160);
}

#[test]
fn rooms_are_apart() {
    let mut net = Net::new();
    let (a, b, c) = (net.join(1), net.join(1), net.join(2));
    net.publish(a);
    net.run(Duration::from_secs(1));
    assert!(net.peers[b].got(&net.peers[a], MediaKind::Video) > 0);
    assert!(
        net.peers[c].received.is_empty(),
        "another room hears nothing"
    );
}

#[test]
fn a_late_joiner_starts_on_a_keyframe_at_once() {
    let mut net = Net::new();
    let a = net.join(1);
    net.publish(a);
    // Long after the publisher's first keyframe, and before its next
    // (every 3 s): the SFU must ask for one.
    net.run(Duration::from_millis(1500));
    let b = net.join(1);
    net.run(Duration::from_millis(500));
    let source = net.peers[a].id.clone();
    assert!(net.peers[a].keyframe_requests_seen > 0);
    assert!(
        net.peers[b]
            .keyframes_received
            .get(&source)
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(net.peers[b].got(&net.peers[a], MediaKind::Video) > 5);
}

#[test]
fn a_small_tile_gets_the_small_layer_and_a_hidden_one_nothing() {
    let mut net = Net::new();
    let a = net.join(1);
    net.peers[a].layers = vec!["q", "h", "f"];
    let b = net.join(1);
    net.publish(a);
    let source = net.peers[a].id.clone();
    let top = [layer_frame_size(2, false), layer_frame_size(2, true)];
    let sizes = |net: &Net| {
        net.peers[b]
            .video_sizes
            .get(&source)
            .cloned()
            .unwrap_or_default()
    };
    let last_all_in = |net: &Net, layer: &[usize]| {
        let s = sizes(net);
        s.len() > 30 && s[s.len() - 20..].iter().all(|x| layer.contains(x))
    };
    // Video starts on a layer the first estimate allows; probing then
    // finds room for the best one.
    for _ in 0..40 {
        net.run(Duration::from_millis(250));
        if last_all_in(&net, &top) {
            break;
        }
    }
    assert!(
        last_all_in(&net, &top),
        "a large tile gets the top layer: {:?}",
        sizes(&net)
    );

    let mid = net.peers[b]
        .sources
        .iter()
        .find(|(_, (s, kind))| *s == source && *kind == MediaKind::Video)
        .map(|(mid, _)| mid.to_string())
        .unwrap();
    let now = net.now;
    net.sfu
        .set_video_sizes(now, net.ids[b], &[(mid.as_str(), 160, 90)]);
    net.run(Duration::from_secs(4));
    let low = [layer_frame_size(0, false), layer_frame_size(0, true)];
    assert!(
        last_all_in(&net, &low),
        "a thumbnail gets the lowest layer: {:?}",
        sizes(&net)
    );

    let now = net.now;
    net.sfu
        .set_video_sizes(now, net.ids[b], &[(mid.as_str(), 0, 0)]);
    net.run(Duration::from_millis(500));
    let before = net.peers[b].got(&net.peers[a], MediaKind::Video);
    net.run(Duration::from_secs(1));
    assert_eq!(
        net.peers[b].got(&net.peers[a], MediaKind::Video),
        before,
        "a hidden tile gets no video"
    );
    assert!(
        net.peers[b].got(&net.peers[a], MediaKind::Audio) > 100,
        "but audio"
    );
}

#[test]
fn a_publisher_leaving_is_negotiated_away_and_the_others_keep_going() {
    let mut net = Net::new();
    let (a, b, c) = (net.join(1), net.join(1), net.join(1));
    net.publish(a);
    net.publish(b);
    net.run(Duration::from_secs(1));
    assert_eq!(net.peers[c].sources.len(), 4);
    net.leave(a);
    net.run(Duration::from_millis(500));
    let from_b = net.peers[c].got(&net.peers[b], MediaKind::Video);
    let from_a = net.peers[c].got(&net.peers[a], MediaKind::Video);
    net.run(Duration::from_secs(1));
    assert!(net.peers[c].got(&net.peers[b], MediaKind::Video) > from_b + 20);
    assert_eq!(net.peers[c].got(&net.peers[a], MediaKind::Video), from_a);
    assert_eq!(net.sfu.participant_count(), 2);
}

#[test]
fn what_the_gate_holds_back_reaches_nobody_and_video_comes_back_on_a_keyframe() {
    let mut net = Net::new();
    let (a, b) = (net.join(1), net.join(1));
    net.publish(a);
    net.run(Duration::from_secs(1));
    let gate = PublishGate {
        video: false,
        ..PublishGate::default()
    };
    let now = net.now;
    net.sfu.set_publish_gate(now, net.ids[a], gate);
    net.run(Duration::from_millis(100));
    let (audio, video) = (
        net.peers[b].got(&net.peers[a], MediaKind::Audio),
        net.peers[b].got(&net.peers[a], MediaKind::Video),
    );
    net.run(Duration::from_secs(1));
    assert_eq!(net.peers[b].got(&net.peers[a], MediaKind::Video), video);
    assert!(net.peers[b].got(&net.peers[a], MediaKind::Audio) > audio + 40);

    let source = net.peers[a].id.clone();
    let keyframes = net.peers[b].keyframes_received[&source];
    let now = net.now;
    net.sfu
        .set_publish_gate(now, net.ids[a], PublishGate::default());
    net.run(Duration::from_millis(500));
    assert!(net.peers[b].got(&net.peers[a], MediaKind::Video) > video + 5);
    assert!(net.peers[b].keyframes_received[&source] > keyframes);
}

#[test]
fn garbage_on_the_media_socket_is_counted_and_changes_nothing() {
    let mut net = Net::new();
    let (a, b) = (net.join(1), net.join(1));
    net.publish(a);
    net.run(Duration::from_secs(1));
    let now = net.now;
    let stranger = "192.0.2.9:4000".parse().unwrap();
    for garbage in [
        &b"\xff\xff\xff"[..],
        b"",
        &[0x80; 40],
        &[0x00, 0x01, 0x00, 0x08],
    ] {
        net.sfu
            .handle_receive(now, Protocol::Udp, stranger, SERVER, garbage);
    }
    let stats = net.sfu.stats();
    assert!(
        stats.malformed_datagrams + stats.unrouted_datagrams >= 4,
        "{stats:?}"
    );
    let before = net.peers[b].got(&net.peers[a], MediaKind::Video);
    net.run(Duration::from_millis(500));
    assert!(net.peers[b].got(&net.peers[a], MediaKind::Video) > before + 10);
}
