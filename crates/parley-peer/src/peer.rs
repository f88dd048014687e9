//! One in-memory participant: its two str0m connections, what it sends and
//! what it counted on the way in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::frames::{layer_frame_size, video_frame};

/// A datagram on the virtual network: source, destination, contents.
pub type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

/// A test participant: two str0m peer connections and its media.
///
/// Panics (a failed test) when its own str0m connection refuses what the
/// test world hands it, which is always a mistake of the world or the server.
pub struct Peer {
    /// How the others see it: the `msid` stream id of its tracks (the
    /// server's participant id), once the world knows it.
    pub id: String,
    /// The connection this peer offers its media on.
    pub publish: Rtc,
    /// The connection the server offers the others' media on.
    pub subscribe: Rtc,
    /// The publish connection's address.
    pub publish_addr: SocketAddr,
    /// The subscribe connection's address.
    pub subscribe_addr: SocketAddr,
    /// The publish offer waiting for the server's answer.
    pub pending_publish: Option<SdpPendingOffer>,
    /// The audio track's m-line, once published.
    pub audio: Option<Mid>,
    /// The video track's m-line, once published.
    pub video: Option<Mid>,
    /// A second video (a screen, say), sent like the first, once added.
    pub screen: Option<Mid>,
    /// When the publish connection's timer is due.
    pub publish_timeout: Instant,
    /// When the subscribe connection's timer is due.
    pub subscribe_timeout: Instant,
    /// Ticks of media written (audio every 4th, video every 7th).
    pub frames_sent: u64,
    /// The next video frame is a keyframe (asked for, or the first).
    pub keyframe_wanted: bool,
    /// Keyframe requests (PLI, FIR) the server sent.
    pub keyframe_requests_seen: u32,
    /// Publisher id of each subscribed m-line, from its msid.
    pub sources: HashMap<Mid, (String, MediaKind)>,
    /// Frames received per (publisher id, kind).
    pub received: HashMap<(String, MediaKind), u64>,
    /// Frames received per mid of the subscribe connection.
    pub received_by_mid: HashMap<Mid, u64>,
    /// Keyframes received per publisher id.
    pub keyframes_received: HashMap<String, u64>,
    /// Sizes of the video frames received, per publisher id.
    pub video_sizes: HashMap<String, Vec<usize>>,
    /// Subscribe connections replaced because the server renewed its side.
    pub renewals: u32,
    /// Simulcast layers to publish (rids, lowest first); empty for one stream.
    pub layers: Vec<&'static str>,
    /// The codec this peer's video is sent in.
    pub video_codec: Codec,
    /// The audio level its Opus packets carry (RFC 6464: 0 loudest, 127
    /// silence); none without the extension.
    pub level: Option<i8>,
}

impl Peer {
    /// Peer number `n`, at 10.0.1.`n` (publish on port 5000, subscribe on 5001).
    pub fn new(n: u8, now: Instant) -> Self {
        let publish_addr = SocketAddr::from(([10, 0, 1, n], 5000));
        let subscribe_addr = SocketAddr::from(([10, 0, 1, n], 5001));
        Peer {
            id: String::new(),
            publish: rtc_at(Rtc::builder().build(now), publish_addr),
            subscribe: rtc_at(Rtc::builder().build(now), subscribe_addr),
            publish_addr,
            subscribe_addr,
            pending_publish: None,
            audio: None,
            video: None,
            screen: None,
            publish_timeout: now,
            subscribe_timeout: now,
            frames_sent: 0,
            keyframe_wanted: true,
            keyframe_requests_seen: 0,
            sources: HashMap::new(),
            received: HashMap::new(),
            received_by_mid: HashMap::new(),
            keyframes_received: HashMap::new(),
            video_sizes: HashMap::new(),
            renewals: 0,
            layers: Vec::new(),
            video_codec: Codec::Vp8,
            level: None,
        }
    }

    /// Frames of `kind` received from `from`.
    pub fn got(&self, from: &Peer, kind: MediaKind) -> u64 {
        self.received
            .get(&(from.id.clone(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Whether `addr` is one of this peer's.
    pub fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.publish_addr || addr == self.subscribe_addr
    }

    /// A publish connection that offers Opus and `codec` only for video (as
    /// a browser may), replacing the current one.
    pub fn offer_only(&mut self, now: Instant, codec: Codec) {
        let config = Rtc::builder().clear_codecs().enable_opus(true, false);
        let config = match codec {
            Codec::H264 => config.enable_h264(true),
            Codec::Vp9 => config.enable_vp9(true),
            _ => config.enable_vp8(true),
        };
        self.publish = rtc_at(config.build(now), self.publish_addr);
        self.video_codec = codec;
    }

    /// Adds one audio and one video track (in the simulcast `layers` if
    /// any) to the publish connection; the offer's SDP.
    pub fn publish_offer(&mut self) -> String {
        let mut api = self.publish.sdp_api();
        self.audio = Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        let simulcast = (!self.layers.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for rid in &self.layers {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        self.video =
            Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast));
        let (offer, pending) = api.apply().expect("a publish offer");
        self.pending_publish = Some(pending);
        offer.to_sdp_string()
    }

    /// Applies the server's answer to the publish offer.
    pub fn accept_publish_answer(&mut self, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("the server's answer parses");
        let pending = self.pending_publish.take().expect("a publish offer out");
        self.publish
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the server's answer applies");
    }

    /// Applies a subscribe offer (on a fresh connection if the server
    /// renewed its side); the answer's SDP.
    pub fn answer_subscribe(&mut self, now: Instant, renew: bool, sdp: &str) -> String {
        if renew {
            self.renewals += 1;
            self.subscribe = rtc_at(Rtc::builder().build(now), self.subscribe_addr);
            self.sources.clear();
            self.subscribe_timeout = now;
        }
        let offer = SdpOffer::from_sdp_string(sdp).expect("the server's offer parses");
        let answer = self
            .subscribe
            .sdp_api()
            .accept_offer(offer)
            .expect("the server's offer applies");
        answer.to_sdp_string()
    }

    /// Hands a datagram that arrived at `at` to the connection it is addressed to.
    pub fn receive(
        &mut self,
        at: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let input = Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents: data.try_into().expect("a STUN, DTLS or RTP datagram"),
            },
        );
        let rtc = if destination == self.publish_addr {
            &mut self.publish
        } else {
            &mut self.subscribe
        };
        rtc.handle_input(input)
            .expect("the peer takes the datagram");
    }

    /// Runs the connections' timers that are due by `now`.
    pub fn run_timers(&mut self, now: Instant) {
        if self.publish_timeout <= now {
            self.publish
                .handle_input(Input::Timeout(now))
                .expect("the publish connection runs");
        }
        if self.subscribe_timeout <= now {
            self.subscribe
                .handle_input(Input::Timeout(now))
                .expect("the subscribe connection runs");
        }
    }

    /// Drains both connections: datagrams into `out`, events counted.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<Datagram>) {
        self.publish_timeout = self.drain_publish(now, out);
        self.subscribe_timeout = self.drain_subscribe(now, out);
    }

    fn drain_publish(&mut self, now: Instant, out: &mut Vec<Datagram>) -> Instant {
        loop {
            match self.publish.poll_output().expect("the publish connection") {
                Output::Timeout(t) => return t.max(now),
                Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
                Output::Event(Event::KeyframeRequest(_)) => {
                    self.keyframe_wanted = true;
                    self.keyframe_requests_seen += 1;
                }
                Output::Event(_) => {}
            }
        }
    }

    fn drain_subscribe(&mut self, now: Instant, out: &mut Vec<Datagram>) -> Instant {
        loop {
            match self
                .subscribe
                .poll_output()
                .expect("the subscribe connection")
            {
                Output::Timeout(t) => return t.max(now),
                Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
                Output::Event(Event::MediaAdded(added)) => {
                    // The inactive anchor section carries nothing; as a
                    // browser does, the peer does not count it as a track.
                    if added.direction == Direction::Inactive {
                        continue;
                    }
                    let media = self.subscribe.media(added.mid).expect("an added m-line");
                    let source = media.stream_id().to_owned();
                    self.sources.insert(added.mid, (source, added.kind));
                }
                Output::Event(Event::MediaData(data)) => {
                    let (source, kind) = self.sources[&data.mid].clone();
                    if data.is_keyframe() {
                        *self.keyframes_received.entry(source.clone()).or_default() += 1;
                    }
                    if kind == MediaKind::Video {
                        self.video_sizes
                            .entry(source.clone())
                            .or_default()
                            .push(data.data.len());
                    }
                    *self.received.entry((source, kind)).or_default() += 1;
                    *self.received_by_mid.entry(data.mid).or_default() += 1;
                }
                Output::Event(_) => {}
            }
        }
    }

    /// One 5 ms tick of media: a 20 ms Opus frame every 4th tick, a video
    /// frame (30 fps) every 7th, in each simulcast layer at its own size; a
    /// keyframe when asked and every 3 s. Nothing before the publish
    /// connection is up, nor once the server closed it.
    pub fn write_media(&mut self, now: Instant) {
        if !self.publish.is_connected() {
            return;
        }
        let tick = self.frames_sent;
        self.frames_sent += 1;
        if let Some(mid) = self.audio.filter(|_| tick.is_multiple_of(4)) {
            let Some(mut w) = self.publish.writer(mid) else {
                return;
            };
            let pt = w
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .expect("Opus negotiated")
                .pt();
            if let Some(level) = self.level {
                w = w.audio_level(level, level < 60);
            }
            let time = MediaTime::new(tick / 4 * 960, Frequency::FORTY_EIGHT_KHZ);
            w.write(pt, now, time, vec![0xfc; 80])
                .expect("an Opus frame");
        }
        if let Some(mid) = self.video.filter(|_| tick.is_multiple_of(7)) {
            let frame = tick / 7;
            let keyframe = self.keyframe_wanted || frame.is_multiple_of(90);
            self.keyframe_wanted = false;
            let time = MediaTime::from_90khz(frame * 3150);
            let rids: Vec<Option<&str>> = if self.layers.is_empty() {
                vec![None]
            } else {
                self.layers.iter().map(|r| Some(*r)).collect()
            };
            for (i, rid) in rids.into_iter().enumerate() {
                let size = layer_frame_size(if rid.is_some() { i } else { 1 }, keyframe);
                let codec = self.video_codec;
                let data = video_frame(codec, keyframe, size);
                if !self.write_video(mid, rid, codec, now, time, data) {
                    return;
                }
            }
        }
        if let Some(mid) = self.screen.filter(|_| tick.is_multiple_of(7)) {
            let frame = tick / 7;
            // Keyframes every 3 s only: a screen asked for one gets it then.
            let keyframe = frame.is_multiple_of(90);
            let data = video_frame(Codec::Vp8, keyframe, layer_frame_size(1, keyframe));
            let time = MediaTime::from_90khz(frame * 3150);
            self.write_video(mid, None, Codec::Vp8, now, time, data);
        }
    }

    /// Writes one video frame on `mid` (layer `rid`); false once the
    /// server has closed the publish connection.
    fn write_video(
        &mut self,
        mid: Mid,
        rid: Option<&str>,
        codec: Codec,
        now: Instant,
        time: MediaTime,
        data: Vec<u8>,
    ) -> bool {
        let Some(mut w) = self.publish.writer(mid) else {
            return false;
        };
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .expect("the video codec negotiated")
            .pt();
        if let Some(rid) = rid {
            w = w.rid(rid.into());
        }
        w.write(pt, now, time, data).expect("a video frame");
        true
    }
}

/// A connection that gathers one host candidate, `addr`.
fn rtc_at(mut rtc: Rtc, addr: SocketAddr) -> Rtc {
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a host candidate"));
    rtc
}
