//! The SFU's inner loop: draining connections, acting on their events,
//! forwarding frames, asking publishers for keyframes and making subscribe
//! offers, until nothing is left to do. The public entry points in `lib.rs`
//! feed input and then call [`Sfu::settle`].

use std::collections::{HashMap, HashSet};
use std::mem;
use std::time::Instant;

use str0m::Event;
use str0m::bwe::BweKind;
use str0m::format::PayloadParams;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
use str0m::rtp::RtpPacket;

use crate::deliver::deliver;
use crate::ids::{ParticipantId, Pc, RoomId, TrackKey};
use crate::participant::SubState;
use crate::track::PublishedTrack;

use crate::Sfu;
use crate::events::SfuEvent;
use crate::transport::TransportState;

impl Sfu {
    pub(crate) fn mark_dirty(&mut self, id: ParticipantId, pc: Pc) {
        self.dirty.mark(&mut self.participants, id, pc);
    }

    pub(crate) fn negotiate_room(&mut self, room: RoomId) {
        self.to_negotiate
            .extend(self.rooms.members(room).iter().copied());
    }

    /// Runs the queued layer decisions.
    pub(crate) fn allocate(&mut self, now: Instant) {
        self.allocator
            .run(now, &mut self.participants, &self.rooms, &mut self.dirty);
    }

    /// Runs until no connection has undrained output, no keyframe request is
    /// queued and every subscribe connection that needed an offer has one out.
    pub(crate) fn settle(&mut self, now: Instant) {
        loop {
            while let Some((id, pc)) = self.dirty.pop() {
                self.drive(now, id, pc);
            }
            if !self.keyframe_requests.is_empty() {
                self.send_keyframe_requests(now);
                continue;
            }
            if !self.allocator.is_empty() {
                self.allocate(now);
                continue;
            }
            if !self.to_negotiate.is_empty() {
                self.negotiate(now);
            }
            if !self.codec_fit.is_empty() {
                self.codec_fit
                    .check(now, &mut self.participants, &self.rooms, &mut self.events);
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
            (Pc::Publish, Event::RtpPacket(packet)) => self.forward(now, id, packet),
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
            (
                Pc::Subscribe,
                Event::EgressBitrateEstimate(BweKind::Twcc {
                    estimate,
                    can_probe: true,
                }),
            ) => {
                let Some(p) = self.participants.get_mut(&id) else {
                    return;
                };
                let estimate = estimate.as_u64();
                p.estimates.note(now, estimate);
                // Less room than what is being sent: decide again now, not
                // at the next round.
                if p.estimates.fell() && crate::allocate::is_congested(estimate, p.allocated_bps) {
                    self.allocator.queue(id);
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
        for member in self.rooms.members(room) {
            if *member == id {
                continue;
            }
            if let Some(other) = self.participants.get_mut(member) {
                other.subscribe_to(key, kind);
                self.to_negotiate.push(*member);
            }
        }
    }

    /// Sends one incoming RTP packet to every subscriber of its track.
    fn forward(&mut self, now: Instant, id: ParticipantId, packet: RtpPacket) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let room = p.room;
        let Some(incoming) = p.receive(now, packet) else {
            return;
        };
        let key = TrackKey {
            publisher: id,
            mid: incoming.mid,
        };
        if incoming.codec_changed {
            self.codec_fit.queue(key);
        }
        if let Some(level) = incoming.audio_level
            && let Some(speaker) = self.rooms.hear(now, room, id, level)
        {
            self.events.push_back(SfuEvent::ActiveSpeaker {
                room,
                participant: speaker,
            });
            // Video follows the speaker: everyone's priorities changed.
            self.allocator.queue_all(self.rooms.members(room));
        }
        if incoming.kind == MediaKind::Video && incoming.new_layer {
            // A layer appeared: decide before this packet goes out, so a
            // first keyframe is not wasted.
            self.allocator.queue_all(self.rooms.members(room));
            self.allocate(now);
        }
        for member in self.rooms.members(room) {
            if *member == id {
                continue;
            }
            let Some(subscriber) = self.participants.get_mut(member) else {
                continue;
            };
            let delivery = deliver(subscriber, key, &incoming);
            if let Some(rid) = delivery.wants_keyframe
                && !self.keyframe_requests.contains(&(key, rid))
            {
                self.keyframe_requests.push((key, rid));
            }
            self.stats.frames_forwarded += delivery.frames;
            if delivery.written {
                self.dirty
                    .mark_transport(*member, &mut subscriber.subscribe);
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
            // PLI: every browser negotiates it for video (str0m's frame
            // API fell back to FIR only when it was missing).
            p.publish.guard(|rtc| {
                if let Some(stream) = rtc.direct_api().stream_rx_by_mid(key.mid, rid) {
                    stream.request_keyframe(KeyframeRequestKind::Pli);
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
            let opening: Vec<TrackKey> = p
                .subscriptions
                .iter()
                .filter(|s| s.state == SubState::ToOpen && s.kind == MediaKind::Video)
                .map(|s| s.source)
                .collect();
            let deliverable: HashMap<TrackKey, Vec<PayloadParams>> = opening
                .into_iter()
                .map(|k| {
                    let codecs = self.participants.get(&k.publisher);
                    (k, codecs.map(|p| p.deliverable(k.mid)).unwrap_or_default())
                })
                .collect();
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            let offer = p.make_offer(
                now,
                id,
                |k| live.contains(&k),
                |k| deliverable.get(&k).cloned().unwrap_or_default(),
            );
            if let Some(offer) = offer {
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
