//! The SFU alone on a virtual network: in-memory peers (`parley-peer`)
//! whose SDP goes straight to the SFU's API, no signaling server between.

#![allow(dead_code)] // each test file uses its own part of the kit

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_peer::{Links, Peer, TICK};
use parley_sfu::{ParticipantId, Protocol, RoomId, Sfu, SfuEvent, TransportConfig};

/// The SFU's one media address.
pub const SERVER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    10000,
);

/// One SFU, its peers and the links from the SFU to each peer address.
pub struct Net {
    pub sfu: Sfu,
    pub now: Instant,
    pub peers: Vec<Peer>,
    /// Each peer's participant id, by index.
    pub ids: Vec<ParticipantId>,
    pub links: Links,
    /// Events other than subscribe offers, in order, for the tests to read.
    pub events: Vec<SfuEvent>,
}

impl Net {
    pub fn new() -> Self {
        Net {
            sfu: Sfu::new(TransportConfig {
                host_candidates: vec![SERVER],
                tcp_candidates: Vec::new(),
            }),
            now: Instant::now(),
            peers: Vec::new(),
            ids: Vec::new(),
            links: Links::default(),
            events: Vec::new(),
        }
    }

    /// Adds a peer to room `room`; its index.
    pub fn join(&mut self, room: u64) -> usize {
        let n = self.peers.len();
        let id = ParticipantId::new(n as u64 + 1);
        let mut peer = Peer::new(n as u8 + 1, self.now);
        peer.id = id.to_string();
        self.links.add(&peer);
        self.peers.push(peer);
        self.ids.push(id);
        self.sfu.add_participant(self.now, id, RoomId::new(room));
        self.settle();
        n
    }

    /// Peer `i` publishes one audio and one video track.
    pub fn publish(&mut self, i: usize) {
        let sdp = self.peers[i].publish_offer();
        let answer = self
            .sfu
            .handle_publish_offer(self.now, self.ids[i], &sdp)
            .expect("the SFU answers a publish offer");
        self.peers[i].accept_publish_answer(&answer);
        self.settle();
    }

    /// Peer `i` leaves.
    pub fn leave(&mut self, i: usize) {
        self.sfu.remove_participant(self.now, self.ids[i]);
        self.settle();
    }

    /// Answers the SFU's subscribe offers and keeps its other events.
    fn settle(&mut self) {
        while let Some(event) = self.sfu.poll_event() {
            let SfuEvent::SubscribeOffer {
                participant,
                offer_id,
                renew,
                sdp,
            } = event
            else {
                self.events.push(event);
                continue;
            };
            let Some(i) = self.ids.iter().position(|id| *id == participant) else {
                continue;
            };
            let answer = self.peers[i].answer_subscribe(self.now, renew, &sdp);
            self.sfu
                .handle_subscribe_answer(self.now, participant, Some(offer_id), &answer)
                .expect("the SFU takes the answer to its own offer");
        }
    }

    /// Runs the network for `duration`, publishers sending 50 audio and 30
    /// video frames per second.
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            let tick_end = self.now + TICK;
            // The SFU's timers fire when they are due, not at the next tick.
            for _ in 0..1000 {
                match self.sfu.poll_timeout() {
                    Some(t) if t > self.now && t < tick_end => {
                        self.now = t;
                        self.deliver_arrived(t);
                        self.sfu.handle_timeout(t);
                        self.pump();
                    }
                    _ => break,
                }
            }
            self.now = tick_end;
            let now = self.now;
            self.deliver_arrived(now);
            if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
                self.sfu.handle_timeout(now);
            }
            for p in &mut self.peers {
                p.run_timers(now);
                p.write_media(now);
            }
            self.pump();
        }
    }

    /// Moves datagrams until nobody has anything to send.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.sfu.poll_transmit() {
                moved = true;
                if let Some(link) = self.links.get_mut(&t.destination) {
                    link.push(self.now, t.source, t.destination, t.contents.to_vec());
                }
            }
            let now = self.now;
            let mut outgoing = Vec::new();
            for p in &mut self.peers {
                p.drain(now, &mut outgoing);
            }
            for (source, destination, data) in outgoing {
                moved = true;
                assert_eq!(destination, SERVER);
                self.sfu
                    .handle_receive(now, Protocol::Udp, source, destination, &data);
            }
            self.settle();
            if !moved {
                break;
            }
        }
    }

    /// Hands the peers what their links let through by `now`, each packet
    /// at the moment it arrived.
    fn deliver_arrived(&mut self, now: Instant) {
        for (at, (source, destination, data)) in self.links.arrived(now) {
            if let Some(p) = self.peers.iter_mut().find(|p| p.owns(destination)) {
                p.receive(at, source, destination, &data);
            }
        }
    }
}
