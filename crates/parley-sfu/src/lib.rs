//! Parley's selective forwarding unit, sans-IO.
//!
//! [`Sfu`] owns one str0m [`Rtc`](str0m::Rtc) per peer connection and forwards
//! media between the participants of a room. It never touches a socket or a
//! clock: the driver feeds datagrams with [`Sfu::handle_receive`] and time with
//! [`Sfu::handle_timeout`], and drains [`Sfu::poll_transmit`],
//! [`Sfu::poll_event`] and [`Sfu::poll_timeout`].
//!
//! Every participant has two connections (see [`Pc`]): *publish*, where the
//! client offers its own media, and *subscribe*, where the SFU offers everyone
//! else's. All connections of all participants share one UDP socket (and one
//! ICE-TCP port, whose RFC 4571 frames the driver hands over like datagrams);
//! incoming datagrams are routed with [`Rtc::accepts`](str0m::Rtc::accepts).

mod allocate;
mod codecs;
mod engine;
mod error;
mod estimate;
mod forward;
mod ids;
mod participant;
mod sdp;
mod shards;
mod speaker;
mod track;
mod transport;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::change::SdpOffer;
use str0m::media::Rid;
use str0m::net::{DatagramRecv, Receive};
use str0m::{Candidate, Input};

pub use codecs::codec_name;
pub use error::SfuError;
pub use ids::{BadParticipantId, ParticipantId, Pc, RoomId, TrackKey};
pub use participant::PublishGate;
pub use shards::{Shard, Shards};
pub use str0m::net::{Protocol, Transmit};
pub use transport::{DUE_NOW, MAX_DUE_NOW, TransportConfig, TransportState};

use participant::{Participant, SubState};
use transport::Transport;

/// A subscribe offer not answered within this time is given up: the
/// subscribe connection is renewed and offered afresh, so one stuck
/// negotiation cannot freeze a participant's view of the room for good.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(15);

/// What the SFU tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// Send this subscribe offer to the participant; answer with
    /// [`Sfu::handle_subscribe_answer`].
    SubscribeOffer {
        /// Who the offer is for.
        participant: ParticipantId,
        /// Numbers the participant's offers; the answer names it.
        offer_id: u64,
        /// The SFU replaced the subscribe connection: the client must replace
        /// its own peer connection too before applying this offer.
        renew: bool,
        /// The SDP.
        sdp: String,
    },
    /// The room's active speaker changed (from RFC 6464 audio levels).
    ActiveSpeaker {
        /// Which room.
        room: RoomId,
        /// Who speaks now.
        participant: ParticipantId,
    },
    /// Ask the publisher to send its track `mid` in `codec` (put it first
    /// in the track's codec preferences and offer again): a subscriber
    /// cannot decode the codec it sends, and every subscriber of the track
    /// can decode this one.
    PublishCodec {
        /// The publisher.
        participant: ParticipantId,
        /// The track's mid on its publish connection.
        mid: String,
        /// The codec's name, as [`codec_name`] writes it.
        codec: &'static str,
    },
    /// A subscriber can decode none of the codecs a publisher's video is
    /// sent or could be sent in: it gets no video from that publisher.
    NoCommonCodec {
        /// The subscriber.
        participant: ParticipantId,
        /// The publisher.
        publisher: ParticipantId,
        /// The codec the publisher sends.
        codec: &'static str,
        /// The codecs the subscriber's answer accepted for that video.
        accepted: Vec<&'static str>,
    },
    /// A connection changed state.
    TransportState {
        /// Whose connection.
        participant: ParticipantId,
        /// Which one.
        pc: Pc,
        /// The new state.
        state: TransportState,
    },
}

/// Counters for what the SFU refused or could not place.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SfuStats {
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub malformed_datagrams: u64,
    /// Datagrams no connection recognised (unknown peer, or one that left).
    pub unrouted_datagrams: u64,
    /// Frames forwarded to subscribers (one per subscriber).
    pub frames_forwarded: u64,
}

/// The media router. See the crate documentation.
pub struct Sfu {
    config: TransportConfig,
    participants: HashMap<ParticipantId, Participant>,
    rooms: HashMap<RoomId, Vec<ParticipantId>>,
    /// Who speaks, per room.
    speakers: HashMap<RoomId, speaker::SpeakerDetector>,
    /// Last connection seen for each remote address (UDP or ICE-TCP); checked
    /// before a full scan.
    routes: HashMap<(Protocol, SocketAddr), (ParticipantId, Pc)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    /// Connections with undrained output.
    dirty: Vec<(ParticipantId, Pc)>,
    /// Participants whose subscribe connection may need a new offer.
    to_negotiate: Vec<ParticipantId>,
    keyframe_requests: Vec<(TrackKey, Option<Rid>)>,
    /// Subscribers whose video layers are to be decided again.
    to_allocate: Vec<ParticipantId>,
    /// Video tracks whose subscribers' codecs are to be checked against
    /// what the publisher sends (see `codecs.rs`).
    to_check_codecs: Vec<TrackKey>,
    /// Last-N: videos forwarded to each subscriber, 0 for all.
    last_n: usize,
    scratch_events: Vec<Event>,
    stats: SfuStats,
}

impl Sfu {
    /// A new SFU whose connections advertise `config.host_candidates`.
    pub fn new(config: TransportConfig) -> Self {
        Sfu {
            config,
            participants: HashMap::new(),
            rooms: HashMap::new(),
            speakers: HashMap::new(),
            routes: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            to_negotiate: Vec::new(),
            keyframe_requests: Vec::new(),
            to_allocate: Vec::new(),
            to_check_codecs: Vec::new(),
            last_n: 0,
            scratch_events: Vec::new(),
            stats: SfuStats::default(),
        }
    }

    /// Changes the settings of connections made from now on; existing
    /// connections keep the addresses they advertised.
    pub fn set_transport_config(&mut self, config: TransportConfig) {
        self.config = config;
    }

    /// The client's tile sizes for the videos it receives: each entry names
    /// the m-line (mid) of the subscribe connection and the tile's width and
    /// height in pixels, zero for a tile not shown. The SFU sends no layer
    /// larger than the tile needs, and nothing to a hidden one. Unknown mids
    /// are ignored (the track may just have ended).
    pub fn set_video_sizes(&mut self, now: Instant, id: ParticipantId, sizes: &[(&str, u32, u32)]) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        for (mid, width, height) in sizes {
            let found = p.subscriptions.iter_mut().find(|s| match s.state {
                SubState::Open(m) => &*m == *mid,
                _ => false,
            });
            if let Some(sub) = found {
                sub.requested = Some((*width, *height));
            }
        }
        self.to_allocate.push(id);
        self.settle(now);
    }

    /// Counters since start.
    pub fn stats(&self) -> SfuStats {
        self.stats
    }

    /// How many participants the SFU serves.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// The state of one of a participant's connections.
    pub fn transport_state(&self, id: ParticipantId, pc: Pc) -> Option<TransportState> {
        let p = self.participants.get(&id)?;
        Some(match pc {
            Pc::Publish => p.publish.state,
            Pc::Subscribe => p.subscribe.state,
        })
    }

    /// Adds a participant to `room`. It will receive every track already
    /// published there through its subscribe connection.
    pub fn add_participant(&mut self, now: Instant, id: ParticipantId, room: RoomId) {
        if self.participants.contains_key(&id) {
            return;
        }
        let mut participant = Participant::new(room, now, &self.config);
        let members = self.rooms.entry(room).or_default();
        for other in members.iter() {
            if let Some(p) = self.participants.get(other) {
                for track in &p.published {
                    let key = TrackKey {
                        publisher: *other,
                        mid: track.mid,
                    };
                    participant.subscribe_to(key, track.kind);
                }
            }
        }
        members.push(id);
        self.participants.insert(id, participant);
        self.mark_dirty(id, Pc::Publish);
        self.mark_dirty(id, Pc::Subscribe);
        self.to_negotiate.push(id);
        self.settle(now);
    }

    /// Removes a participant; the others' subscriptions to its tracks are
    /// stopped through renegotiation.
    pub fn remove_participant(&mut self, now: Instant, id: ParticipantId) {
        let Some(mut participant) = self.participants.remove(&id) else {
            return;
        };
        // Say goodbye properly (RTCP BYE, DTLS close_notify) so browsers end the
        // tracks at once instead of waiting for a timeout.
        let mut discard = Vec::new();
        for transport in [&mut participant.publish, &mut participant.subscribe] {
            transport.guard(|rtc| rtc.close());
            transport.drain(now, &mut self.transmits, &mut discard);
            discard.clear();
        }
        self.routes.retain(|_, (p, _)| *p != id);
        if let Some(speakers) = self.speakers.get_mut(&participant.room) {
            speakers.remove(id);
        }
        if let Some(members) = self.rooms.get_mut(&participant.room) {
            members.retain(|m| *m != id);
            if members.is_empty() {
                self.rooms.remove(&participant.room);
                self.speakers.remove(&participant.room);
            } else {
                self.to_negotiate.extend(members.iter().copied());
            }
        }
        self.settle(now);
    }

    /// Sets what of `id`'s media is passed on to the others. Video that opens
    /// again restarts from a keyframe (the forwarders ask for one).
    pub fn set_publish_gate(&mut self, now: Instant, id: ParticipantId, gate: PublishGate) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.gate == gate {
            return;
        }
        let reopened: Vec<TrackKey> = p
            .published
            .iter()
            .filter(|t| !p.gate.passes(t.kind, t.mid) && gate.passes(t.kind, t.mid))
            .map(|t| TrackKey {
                publisher: id,
                mid: t.mid,
            })
            .collect();
        p.gate = gate;
        for key in reopened {
            for other in self.participants.values_mut() {
                for sub in other.subscriptions.iter_mut().filter(|s| s.source == key) {
                    sub.forwarder.restart();
                }
            }
        }
        self.settle(now);
    }

    /// Applies the client's offer on its publish connection and returns the answer.
    pub fn handle_publish_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let bad = |reason: String| SfuError::BadSdp {
            pc: Pc::Publish,
            reason,
        };
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| bad(e.to_string()))?;
        sdp::check_payload_types(sdp).map_err(bad)?;
        let participant = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        if participant.publish.state == TransportState::Failed {
            // A fresh start for a connection that died (e.g. after an offer
            // without a fingerprint): its tracks are gone with it.
            participant.publish = Transport::new(Pc::Publish, now, &self.config);
            participant.published.clear();
            participant.streams.clear();
            self.routes
                .retain(|_, (p, pc)| !(*p == id && *pc == Pc::Publish));
            let room = participant.room;
            self.negotiate_room(room);
        }
        let Some(participant) = self.participants.get_mut(&id) else {
            return Err(SfuError::UnknownParticipant);
        };
        let result = participant
            .publish
            .guard(|rtc| rtc.sdp_api().accept_offer(offer));
        self.mark_dirty(id, Pc::Publish);
        let answer = match result {
            Some(Ok(answer)) => {
                let answer = sdp::finish(&answer.to_sdp_string(), &sdp::Codecs::new());
                Ok(sdp::in_offer_order(&answer, sdp))
            }
            Some(Err(e)) => Err(bad(e.to_string())),
            None => Err(bad("the publish connection has failed".into())),
        };
        self.settle(now);
        answer
    }

    /// Applies the client's answer to the outstanding subscribe offer. When
    /// `offer_id` is given it must name that offer. An answer that parses but
    /// cannot be applied renews the subscribe connection (the next offer says so).
    pub fn handle_subscribe_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        offer_id: Option<u64>,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let participant = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let result = participant.accept_answer(offer_id, sdp);
        if result.is_ok() {
            // What this subscriber can decode is known now.
            self.to_check_codecs.extend(
                participant
                    .subscriptions
                    .iter()
                    .filter(|s| s.accepted.is_some())
                    .map(|s| s.source),
            );
        }
        if matches!(result, Err(SfuError::BadSdp { .. })) && participant.pending_offer.is_none() {
            participant.renew_subscribe(now, &self.config);
            self.routes
                .retain(|_, (p, pc)| !(*p == id && *pc == Pc::Subscribe));
        }
        self.mark_dirty(id, Pc::Subscribe);
        // Changes queued while the offer was out go into the next one, and
        // the videos this answer opened get their layers.
        self.to_negotiate.push(id);
        self.to_allocate.push(id);
        self.settle(now);
        result
    }

    /// Adds a trickled ICE candidate. An empty string (end of candidates) and
    /// mDNS host names (which only the browser can resolve) are accepted and ignored.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        id: ParticipantId,
        pc: Pc,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let participant = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let line = candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        let parsed = Candidate::from_sdp_string(line);
        let candidate = match parsed {
            Ok(c) => c,
            Err(_) if line.split_whitespace().any(|w| w.ends_with(".local")) => return Ok(()),
            Err(e) => return Err(SfuError::BadCandidate(e.to_string())),
        };
        participant
            .transport_mut(pc)
            .guard(|rtc| rtc.add_remote_candidate(candidate));
        self.mark_dirty(id, pc);
        self.settle(now);
        Ok(())
    }

    /// Feeds one datagram received on the media socket (`Protocol::Udp`) or
    /// one RFC 4571 frame from an ICE-TCP connection (`Protocol::Tcp`, with the
    /// connection's remote address as `source`). Returns whether a connection took it.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(input) = receive_input(now, proto, source, destination, data) else {
            self.stats.malformed_datagrams += 1;
            return false;
        };
        let Some((id, pc)) = self.route((proto, source), &input) else {
            self.stats.unrouted_datagrams += 1;
            tracing::trace!(%source, "datagram for no connection");
            return false;
        };
        if let Some(p) = self.participants.get_mut(&id) {
            p.transport_mut(pc).handle_input(input);
        }
        self.mark_dirty(id, pc);
        self.settle(now);
        true
    }

    /// Whose connection takes the datagram, without handing it over (see
    /// [`Shards`], which must find the SFU a datagram belongs to before a
    /// worker processes it). Routes are remembered as by [`Sfu::handle_receive`].
    pub fn takes(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<ParticipantId> {
        let input = receive_input(now, proto, source, destination, data)?;
        self.route((proto, source), &input).map(|(id, _)| id)
    }

    fn route(
        &mut self,
        source: (Protocol, SocketAddr),
        input: &Input,
    ) -> Option<(ParticipantId, Pc)> {
        if let Some(&(id, pc)) = self.routes.get(&source)
            && let Some(p) = self.participants.get_mut(&id)
            && p.transport_mut(pc).accepts(input)
        {
            return Some((id, pc));
        }
        let found = self.participants.iter_mut().find_map(|(id, p)| {
            [Pc::Publish, Pc::Subscribe]
                .into_iter()
                .find(|pc| p.transport_mut(*pc).accepts(input))
                .map(|pc| (*id, pc))
        })?;
        self.routes.insert(source, found);
        Some(found)
    }

    /// Advances time: runs every connection whose timeout has come, and
    /// renews subscribe connections whose offer went unanswered for [`OFFER_TIMEOUT`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut renewed: Vec<ParticipantId> = Vec::new();
        for (id, p) in &mut self.participants {
            for pc in [Pc::Publish, Pc::Subscribe] {
                let t = p.transport_mut(pc);
                if t.next_timeout <= now {
                    t.handle_input(Input::Timeout(now));
                    due.push((*id, pc));
                }
            }
            if p.next_allocation <= now {
                self.to_allocate.push(*id);
            }
            for t in &p.published {
                if t.codec_deadline().is_some_and(|d| d <= now) {
                    self.to_check_codecs.push(TrackKey {
                        publisher: *id,
                        mid: t.mid,
                    });
                }
            }
            if p.pending_offer
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.sent_at) >= OFFER_TIMEOUT)
            {
                tracing::info!(participant = %id, "subscribe offer unanswered; renewing the connection");
                p.renew_subscribe(now, &self.config);
                renewed.push(*id);
            }
        }
        for id in renewed {
            self.subscribe_renewed(id);
        }
        for (id, pc) in due {
            self.mark_dirty(id, pc);
        }
        self.settle(now);
    }

    /// Replaces a participant's subscribe connection with a new one and
    /// offers it (`renew: true`), e.g. after its client reconnected and the
    /// offers sent meanwhile were lost. Nothing happens for an unknown participant.
    pub fn renew_subscribe(&mut self, now: Instant, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        p.renew_subscribe(now, &self.config);
        self.subscribe_renewed(id);
        self.settle(now);
    }

    /// After a renewal: the old connection's routes go, an offer is due.
    fn subscribe_renewed(&mut self, id: ParticipantId) {
        self.routes
            .retain(|_, (p, pc)| !(*p == id && *pc == Pc::Subscribe));
        self.to_negotiate.push(id);
        self.mark_dirty(id, Pc::Subscribe);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// How many datagrams wait for [`Sfu::poll_transmit`].
    pub fn transmits_waiting(&self) -> usize {
        self.transmits.len()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    /// Whether events wait for [`Sfu::poll_event`].
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// When [`Sfu::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.participants
            .values()
            .flat_map(|p| {
                let offer = p.pending_offer.as_ref().map(|o| o.sent_at + OFFER_TIMEOUT);
                let codec = p.published.iter().filter_map(|t| t.codec_deadline()).min();
                [
                    Some(p.publish.next_timeout),
                    Some(p.subscribe.next_timeout),
                    Some(p.next_allocation),
                    offer,
                    codec,
                ]
            })
            .flatten()
            .min()
    }
}

/// A received datagram as str0m input; none if it is not STUN, DTLS, RTP or RTCP.
fn receive_input<'a>(
    now: Instant,
    proto: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    data: &'a [u8],
) -> Option<Input<'a>> {
    let contents = DatagramRecv::try_from(data).ok()?;
    Some(Input::Receive(
        now,
        Receive {
            proto,
            source,
            destination,
            contents,
        },
    ))
}
