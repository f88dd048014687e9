//! The SFU's inner loop: draining connections, acting on their events,
//! forwarding frames, asking publishers for keyframes and making subscribe
//! offers, until nothing is left to do. The public entry points in `lib.rs`
//! feed input and then call [`Sfu::settle`].

use std::collections::{HashMap, HashSet};
use std::mem;
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::bwe::BweKind;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Vp8Descriptor};

use crate::forward::{Out, Packet, PictureId, Verdict};
use crate::ids::{ParticipantId, Pc, RoomId, TrackKey};
use crate::participant::{Participant, SubState, Subscription};
use crate::track::{
    PublishedTrack, Received, starts_keyframe, vp8_descriptor_len, vp8_keyframe_size,
    vp8_long_picture_id,
};
use crate::transport::Transport;

/// Incoming RTP streams remembered per publisher; more (a client cycling
/// SSRCs) starts the list afresh.
const MAX_STREAMS: usize = 32;
/// How far a keyframe's first packet may trail the packets of its stream
/// that came before it and still be an entry point (they are sent along).
const LATE_ENTRY: Duration = Duration::from_millis(500);

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
            if !self.to_check_codecs.is_empty() {
                self.check_codec_fit(now);
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

    /// Sends one incoming RTP packet to every subscriber of its track.
    fn forward(&mut self, now: Instant, id: ParticipantId, packet: RtpPacket) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let (mid, rid) = match p.streams.iter().find(|(s, _, _)| *s == ssrc) {
            Some(&(_, mid, rid)) => (mid, rid),
            None => {
                let found = p
                    .publish
                    .guard(|rtc| {
                        rtc.direct_api()
                            .stream_rx(&ssrc)
                            .map(|stream| (stream.mid(), stream.rid()))
                    })
                    .flatten();
                let Some((mid, rid)) = found else {
                    return;
                };
                if p.streams.len() >= MAX_STREAMS {
                    p.streams.clear();
                }
                p.streams.push((ssrc, mid, rid));
                (mid, rid)
            }
        };
        let room = p.room;
        let pt = packet.header.payload_type;
        let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        // What moderation holds back never reaches a subscriber.
        if !p.gate.passes(track.kind, track.mid) {
            return;
        }
        let codec_before = track.codec();
        let Some(params) = track.params(pt, || {
            p.publish
                .guard(|rtc| rtc.codec_config().find(|c| c.pt() == pt).copied())
                .flatten()
        }) else {
            return;
        };
        let is_video = track.kind == MediaKind::Video;
        let payload = &packet.payload;
        let codec = params.spec().codec;
        if is_video && codec_before != Some(codec) {
            self.to_check_codecs.push(TrackKey { publisher: id, mid });
        }
        let vp8 = if codec == Codec::Vp8 {
            Vp8Descriptor::parse(payload).ok()
        } else {
            None
        };
        let vp8_key = vp8.is_some_and(|d| d.starts_keyframe(payload));
        let size = if vp8_key {
            vp8_keyframe_size(&payload[vp8_descriptor_len(payload)..])
        } else {
            None
        };
        let recorded = track.record(now, rid, size, payload.len(), packet.time.numer());
        let keyframe_start = starts_keyframe(codec, payload, vp8_key, recorded.frame_start);
        let mut facts = Packet {
            rid,
            ssrc: *ssrc,
            seq: *packet.seq_no,
            time: packet.time,
            arrival: packet.timestamp,
            keyframe_start,
            picture_id: vp8.and_then(|d| d.picture_id()).map(|value| PictureId {
                value,
                long: vp8_long_picture_id(payload),
            }),
            tl0_pic_idx: vp8.and_then(|d| d.tl0_pic_idx()),
        };
        let audio_level = packet.header.ext_vals.audio_level;
        let mut ext = ExtensionValues::default();
        if is_video {
            ext.video_orientation = packet.header.ext_vals.video_orientation;
        } else {
            ext.audio_level = audio_level;
            ext.voice_activity = packet.header.ext_vals.voice_activity;
        }
        let received = Received {
            facts,
            pt,
            params,
            marker: packet.header.marker,
            ext,
            vp8,
            payload: packet.payload,
        };
        // A keyframe's first packet that came after others of its stream:
        // whoever enters there gets those too. One that came so late that
        // they would be stale (a slow retransmission) is no entry point.
        let late_entry = if keyframe_start {
            track.kept_after(&facts)
        } else {
            Vec::new()
        };
        if late_entry.first().is_some_and(|k| {
            packet.timestamp.saturating_duration_since(k.facts.arrival) > LATE_ENTRY
        }) {
            facts.keyframe_start = false;
        }
        if is_video {
            track.keep(&received);
        }
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
        if is_video && recorded.new_layer {
            // A layer appeared: decide before this packet goes out, so a
            // first keyframe is not wasted.
            self.allocate_room(room);
            self.allocate_pending(now);
        }
        let key = TrackKey { publisher: id, mid };
        let Some(members) = self.rooms.get(&room) else {
            return;
        };

        for member in members {
            if *member == id {
                continue;
            }
            let Some(Participant {
                subscribe,
                subscriptions,
                ..
            }) = self.participants.get_mut(member)
            else {
                continue;
            };
            if !subscribe.is_connected() {
                continue;
            }
            let Some(sub) = subscriptions.iter_mut().find(|s| s.source == key) else {
                continue;
            };
            let SubState::Open(out_mid) = sub.state else {
                continue;
            };
            let verdict = if is_video {
                sub.forwarder.on_video(&facts)
            } else {
                sub.forwarder.on_audio(&facts)
            };
            let out = match verdict {
                Verdict::Forward(out) => out,
                Verdict::Drop => {
                    if let Some(rid) = sub.forwarder.wants_keyframe()
                        && !self.keyframe_requests.contains(&(key, rid))
                    {
                        self.keyframe_requests.push((key, rid));
                    }
                    continue;
                }
            };
            let mut written = write(subscribe, sub, out_mid, &received, out);
            if written && (received.marker || !is_video) {
                self.stats.frames_forwarded += 1;
            }
            if !late_entry.is_empty() && sub.forwarder.just_entered() {
                for kept in &late_entry {
                    if let Verdict::Forward(out) = sub.forwarder.on_video(&kept.facts)
                        && write(subscribe, sub, out_mid, kept, out)
                    {
                        written = true;
                        self.stats.frames_forwarded += u64::from(kept.marker);
                    }
                }
            }
            if written {
                subscribe.dirty = true;
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
                .map(|k| (k, self.deliverable(k)))
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

/// Writes one packet to a subscriber's outgoing stream `out_mid` at `out`;
/// whether it was written.
fn write(
    subscribe: &mut Transport,
    sub: &mut Subscription,
    out_mid: Mid,
    received: &Received,
    out: Out,
) -> bool {
    let Received {
        pt, params, vp8, ..
    } = *received;
    let codec = params.spec().codec;
    let patch = vp8
        .filter(|_| out.picture_id.is_some() || out.tl0_pic_idx.is_some())
        .and_then(|d| {
            let mut patch = d.patch();
            if let Some(id) = out.picture_id {
                patch = patch.picture_id(id);
            }
            if let Some(tl0) = out.tl0_pic_idx {
                patch = patch.tl0_pic_idx(tl0);
            }
            patch.build().ok()
        });
    let cached = sub.payload_type;
    let nackable = sub.kind == MediaKind::Video;
    let written = subscribe.guard(|rtc| {
        let out_pt = match cached {
            Some((from, of, to)) if from == pt && of == codec => to,
            _ => rtc.codec_config().match_params(params)?.pt(),
        };
        let mut api = rtc.direct_api();
        let stream = api.stream_tx_by_mid(out_mid, None)?;
        let mut write = RtpWrite::new(
            out_pt,
            SeqNo::from(out.seq),
            out.time.numer() as u32,
            received.facts.arrival,
            received.payload.clone(),
        )
        .marker(received.marker)
        .ext_vals(received.ext.clone())
        .nackable(nackable);
        if let Some(patch) = patch {
            write = write.vp8_patch(patch);
        }
        stream.write_rtp(write);
        Some(out_pt)
    });
    match written {
        Some(Some(out_pt)) => {
            sub.payload_type = Some((pt, codec, out_pt));
            true
        }
        _ => false,
    }
}
