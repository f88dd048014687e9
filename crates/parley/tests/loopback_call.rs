//! Two str0m clients in this process exchange real RTP through a real
//! `parley` server on loopback: WebSocket signaling, ICE, DTLS-SRTP, the SFU.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parley_signal::{ClientMessage, PcName, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use support::Server;

/// One peer connection on its own loopback UDP socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    timeout: Instant,
}

impl Peer {
    async fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut rtc = Rtc::new(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            rtc,
            socket,
            addr,
            timeout: Instant::now(),
        }
    }

    /// Sends what the `Rtc` has, returns its events.
    async fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match self.rtc.poll_output().expect("poll_output") {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return events;
                }
                Output::Transmit(t) => {
                    self.socket
                        .send_to(&t.contents, t.destination)
                        .await
                        .unwrap();
                }
                Output::Event(e) => events.push(e),
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.addr,
                contents,
            },
        );
        self.rtc.handle_input(input).unwrap();
    }
}

#[derive(Default, Debug)]
struct Received {
    /// Publisher id per subscribe m-line.
    sources: HashMap<Mid, String>,
    /// Frames per (publisher id, kind).
    frames: HashMap<(String, MediaKind), u64>,
}

/// Joins `room`, publishes audio and video, and runs until `until`,
/// returning its own id and what it received.
async fn run_client(
    url: String,
    room: &'static str,
    name: &'static str,
    until: Instant,
) -> (String, Received) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut publish = Peer::new().await;
    let mut subscribe = Peer::new().await;
    let send = |m: ClientMessage| Message::Text(serde_json::to_string(&m).unwrap().into());

    ws.send(send(ClientMessage::Join {
        version: 1,
        room: room.into(),
        name: name.into(),
        mic: true,
        camera: true,
        password: None,
    }))
    .await
    .unwrap();

    let mut api = publish.rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let mut pending: Option<SdpPendingOffer> = Some(pending);
    let mut me = String::new();
    let mut received = Received::default();
    let mut offered = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut tick: u64 = 0;
    let (mut buf_p, mut buf_s) = (vec![0u8; 2000], vec![0u8; 2000]);

    while Instant::now() < until {
        let next = publish.timeout.min(subscribe.timeout).min(until);
        tokio::select! {
            frame = ws.next() => {
                let Some(Ok(Message::Text(text))) = frame else { continue };
                match serde_json::from_str::<ServerMessage>(&text).unwrap() {
                    ServerMessage::Joined { me: info, .. } => {
                        me = info.id;
                        if !offered {
                            offered = true;
                            ws.send(send(ClientMessage::Offer { pc: PcName::Publish, sdp: offer.to_sdp_string() })).await.unwrap();
                        }
                    }
                    ServerMessage::Answer { sdp, .. } => {
                        let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                        publish.rtc.sdp_api().accept_answer(pending.take().unwrap(), answer).unwrap();
                    }
                    ServerMessage::Offer { sdp, offer_id, .. } => {
                        let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                        let answer = subscribe.rtc.sdp_api().accept_offer(offer).unwrap();
                        let answer = ClientMessage::Answer {
                            pc: PcName::Subscribe,
                            offer_id: Some(offer_id),
                            sdp: answer.to_sdp_string(),
                        };
                        ws.send(send(answer)).await.unwrap();
                    }
                    ServerMessage::Error { code, message, .. } => panic!("{name}: server error {code:?}: {message}"),
                    _ => {}
                }
            }
            r = publish.socket.recv_from(&mut buf_p) => {
                let (n, from) = r.unwrap();
                publish.receive(from, &buf_p[..n]);
            }
            r = subscribe.socket.recv_from(&mut buf_s) => {
                let (n, from) = r.unwrap();
                subscribe.receive(from, &buf_s[..n]);
            }
            _ = ticker.tick() => {
                if publish.rtc.is_connected() {
                    write_frames(&mut publish.rtc, audio, video, tick);
                    tick += 1;
                }
            }
            () = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                publish.rtc.handle_input(Input::Timeout(now)).unwrap();
                subscribe.rtc.handle_input(Input::Timeout(now)).unwrap();
            }
        }
        publish.drain().await;
        for event in subscribe.drain().await {
            match event {
                Event::MediaAdded(added) => {
                    let source = subscribe
                        .rtc
                        .media(added.mid)
                        .unwrap()
                        .stream_id()
                        .to_owned();
                    received.sources.insert(added.mid, source);
                }
                Event::MediaData(data) => {
                    let kind = if data.params.spec().codec == Codec::Opus {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    let source = received.sources.get(&data.mid).cloned().unwrap_or_default();
                    *received.frames.entry((source, kind)).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    (me, received)
}

/// One Opus frame every 20 ms and a VP8 frame every 40 ms, a keyframe each second.
fn write_frames(rtc: &mut Rtc, audio: Mid, video: Mid, tick: u64) {
    let now = Instant::now();
    let w = rtc.writer(audio).unwrap();
    let pt = w
        .payload_params()
        .find(|p| p.spec().codec == Codec::Opus)
        .unwrap()
        .pt();
    w.write(
        pt,
        now,
        MediaTime::new(tick * 960, Frequency::FORTY_EIGHT_KHZ),
        vec![0xfc; 60],
    )
    .unwrap();
    if tick.is_multiple_of(2) {
        let keyframe = tick.is_multiple_of(50);
        let mut frame = vec![0x33u8; if keyframe { 4000 } else { 900 }];
        // VP8: bit 0 of the first byte is clear on keyframes.
        frame[0] = if keyframe { 0x50 } else { 0x51 };
        let w = rtc.writer(video).unwrap();
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        w.write(pt, now, MediaTime::from_90khz(tick * 1800), frame)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_str0m_clients_exchange_media_through_parley() {
    let server = Server::start(&[]);
    let until = Instant::now() + Duration::from_secs(5);
    let a = tokio::spawn(run_client(server.ws_url(), "loopback", "Ada", until));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = tokio::spawn(run_client(server.ws_url(), "loopback", "Grace", until));
    let (a_id, a_got) = a.await.unwrap();
    let (b_id, b_got) = b.await.unwrap();

    let count = |r: &Received, from: &str, kind| {
        r.frames.get(&(from.to_owned(), kind)).copied().unwrap_or(0)
    };
    eprintln!(
        "A received {:?}\nB received {:?}",
        a_got.frames, b_got.frames
    );
    // Several seconds at 50 audio and 25 video frames per second; allow for setup time.
    assert!(
        count(&b_got, &a_id, MediaKind::Audio) > 50,
        "B heard too little of A"
    );
    assert!(
        count(&b_got, &a_id, MediaKind::Video) > 20,
        "B saw too little of A"
    );
    assert!(
        count(&a_got, &b_id, MediaKind::Audio) > 50,
        "A heard too little of B"
    );
    assert!(
        count(&a_got, &b_id, MediaKind::Video) > 20,
        "A saw too little of B"
    );
}
