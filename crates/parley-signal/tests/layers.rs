//! Which layers and codecs reach whom, through the whole hub on a virtual
//! clock and network: simulcast, codecs a subscriber can decode, paused
//! video, bandwidth estimates, tile sizes and last-N.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::{Duration, Instant};

use str0m::Candidate;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};

use parley_peer::FAST_LINK_BPS;
use parley_signal::ErrorCode;
use support::{Client, World, layer_frame_size, publish_only};

#[test]
fn simulcast_forwards_the_best_layer_and_falls_back_when_it_stops() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.clients[a].layers = vec!["q", "h", "f"];
    let b = w.join("room", "Grace");
    w.publish(a);
    let from_a = |w: &World| {
        w.clients[b]
            .video_sizes
            .get(&w.clients[a].id)
            .cloned()
            .unwrap_or_default()
    };
    let top = [layer_frame_size(2, false), layer_frame_size(2, true)];
    // Video starts on a layer the first estimate allows; probing then
    // finds room for the best one.
    for _ in 0..40 {
        w.run(Duration::from_millis(250));
        let s = from_a(&w);
        if s.len() > 60 && s[s.len() - 30..].iter().all(|x| top.contains(x)) {
            break;
        }
    }
    let sizes = from_a(&w);
    assert!(sizes.len() > 60, "{} frames", sizes.len());
    assert!(
        sizes[sizes.len() - 30..].iter().all(|s| top.contains(s)),
        "a small room gets the top layer: {sizes:?}"
    );

    // The publisher's top layer stops (as when a browser runs short of CPU):
    // the subscriber moves to the next one at its next keyframe.
    w.clients[a].layers = vec!["q", "h"];
    let before = from_a(&w).len();
    w.run(Duration::from_secs(3));
    let sizes = from_a(&w);
    let mid = [layer_frame_size(1, false), layer_frame_size(1, true)];
    assert!(
        sizes[sizes.len() - 30..].iter().all(|s| mid.contains(s)),
        "fell back to the middle layer: {:?}",
        &sizes[before..]
    );
    assert!(
        sizes.len() - before > 45,
        "video kept flowing: {} frames in 3 s",
        sizes.len() - before
    );
    let first_mid = sizes[before..]
        .iter()
        .position(|s| mid.contains(s))
        .unwrap();
    assert_eq!(
        sizes[before + first_mid],
        layer_frame_size(1, true),
        "the switch happens on a keyframe"
    );
}

#[test]
fn h264_and_vp9_publishers_reach_subscribers_in_their_codec() {
    for codec in [Codec::H264, Codec::Vp9] {
        let mut w = World::new();
        let a = w.join("room", "Ada");
        let b = w.join("room", "Grace");
        publish_only(&mut w, a, codec);
        w.run(Duration::from_secs(2));
        let got = w.clients[b].got(&w.clients[a], MediaKind::Video);
        assert!(got > 30, "{codec:?}: {got} frames");
        assert!(
            w.clients[b]
                .keyframes_received
                .get(&w.clients[a].id)
                .copied()
                .unwrap_or(0)
                >= 1
        );
        assert!(w.clients[b].got(&w.clients[a], MediaKind::Audio) > 40);
    }
}

/// A subscribe connection that decodes H264 and nothing else.
fn decodes_only_h264(c: &mut Client, now: Instant) {
    let addr = c.subscribe_addr;
    c.subscribe = str0m::Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_h264(true)
        .build(now);
    c.subscribe
        .add_local_candidate(Candidate::host(addr, "udp").unwrap());
}

#[test]
fn an_h264_only_subscriber_gets_the_publisher_asked_to_send_h264() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.publish(a);
    w.run(Duration::from_secs(1));
    let b = w.join_with("room", "Grace", None, decodes_only_h264);
    w.publish(b);
    w.run(Duration::from_secs(2));
    assert_eq!(w.clients[a].codec_requests, ["h264"]);
    let got = w.clients[b].got(&w.clients[a], MediaKind::Video);
    assert!(got > 30, "{got} frames of H264");
    assert!(w.clients[b].errors.is_empty(), "{:?}", w.clients[b].errors);
    // Grace's own VP8 reaches Ada, who decodes anything.
    assert!(w.clients[a].got(&w.clients[b], MediaKind::Video) > 30);
}

#[test]
fn a_subscriber_is_told_when_the_publisher_does_not_switch() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.clients[a].follows_codec_requests = false;
    w.publish(a);
    w.run(Duration::from_secs(1));
    let b = w.join_with("room", "Grace", None, decodes_only_h264);
    w.run(Duration::from_secs(3));
    assert_eq!(w.clients[a].codec_requests, ["h264"]);
    assert!(
        w.clients[b].errors.is_empty(),
        "not before the publisher had its chance"
    );
    w.run(Duration::from_secs(3));
    assert_eq!(w.clients[b].errors, [ErrorCode::NoCommonCodec]);
    assert_eq!(w.clients[b].got(&w.clients[a], MediaKind::Video), 0);
    assert!(
        w.clients[b].got(&w.clients[a], MediaKind::Audio) > 40,
        "audio still flows"
    );
}

#[test]
fn a_subscriber_sharing_no_codec_with_the_publisher_is_told_at_once() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    publish_only(&mut w, a, Codec::Vp8);
    w.run(Duration::from_secs(1));
    let b = w.join_with("room", "Grace", None, decodes_only_h264);
    w.run(Duration::from_secs(1));
    assert!(w.clients[a].codec_requests.is_empty());
    assert_eq!(w.clients[b].errors, [ErrorCode::NoCommonCodec]);
    assert!(
        w.clients[b].got(&w.clients[a], MediaKind::Audio) > 20,
        "audio still flows"
    );
}

#[test]
fn audio_keeps_flowing_while_video_is_paused_and_video_resumes_on_a_keyframe() {
    let mut w = World::new();
    let host = w.join_as("room", "Host", Some(1));
    let guest = w.join("room", "Guest");
    let viewer = w.join("room", "Viewer");
    w.publish(host);
    w.publish(guest);
    w.run(Duration::from_secs(2));
    let got = |w: &World, from: usize, kind| w.clients[viewer].got(&w.clients[from], kind);
    assert!(got(&w, guest, MediaKind::Video) > 20);

    // Presenter mode: only the host (a moderator) may show video.
    w.send(
        host,
        serde_json::json!({"type": "security", "presenter_mode": true}),
    );
    w.run(Duration::from_millis(200));
    let (video0, audio0, host0) = (
        got(&w, guest, MediaKind::Video),
        got(&w, guest, MediaKind::Audio),
        got(&w, host, MediaKind::Video),
    );
    w.run(Duration::from_secs(1));
    assert_eq!(
        got(&w, guest, MediaKind::Video),
        video0,
        "the guest's video is paused"
    );
    assert!(
        got(&w, guest, MediaKind::Audio) >= audio0 + 45,
        "its audio goes on"
    );
    assert!(
        got(&w, host, MediaKind::Video) >= host0 + 25,
        "the host's video goes on"
    );

    // Off again: the guest's video comes back, starting with a keyframe.
    let keys = w.clients[viewer]
        .keyframes_received
        .get(&w.clients[guest].id)
        .copied()
        .unwrap_or(0);
    w.send(
        host,
        serde_json::json!({"type": "security", "presenter_mode": false}),
    );
    w.run(Duration::from_millis(500));
    assert!(got(&w, guest, MediaKind::Video) > video0 + 10);
    let keys_after = w.clients[viewer]
        .keyframes_received
        .get(&w.clients[guest].id)
        .copied()
        .unwrap_or(0);
    assert!(keys_after > keys, "resumed video starts from a keyframe");
}

#[test]
fn a_subscriber_whose_estimate_drops_gets_a_lower_layer_and_goes_back_up_when_it_recovers() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.clients[a].layers = vec!["q", "h", "f"];
    let b = w.join("room", "Grace");
    // Grace's downlink: fast, then narrow, then fast again.
    let grace = w.clients[b].subscribe_addr;
    w.publish(a);
    let sizes = |w: &World| {
        w.clients[b]
            .video_sizes
            .get(&w.clients[a].id)
            .cloned()
            .unwrap_or_default()
    };
    // Layer l of three is 300·3^l bytes a frame (keyframes twice that):
    // about 70, 210 and 620 kbit/s.
    let layer = |l: usize| [layer_frame_size(l, false), layer_frame_size(l, true)];
    // Runs until the last 30 frames since `from` are all on a layer in
    // `ls`; returns how long that took.
    let settle_on = |w: &mut World, from: usize, ls: &[usize], limit: Duration| {
        let start = w.now;
        while w.now - start < limit {
            w.run(Duration::from_millis(250));
            let s = sizes(w);
            let on = |x: &usize| ls.iter().any(|l| layer(*l).contains(x));
            if s.len() >= from + 30 && s[s.len() - 30..].iter().all(on) {
                return Some(w.now - start);
            }
        }
        None
    };
    let took = settle_on(&mut w, 0, &[2], Duration::from_secs(10));
    assert!(
        took.is_some(),
        "a fast link gets the top layer: {:?}",
        sizes(&w)
    );

    // The link narrows to 250 kbit/s: the audio and the lowest layer fit.
    w.links.get_mut(&grace).unwrap().bps = 250_000;
    let before = sizes(&w).len();
    let Some(down) = settle_on(&mut w, before, &[0], Duration::from_secs(10)) else {
        panic!(
            "not on the lowest layer after 10 s: {:?}",
            &sizes(&w)[before..]
        );
    };
    // (While the link drops packets, parts of larger frames can arrive
    // looking like other layers; the lowest layer's sizes are unambiguous.)
    let after = sizes(&w);
    let first_low = after[before..]
        .iter()
        .position(|s| layer(0).contains(s))
        .unwrap();
    assert_eq!(
        after[before + first_low],
        layer_frame_size(0, true),
        "the switch happens on a keyframe: {:?}",
        &after[before..]
    );
    // Settled on the lowest layer, audio and video both get through the
    // narrow link.
    let audio_before = w.clients[b].got(&w.clients[a], MediaKind::Audio);
    let frames_before = sizes(&w).len();
    w.run(Duration::from_secs(3));
    let audio = w.clients[b].got(&w.clients[a], MediaKind::Audio) - audio_before;
    assert!(audio >= 145, "audio goes on: {audio} of 150 packets in 3 s");
    let frames = sizes(&w).len() - frames_before;
    // About 86 frames are sent (one per 35 ms). While the estimate settles,
    // the lowest layer may be paused once and then resumes at a keyframe (a
    // delta frame after a gap could not be decoded), which costs up to a
    // keyframe request's round (limited to one per 500 ms).
    assert!(
        frames >= 60,
        "video goes on: {frames} frames in 3 s: {:?}",
        &sizes(&w)[frames_before..]
    );

    // The link opens up again: probing finds the room and the top layer returns.
    w.links.get_mut(&grace).unwrap().bps = FAST_LINK_BPS;
    let before = sizes(&w).len();
    let Some(up) = settle_on(&mut w, before, &[2], Duration::from_secs(30)) else {
        let s = sizes(&w);
        panic!(
            "not back on the top layer after 30 s: {:?}",
            &s[s.len().saturating_sub(100)..]
        );
    };
    eprintln!("down to the lowest layer in {down:?}, back up in {up:?}");
}

#[test]
fn a_small_tile_gets_a_small_layer_and_a_hidden_one_nothing() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.clients[a].layers = vec!["q", "h", "f"];
    let b = w.join("room", "Grace");
    w.publish(a);
    w.run(Duration::from_secs(2));
    let video_mid = |w: &World| {
        let ada = &w.clients[a].id;
        w.clients[b]
            .sources
            .iter()
            .find(|(_, (p, k))| p == ada && *k == MediaKind::Video)
            .map(|(m, _)| m.to_string())
            .unwrap()
    };
    let sizes = |w: &World| w.clients[b].video_sizes[&w.clients[a].id].clone();
    let mid = video_mid(&w);

    // Shown as a thumbnail: the lowest layer is enough.
    w.send(
        b,
        serde_json::json!({"type": "video_sizes", "sizes": [{"mid": mid, "width": 160, "height": 90}]}),
    );
    w.run(Duration::from_secs(2));
    let s = sizes(&w);
    let low = [layer_frame_size(0, false), layer_frame_size(0, true)];
    assert!(
        s[s.len() - 20..].iter().all(|x| low.contains(x)),
        "a thumbnail gets the lowest layer: {:?}",
        &s[s.len() - 20..]
    );

    // Hidden: no video at all, while the audio goes on.
    w.send(
        b,
        serde_json::json!({"type": "video_sizes", "sizes": [{"mid": mid, "width": 0, "height": 0}]}),
    );
    w.run(Duration::from_millis(200));
    let (frames, audio) = (
        sizes(&w).len(),
        w.clients[b].got(&w.clients[a], MediaKind::Audio),
    );
    w.run(Duration::from_secs(1));
    assert_eq!(sizes(&w).len(), frames, "a hidden tile gets no video");
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Audio) >= audio + 45);

    // Garbage is refused with a clear error and changes nothing.
    w.send(
        b,
        serde_json::json!({"type": "video_sizes", "sizes": [{"mid": "", "width": 1, "height": 1}]}),
    );
    assert_eq!(
        w.clients[b].errors.last(),
        Some(&parley_signal::ErrorCode::BadField)
    );
}

#[test]
fn last_n_forwards_only_the_most_recent_speakers_video_and_follows_the_floor() {
    let mut w = World::new();
    let names = ["Ada", "Grace", "Linus", "Barbara"];
    let ids: Vec<usize> = names.iter().map(|n| w.join("room", n)).collect();
    for &i in &ids[..3] {
        w.clients[i].level = Some(127);
        w.publish(i);
    }
    w.run(Duration::from_secs(2));
    let (ada, grace, linus, barbara) = (ids[0], ids[1], ids[2], ids[3]);
    let video = |w: &World, from: usize| w.clients[barbara].got(&w.clients[from], MediaKind::Video);
    let audio = |w: &World, from: usize| w.clients[barbara].got(&w.clients[from], MediaKind::Audio);
    assert!(
        video(&w, ada) > 0 && video(&w, linus) > 0,
        "no limit yet: every video"
    );

    // Last-N of 1, and Grace speaks: only her video reaches Barbara.
    w.hub.set_room_policy(parley_signal::RoomPolicy {
        last_n: 1,
        ..parley_signal::RoomPolicy::default()
    });
    w.clients[grace].level = Some(20);
    w.run(Duration::from_secs(2));
    let before: Vec<u64> = [ada, grace, linus].iter().map(|&i| video(&w, i)).collect();
    let heard: Vec<u64> = [ada, grace, linus].iter().map(|&i| audio(&w, i)).collect();
    w.run(Duration::from_secs(2));
    assert!(
        video(&w, grace) >= before[1] + 50,
        "the speaker's video flows"
    );
    assert_eq!(video(&w, ada), before[0], "past the last N: no video");
    assert_eq!(video(&w, linus), before[2], "past the last N: no video");
    for (k, &i) in [ada, grace, linus].iter().enumerate() {
        assert!(audio(&w, i) >= heard[k] + 90, "everyone is still heard");
    }

    // Linus takes the floor: his video comes back and Grace's stops.
    w.clients[grace].level = Some(127);
    w.clients[linus].level = Some(15);
    w.run(Duration::from_secs(3));
    let (g, l) = (video(&w, grace), video(&w, linus));
    w.run(Duration::from_secs(2));
    assert!(video(&w, linus) >= l + 50, "the new speaker's video flows");
    assert_eq!(video(&w, grace), g, "the former speaker's video stops");

    // Off again: everyone's video.
    w.hub.set_room_policy(parley_signal::RoomPolicy::default());
    w.run(Duration::from_secs(3));
    let a = video(&w, ada);
    w.run(Duration::from_secs(1));
    assert!(video(&w, ada) > a, "without last-N every video flows");
}

#[test]
fn last_n_counts_a_speakers_camera_and_screen_as_one() {
    let mut w = World::new();
    let (ada, grace, barbara) = (
        w.join("room", "Ada"),
        w.join("room", "Grace"),
        w.join("room", "Barbara"),
    );
    for i in [ada, grace] {
        w.clients[i].level = Some(127);
        w.publish(i);
    }
    w.run(Duration::from_secs(1));
    // Ada adds a second video (a screen).
    let c = &mut w.clients[ada];
    let mut api = c.publish.sdp_api();
    let screen = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    c.pending_publish = Some(pending);
    c.screen = Some(screen);
    w.send(
        ada,
        serde_json::json!({"type": "offer", "pc": "publish", "sdp": offer.to_sdp_string()}),
    );
    w.hub.set_room_policy(parley_signal::RoomPolicy {
        last_n: 1,
        ..parley_signal::RoomPolicy::default()
    });
    w.clients[ada].level = Some(20);
    // Up to 3 s for the screen's first keyframe, then a while to count.
    w.run(Duration::from_secs(4));
    let videos_from = |w: &World, from: usize| -> Vec<Mid> {
        let id = &w.clients[from].id;
        w.clients[barbara]
            .sources
            .iter()
            .filter(|(_, (who, kind))| who == id && *kind == MediaKind::Video)
            .map(|(mid, _)| *mid)
            .collect()
    };
    let count = |w: &World, mid: Mid| {
        w.clients[barbara]
            .received_by_mid
            .get(&mid)
            .copied()
            .unwrap_or(0)
    };
    let ada_videos = videos_from(&w, ada);
    assert_eq!(ada_videos.len(), 2, "Ada's camera and screen reach Barbara");
    let grace_video = videos_from(&w, grace)[0];
    let before: Vec<u64> = ada_videos.iter().map(|m| count(&w, *m)).collect();
    let grace_before = count(&w, grace_video);
    w.run(Duration::from_secs(2));
    for (k, mid) in ada_videos.iter().enumerate() {
        assert!(
            count(&w, *mid) >= before[k] + 40,
            "both of the speaker's videos flow under last-N 1: {before:?} -> {}",
            count(&w, *mid)
        );
    }
    assert_eq!(
        count(&w, grace_video),
        grace_before,
        "Grace is past the last N"
    );
}
