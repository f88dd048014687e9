//! The SFU's inner loop: draining connections, acting on their events,
//! forwarding frames, asking publishers for keyframes and making subscribe
//! offers, until nothing is left to do. The public entry points in `lib.rs`
//! feed input and then call [`Sfu::settle`].

use std::collections::HashSet;
use std::mem;
use std::time::Instant;

use str0m::Event;
use str0m::bwe::BweKind;
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind};

use crate::forward::Verdict;
use crate::ids::{ParticipantId, Pc, RoomId, TrackKey};
use crate::participant::SubState;
use crate::track::{PublishedTrack, vp8_keyframe_size};
use crate::transport::TransportState;
use crate::{Sfu, SfuEvent};

impl Sfu {
    pub(crate) fn mark_dirty(&mut self, id: ParticipantId, pc: Pc) {
        if let Some(p) = self.participants.get_mut(&id) {
            p.transport_mut(pc).dirty = true;
            self.dirty.push((id, pc));
        }
    }

    pub(crate) fn negotiate_room(&mut self, room: RoomId) {
        if let Some(members) = self.rooms.get(&room) {
            self.to_negotiate.extend(members.iter().copied());
        }
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
            if !self.to_allocate.is_empty() {
                self.allocate_pending(now);
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
                p.note_estimate(now, estimate);
                // Less room than what is being sent: decide again now, not
                // at the next round.
                if p.estimate_fell() && crate::allocate::is_congested(estimate, p.allocated_bps) {
                    self.to_allocate.push(id);
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
        let Some(track) = p.published.iter_mut().find(|t| t.mid == data.mid) else {
            return;
        };
        // What moderation holds back never reaches a subscriber.
        if !p.gate.passes(track.kind, track.mid) {
            return;
        }
        let is_keyframe = data.is_keyframe();
        let size = if is_keyframe && data.params.spec().codec == Codec::Vp8 {
            vp8_keyframe_size(&data.data)
        } else {
            None
        };
        let new_layer = track.record(now, data.rid, size, data.data.len());
        let is_video = track.kind == MediaKind::Video;
        let audio_level = data.ext_vals.audio_level;
        let voice_activity = data.ext_vals.voice_activity.unwrap_or(false);
        if !is_video
            && let Some(level) = audio_level
            && let Some(speaker) = self
                .speakers
                .entry(room)
                .or_default()
                .observe(now, id, level)
        {
            self.events.push_back(SfuEvent::ActiveSpeaker {
                room,
                participant: speaker,
            });
            // Video follows the speaker: everyone's priorities changed.
            self.allocate_room(room);
        }
        if is_video && new_layer {
            // A layer appeared: decide before this frame goes out, so a
            // first keyframe is not wasted.
            self.allocate_room(room);
            self.allocate_pending(now);
        }
        let Some(members) = self.rooms.get(&room) else {
            return;
        };

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
