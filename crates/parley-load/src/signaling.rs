//! How a load participant talks to the server it loads: Parley's own
//! WebSocket protocol, or Janus's videoroom plugin through Janus's HTTP API
//! (so `bench/sfu` drives both servers with the same media clients). Both
//! come down to the same few steps: join, publish an offer and get an
//! answer, get subscribe offers (with which publisher each mid carries)
//! and answer them.

use std::collections::{HashMap, HashSet};

use futures_util::{SinkExt, StreamExt};
use parley_protocol::{ClientMessage, PcName, ServerMessage, VideoSize};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What the server said, in the terms both servers share.
#[derive(Debug)]
pub enum Signal {
    /// In the room, as this publisher id.
    Joined(String),
    /// The answer to the publish offer.
    PublishAnswer(String),
    /// An offer for the subscribe connection.
    SubscribeOffer {
        /// The SDP.
        sdp: String,
        /// Parley's offer number, repeated in the answer.
        offer_id: Option<u64>,
        /// Start the subscribe connection afresh first.
        renew: bool,
        /// Which publisher each mid carries, when the server says so in
        /// signaling rather than in the SDP's msid.
        feeds: HashMap<String, String>,
    },
}

/// A signaling connection to the server being loaded.
pub enum Signaling {
    /// `parley serve`.
    Parley(Box<ParleySignal>),
    /// Janus with the videoroom plugin.
    Janus(Box<JanusSignal>),
}

impl Signaling {
    /// Sends the publish offer.
    pub async fn publish(&mut self, sdp: String) -> anyhow::Result<()> {
        match self {
            Signaling::Parley(p) => {
                p.send(ClientMessage::Offer {
                    pc: PcName::Publish,
                    sdp,
                })
                .await
            }
            Signaling::Janus(j) => j.publish(sdp).await,
        }
    }

    /// Answers a subscribe offer.
    pub async fn answer(&mut self, offer_id: Option<u64>, sdp: String) -> anyhow::Result<()> {
        match self {
            Signaling::Parley(p) => {
                p.video_mids = video_mids(&sdp);
                p.send(ClientMessage::Answer {
                    pc: PcName::Subscribe,
                    offer_id,
                    sdp,
                })
                .await?;
                p.send_sizes(TILE).await
            }
            Signaling::Janus(j) => j.answer(sdp).await,
        }
    }

    /// The next thing the server says; an error when it hung up.
    pub async fn next(&mut self) -> anyhow::Result<Signal> {
        match self {
            Signaling::Parley(p) => p.next().await,
            Signaling::Janus(j) => j.next().await,
        }
    }

    /// Does what people in a meeting do besides sending media, for a soak:
    /// `step` picks one of a chat message, an allowed reaction and a raised
    /// or lowered hand; every step also reports other tile sizes for the
    /// videos received, so the SFU switches layers. Nothing for Janus.
    pub async fn activity(&mut self, step: u64) -> anyhow::Result<()> {
        let Signaling::Parley(p) = self else {
            return Ok(());
        };
        let message = match step % 3 {
            0 => Some(ClientMessage::Chat {
                text: format!("soak message {step}"),
                to: None,
            }),
            1 => p.reactions.first().map(|emoji| ClientMessage::Reaction {
                emoji: emoji.clone(),
            }),
            _ => Some(ClientMessage::Hand {
                raised: step.is_multiple_of(2),
            }),
        };
        if let Some(m) = message {
            p.send(m).await?;
        }
        // Large, small, hidden, and round again.
        p.send_sizes([(1280, 720), (320, 180), (0, 0)][(step % 3) as usize])
            .await
    }

    /// Leaves the room, as well as the server still listens.
    pub async fn leave(self) {
        match self {
            Signaling::Parley(p) => p.leave().await,
            Signaling::Janus(j) => j.leave().await,
        }
    }
}

/// The tile size a load subscriber reports for every video (as a browser
/// showing a few large tiles would), so the SFU may send the top layer
/// when the bandwidth allows, as Janus does by default.
const TILE: (u32, u32) = (1280, 720);

/// The mids of the video sections of an SDP.
/// The mids of the video sections of an SDP still in use (not stopped with
/// port 0), at most as many as one `video_sizes` message takes.
fn video_mids(sdp: &str) -> Vec<String> {
    let mut video = false;
    let mut mids = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split_whitespace();
            video = words.next() == Some("video") && words.next() != Some("0");
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && video
        {
            mids.push(mid.trim().to_owned());
        }
    }
    mids.truncate(parley_protocol::MAX_VIDEO_SIZES);
    mids
}

/// Parley's WebSocket protocol.
pub struct ParleySignal {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The reactions the server allows (from `joined`).
    reactions: Vec<String>,
    /// The video sections of the subscribe connection, as last answered.
    video_mids: Vec<String>,
}

impl ParleySignal {
    /// Connects to `ws_url` and sends `join`.
    pub async fn join(
        ws_url: &str,
        room: &str,
        name: &str,
        publish: bool,
    ) -> anyhow::Result<ParleySignal> {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
        let mut signal = ParleySignal {
            ws,
            reactions: Vec::new(),
            video_mids: Vec::new(),
        };
        signal
            .send(ClientMessage::Join {
                version: parley_protocol::PROTOCOL_VERSION,
                room: room.to_owned(),
                name: name.to_owned(),
                mic: publish,
                camera: publish,
                password: None,
            })
            .await?;
        Ok(signal)
    }

    async fn send(&mut self, m: ClientMessage) -> anyhow::Result<()> {
        self.ws
            .send(Message::Text(serde_json::to_string(&m)?.into()))
            .await?;
        Ok(())
    }

    /// Reports one tile size, (width, height), for every received video.
    async fn send_sizes(&mut self, (width, height): (u32, u32)) -> anyhow::Result<()> {
        if self.video_mids.is_empty() {
            return Ok(());
        }
        let sizes = self
            .video_mids
            .iter()
            .map(|mid| VideoSize {
                mid: mid.clone(),
                width,
                height,
            })
            .collect();
        self.send(ClientMessage::VideoSizes { sizes }).await
    }

    async fn next(&mut self) -> anyhow::Result<Signal> {
        loop {
            let Some(frame) = self.ws.next().await else {
                anyhow::bail!("the server closed the connection")
            };
            let Message::Text(t) = frame? else { continue };
            match serde_json::from_str::<ServerMessage>(&t)? {
                ServerMessage::Joined { me, reactions, .. } => {
                    self.reactions = reactions;
                    return Ok(Signal::Joined(me.id));
                }
                ServerMessage::Answer { sdp, .. } => return Ok(Signal::PublishAnswer(sdp)),
                ServerMessage::Offer {
                    sdp,
                    offer_id,
                    renew,
                    ..
                } => {
                    return Ok(Signal::SubscribeOffer {
                        sdp,
                        offer_id: Some(offer_id),
                        renew,
                        feeds: HashMap::new(),
                    });
                }
                ServerMessage::Error { code, message, .. } => {
                    tracing::warn!(?code, "server refused: {message}");
                }
                _ => {}
            }
        }
    }

    async fn leave(mut self) {
        let _ = self.send(ClientMessage::Leave).await;
        let _ = self.ws.close(None).await;
    }
}

/// Janus's videoroom through its HTTP API: one session with a publisher
/// handle (which joins, publishes if asked, and hears of other publishers)
/// and a subscriber handle that subscribes to every other publisher's
/// streams, one renegotiation at a time. Events arrive by long poll.
pub struct JanusSignal {
    http: reqwest::Client,
    session_url: String,
    room: u64,
    publisher: u64,
    subscriber: u64,
    me: Option<u64>,
    events: mpsc::UnboundedReceiver<anyhow::Result<Value>>,
    /// Where requests sent from their own tasks report failure.
    errors: mpsc::UnboundedSender<anyhow::Result<Value>>,
    poller: tokio::task::JoinHandle<()>,
    /// Publishers heard of and not yet asked for.
    waiting: Vec<u64>,
    subscribed: HashSet<u64>,
    /// Whether the subscriber handle has joined (later feeds use `subscribe`).
    subscriber_joined: bool,
    /// A subscription request is being negotiated.
    in_flight: bool,
}

/// A Janus room number for a room name (Janus rooms are numbers by default).
pub fn janus_room(name: &str) -> u64 {
    // FNV-1a, folded into 31 bits so every Janus build takes it.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & 0x7fff_ffff).max(1)
}

impl JanusSignal {
    /// Creates a session at `api` (e.g. `http://10.0.0.1:8088/janus`), the
    /// room if it does not exist, and joins it.
    pub async fn join(api: &str, room: &str, name: &str) -> anyhow::Result<JanusSignal> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let api = api.trim_end_matches('/').to_owned();
        let session = janus_id(&post(&http, &api, json!({"janus": "create"})).await?)?;
        let session_url = format!("{api}/{session}");
        let attach = json!({"janus": "attach", "plugin": "janus.plugin.videoroom"});
        let publisher = janus_id(&post(&http, &session_url, attach.clone()).await?)?;
        let subscriber = janus_id(&post(&http, &session_url, attach).await?)?;
        let (tx, events) = mpsc::unbounded_channel();
        let poller =
            tokio::task::spawn_local(long_poll(http.clone(), session_url.clone(), tx.clone()));
        let mut janus = JanusSignal {
            http,
            session_url,
            room: janus_room(room),
            publisher,
            subscriber,
            me: None,
            events,
            errors: tx,
            poller,
            waiting: Vec::new(),
            subscribed: HashSet::new(),
            subscriber_joined: false,
            in_flight: false,
        };
        // Every participant may be first: create, and let a lost race pass.
        let created = janus
            .message(
                publisher,
                json!({
                    "request": "create", "room": janus.room, "publishers": 100,
                    "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0,
                    "transport_wide_cc_ext": true,
                }),
                None,
            )
            .await?;
        let data = &created["plugindata"]["data"];
        if data["error_code"].as_u64().is_some_and(|c| c != 427) {
            anyhow::bail!(
                "janus would not create room {}: {}",
                janus.room,
                data["error"]
            );
        }
        janus
            .message(
                publisher,
                json!({"request": "join", "ptype": "publisher", "room": janus.room, "display": name}),
                None,
            )
            .await?;
        Ok(janus)
    }

    async fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        post(&self.http, &format!("{}/{handle}", self.session_url), m).await
    }

    async fn publish(&mut self, sdp: String) -> anyhow::Result<()> {
        let handle = self.publisher;
        self.message(
            handle,
            json!({"request": "publish"}),
            Some(json!({"type": "offer", "sdp": sdp})),
        )
        .await?;
        // The offer carries its candidates; there is nothing to trickle.
        self.trickle_done(handle).await
    }

    async fn answer(&mut self, sdp: String) -> anyhow::Result<()> {
        let handle = self.subscriber;
        self.message(
            handle,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": sdp})),
        )
        .await?;
        self.trickle_done(handle).await?;
        self.in_flight = false;
        self.subscribe_waiting();
        Ok(())
    }

    async fn trickle_done(&mut self, handle: u64) -> anyhow::Result<()> {
        post(
            &self.http,
            &format!("{}/{handle}", self.session_url),
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await?;
        Ok(())
    }

    /// Notes publishers from a `joined` or `event` message.
    fn hear_of(&mut self, data: &Value) {
        for p in data["publishers"].as_array().into_iter().flatten() {
            if let Some(id) = p["id"].as_u64()
                && Some(id) != self.me
                && !self.subscribed.contains(&id)
                && !self.waiting.contains(&id)
            {
                self.waiting.push(id);
            }
        }
    }

    /// Asks for every publisher heard of, unless a negotiation is running.
    /// The request goes out from its own task: this runs inside `next`,
    /// which must stay cancel-safe (the caller selects on it), so nothing
    /// here may wait.
    fn subscribe_waiting(&mut self) {
        if self.in_flight || self.waiting.is_empty() {
            return;
        }
        let feeds: Vec<u64> = std::mem::take(&mut self.waiting);
        let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
        self.subscribed.extend(feeds);
        let body = if self.subscriber_joined {
            json!({"request": "subscribe", "streams": streams})
        } else {
            self.subscriber_joined = true;
            json!({"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams})
        };
        self.in_flight = true;
        let (http, url, errors) = (
            self.http.clone(),
            format!("{}/{}", self.session_url, self.subscriber),
            self.errors.clone(),
        );
        tokio::task::spawn_local(async move {
            if let Err(e) = post(&http, &url, json!({"janus": "message", "body": body})).await {
                let _ = errors.send(Err(e));
            }
        });
    }

    /// Cancel-safe (the caller selects on it): the only wait is for the
    /// next event.
    async fn next(&mut self) -> anyhow::Result<Signal> {
        loop {
            let Some(event) = self.events.recv().await else {
                anyhow::bail!("janus's event stream ended")
            };
            let event = event?;
            tracing::debug!(%event, "janus event");
            let sender = event["sender"].as_u64();
            let data = &event["plugindata"]["data"];
            let jsep_sdp = event["jsep"]["sdp"].as_str().map(str::to_owned);
            if let Some(code) = data["error_code"].as_u64() {
                tracing::warn!(code, "janus refused: {}", data["error"]);
                if sender == Some(self.subscriber) {
                    // No offer follows a refused subscription (say, a feed
                    // that left meanwhile): the next one may go.
                    self.in_flight = false;
                    self.subscribe_waiting();
                    continue;
                }
            }
            if sender == Some(self.publisher) {
                let joined = data["videoroom"] == "joined";
                if joined {
                    self.me = data["id"].as_u64();
                }
                self.hear_of(data);
                self.subscribe_waiting();
                if joined && let Some(me) = self.me {
                    return Ok(Signal::Joined(me.to_string()));
                }
                if let Some(sdp) = jsep_sdp {
                    return Ok(Signal::PublishAnswer(sdp));
                }
            } else if sender == Some(self.subscriber)
                && let Some(sdp) = jsep_sdp
            {
                let feeds = data["streams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| {
                        let mid = s["mid"].as_str()?;
                        let feed = s["feed_id"].as_u64()?;
                        Some((mid.to_owned(), feed.to_string()))
                    })
                    .collect();
                return Ok(Signal::SubscribeOffer {
                    sdp,
                    offer_id: None,
                    renew: false,
                    feeds,
                });
            }
        }
    }

    async fn leave(self) {
        self.poller.abort();
        let _ = post(&self.http, &self.session_url, json!({"janus": "destroy"})).await;
    }
}

impl Drop for JanusSignal {
    /// A participant that failed stops polling, so Janus lets its session
    /// expire instead of keeping it alive.
    fn drop(&mut self) {
        self.poller.abort();
    }
}

async fn post(http: &reqwest::Client, url: &str, mut body: Value) -> anyhow::Result<Value> {
    body["transaction"] = json!(format!("{:x}", rand::random::<u64>()));
    let reply: Value = http.post(url).json(&body).send().await?.json().await?;
    if reply["janus"] == "error" {
        anyhow::bail!("janus at {url}: {}", reply["error"]);
    }
    Ok(reply)
}

fn janus_id(reply: &Value) -> anyhow::Result<u64> {
    reply["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("janus reply without an id: {reply}"))
}

/// Long-polls the session's events (which also keeps the session alive).
async fn long_poll(
    http: reqwest::Client,
    session_url: String,
    tx: mpsc::UnboundedSender<anyhow::Result<Value>>,
) {
    let url = format!("{session_url}?maxev=10");
    while !tx.is_closed() {
        let reply = async { anyhow::Ok(http.get(&url).send().await?.json::<Value>().await?) }.await;
        match reply {
            Ok(Value::Array(events)) => {
                for e in events {
                    if e["janus"] != "keepalive" && tx.send(Ok(e)).is_err() {
                        return;
                    }
                }
            }
            Ok(e) => {
                if e["janus"] != "keepalive" && tx.send(Ok(e)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
