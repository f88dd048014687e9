//! One load participant: a signaling WebSocket and str0m peer connections
//! on loopback-or-LAN UDP sockets. A publisher sends Opus every 20 ms and
//! VP8 in up to three simulcast layers at 25 fps, answering keyframe
//! requests; every participant receives the room through its subscribe
//! connection (full ICE and DTLS-SRTP, nothing decoded) and measures each
//! track.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

use parley_sfu::{DUE_NOW, MAX_DUE_NOW};

use crate::media::{self, FPS, Layer, Stamp};
use crate::report::TrackStats;
use crate::signaling::{JanusSignal, ParleySignal, Signal, Signaling};

/// A kernel receive stamp (wall clock) on the monotonic clock: latency is
/// then measured to when a datagram reached this machine, not to when this
/// single-threaded generator got round to it (with dozens of subscribers
/// receiving the same packet at once, that wait is the generator's, not the
/// server's).
fn kernel_instant(ts: TimeSpec) -> Option<Instant> {
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u32::try_from(ts.tv_nsec()).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    // Its age on the wall clock, read now: a step of the wall clock during
    // a run shifts no later stamp.
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(age)
}

fn socket_addr(addr: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

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
        let peer = Peer {
            rtc,
            socket,
            addr,
            timeout: Instant::now(),
        };
        peer.stamp_arrivals();
        Ok(peer)
    }

    /// Sends what the `Rtc` has to send and collects its events. A timeout
    /// due now is answered at once: str0m asks for one between any two
    /// packets it releases, and waiting for the runtime's timer there would
    /// spread a frame's packets a millisecond apart, which would count as
    /// latency the server added.
    async fn drain(&mut self, events: &mut Vec<Event>) -> anyhow::Result<()> {
        let mut clock = Instant::now();
        let mut due_now = MAX_DUE_NOW;
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) if t <= clock + DUE_NOW && due_now > 0 => {
                    due_now -= 1;
                    clock = t.max(clock);
                    self.rtc.handle_input(Input::Timeout(clock))?;
                }
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

    /// Asks the kernel to stamp every datagram with its arrival time.
    fn stamp_arrivals(&self) {
        if let Err(e) = setsockopt(&self.socket, sockopt::ReceiveTimestampns, &true) {
            tracing::debug!("load client: no receive timestamps: {e}");
        }
    }

    /// Receives one datagram: its length, sender, and when it reached this
    /// machine (the kernel's stamp, else now).
    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Instant)> {
        loop {
            self.socket.readable().await?;
            let result = self.socket.try_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(buf)];
                let mut space = nix::cmsg_space!(TimeSpec);
                let msg = recvmsg::<SockaddrStorage>(
                    self.socket.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)?;
                let mut at = None;
                for c in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmTimestampns(ts) = c {
                        at = kernel_instant(ts);
                    }
                }
                Ok((msg.bytes, msg.address.and_then(socket_addr), at))
            });
            match result {
                Ok((n, Some(from), at)) => return Ok((n, from, at.unwrap_or_else(Instant::now))),
                Ok((_, None, _)) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn receive(&mut self, at: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            at,
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

/// The server being loaded.
#[derive(Debug, Clone)]
pub enum Target {
    /// Parley, at this WebSocket URL.
    Parley(String),
    /// Janus's videoroom, through the HTTP API at this URL.
    Janus(String),
}

/// How one participant behaves.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub target: Target,
    /// Room name.
    pub room: String,
    /// Display name.
    pub name: String,
    /// Send media.
    pub publish: bool,
    /// The video layers to send (simulcast when more than one).
    pub layers: Vec<Layer>,
    /// Local address to bind media sockets to.
    pub bind: std::net::IpAddr,
    /// Stop at.
    pub until: Instant,
    /// The generator's clock origin, for stamps.
    pub origin: Instant,
    /// Besides media, chat, react, raise hands and change tile sizes once
    /// a second (see [`Signaling::activity`]), as a soak wants.
    pub activity: bool,
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
    /// Its media connections came up (both, for a publisher).
    pub connected: bool,
    /// Chat messages, reactions, hands and tile size reports sent.
    pub activities: u64,
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// What a participant tells the generator as it goes: a frame received
/// (video or not), and RTP packets received on its subscribe connection.
pub trait Progress {
    /// A frame arrived.
    fn frame(&self, video: bool);
    /// An RTP packet arrived (before decryption; RTCP and STUN not counted).
    fn rtp(&self);
}

/// Runs one participant until `plan.until`; tells `progress` as it goes.
pub async fn run(plan: Plan, on_frame: impl Progress) -> Outcome {
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

async fn drive(plan: &Plan, outcome: &mut Outcome, progress: &impl Progress) -> anyhow::Result<()> {
    let joined_at = Instant::now();
    let mut signal = match &plan.target {
        Target::Parley(url) => Signaling::Parley(Box::new(
            ParleySignal::join(url, &plan.room, &plan.name, plan.publish).await?,
        )),
        Target::Janus(url) => Signaling::Janus(Box::new(
            JanusSignal::join(url, &plan.room, &plan.name).await?,
        )),
    };
    let mut subscribe = Peer::new(plan.bind, true).await?;
    let mut publish = if plan.publish {
        Some(Peer::new(plan.bind, false).await?)
    } else {
        None
    };

    let mut sender: Option<Sender> = None;
    let mut offer: Option<(String, SdpPendingOffer)> = None;
    if let Some(p) = publish.as_mut() {
        let layers = plan.layers.clone();
        let mut api = p.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let simulcast = (layers.len() > 1).then(|| {
            let mut s = Simulcast::new();
            // Janus reads the rids as listed highest quality first (as its
            // own client sends them); Parley goes by the picture sizes.
            let mut order: Vec<&Layer> = layers.iter().collect();
            if matches!(plan.target, Target::Janus(_)) {
                order.reverse();
            }
            for l in order {
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
    // Publishers by mid, when the server names them in signaling.
    let mut feeds: HashMap<String, String> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut activity = tokio::time::interval(Duration::from_secs(1));
    activity.tick().await;
    let (mut buf_p, mut buf_s) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut events = Vec::new();
    // When the subscribe connection's latest datagram reached this machine:
    // a frame completed by it arrived then.
    let mut arrived = Instant::now();

    while Instant::now() < plan.until {
        let publish_timeout = publish.as_ref().map_or(plan.until, |p| p.timeout);
        let next = publish_timeout.min(subscribe.timeout).min(plan.until);
        tokio::select! {
            said = signal.next() => match said? {
                Signal::Joined(id) => {
                    outcome.id = Some(id);
                    if let Some((sdp, p)) = offer.take() {
                        pending = Some(p);
                        signal.publish(sdp).await?;
                    }
                }
                Signal::PublishAnswer(sdp) => {
                    if let (Some(p), Some(pc)) = (pending.take(), publish.as_mut()) {
                        pc.rtc.sdp_api().accept_answer(p, SdpAnswer::from_sdp_string(&sdp)?)?;
                        pc.rtc.handle_input(Input::Timeout(Instant::now()))?;
                    }
                }
                Signal::SubscribeOffer { sdp, offer_id, renew, feeds: named } => {
                    if renew {
                        subscribe = Peer::new(plan.bind, true).await?;
                        sources.clear();
                    }
                    feeds.extend(named);
                    let answer = subscribe.rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&sdp)?)?;
                    signal.answer(offer_id, answer.to_sdp_string()).await?;
                    // Time moves for str0m only through inputs: without one now, its
                    // ICE agent waits for the next datagram, which a subscriber
                    // with nothing to receive yet never gets.
                    subscribe.rtc.handle_input(Input::Timeout(Instant::now()))?;
                }
            },
            r = async { match publish.as_ref() { Some(p) => p.socket.recv_from(&mut buf_p).await, None => std::future::pending().await } } => {
                let (n, from) = r?;
                if let Some(p) = publish.as_mut() {
                    p.receive(Instant::now(), from, &buf_p[..n]);
                }
            }
            r = subscribe.recv(&mut buf_s) => {
                let (n, from, at) = r?;
                if is_rtp(&buf_s[..n]) {
                    progress.rtp();
                }
                arrived = at;
                // The kernel's stamp goes into the congestion feedback the
                // server's estimator reads, as a browser's network thread
                // would report it; the time this single thread got round to
                // the datagram would read as a queue on the link.
                subscribe.receive(at.min(Instant::now()), from, &buf_s[..n]);
            }
            _ = activity.tick(), if plan.activity && outcome.id.is_some() => {
                signal.activity(outcome.activities).await?;
                outcome.activities += 1;
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
        if !outcome.connected
            && subscribe.rtc.is_connected()
            && publish.as_ref().is_none_or(|p| p.rtc.is_connected())
        {
            outcome.connected = true;
        }
        let now = Instant::now();
        for e in events.drain(..) {
            match e {
                // The subscribe connection's inactive anchor carries nothing.
                Event::MediaAdded(added) if added.direction != Direction::Inactive => {
                    if let Some(m) = subscribe.rtc.media(added.mid) {
                        let publisher = feeds
                            .get(&added.mid.to_string())
                            .cloned()
                            .unwrap_or_else(|| m.stream_id().to_owned());
                        sources.insert(added.mid, (publisher, kind_name(added.kind)));
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
                        let at = arrived.min(now);
                        let since =
                            u64::try_from(at.saturating_duration_since(plan.origin).as_micros())
                                .unwrap_or(u64::MAX);
                        outcome
                            .tracks
                            .entry(source)
                            .or_default()
                            .frame(at, since, joined_at, stamp, video);
                        progress.frame(video);
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
    signal.leave().await;
    Ok(())
}

/// RTP rather than RTCP, STUN or DTLS (RFC 7983 demultiplexing, RFC 5761
/// payload types 72–79 for RTCP).
fn is_rtp(data: &[u8]) -> bool {
    data.len() >= 12 && (128..=191).contains(&data[0]) && !(72..=79).contains(&(data[1] & 0x7f))
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
