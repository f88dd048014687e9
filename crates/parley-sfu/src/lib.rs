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
mod allocator;
mod codec;
mod codec_fit;
mod deliver;
mod engine;
mod error;
mod estimate;
mod events;
mod forward;
mod ids;
mod media;
mod negotiated_codecs;
mod participant;
mod rooms;
mod routes;
mod sdp;
mod shards;
mod speaker;
mod track;
mod transport;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use str0m::Candidate;
use str0m::Event;
use str0m::change::SdpOffer;
use str0m::media::Rid;

pub use error::SfuError;
pub use events::{SfuEvent, SfuStats};
pub use ids::{BadParticipantId, ParticipantId, Pc, RoomId, TrackKey};
pub use negotiated_codecs::codec_name;
pub use participant::{OFFER_TIMEOUT, PublishGate};
pub use shards::{Shard, Shards};
pub use str0m::net::{Protocol, Transmit};
pub use transport::{DUE_NOW, MAX_DUE_NOW, TransportConfig, TransportState};

use allocator::Allocator;
use codec_fit::CodecFit;
use participant::{Dirty, Participant};
use rooms::Rooms;
use routes::Routes;

/// The media router. See the crate documentation.
pub struct Sfu {
    config: TransportConfig,
    participants: HashMap<ParticipantId, Participant>,
    rooms: Rooms,
    /// Which connection each remote address talks to.
    routes: Routes,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    /// Connections with undrained output.
    dirty: Dirty,
    /// Participants whose subscribe connection may need a new offer.
    to_negotiate: Vec<ParticipantId>,
    keyframe_requests: Vec<(TrackKey, Option<Rid>)>,
    /// Subscribers whose video layers are to be decided again.
    allocator: Allocator,
    /// Video tracks whose codecs are to be checked.
    codec_fit: CodecFit,
    scratch_events: Vec<Event>,
    stats: SfuStats,
}

impl Sfu {
    /// A new SFU whose connections advertise `config.host_candidates`.
    pub fn new(config: TransportConfig) -> Self {
        Sfu {
            config,
            participants: HashMap::new(),
            rooms: Rooms::default(),
            routes: Routes::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Dirty::default(),
            to_negotiate: Vec::new(),
            keyframe_requests: Vec::new(),
            allocator: Allocator::default(),
            codec_fit: CodecFit::default(),
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
        p.set_tile_sizes(sizes);
        self.allocator.queue(id);
        self.settle(now);
    }

    /// Last-N: each subscriber gets the video of only the `n` most recent
    /// speakers (the active speaker first); 0 forwards everyone's. Applies
    /// at once.
    pub fn set_last_n(&mut self, n: usize) {
        self.allocator
            .set_last_n(n, self.participants.keys().copied());
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
        for other in self.rooms.members(room) {
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
        self.rooms.join(room, id);
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
        participant.close(now, &mut self.transmits);
        self.routes.forget(id);
        if let Some(members) = self.rooms.leave(participant.room, id) {
            self.to_negotiate.extend(members.iter().copied());
        }
        self.settle(now);
    }

    /// Sets what of `id`'s media is passed on to the others. Video that opens
    /// again restarts from a keyframe (the forwarders ask for one).
    pub fn set_publish_gate(&mut self, now: Instant, id: ParticipantId, gate: PublishGate) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(reopened) = p.set_gate(id, gate) else {
            return;
        };
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
            participant.renew_publish(now, &self.config);
            self.routes.forget_connection(id, Pc::Publish);
            let room = participant.room;
            self.negotiate_room(room);
        }
        let Some(participant) = self.participants.get_mut(&id) else {
            return Err(SfuError::UnknownParticipant);
        };
        let answer = participant.answer_publish(offer, sdp);
        self.mark_dirty(id, Pc::Publish);
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
            self.codec_fit.queue_all(
                participant
                    .subscriptions
                    .iter()
                    .filter(|s| s.accepted.is_some())
                    .map(|s| s.source),
            );
        }
        if matches!(result, Err(SfuError::BadSdp { .. })) && participant.pending_offer.is_none() {
            participant.renew_subscribe(now, &self.config);
            self.routes.forget_connection(id, Pc::Subscribe);
        }
        self.mark_dirty(id, Pc::Subscribe);
        // Changes queued while the offer was out go into the next one, and
        // the videos this answer opened get their layers.
        self.to_negotiate.push(id);
        self.allocator.queue(id);
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
        let Some(input) = routes::receive_input(now, proto, source, destination, data) else {
            self.stats.malformed_datagrams += 1;
            return false;
        };
        let Some((id, pc)) = self
            .routes
            .find(&mut self.participants, (proto, source), &input)
        else {
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
        let input = routes::receive_input(now, proto, source, destination, data)?;
        self.routes
            .find(&mut self.participants, (proto, source), &input)
            .map(|(id, _)| id)
    }

    /// Advances time: runs every connection whose timeout has come, and
    /// renews subscribe connections whose offer went unanswered for [`OFFER_TIMEOUT`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut renewed: Vec<ParticipantId> = Vec::new();
        for (id, p) in &mut self.participants {
            due.extend(p.run_timers(now).map(|pc| (*id, pc)));
            if p.next_allocation <= now {
                self.allocator.queue(*id);
            }
            self.codec_fit
                .queue_all(p.codec_deadlines(now).map(|mid| TrackKey {
                    publisher: *id,
                    mid,
                }));
            if p.offer_expired(now) {
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
        self.routes.forget_connection(id, Pc::Subscribe);
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
            .filter_map(Participant::next_timeout)
            .min()
    }
}
