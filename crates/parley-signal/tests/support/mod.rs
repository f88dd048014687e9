//! A virtual world for scenario tests: the hub, in-memory str0m clients
//! speaking the Parley protocol, a virtual network and a virtual clock.

#![allow(clippy::unwrap_used, dead_code)] // test harness code: a panic is a failed test

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_signal::{ConnId, Hub, HubConfig, HubOutput, PcName, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

pub const SERVER: &str = "10.0.0.1:10000";
pub const TICK: Duration = Duration::from_millis(5);
/// A link fast enough not to matter, but where packets take time on the
/// wire, as congestion control expects of any network.
pub const FAST_LINK_BPS: u64 = 100_000_000;

/// A test client: two str0m peer connections speaking the Parley protocol.
pub struct Client {
    pub conn: ConnId,
    pub id: String,
    pub publish: Rtc,
    pub subscribe: Rtc,
    pub publish_addr: SocketAddr,
    pub subscribe_addr: SocketAddr,
    pub pending_publish: Option<SdpPendingOffer>,
    pub audio: Option<Mid>,
    pub video: Option<Mid>,
    pub publish_timeout: Instant,
    pub subscribe_timeout: Instant,
    pub frames_sent: u64,
    pub keyframe_wanted: bool,
    pub keyframe_requests_seen: u32,
    /// Publisher id of each subscribed m-line, from its msid.
    pub sources: HashMap<Mid, (String, MediaKind)>,
    /// Frames received per (publisher id, kind).
    pub received: HashMap<(String, MediaKind), u64>,
    /// Frames received per mid of the subscribe connection.
    pub received_by_mid: HashMap<Mid, u64>,
    /// A second video (a screen, say), sent like the first, once added.
    pub screen: Option<Mid>,
    pub keyframes_received: HashMap<String, u64>,
    pub subscribe_offers: u32,
    /// When false, subscribe offers are kept in `held` instead of answered.
    pub answer_offers: bool,
    pub held: Vec<(u64, bool, String)>,
    pub renewals: u32,
    pub errors: Vec<parley_signal::ErrorCode>,
    /// Simulcast layers to publish (rids, lowest first); empty for one stream.
    pub layers: Vec<&'static str>,
    /// Sizes of the video frames received, per publisher id.
    pub video_sizes: HashMap<String, Vec<usize>>,
    /// The codec this client's video is sent in.
    pub video_codec: Codec,
    /// Codecs the server asked this client to send its video in.
    pub codec_requests: Vec<String>,
    /// Whether it switches when asked (a browser does; some clients cannot).
    pub follows_codec_requests: bool,
    /// The audio level its Opus packets carry (RFC 6464: 0 loudest, 127
    /// silence); none without the extension.
    pub level: Option<i8>,
}

impl Client {
    pub fn new(n: u8, now: Instant) -> Self {
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
            received_by_mid: HashMap::new(),
            screen: None,
            keyframes_received: HashMap::new(),
            subscribe_offers: 0,
            answer_offers: true,
            held: Vec::new(),
            renewals: 0,
            errors: Vec::new(),
            layers: Vec::new(),
            video_sizes: HashMap::new(),
            video_codec: Codec::Vp8,
            codec_requests: Vec::new(),
            follows_codec_requests: true,
            level: None,
        }
    }

    pub fn got(&self, from: &Client, kind: MediaKind) -> u64 {
        self.received
            .get(&(from.id.clone(), kind))
            .copied()
            .unwrap_or(0)
    }
}

/// A bottleneck on the way to one address: packets leave one after another
/// at `bps`; one that would wait longer than `max_delay` is dropped (a
/// router's tail drop).
pub struct Link {
    pub bps: u64,
    pub max_delay: Duration,
    queue: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    free_at: Option<Instant>,
    pub dropped: u64,
    /// Bytes that entered the link (dropped or not).
    pub bytes: u64,
}

impl Link {
    pub fn new(bps: u64) -> Self {
        Link {
            bps,
            max_delay: Duration::from_millis(250),
            queue: VecDeque::new(),
            free_at: None,
            dropped: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        self.bytes += data.len() as u64;
        let start = self.free_at.map_or(now, |f| f.max(now));
        if start.saturating_duration_since(now) > self.max_delay {
            self.dropped += 1;
            return;
        }
        let bits = (data.len() as u64 + 28) * 8;
        let on_wire = Duration::from_micros((bits * 1_000_000 / self.bps).max(1));
        let arrives = start + on_wire;
        self.free_at = Some(arrives);
        self.queue.push_back((arrives, source, destination, data));
    }
}

pub struct World {
    pub hub: Hub,
    pub now: Instant,
    pub clients: Vec<Client>,
    pub server: SocketAddr,
    /// Video RTP packets still to lose on the way to this address.
    pub lose_video_to: Option<(SocketAddr, u32)>,
    /// The next frame of several video packets from this address reaches
    /// the server with its first two packets swapped.
    pub reorder_frame_from: Option<SocketAddr>,
    /// The links from the server to each client address.
    pub links: HashMap<SocketAddr, Link>,
    /// When the clients last showed the hub they are alive (as a browser's
    /// WebSocket answers the server's pings).
    last_keepalive: Instant,
}

impl World {
    pub fn new() -> Self {
        World::with_shards(1)
    }

    /// A world whose hub spreads rooms over `shards` SFU shards.
    pub fn with_shards(shards: usize) -> Self {
        let server: SocketAddr = SERVER.parse().unwrap();
        let now = Instant::now();
        let mut config = HubConfig::new(
            vec![server],
            7,
            Arc::new(|| "token".to_owned()),
            Arc::new(|| 1_700_000_000_000),
        );
        config.media_shards = shards;
        World {
            hub: Hub::new(config),
            now,
            clients: Vec::new(),
            server,
            lose_video_to: None,
            reorder_frame_from: None,
            links: HashMap::new(),
            last_keepalive: now,
        }
    }

    pub fn send(&mut self, i: usize, value: serde_json::Value) {
        let conn = self.clients[i].conn;
        self.hub.handle_text(self.now, conn, &value.to_string());
        self.dispatch();
    }

    /// Adds a client and joins it to `room`.
    pub fn join(&mut self, room: &str, name: &str) -> usize {
        self.join_as(room, name, None)
    }

    /// Adds a client, signed in as `account` if given, and joins it to `room`.
    pub fn join_as(&mut self, room: &str, name: &str, account: Option<i64>) -> usize {
        self.join_with(room, name, account, |_, _| {})
    }

    /// Adds a client, set up by `configure` before it joins.
    pub fn join_with(
        &mut self,
        room: &str,
        name: &str,
        account: Option<i64>,
        configure: impl FnOnce(&mut Client, Instant),
    ) -> usize {
        let n = self.clients.len() as u8 + 1;
        let mut client = Client::new(n, self.now);
        configure(&mut client, self.now);
        let meta = parley_signal::ConnMeta {
            ip: None,
            account: account.map(|id| parley_signal::Account {
                id,
                name: name.to_owned(),
                domain: "example.org".into(),
            }),
        };
        self.hub.handle_connect_as(self.now, client.conn, meta);
        // Every client sits behind a fast link: packets take time on the
        // wire, as on any network, which bandwidth probing relies on.
        self.links
            .insert(client.subscribe_addr, Link::new(FAST_LINK_BPS));
        self.links
            .insert(client.publish_addr, Link::new(FAST_LINK_BPS));

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
    pub fn publish(&mut self, i: usize) {
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

    /// Stops client `i` answering, lets the hub's next subscribe offer reach
    /// it, and returns that offer (id, renew, SDP) for the test to handle.
    pub fn hold_next_offer(&mut self, i: usize) -> (u64, bool, String) {
        self.clients[i].answer_offers = false;
        self.run(Duration::from_millis(100));
        self.clients[i].held.pop().expect("a subscribe offer")
    }

    pub fn leave(&mut self, i: usize) {
        self.send(i, serde_json::json!({"type": "leave"}));
    }

    /// Delivers the hub's messages to the clients, answering offers.
    pub fn dispatch(&mut self) {
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
                ServerMessage::PublishCodec { codec, .. } => {
                    if c.follows_codec_requests {
                        // The codecs are negotiated already: str0m sends
                        // the new one's payload type without an offer.
                        c.video_codec = match codec.as_str() {
                            "h264" => Codec::H264,
                            "vp9" => Codec::Vp9,
                            _ => Codec::Vp8,
                        };
                        c.keyframe_wanted = true;
                    }
                    c.codec_requests.push(codec);
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
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            // The server's timers fire when they are due, not at the next
            // tick: its pacer spreads packets over the tick.
            let tick_end = self.now + TICK;
            for _ in 0..1000 {
                match self.hub.poll_timeout() {
                    Some(t) if t > self.now && t < tick_end => {
                        self.now = t;
                        self.deliver_queued(t);
                        self.hub.handle_timeout(t);
                        self.pump();
                    }
                    _ => break,
                }
            }
            self.now = tick_end;
            let now = self.now;
            self.deliver_queued(now);
            if now - self.last_keepalive >= Duration::from_secs(10) {
                self.last_keepalive = now;
                for i in 0..self.clients.len() {
                    self.send(i, serde_json::json!({"type": "ping"}));
                }
            }
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
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            let mut transmits = Vec::new();
            self.hub.take_transmits(&mut transmits);
            for t in transmits {
                moved = true;
                if let Some((to, left)) = &mut self.lose_video_to
                    && *to == t.destination
                    && *left > 0
                    && is_video_rtp(&t.contents)
                {
                    *left -= 1;
                    continue;
                }
                if let Some(link) = self.links.get_mut(&t.destination) {
                    link.push(self.now, t.source, t.destination, t.contents.to_vec());
                    continue;
                }
                let now = self.now;
                self.deliver(now, t.source, t.destination, &t.contents);
            }
            let now = self.now;
            let mut outgoing = Vec::new();
            for c in &mut self.clients {
                c.publish_timeout = drain_publish(c, now, &mut outgoing);
                c.subscribe_timeout = drain_subscribe(c, now, &mut outgoing);
            }
            if let Some(from) = self.reorder_frame_from {
                // Video is the payload type of the large packets; small
                // ones of it (H.264 parameter sets) count too.
                let video_pt = outgoing
                    .iter()
                    .find(|(s, _, d)| *s == from && is_video_rtp(d))
                    .map(|(_, _, d)| d[1] & 0x7f);
                let video: Vec<usize> = outgoing
                    .iter()
                    .enumerate()
                    .filter(|(_, (s, _, d))| {
                        *s == from && d.len() > 12 && Some(d[1] & 0x7f) == video_pt
                    })
                    .map(|(i, _)| i)
                    .take(2)
                    .collect();
                if let [first, second] = video[..] {
                    outgoing.swap(first, second);
                    self.reorder_frame_from = None;
                }
            }
            for (source, destination, data) in outgoing {
                moved = true;
                assert_eq!(destination, self.server);
                self.hub
                    .handle_datagram(now, Protocol::Udp, source, destination, &data);
            }
            if !moved {
                break;
            }
        }
    }
}

impl World {
    /// Hands one datagram from the server to the client it is addressed to.
    fn deliver(&mut self, at: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let Some(c) = self
            .clients
            .iter_mut()
            .find(|c| c.publish_addr == destination || c.subscribe_addr == destination)
        else {
            return;
        };
        let input = Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents: data.try_into().unwrap(),
            },
        );
        if c.publish_addr == destination {
            c.publish.handle_input(input).unwrap();
        } else {
            c.subscribe.handle_input(input).unwrap();
        }
    }

    /// Delivers what the bottlenecks let through by `now`, each packet at
    /// the moment it arrives.
    fn deliver_queued(&mut self, now: Instant) {
        let mut due = Vec::new();
        for link in self.links.values_mut() {
            while link.queue.front().is_some_and(|q| q.0 <= now) {
                due.push(link.queue.pop_front().unwrap());
            }
        }
        due.sort_by_key(|d| d.0);
        for (at, source, destination, data) in due {
            self.deliver(at, source, destination, &data);
        }
    }
}

/// An RTP (not RTCP) datagram big enough to be video rather than Opus.
fn is_video_rtp(data: &[u8]) -> bool {
    data.len() > 500 && data[0] & 0xc0 == 0x80 && !(72..=79).contains(&(data[1] & 0x7f))
}

/// Applies a subscribe offer (on a fresh connection if the server renewed
/// its side) and returns the answer message.
pub fn answer_offer(
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

pub fn drain_publish(
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

pub fn drain_subscribe(
    c: &mut Client,
    now: Instant,
    out: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
) -> Instant {
    loop {
        match c.subscribe.poll_output().unwrap() {
            Output::Timeout(t) => return t.max(now),
            Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
            Output::Event(Event::MediaAdded(added)) => {
                // The inactive anchor section carries nothing; as a browser
                // does, the client does not count it as a track.
                if added.direction == Direction::Inactive {
                    continue;
                }
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
                *c.received_by_mid.entry(data.mid).or_default() += 1;
            }
            Output::Event(_) => {}
        }
    }
}

/// 20 ms Opus frames and 30 fps VP8 frames; a keyframe when asked and every 3 s.
pub fn write_media(c: &mut Client, now: Instant) {
    if !c.publish.is_connected() {
        return;
    }
    let tick = c.frames_sent;
    c.frames_sent += 1;
    if let Some(mid) = c.audio.filter(|_| tick.is_multiple_of(4)) {
        // The server closes the connections of a participant that left.
        let Some(mut w) = c.publish.writer(mid) else {
            return;
        };
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        if let Some(level) = c.level {
            w = w.audio_level(level, level < 60);
        }
        let time = MediaTime::new(tick / 4 * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        w.write(pt, now, time, vec![0xfc; 80]).unwrap();
    }
    if let Some(mid) = c.video.filter(|_| tick.is_multiple_of(7)) {
        let frame = tick / 7;
        let keyframe = c.keyframe_wanted || frame.is_multiple_of(90);
        c.keyframe_wanted = false;
        let time = MediaTime::from_90khz(frame * 3150);
        // One stream, or each simulcast layer at its own size (layer i of
        // n is 300·3^i bytes, keyframes twice that), so a subscriber
        // can tell which layer reached it.
        let rids: Vec<Option<&str>> = if c.layers.is_empty() {
            vec![None]
        } else {
            c.layers.iter().map(|r| Some(*r)).collect()
        };
        for (i, rid) in rids.into_iter().enumerate() {
            let size = layer_frame_size(if rid.is_some() { i } else { 1 }, keyframe);
            let codec = c.video_codec;
            if !write_video(
                c,
                mid,
                rid,
                codec,
                now,
                time,
                video_frame(codec, keyframe, size),
            ) {
                return;
            }
        }
    }
    if let Some(mid) = c.screen.filter(|_| tick.is_multiple_of(7)) {
        let frame = tick / 7;
        // Keyframes every 3 s only: a screen asked for one gets it then.
        let keyframe = frame.is_multiple_of(90);
        let data = video_frame(Codec::Vp8, keyframe, layer_frame_size(1, keyframe));
        let time = MediaTime::from_90khz(frame * 3150);
        write_video(c, mid, None, Codec::Vp8, now, time, data);
    }
}

/// Writes one video frame on `mid` (layer `rid`); false once the server
/// has closed the publish connection.
fn write_video(
    c: &mut Client,
    mid: Mid,
    rid: Option<&str>,
    codec: Codec,
    now: Instant,
    time: MediaTime,
    data: Vec<u8>,
) -> bool {
    let Some(mut w) = c.publish.writer(mid) else {
        return false;
    };
    let pt = w
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .unwrap()
        .pt();
    if let Some(rid) = rid {
        w = w.rid(rid.into());
    }
    w.write(pt, now, time, data).unwrap();
    true
}

/// A frame of `size` bytes that the codec's depacketizer recognises as a
/// keyframe or not.
pub fn video_frame(codec: Codec, keyframe: bool, size: usize) -> Vec<u8> {
    let mut data = vec![0x55u8; size];
    match codec {
        // Bit 0 of a VP8 frame's first byte is clear on keyframes (RFC 6386 §9.1).
        Codec::Vp8 => data[0] = if keyframe { 0x50 } else { 0x51 },
        // VP9 uncompressed header: frame marker, profile 0, frame_type 0 = key.
        Codec::Vp9 => data[0] = if keyframe { 0x82 } else { 0x86 },
        // H264 Annex B: SPS, PPS and an IDR slice, or one non-IDR slice.
        Codec::H264 => {
            let head: &[u8] = if keyframe {
                &[
                    0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0,
                    0, 1, 0x65,
                ]
            } else {
                &[0, 0, 0, 1, 0x41]
            };
            data[..head.len()].copy_from_slice(head);
        }
        other => panic!("no test frames for {other:?}"),
    }
    data
}

pub fn layer_frame_size(layer: usize, keyframe: bool) -> usize {
    // Keyframes twice as large: every (layer, keyframe) pair has its own size.
    300 * 3usize.pow(layer as u32) * if keyframe { 2 } else { 1 }
}
