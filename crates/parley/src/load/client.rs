//! One load participant: a signaling WebSocket and str0m peer connections
//! on loopback-or-LAN UDP sockets. A publisher sends Opus every 20 ms and
//! VP8 in up to three simulcast layers at 25 fps, answering keyframe
//! requests; every participant receives the room through its subscribe
//! connection (full ICE and DTLS-SRTP, nothing decoded) and measures each
//! track.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parley_signal::{ClientMessage, PcName, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use super::media::{self, FPS, LAYERS, Layer, Stamp};
use super::report::TrackStats;

/// One peer connection on its own UDP socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    timeout: Instant,
}

impl Peer {
    async fn new(bind: std::net::IpAddr, stats: bool) -> anyhow::Result<Peer> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
        let addr = socket.local_addr()?;
        let mut config = Rtc::builder();
        if stats {
            config = config.set_stats_interval(Some(Duration::from_secs(1)));
        }
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        Ok(Peer {
            rtc,
            socket,
            addr,
            timeout: Instant::now(),
        })
    }

    async fn drain(&mut self, events: &mut Vec<Event>) -> anyhow::Result<()> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => {
                    // A full socket buffer drops like the network would.
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
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
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("load client: input refused: {e}");
        }
    }
}

/// How one participant behaves.
#[derive(Debug, Clone)]
pub struct Plan {
    /// WebSocket URL of the server.
    pub ws_url: String,
    /// Room name.
    pub room: String,
    /// Display name.
    pub name: String,
    /// Send media.
    pub publish: bool,
    /// Simulcast layers to send (1–3).
    pub layers: usize,
    /// Local address to bind media sockets to.
    pub bind: std::net::IpAddr,
    /// Stop at.
    pub until: Instant,
    /// The generator's clock origin, for stamps.
    pub origin: Instant,
}

/// What one participant saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Its participant id, once joined.
    pub id: Option<String>,
    /// Per (publisher id, kind): what arrived.
    pub tracks: HashMap<(String, &'static str), TrackStats>,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// Runs one participant until `plan.until`; calls `on_frame` for progress.
pub async fn run(plan: Plan, on_frame: impl Fn(bool)) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(e) = drive(&plan, &mut outcome, &on_frame).await {
        outcome.error = Some(format!("{}: {e:#}", plan.name));
    }
    outcome
}

struct Sender {
    audio: Mid,
    video: Mid,
    layers: Vec<Layer>,
    want_key: Vec<bool>,
    tick: u64,
}

async fn drive(plan: &Plan, outcome: &mut Outcome, on_frame: &impl Fn(bool)) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(plan.ws_url.as_str()).await?;
    let mut subscribe = Peer::new(plan.bind, true).await?;
    let mut publish = if plan.publish {
        Some(Peer::new(plan.bind, false).await?)
    } else {
        None
    };
    let text =
        |m: ClientMessage| Message::Text(serde_json::to_string(&m).unwrap_or_default().into());
    let joined_at = Instant::now();
    ws.send(text(ClientMessage::Join {
        version: parley_signal::PROTOCOL_VERSION,
        room: plan.room.clone(),
        name: plan.name.clone(),
        mic: plan.publish,
        camera: plan.publish,
        password: None,
    }))
    .await?;

    let mut sender: Option<Sender> = None;
    let mut offer: Option<(String, SdpPendingOffer)> = None;
    if let Some(p) = publish.as_mut() {
        let layers: Vec<Layer> = LAYERS[..plan.layers.clamp(1, 3)].to_vec();
        let mut api = p.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let simulcast = (layers.len() > 1).then(|| {
            let mut s = Simulcast::new();
            for l in &layers {
                s.add_send_layer(SimulcastLayer::new(l.rid));
            }
            s
        });
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast);
        let (sdp, pending) = api
            .apply()
            .ok_or_else(|| anyhow::anyhow!("no publish offer"))?;
        offer = Some((sdp.to_sdp_string(), pending));
        sender = Some(Sender {
            audio,
            video,
            want_key: vec![true; layers.len()],
            layers,
            tick: 0,
        });
    }
    let mut pending: Option<SdpPendingOffer> = None;
    let mut sources: HashMap<Mid, (String, &'static str)> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let (mut buf_p, mut buf_s) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut events = Vec::new();

    while Instant::now() < plan.until {
        let publish_timeout = publish.as_ref().map_or(plan.until, |p| p.timeout);
        let next = publish_timeout.min(subscribe.timeout).min(plan.until);
        tokio::select! {
            frame = ws.next() => {
                let Some(frame) = frame else { anyhow::bail!("the server closed the connection") };
                let Message::Text(t) = frame? else { continue };
                match serde_json::from_str::<ServerMessage>(&t)? {
                    ServerMessage::Joined { me, .. } => {
                        outcome.id = Some(me.id);
                        if let Some((sdp, p)) = offer.take() {
                            pending = Some(p);
                            ws.send(text(ClientMessage::Offer { pc: PcName::Publish, sdp })).await?;
                        }
                    }
                    ServerMessage::Answer { sdp, .. } => {
                        if let (Some(p), Some(pc)) = (pending.take(), publish.as_mut()) {
                            pc.rtc.sdp_api().accept_answer(p, SdpAnswer::from_sdp_string(&sdp)?)?;
                        }
                    }
                    ServerMessage::Offer { sdp, offer_id, renew, .. } => {
                        if renew {
                            subscribe = Peer::new(plan.bind, true).await?;
                            sources.clear();
                        }
                        let answer = subscribe.rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&sdp)?)?;
                        ws.send(text(ClientMessage::Answer {
                            pc: PcName::Subscribe,
                            offer_id: Some(offer_id),
                            sdp: answer.to_sdp_string(),
                        })).await?;
                    }
                    ServerMessage::Error { code, message, .. } => {
                        tracing::warn!(name = %plan.name, ?code, "server refused: {message}");
                    }
                    _ => {}
                }
            }
            r = async { match publish.as_ref() { Some(p) => p.socket.recv_from(&mut buf_p).await, None => std::future::pending().await } } => {
                let (n, from) = r?;
                if let Some(p) = publish.as_mut() {
                    p.receive(from, &buf_p[..n]);
                }
            }
            r = subscribe.socket.recv_from(&mut buf_s) => {
                let (n, from) = r?;
                subscribe.receive(from, &buf_s[..n]);
            }
            _ = ticker.tick() => {
                if let (Some(p), Some(s)) = (publish.as_mut(), sender.as_mut())
                    && p.rtc.is_connected()
                {
                    write_frames(&mut p.rtc, s, plan.origin)?;
                }
            }
            () = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                if let Some(p) = publish.as_mut() {
                    p.rtc.handle_input(Input::Timeout(now))?;
                }
                subscribe.rtc.handle_input(Input::Timeout(now))?;
            }
        }
        if let Some(p) = publish.as_mut() {
            p.drain(&mut events).await?;
            for e in events.drain(..) {
                if let (Event::KeyframeRequest(req), Some(s)) = (e, sender.as_mut())
                    && req.mid == s.video
                {
                    let i = req
                        .rid
                        .and_then(|r| s.layers.iter().position(|l| Rid::from(l.rid) == r))
                        .unwrap_or(0);
                    s.want_key[i] = true;
                }
            }
        }
        subscribe.drain(&mut events).await?;
        let now = Instant::now();
        for e in events.drain(..) {
            match e {
                Event::MediaAdded(added) => {
                    if let Some(m) = subscribe.rtc.media(added.mid) {
                        sources
                            .insert(added.mid, (m.stream_id().to_owned(), kind_name(added.kind)));
                    }
                }
                Event::MediaData(data) => {
                    let Some(source) = sources.get(&data.mid).cloned() else {
                        continue;
                    };
                    let video = data.params.spec().codec != Codec::Opus;
                    let stamp = if video {
                        media::vp8_stamp(&data.data)
                    } else {
                        media::opus_stamp(&data.data)
                    };
                    if let Some(stamp) = stamp {
                        let since =
                            u64::try_from(now.saturating_duration_since(plan.origin).as_micros())
                                .unwrap_or(u64::MAX);
                        outcome
                            .tracks
                            .entry(source)
                            .or_default()
                            .frame(now, since, joined_at, stamp, video);
                        on_frame(video);
                    }
                }
                Event::MediaIngressStats(s) => {
                    if let Some(source) = sources.get(&s.mid).cloned() {
                        let t = outcome.tracks.entry(source).or_default();
                        t.packets = t.packets.max(s.packets);
                        t.nacks = t.nacks.max(s.nacks);
                        t.loss = t.loss.max(s.loss.unwrap_or(0.0));
                    }
                }
                _ => {}
            }
        }
    }
    let _ = ws.send(text(ClientMessage::Leave)).await;
    let _ = ws.close(None).await;
    Ok(())
}

/// Audio every tick (20 ms); video every other tick (25 fps) on each layer,
/// a keyframe every 2 s or when asked for.
fn write_frames(rtc: &mut Rtc, s: &mut Sender, origin: Instant) -> anyhow::Result<()> {
    let now = Instant::now();
    let sent_us =
        u64::try_from(now.saturating_duration_since(origin).as_micros()).unwrap_or(u64::MAX);
    let tick = s.tick;
    s.tick += 1;
    let stamp = |layer: u8, index: u64| Stamp {
        layer,
        index: u32::try_from(index).unwrap_or(u32::MAX),
        sent_us,
    };
    let w = rtc
        .writer(s.audio)
        .ok_or_else(|| anyhow::anyhow!("no audio writer"))?;
    let pt = w
        .payload_params()
        .find(|p| p.spec().codec == Codec::Opus)
        .map(|p| p.pt())
        .ok_or_else(|| anyhow::anyhow!("no Opus"))?;
    w.write(
        pt,
        now,
        MediaTime::new(tick * 960, Frequency::FORTY_EIGHT_KHZ),
        media::opus_frame(stamp(0, tick)),
    )?;
    if !tick.is_multiple_of(2) {
        return Ok(());
    }
    let index = tick / 2;
    let periodic = index.is_multiple_of(u64::from(FPS) * 2);
    for (i, layer) in s.layers.clone().iter().enumerate() {
        let keyframe = periodic || s.want_key[i];
        s.want_key[i] = false;
        let base = (layer.bitrate / 8 / FPS) as usize;
        let size = if keyframe {
            (base * 4).min(60_000)
        } else {
            base
        };
        let frame = media::vp8_frame(layer, keyframe, size, stamp(i as u8, index));
        let mut w = rtc
            .writer(s.video)
            .ok_or_else(|| anyhow::anyhow!("no video writer"))?;
        if s.layers.len() > 1 {
            w = w.rid(Rid::from(layer.rid));
        }
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt())
            .ok_or_else(|| anyhow::anyhow!("no VP8"))?;
        w.write(pt, now, MediaTime::from_90khz(index * 3600), frame)?;
    }
    Ok(())
}
