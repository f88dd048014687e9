//! Media through the whole hub: in-memory str0m clients, a virtual clock and
//! a virtual network. Ten simulated seconds run in well under a second.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_signal::{ConnId, Hub, HubConfig, HubOutput, PcName, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const SERVER: &str = "10.0.0.1:10000";
const TICK: Duration = Duration::from_millis(5);

/// A test client: two str0m peer connections speaking the Parley protocol.
struct Client {
    conn: ConnId,
    id: String,
    publish: Rtc,
    subscribe: Rtc,
    publish_addr: SocketAddr,
    subscribe_addr: SocketAddr,
    pending_publish: Option<SdpPendingOffer>,
    audio: Option<Mid>,
    video: Option<Mid>,
    publish_timeout: Instant,
    subscribe_timeout: Instant,
    frames_sent: u64,
    keyframe_wanted: bool,
    keyframe_requests_seen: u32,
    /// Publisher id of each subscribed m-line, from its msid.
    sources: HashMap<Mid, (String, MediaKind)>,
    /// Frames received per (publisher id, kind).
    received: HashMap<(String, MediaKind), u64>,
    keyframes_received: HashMap<String, u64>,
    subscribe_offers: u32,
    /// When false, subscribe offers are kept in `held` instead of answered.
    answer_offers: bool,
    held: Vec<(u64, bool, String)>,
    renewals: u32,
    errors: Vec<parley_signal::ErrorCode>,
    /// Simulcast layers to publish (rids, lowest first); empty for one stream.
    layers: Vec<&'static str>,
    /// Sizes of the video frames received, per publisher id.
    video_sizes: HashMap<String, Vec<usize>>,
}

impl Client {
    fn new(n: u8, now: Instant) -> Self {
        let publish_addr: SocketAddr = format!("10.0.1.{n}:5000").parse().unwrap();
        let subscribe_addr: SocketAddr = format!("10.0.1.{n}:5001").parse().unwrap();
        let mut publish = Rtc::new(now);
        publish.add_local_candidate(Candidate::host(publish_addr, "udp").unwrap());
        let mut subscribe = Rtc::new(now);
        subscribe.add_local_candidate(Candidate::host(subscribe_addr, "udp").unwrap());
        Client {
            conn: ConnId(u64::from(n)),
            id: String::new(),
            publish,
            subscribe,
            publish_addr,
            subscribe_addr,
            pending_publish: None,
            audio: None,
            video: None,
            publish_timeout: now,
            subscribe_timeout: now,
            frames_sent: 0,
            keyframe_wanted: true,
            keyframe_requests_seen: 0,
            sources: HashMap::new(),
            received: HashMap::new(),
            keyframes_received: HashMap::new(),
            subscribe_offers: 0,
            answer_offers: true,
            held: Vec::new(),
            renewals: 0,
            errors: Vec::new(),
            layers: Vec::new(),
            video_sizes: HashMap::new(),
        }
    }

    fn got(&self, from: &Client, kind: MediaKind) -> u64 {
        self.received
            .get(&(from.id.clone(), kind))
            .copied()
            .unwrap_or(0)
    }
}

struct World {
    hub: Hub,
    now: Instant,
    clients: Vec<Client>,
    server: SocketAddr,
}

impl World {
    fn new() -> Self {
        let server: SocketAddr = SERVER.parse().unwrap();
        World {
            hub: Hub::new(HubConfig::new(vec![server], 7)),
            now: Instant::now(),
            clients: Vec::new(),
            server,
        }
    }

    fn send(&mut self, i: usize, value: serde_json::Value) {
        let conn = self.clients[i].conn;
        self.hub.handle_text(self.now, conn, &value.to_string());
        self.dispatch();
    }

    /// Adds a client and joins it to `room`.
    fn join(&mut self, room: &str, name: &str) -> usize {
        let n = self.clients.len() as u8 + 1;
        let client = Client::new(n, self.now);
        self.hub.handle_connect(self.now, client.conn);
        self.clients.push(client);
        let i = self.clients.len() - 1;
        self.send(
            i,
            serde_json::json!({"type": "join", "version": 1, "room": room, "name": name}),
        );
        assert!(!self.clients[i].id.is_empty(), "join failed");
        i
    }

    /// Starts publishing one audio and one video track.
    fn publish(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let mut api = c.publish.sdp_api();
        c.audio = Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        let simulcast = (!c.layers.is_empty()).then(|| {
            let mut s = str0m::media::Simulcast::new();
            for rid in &c.layers {
                s.add_send_layer(str0m::media::SimulcastLayer::new(rid));
            }
            s
        });
        c.video = Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast));
        let (offer, pending) = api.apply().unwrap();
        c.pending_publish = Some(pending);
        self.send(
            i,
            serde_json::json!({"type": "offer", "pc": "publish", "sdp": offer.to_sdp_string()}),
        );
    }

    fn leave(&mut self, i: usize) {
        self.send(i, serde_json::json!({"type": "leave"}));
    }

    /// Delivers the hub's messages to the clients, answering offers.
    fn dispatch(&mut self) {
        let mut replies = Vec::new();
        while let Some(out) = self.hub.poll_output() {
            let HubOutput::Send { conn, message } = out else {
                continue;
            };
            let Some(i) = self.clients.iter().position(|c| c.conn == conn) else {
                continue;
            };
            let c = &mut self.clients[i];
            match message {
                ServerMessage::Joined { me, .. } => c.id = me.id,
                ServerMessage::Answer { sdp, .. } => {
                    let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                    let pending = c.pending_publish.take().expect("a publish offer");
                    c.publish.sdp_api().accept_answer(pending, answer).unwrap();
                }
                ServerMessage::Offer {
                    pc,
                    offer_id,
                    renew,
                    sdp,
                } => {
                    assert_eq!(pc, PcName::Subscribe);
                    c.subscribe_offers += 1;
                    if c.answer_offers {
                        let reply = answer_offer(c, self.now, offer_id, renew, &sdp);
                        replies.push((i, reply));
                    } else {
                        c.held.push((offer_id, renew, sdp));
                    }
                }
                ServerMessage::Error { code, message, .. } => {
                    if c.errors.len() > 20 {
                        panic!("server error {code:?}: {message}")
                    }
                    c.errors.push(code);
                }
                _ => {}
            }
        }
        for (i, reply) in replies {
            self.send(i, reply);
        }
    }

    /// Runs the virtual world for `duration`, publishers sending 50 audio and
    /// 30 video frames per second.
    fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += TICK;
            let now = self.now;
            if self.hub.poll_timeout().is_some_and(|t| t <= now) {
                self.hub.handle_timeout(now);
            }
            for c in &mut self.clients {
                if c.publish_timeout <= now {
                    c.publish.handle_input(Input::Timeout(now)).unwrap();
                }
                if c.subscribe_timeout <= now {
                    c.subscribe.handle_input(Input::Timeout(now)).unwrap();
                }
                write_media(c, now);
            }
            self.pump();
            self.dispatch();
        }
    }

    /// Moves datagrams until nobody has anything to send.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.hub.poll_transmit() {
                moved = true;
                let Some(c) = self
                    .clients
                    .iter_mut()
                    .find(|c| c.publish_addr == t.destination || c.subscribe_addr == t.destination)
                else {
                    continue;
                };
                let input = Input::Receive(
                    self.now,
                    Receive {
                        proto: Protocol::Udp,
                        source: t.source,
                        destination: t.destination,
                        contents: (&t.contents[..]).try_into().unwrap(),
                    },
                );
                if c.publish_addr == t.destination {
                    c.publish.handle_input(input).unwrap();
                } else {
                    c.subscribe.handle_input(input).unwrap();
                }
            }
            let now = self.now;
            let mut outgoing = Vec::new();
            for c in &mut self.clients {
                c.publish_timeout = drain_publish(c, now, &mut outgoing);
                c.subscribe_timeout = drain_subscribe(c, now, &mut outgoing);
            }
            for (source, destination, data) in outgoing {
                moved = true;
                assert_eq!(destination, self.server);
                self.hub.handle_datagram(now, source, destination, &data);
            }
            if !moved {
                break;
            }
        }
    }
}

/// Applies a subscribe offer (on a fresh connection if the server renewed
/// its side) and returns the answer message.
fn answer_offer(
    c: &mut Client,
    now: Instant,
    offer_id: u64,
    renew: bool,
    sdp: &str,
) -> serde_json::Value {
    if renew {
        c.renewals += 1;
        c.subscribe = Rtc::new(now);
        c.subscribe
            .add_local_candidate(Candidate::host(c.subscribe_addr, "udp").unwrap());
        c.sources.clear();
        c.subscribe_timeout = now;
    }
    let offer = SdpOffer::from_sdp_string(sdp).unwrap();
    let answer = c.subscribe.sdp_api().accept_offer(offer).unwrap();
    serde_json::json!({
        "type": "answer", "pc": "subscribe", "offer_id": offer_id, "sdp": answer.to_sdp_string()
    })
}

fn drain_publish(
    c: &mut Client,
    now: Instant,
    out: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
) -> Instant {
    loop {
        match c.publish.poll_output().unwrap() {
            Output::Timeout(t) => return t.max(now),
            Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
            Output::Event(Event::KeyframeRequest(_)) => {
                c.keyframe_wanted = true;
                c.keyframe_requests_seen += 1;
            }
            Output::Event(_) => {}
        }
    }
}

fn drain_subscribe(
    c: &mut Client,
    now: Instant,
    out: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
) -> Instant {
    loop {
        match c.subscribe.poll_output().unwrap() {
            Output::Timeout(t) => return t.max(now),
            Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
            Output::Event(Event::MediaAdded(added)) => {
                let media = c.subscribe.media(added.mid).unwrap();
                c.sources
                    .insert(added.mid, (media.stream_id().to_owned(), added.kind));
            }
            Output::Event(Event::MediaData(data)) => {
                let (source, kind) = c.sources[&data.mid].clone();
                if data.is_keyframe() {
                    *c.keyframes_received.entry(source.clone()).or_default() += 1;
                }
                if kind == MediaKind::Video {
                    c.video_sizes
                        .entry(source.clone())
                        .or_default()
                        .push(data.data.len());
                }
                *c.received.entry((source, kind)).or_default() += 1;
            }
            Output::Event(_) => {}
        }
    }
}

/// 20 ms Opus frames and 30 fps VP8 frames; a keyframe when asked and every 3 s.
fn write_media(c: &mut Client, now: Instant) {
    if !c.publish.is_connected() {
        return;
    }
    let tick = c.frames_sent;
    c.frames_sent += 1;
    if let Some(mid) = c.audio.filter(|_| tick % 4 == 0) {
        // The server closes the connections of a participant that left.
        let Some(w) = c.publish.writer(mid) else {
            return;
        };
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        let time = MediaTime::new(tick / 4 * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        w.write(pt, now, time, vec![0xfc; 80]).unwrap();
    }
    if let Some(mid) = c.video.filter(|_| tick % 7 == 0) {
        let frame = tick / 7;
        let keyframe = c.keyframe_wanted || frame % 90 == 0;
        c.keyframe_wanted = false;
        let time = MediaTime::from_90khz(frame * 3150);
        // One stream, or each simulcast layer at its own size (layer i of
        // n is 300·3^i bytes, keyframes three times that), so a subscriber
        // can tell which layer reached it.
        let rids: Vec<Option<&str>> = if c.layers.is_empty() {
            vec![None]
        } else {
            c.layers.iter().map(|r| Some(*r)).collect()
        };
        for (i, rid) in rids.into_iter().enumerate() {
            let Some(mut w) = c.publish.writer(mid) else {
                return;
            };
            let pt = w
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .unwrap()
                .pt();
            if let Some(rid) = rid {
                w = w.rid(rid.into());
            }
            let size = layer_frame_size(if rid.is_some() { i } else { 1 }, keyframe);
            // Bit 0 of a VP8 frame's first byte is clear on keyframes (RFC 6386 §9.1).
            let mut data = vec![0x55u8; size];
            data[0] = if keyframe { 0x50 } else { 0x51 };
            w.write(pt, now, time, data).unwrap();
        }
    }
}

fn layer_frame_size(layer: usize, keyframe: bool) -> usize {
    300 * 3usize.pow(layer as u32) * if keyframe { 3 } else { 1 }
}

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
    w.clients[b].answer_offers = false;
    w.run(Duration::from_millis(100));
    let (offer_id, renew, sdp) = w.clients[b].held.pop().expect("an offer for B");
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
    w.clients[b].answer_offers = false;
    w.run(Duration::from_millis(100));
    let (offer_id, _, _) = w.clients[b].held.pop().expect("an offer for B");
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
    c.publish = Rtc::new(now);
    c.publish
        .add_local_candidate(Candidate::host(c.publish_addr, "udp").unwrap());
    c.publish_timeout = now;
    w.publish(a);
    w.run(Duration::from_secs(2));
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Video) > 20);
    assert!(w.clients[b].got(&w.clients[a], MediaKind::Audio) > 40);
}

#[test]
fn simulcast_forwards_the_best_layer_and_falls_back_when_it_stops() {
    let mut w = World::new();
    let a = w.join("room", "Ada");
    w.clients[a].layers = vec!["q", "h", "f"];
    let b = w.join("room", "Grace");
    w.publish(a);
    w.run(Duration::from_secs(3));
    let from_a = |w: &World| w.clients[b].video_sizes[&w.clients[a].id].clone();
    let top = [layer_frame_size(2, false), layer_frame_size(2, true)];
    let sizes = from_a(&w);
    assert!(sizes.len() > 60, "{} frames", sizes.len());
    assert!(
        sizes[sizes.len() - 30..].iter().all(|s| top.contains(s)),
        "a small room gets the top layer: {sizes:?}"
    );
    assert!(
        !sizes.iter().any(|s| *s == layer_frame_size(0, false)),
        "one layer at a time"
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
