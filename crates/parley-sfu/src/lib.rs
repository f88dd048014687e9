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
//! else's. All connections of all participants share one UDP socket; incoming
//! datagrams are routed with [`Rtc::accepts`](str0m::Rtc::accepts).

mod error;
mod forward;
mod ids;
mod participant;
mod track;
mod transport;

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::change::SdpOffer;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Rid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Input};

pub use error::SfuError;
pub use ids::{BadParticipantId, ParticipantId, Pc, RoomId, TrackKey};
pub use str0m::net::Transmit;
pub use transport::{TransportConfig, TransportState};

use forward::{Verdict, choose_layer};
use participant::{Participant, SubState};
use track::PublishedTrack;
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
    /// Last connection seen for each remote address; checked before a full scan.
    routes: HashMap<SocketAddr, (ParticipantId, Pc)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    /// Connections with undrained output.
    dirty: Vec<(ParticipantId, Pc)>,
    /// Participants whose subscribe connection may need a new offer.
    to_negotiate: Vec<ParticipantId>,
    keyframe_requests: Vec<(TrackKey, Option<Rid>)>,
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
            routes: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            to_negotiate: Vec::new(),
            keyframe_requests: Vec::new(),
            scratch_events: Vec::new(),
            stats: SfuStats::default(),
        }
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
        if let Some(members) = self.rooms.get_mut(&participant.room) {
            members.retain(|m| *m != id);
            if members.is_empty() {
                self.rooms.remove(&participant.room);
            } else {
                self.to_negotiate.extend(members.iter().copied());
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
        let participant = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        if participant.publish.state == TransportState::Failed {
            // A fresh start for a connection that died (e.g. after an offer
            // without a fingerprint): its tracks are gone with it.
            participant.publish = Transport::new(Pc::Publish, now, &self.config);
            participant.published.clear();
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
            Some(Ok(answer)) => Ok(answer.to_sdp_string()),
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
        if matches!(result, Err(SfuError::BadSdp { .. })) && participant.pending_offer.is_none() {
            participant.renew_subscribe(now, &self.config);
            self.routes
                .retain(|_, (p, pc)| !(*p == id && *pc == Pc::Subscribe));
        }
        self.mark_dirty(id, Pc::Subscribe);
        // Changes queued while the offer was out go into the next one.
        self.to_negotiate.push(id);
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

    /// Feeds one datagram received on the media socket. Returns whether a
    /// connection took it.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.malformed_datagrams += 1;
            return false;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let Some((id, pc)) = self.route(source, &input) else {
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

    fn route(&mut self, source: SocketAddr, input: &Input) -> Option<(ParticipantId, Pc)> {
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
            self.routes
                .retain(|_, (p, pc)| !(*p == id && *pc == Pc::Subscribe));
            self.to_negotiate.push(id);
            due.push((id, Pc::Subscribe));
        }
        for (id, pc) in due {
            self.mark_dirty(id, pc);
        }
        self.settle(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.participants
            .values()
            .flat_map(|p| {
                let offer = p.pending_offer.as_ref().map(|o| o.sent_at + OFFER_TIMEOUT);
                [
                    Some(p.publish.next_timeout),
                    Some(p.subscribe.next_timeout),
                    offer,
                ]
            })
            .flatten()
            .min()
    }

    fn mark_dirty(&mut self, id: ParticipantId, pc: Pc) {
        if let Some(p) = self.participants.get_mut(&id) {
            p.transport_mut(pc).dirty = true;
            self.dirty.push((id, pc));
        }
    }

    fn negotiate_room(&mut self, room: RoomId) {
        if let Some(members) = self.rooms.get(&room) {
            self.to_negotiate.extend(members.iter().copied());
        }
    }

    /// Runs until no connection has undrained output, no keyframe request is
    /// queued and every subscribe connection that needed an offer has one out.
    fn settle(&mut self, now: Instant) {
        loop {
            while let Some((id, pc)) = self.dirty.pop() {
                self.drive(now, id, pc);
            }
            if !self.keyframe_requests.is_empty() {
                self.send_keyframe_requests(now);
                continue;
            }
            if !self.to_negotiate.is_empty() {
                self.negotiate(now);
            }
            if self.dirty.is_empty() && self.keyframe_requests.is_empty() {
                break;
            }
        }
    }

    /// Drains one connection and acts on its events.
    fn drive(&mut self, now: Instant, id: ParticipantId, pc: Pc) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let transport = p.transport_mut(pc);
        if !transport.dirty {
            return;
        }
        let mut events = mem::take(&mut self.scratch_events);
        let change = transport.drain(now, &mut self.transmits, &mut events);
        if let Some(state) = change {
            if pc == Pc::Subscribe && state == TransportState::Connected {
                // Anything written before the connection was up was dropped:
                // every forwarded video restarts from a keyframe.
                for sub in &mut p.subscriptions {
                    sub.forwarder.restart();
                }
            }
            self.events.push_back(SfuEvent::TransportState {
                participant: id,
                pc,
                state,
            });
        }
        for event in events.drain(..) {
            self.handle_event(now, id, pc, event);
        }
        self.scratch_events = events;
    }

    fn handle_event(&mut self, now: Instant, id: ParticipantId, pc: Pc, event: Event) {
        match (pc, event) {
            (Pc::Publish, Event::MediaData(data)) => self.forward(now, id, data),
            (Pc::Publish, Event::MediaAdded(added)) => {
                let rids = added
                    .simulcast
                    .map(|s| {
                        let layers = if s.recv.is_empty() { s.send } else { s.recv };
                        layers.into_iter().map(|l| l.rid).collect()
                    })
                    .unwrap_or_default();
                if receives(added.direction) {
                    self.publish_track(id, PublishedTrack::new(added.mid, added.kind, rids));
                }
            }
            (Pc::Publish, Event::MediaChanged(changed)) => {
                let Some(p) = self.participants.get_mut(&id) else {
                    return;
                };
                let exists = p.track_mut(changed.mid).is_some();
                if receives(changed.direction) && !exists {
                    let kind = p.publish.rtc.media(changed.mid).map(|m| m.kind());
                    if let Some(kind) = kind {
                        self.publish_track(id, PublishedTrack::new(changed.mid, kind, Vec::new()));
                    }
                } else if !receives(changed.direction) && exists {
                    p.published.retain(|t| t.mid != changed.mid);
                    let room = p.room;
                    self.negotiate_room(room);
                }
            }
            (Pc::Subscribe, Event::KeyframeRequest(req)) => {
                let Some(p) = self.participants.get(&id) else {
                    return;
                };
                let found = p
                    .subscriptions
                    .iter()
                    .find(|s| s.state == SubState::Open(req.mid));
                if let Some(sub) = found {
                    let rid = sub.forwarder.current().unwrap_or(sub.forwarder.target());
                    self.keyframe_requests.push((sub.source, rid));
                }
            }
            _ => {}
        }
    }

    fn publish_track(&mut self, id: ParticipantId, track: PublishedTrack) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let key = TrackKey {
            publisher: id,
            mid: track.mid,
        };
        let kind = track.kind;
        tracing::debug!(participant = %id, mid = %track.mid, ?kind, "track published");
        p.published.push(track);
        let room = p.room;
        for member in self.rooms.get(&room).into_iter().flatten() {
            if *member == id {
                continue;
            }
            if let Some(other) = self.participants.get_mut(member) {
                other.subscribe_to(key, kind);
                self.to_negotiate.push(*member);
            }
        }
    }

    /// Sends one incoming frame to every subscriber of its track.
    fn forward(&mut self, now: Instant, id: ParticipantId, data: MediaData) {
        let key = TrackKey {
            publisher: id,
            mid: data.mid,
        };
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let room = p.room;
        let Some(members) = self.rooms.get(&room) else {
            return;
        };
        let Some(track) = p.track_mut(data.mid) else {
            return;
        };
        track.record(now, data.rid, data.data.len());
        let is_video = track.kind == MediaKind::Video;
        let preferred = if is_video {
            choose_layer(&track.active_layers(now), members.len())
        } else {
            None
        };
        let is_keyframe = data.is_keyframe();
        let audio_level = data.ext_vals.audio_level;
        let voice_activity = data.ext_vals.voice_activity.unwrap_or(false);

        for member in members {
            if *member == id {
                continue;
            }
            let Some(sub_p) = self.participants.get_mut(member) else {
                continue;
            };
            if !sub_p.subscribe.is_connected() {
                continue;
            }
            let Some(sub) = sub_p.subscriptions.iter_mut().find(|s| s.source == key) else {
                continue;
            };
            let SubState::Open(out_mid) = sub.state else {
                continue;
            };
            let time = if is_video {
                sub.forwarder.set_target(preferred);
                match sub
                    .forwarder
                    .on_frame(data.rid, is_keyframe, data.time, data.network_time)
                {
                    Verdict::Forward(time) => time,
                    Verdict::Drop => {
                        if let Some(rid) = sub.forwarder.wants_keyframe() {
                            self.keyframe_requests.push((key, rid));
                        }
                        continue;
                    }
                }
            } else {
                data.time
            };
            let written = sub_p.subscribe.guard(|rtc| {
                let Some(mut writer) = rtc.writer(out_mid) else {
                    return false;
                };
                let Some(pt) = writer.match_params(data.params) else {
                    return false;
                };
                if let Some(level) = audio_level {
                    writer = writer.audio_level(level, voice_activity);
                }
                writer
                    .write(pt, data.network_time, time, data.data.clone())
                    .is_ok()
            });
            if written == Some(true) {
                self.stats.frames_forwarded += 1;
                sub_p.subscribe.dirty = true;
                self.dirty.push((*member, Pc::Subscribe));
            }
        }
    }

    fn send_keyframe_requests(&mut self, now: Instant) {
        for (key, rid) in mem::take(&mut self.keyframe_requests) {
            let Some(p) = self.participants.get_mut(&key.publisher) else {
                continue;
            };
            let Some(track) = p.track_mut(key.mid) else {
                continue;
            };
            if !track.take_keyframe_request_slot(now, rid) {
                continue;
            }
            p.publish.guard(|rtc| {
                if let Some(mut writer) = rtc.writer(key.mid) {
                    let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                        KeyframeRequestKind::Pli
                    } else {
                        KeyframeRequestKind::Fir
                    };
                    if let Err(e) = writer.request_keyframe(rid, kind) {
                        tracing::debug!("keyframe request failed: {e}");
                    }
                }
            });
            self.mark_dirty(key.publisher, Pc::Publish);
        }
    }

    fn negotiate(&mut self, now: Instant) {
        let mut ids = mem::take(&mut self.to_negotiate);
        ids.sort_unstable();
        ids.dedup();
        let live: HashSet<TrackKey> = self
            .participants
            .iter()
            .flat_map(|(id, p)| {
                p.published.iter().map(|t| TrackKey {
                    publisher: *id,
                    mid: t.mid,
                })
            })
            .collect();
        for id in ids {
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            if p.pending_offer.is_some() {
                continue;
            }
            let needs = p.has_queued_changes()
                || p.subscriptions
                    .iter()
                    .any(|s| matches!(s.state, SubState::Open(_)) && !live.contains(&s.source));
            if !needs {
                continue;
            }
            if let Some(offer) = p.make_offer(now, id, |k| live.contains(&k)) {
                self.events.push_back(SfuEvent::SubscribeOffer {
                    participant: id,
                    offer_id: offer.id,
                    renew: offer.renew,
                    sdp: offer.sdp,
                });
                self.mark_dirty(id, Pc::Subscribe);
            }
        }
    }
}

fn receives(direction: Direction) -> bool {
    matches!(direction, Direction::RecvOnly | Direction::SendRecv)
}
