//! A virtual world for scenario tests through the hub: in-memory peers
//! (`parley-peer`) speaking the Parley protocol, a virtual network and a
//! virtual clock.

#![allow(clippy::unwrap_used, dead_code)] // test harness code: a panic is a failed test

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_peer::is_video_rtp;
pub use parley_peer::{Links, Peer, TICK, layer_frame_size};
use parley_signal::{ConnId, Hub, HubConfig, HubOutput, PcName, ServerMessage};
use str0m::format::Codec;
use str0m::net::Protocol;

pub const SERVER: &str = "10.0.0.1:10000";

/// A test client: a peer and its signaling connection.
pub struct Client {
    pub peer: Peer,
    pub conn: ConnId,
    pub subscribe_offers: u32,
    /// When false, subscribe offers are kept in `held` instead of answered.
    pub answer_offers: bool,
    pub held: Vec<(u64, bool, String)>,
    pub errors: Vec<parley_signal::ErrorCode>,
    /// Codecs the server asked this client to send its video in.
    pub codec_requests: Vec<String>,
    /// Whether it switches when asked (a browser does; some clients cannot).
    pub follows_codec_requests: bool,
}

impl Client {
    pub fn new(n: u8, now: Instant) -> Self {
        Client {
            peer: Peer::new(n, now),
            conn: ConnId(u64::from(n)),
            subscribe_offers: 0,
            answer_offers: true,
            held: Vec::new(),
            errors: Vec::new(),
            codec_requests: Vec::new(),
            follows_codec_requests: true,
        }
    }
}

impl Deref for Client {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
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
    pub links: Links,
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
            links: Links::default(),
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
        self.links.add(&client);
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
        let sdp = self.clients[i].publish_offer();
        self.send(
            i,
            serde_json::json!({"type": "offer", "pc": "publish", "sdp": sdp}),
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
                ServerMessage::Answer { sdp, .. } => c.accept_publish_answer(&sdp),
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
                c.run_timers(now);
                c.write_media(now);
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
                c.drain(now, &mut outgoing);
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

    /// Hands one datagram from the server to the client it is addressed to.
    fn deliver(&mut self, at: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.owns(destination)) {
            c.receive(at, source, destination, data);
        }
    }

    /// Delivers what the bottlenecks let through by `now`, each packet at
    /// the moment it arrives.
    fn deliver_queued(&mut self, now: Instant) {
        for (at, (source, destination, data)) in self.links.arrived(now) {
            self.deliver(at, source, destination, &data);
        }
    }
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
    let answer = c.answer_subscribe(now, renew, sdp);
    serde_json::json!({
        "type": "answer", "pc": "subscribe", "offer_id": offer_id, "sdp": answer
    })
}

/// Publishes client `i`'s audio, and video in `codec` only (as a browser
/// may offer).
pub fn publish_only(w: &mut World, i: usize, codec: Codec) {
    let now = w.now;
    w.clients[i].offer_only(now, codec);
    w.publish(i);
}
