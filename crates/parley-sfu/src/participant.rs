//! A participant's two peer connections, what it publishes, what it receives,
//! and the subscribe-side offer/answer bookkeeping.

use std::collections::HashMap;
use std::time::Instant;

use std::collections::VecDeque;
use std::time::Duration;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::net::Transmit;
use str0m::rtp::{RtpPacket, Ssrc};
use str0m::{Event, Input};

use crate::error::SfuError;
use crate::estimate::Estimates;
use crate::forward::Forwarder;
use crate::ids::{ParticipantId, Pc, RoomId, TrackKey};
use crate::negotiated_codecs::{codecs_of, negotiated};
use crate::sdp::{self, Codecs};
use crate::track::{Incoming, PublishedTrack};
use crate::transport::{Transport, TransportConfig};

/// A subscribe offer not answered within this time is given up: the
/// subscribe connection is renewed and offered afresh, so one stuck
/// negotiation cannot freeze a participant's view of the room for good.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(15);

/// Incoming RTP streams remembered per publisher; more (a client cycling
/// SSRCs) starts the list afresh.
const MAX_STREAMS: usize = 32;

/// Where one forwarded track stands in the subscribe connection's negotiation.
///
/// str0m allows one outstanding offer per connection, so additions and
/// removals queue up (`ToOpen`, `ToStop`) while an offer is out and go into the
/// next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Needs an m-line in the next offer.
    ToOpen,
    /// In the outstanding offer.
    Negotiating(Mid),
    /// Negotiated; media flows on this m-line.
    Open(Mid),
    /// The source went away; the m-line is stopped in the next offer.
    ToStop(Mid),
    /// The stop is in the outstanding offer.
    NegotiatingStop(Mid),
}

/// One track forwarded to this participant.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) source: TrackKey,
    pub(crate) kind: MediaKind,
    pub(crate) state: SubState,
    pub(crate) forwarder: Forwarder,
    /// The size of the tile showing this video, as the client last said
    /// (width, height in CSS pixels; zero for hidden).
    pub(crate) requested: Option<(u32, u32)>,
    /// The publisher's payload type and codec last seen and the subscribe
    /// connection's matching payload type (they are negotiated separately;
    /// a publisher that reconnects may number its codecs anew).
    pub(crate) payload_type: Option<(Pt, Codec, Pt)>,
    /// The video codecs the subscriber's last answer accepted for this
    /// track (none before an answer, and for audio).
    pub(crate) accepted: Option<Vec<Codec>>,
    /// The publisher's codec the subscriber was told it cannot decode.
    pub(crate) warned: Option<Codec>,
}

/// The subscribe connection's anchor m-line: an inactive audio section,
/// first in every offer and never stopped. It keeps the transport (and the
/// SFU's candidates, which str0m writes into the first m-section) alive
/// however media tracks come and go: without it, an offer that stops every
/// media m-line leaves the browser no bundled transport, and it closes the
/// connection. It also lets the subscribe connection come up at join, before
/// there is media to receive. (It was a data channel once; an established
/// SCTP association costs str0m work on every packet sent, about 8% of the
/// forwarding CPU, for a channel that carried nothing.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// Goes into the next offer.
    ToOpen,
    /// In the outstanding offer.
    Negotiating,
    /// Negotiated.
    Open,
}

/// The stream id of the subscribe connection's anchor section.
pub(crate) const ANCHOR_STREAM: &str = "parley";

pub(crate) struct PendingOffer {
    pending: SdpPendingOffer,
    pub(crate) id: u64,
    pub(crate) sent_at: Instant,
}

/// A subscribe offer ready to go to the client.
pub(crate) struct Offer {
    pub(crate) id: u64,
    pub(crate) renew: bool,
    pub(crate) sdp: String,
}

pub(crate) struct Participant {
    pub(crate) room: RoomId,
    pub(crate) publish: Transport,
    pub(crate) subscribe: Transport,
    pub(crate) published: Vec<PublishedTrack>,
    /// The publish connection's incoming RTP streams: which track and
    /// layer each SSRC carries (looked up in str0m once per stream).
    pub(crate) streams: Vec<(Ssrc, Mid, Option<Rid>)>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) pending_offer: Option<PendingOffer>,
    /// Number of the last subscribe offer made.
    last_offer_id: u64,
    /// The subscribe connection was replaced; the next offer tells the client
    /// to replace its own too.
    renewed: bool,
    pub(crate) anchor: Anchor,
    /// What the room's moderation lets this participant send to others.
    pub(crate) gate: PublishGate,
    /// The subscribe connection's bandwidth estimates, from transport-wide
    /// congestion control feedback.
    pub(crate) estimates: Estimates,
    /// The last layer allocation's totals, and when the next one is due.
    pub(crate) allocated_bps: u64,
    pub(crate) next_allocation: Instant,
    /// What the bandwidth estimator was last told (minimum, desired).
    pub(crate) bwe_target: (u64, u64),
}

/// What of a participant's media the SFU passes on. Moderation closes it
/// (a moderator's mute, presenter mode, a stopped screen share); the SFU
/// then drops the media itself, whatever the client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishGate {
    /// Audio tracks are forwarded.
    pub audio: bool,
    /// Video tracks are forwarded (except those in `blocked`).
    pub video: bool,
    /// Tracks (by mid) never forwarded, such as a screen share a moderator stopped.
    pub blocked: Vec<String>,
}

impl Default for PublishGate {
    fn default() -> Self {
        PublishGate {
            audio: true,
            video: true,
            blocked: Vec::new(),
        }
    }
}

impl PublishGate {
    /// Whether media of `kind` on `mid` passes.
    pub(crate) fn passes(&self, kind: MediaKind, mid: Mid) -> bool {
        let open = match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
        };
        open && !self.blocked.iter().any(|b| b.as_str() == &*mid)
    }
}

impl Participant {
    pub(crate) fn new(room: RoomId, now: Instant, config: &TransportConfig) -> Self {
        Participant {
            room,
            publish: Transport::new(Pc::Publish, now, config),
            subscribe: Transport::new(Pc::Subscribe, now, config),
            published: Vec::new(),
            streams: Vec::new(),
            subscriptions: Vec::new(),
            pending_offer: None,
            last_offer_id: 0,
            renewed: false,
            anchor: Anchor::ToOpen,
            gate: PublishGate::default(),
            estimates: Estimates::default(),
            allocated_bps: 0,
            next_allocation: now,
            bwe_target: (0, 0),
        }
    }

    pub(crate) fn transport_mut(&mut self, pc: Pc) -> &mut Transport {
        match pc {
            Pc::Publish => &mut self.publish,
            Pc::Subscribe => &mut self.subscribe,
        }
    }

    /// The codecs negotiated for this participant's published track `mid`:
    /// what the SFU can deliver of it (empty while unknown).
    pub(crate) fn deliverable(&self, mid: Mid) -> Vec<PayloadParams> {
        negotiated(&self.publish.rtc, mid)
    }

    pub(crate) fn track_mut(&mut self, mid: Mid) -> Option<&mut PublishedTrack> {
        self.published.iter_mut().find(|t| t.mid == mid)
    }

    /// The client's tile sizes for the videos it receives, by the mid of
    /// their subscribe m-line (see `Sfu::set_video_sizes`).
    pub(crate) fn set_tile_sizes(&mut self, sizes: &[(&str, u32, u32)]) {
        for (mid, width, height) in sizes {
            let found = self.subscriptions.iter_mut().find(|s| match s.state {
                SubState::Open(m) => &*m == *mid,
                _ => false,
            });
            if let Some(sub) = found {
                sub.requested = Some((*width, *height));
            }
        }
    }

    /// Sets what of this participant's (`id`'s) media passes on. Returns
    /// the tracks it reopens, or none if the gate is unchanged.
    pub(crate) fn set_gate(
        &mut self,
        id: ParticipantId,
        gate: PublishGate,
    ) -> Option<Vec<TrackKey>> {
        if self.gate == gate {
            return None;
        }
        let reopened = self
            .published
            .iter()
            .filter(|t| !self.gate.passes(t.kind, t.mid) && gate.passes(t.kind, t.mid))
            .map(|t| TrackKey {
                publisher: id,
                mid: t.mid,
            })
            .collect();
        self.gate = gate;
        Some(reopened)
    }

    /// A fresh publish connection for one that died (e.g. after an offer
    /// without a fingerprint): its tracks are gone with it.
    pub(crate) fn renew_publish(&mut self, now: Instant, config: &TransportConfig) {
        self.publish = Transport::new(Pc::Publish, now, config);
        self.published.clear();
        self.streams.clear();
    }

    /// Applies the client's offer `sdp` (parsed as `offer`) on the publish
    /// connection; the answer lists each section's codecs in the offer's
    /// order.
    pub(crate) fn answer_publish(
        &mut self,
        offer: SdpOffer,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let bad = |reason: String| SfuError::BadSdp {
            pc: Pc::Publish,
            reason,
        };
        match self.publish.guard(|rtc| rtc.sdp_api().accept_offer(offer)) {
            Some(Ok(answer)) => {
                let answer = sdp::finish(&answer.to_sdp_string(), &Codecs::new());
                Ok(sdp::in_offer_order(&answer, sdp))
            }
            Some(Err(e)) => Err(bad(e.to_string())),
            None => Err(bad("the publish connection has failed".into())),
        }
    }

    /// Says goodbye on both connections (RTCP BYE, DTLS close_notify), so
    /// browsers end the tracks at once instead of waiting for a timeout.
    pub(crate) fn close(&mut self, now: Instant, transmits: &mut VecDeque<Transmit>) {
        let mut discard: Vec<Event> = Vec::new();
        for transport in [&mut self.publish, &mut self.subscribe] {
            transport.guard(|rtc| rtc.close());
            transport.drain(now, transmits, &mut discard);
            discard.clear();
        }
    }

    /// Runs the connections whose timer is due; returns which ran.
    pub(crate) fn run_timers(&mut self, now: Instant) -> impl Iterator<Item = Pc> + use<> {
        let mut ran = [None; 2];
        for (slot, pc) in ran.iter_mut().zip([Pc::Publish, Pc::Subscribe]) {
            let t = self.transport_mut(pc);
            if t.next_timeout <= now {
                t.handle_input(Input::Timeout(now));
                *slot = Some(pc);
            }
        }
        ran.into_iter().flatten()
    }

    /// The published tracks whose publisher's patience for a requested codec
    /// ran out by `now`.
    pub(crate) fn codec_deadlines(&self, now: Instant) -> impl Iterator<Item = Mid> + '_ {
        self.published
            .iter()
            .filter(move |t| t.codec_deadline().is_some_and(|d| d <= now))
            .map(|t| t.mid)
    }

    /// Whether the outstanding subscribe offer went unanswered for [`OFFER_TIMEOUT`].
    pub(crate) fn offer_expired(&self, now: Instant) -> bool {
        self.pending_offer
            .as_ref()
            .is_some_and(|o| now.saturating_duration_since(o.sent_at) >= OFFER_TIMEOUT)
    }

    /// The earliest of this participant's timers: its connections', its
    /// next layer decision, its offer's expiry and its tracks' codec requests.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let offer = self
            .pending_offer
            .as_ref()
            .map(|o| o.sent_at + OFFER_TIMEOUT);
        let codec = self
            .published
            .iter()
            .filter_map(|t| t.codec_deadline())
            .min();
        [
            Some(self.publish.next_timeout),
            Some(self.subscribe.next_timeout),
            Some(self.next_allocation),
            offer,
            codec,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Reads an RTP packet of the publish connection onto its track; none
    /// when no track takes it or moderation holds the track back (what it
    /// holds back never reaches a subscriber).
    pub(crate) fn receive(&mut self, now: Instant, packet: RtpPacket) -> Option<Incoming> {
        let (mid, rid) = self.stream(packet.header.ssrc)?;
        let track = self.published.iter_mut().find(|t| t.mid == mid)?;
        if !self.gate.passes(track.kind, track.mid) {
            return None;
        }
        let pt = packet.header.payload_type;
        let publish = &mut self.publish;
        track.receive(now, rid, packet, || {
            publish
                .guard(|rtc| rtc.codec_config().find(|c| c.pt() == pt).copied())
                .flatten()
        })
    }

    /// The track (mid) and layer an incoming SSRC carries, asked of str0m
    /// once per stream.
    fn stream(&mut self, ssrc: Ssrc) -> Option<(Mid, Option<Rid>)> {
        if let Some(&(_, mid, rid)) = self.streams.iter().find(|(s, _, _)| *s == ssrc) {
            return Some((mid, rid));
        }
        let (mid, rid) = self
            .publish
            .guard(|rtc| {
                rtc.direct_api()
                    .stream_rx(&ssrc)
                    .map(|stream| (stream.mid(), stream.rid()))
            })
            .flatten()?;
        if self.streams.len() >= MAX_STREAMS {
            self.streams.clear();
        }
        self.streams.push((ssrc, mid, rid));
        Some((mid, rid))
    }

    /// Starts forwarding `source` to this participant (after the next negotiation).
    pub(crate) fn subscribe_to(&mut self, source: TrackKey, kind: MediaKind) {
        if self.subscriptions.iter().any(|s| s.source == source) {
            return;
        }
        self.subscriptions.push(Subscription {
            source,
            kind,
            state: SubState::ToOpen,
            forwarder: Forwarder::new(None),
            requested: None,
            payload_type: None,
            accepted: None,
            warned: None,
        });
    }

    /// Builds the next subscribe offer if anything changed and no offer is out.
    ///
    /// `is_live` says whether a source track still exists; subscriptions to
    /// vanished tracks are stopped (or dropped if never negotiated).
    /// `deliverable` gives the codecs a video source's publisher negotiated:
    /// its section offers only those.
    pub(crate) fn make_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        is_live: impl Fn(TrackKey) -> bool,
        deliverable: impl Fn(TrackKey) -> Vec<PayloadParams>,
    ) -> Option<Offer> {
        if self.pending_offer.is_some() {
            return None;
        }
        self.stop_vanished(is_live);
        let Some((offer, pending)) = self.apply_changes() else {
            // Nothing to negotiate, or the connection is dead: undo the marks.
            self.rollback_offer();
            return None;
        };
        self.last_offer_id += 1;
        let codecs = self.offer_codecs(deliverable);
        let offer = Offer {
            id: self.last_offer_id,
            renew: std::mem::take(&mut self.renewed),
            sdp: sdp::finish(&offer.to_sdp_string(), &codecs),
        };
        tracing::debug!(participant = %id, offer = offer.id, renew = offer.renew, "subscribe offer");
        self.pending_offer = Some(PendingOffer {
            pending,
            id: offer.id,
            sent_at: now,
        });
        Some(offer)
    }

    /// Drops the subscriptions to vanished tracks that were never
    /// negotiated and queues the stop of those that were.
    fn stop_vanished(&mut self, is_live: impl Fn(TrackKey) -> bool) {
        self.subscriptions
            .retain(|s| s.state != SubState::ToOpen || is_live(s.source));
        for sub in &mut self.subscriptions {
            if let SubState::Open(mid) = sub.state
                && !is_live(sub.source)
            {
                sub.state = SubState::ToStop(mid);
            }
        }
    }

    /// Puts the anchor (if due) and every queued opening and stop into an
    /// offer on the subscribe connection, marking them as negotiating. None
    /// when there is nothing to offer or the connection is dead.
    fn apply_changes(&mut self) -> Option<(SdpOffer, SdpPendingOffer)> {
        let subs = &mut self.subscriptions;
        let anchor = &mut self.anchor;
        self.subscribe
            .guard(|rtc| {
                let mut api = rtc.sdp_api();
                if *anchor == Anchor::ToOpen {
                    api.add_media(
                        MediaKind::Audio,
                        Direction::Inactive,
                        Some(ANCHOR_STREAM.to_owned()),
                        Some(format!("{ANCHOR_STREAM}-anchor")),
                        None,
                    );
                    *anchor = Anchor::Negotiating;
                }
                for sub in subs.iter_mut() {
                    match sub.state {
                        SubState::ToOpen => {
                            let stream_id = sub.source.publisher.to_string();
                            let track_id = format!("{}-{}", sub.source.publisher, sub.source.mid);
                            let mid = api.add_media(
                                sub.kind,
                                Direction::SendOnly,
                                Some(stream_id),
                                Some(track_id),
                                None,
                            );
                            sub.state = SubState::Negotiating(mid);
                        }
                        SubState::ToStop(mid) => {
                            api.stop_media(mid);
                            sub.state = SubState::NegotiatingStop(mid);
                        }
                        _ => {}
                    }
                }
                if !api.has_changes() {
                    return None;
                }
                api.apply()
            })
            .flatten()
    }

    /// The payload types each video section being opened offers: the
    /// publisher's negotiated codecs (`deliverable`) that the subscribe
    /// connection has too.
    fn offer_codecs(&self, deliverable: impl Fn(TrackKey) -> Vec<PayloadParams>) -> Codecs {
        let mut codecs = Codecs::new();
        for sub in &self.subscriptions {
            if let SubState::Negotiating(mid) = sub.state
                && sub.kind == MediaKind::Video
            {
                let config = self.subscribe.rtc.codec_config();
                let pts: Vec<u8> = deliverable(sub.source)
                    .iter()
                    .filter_map(|p| config.match_params(*p))
                    .map(|p| *p.pt())
                    .collect();
                if !pts.is_empty() {
                    codecs.insert(mid.to_string(), pts);
                }
            }
        }
        codecs
    }

    /// Applies the client's answer to the outstanding subscribe offer.
    ///
    /// An answer that cannot be applied leaves the two ends disagreeing about
    /// the session, so the caller renews the connection (see [`Self::renew_subscribe`]).
    pub(crate) fn accept_answer(
        &mut self,
        offer_id: Option<u64>,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let bad = |reason: String| SfuError::BadSdp {
            pc: Pc::Subscribe,
            reason,
        };
        let Some(outstanding) = self.pending_offer.as_ref().map(|p| p.id) else {
            return Err(SfuError::NoPendingOffer);
        };
        if let Some(answered) = offer_id.filter(|a| *a != outstanding) {
            return Err(SfuError::StaleAnswer {
                answered,
                outstanding,
            });
        }
        // A malformed answer leaves the offer outstanding so a corrected answer still fits.
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| bad(e.to_string()))?;
        sdp::check_payload_types(sdp).map_err(bad)?;
        let Some(PendingOffer { pending, .. }) = self.pending_offer.take() else {
            return Err(SfuError::NoPendingOffer);
        };
        let result = self
            .subscribe
            .guard(|rtc| rtc.sdp_api().accept_answer(pending, answer));
        match result {
            Some(Ok(())) => {
                self.subscribe.dirty = true;
                if self.anchor == Anchor::Negotiating {
                    self.anchor = Anchor::Open;
                }
                for sub in &mut self.subscriptions {
                    if let SubState::Negotiating(mid) = sub.state {
                        sub.state = SubState::Open(mid);
                        sub.forwarder.restart();
                        sub.payload_type = None;
                        if sub.kind == MediaKind::Video {
                            let accepted = codecs_of(&negotiated(&self.subscribe.rtc, mid));
                            sub.accepted = Some(accepted);
                            sub.warned = None;
                        }
                        // Forwarded video goes out as it arrives, like audio:
                        // the publisher's encoder already paced it, and
                        // str0m's pacer (1.1x the estimate) would hold each
                        // frame back by tens of milliseconds. The estimate
                        // still decides which layer is forwarded.
                        self.subscribe.guard(|rtc| {
                            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                                tx.set_unpaced(true);
                            }
                        });
                    }
                }
                self.subscriptions
                    .retain(|s| !matches!(s.state, SubState::NegotiatingStop(_)));
                Ok(())
            }
            Some(Err(e)) => Err(bad(e.to_string())),
            None => Err(bad("the subscribe connection has failed".into())),
        }
    }

    /// Replaces the subscribe connection with a new one carrying the same
    /// subscriptions. Used when the two ends may disagree about the session
    /// (an answer that could not be applied, an offer left unanswered): a
    /// rollback would not undo what the client already applied.
    pub(crate) fn renew_subscribe(&mut self, now: Instant, config: &TransportConfig) {
        let mut old = std::mem::replace(
            &mut self.subscribe,
            Transport::new(Pc::Subscribe, now, config),
        );
        old.guard(|rtc| rtc.disconnect());
        self.pending_offer = None;
        self.renewed = true;
        self.anchor = Anchor::ToOpen;
        self.subscriptions
            .retain(|s| !matches!(s.state, SubState::ToStop(_) | SubState::NegotiatingStop(_)));
        for sub in &mut self.subscriptions {
            sub.state = SubState::ToOpen;
            sub.forwarder = Forwarder::new(None);
            sub.payload_type = None;
            sub.accepted = None;
            sub.warned = None;
        }
        self.estimates.clear();
        self.bwe_target = (0, 0);
    }

    /// Forgets the outstanding offer; its changes go into the next one.
    pub(crate) fn rollback_offer(&mut self) {
        self.pending_offer = None;
        if self.anchor == Anchor::Negotiating {
            self.anchor = Anchor::ToOpen;
        }
        for sub in &mut self.subscriptions {
            sub.state = match sub.state {
                SubState::Negotiating(_) => SubState::ToOpen,
                SubState::NegotiatingStop(mid) => SubState::ToStop(mid),
                other => other,
            };
        }
    }

    /// Whether anything waits for the next offer.
    pub(crate) fn has_queued_changes(&self) -> bool {
        self.anchor == Anchor::ToOpen
            || self
                .subscriptions
                .iter()
                .any(|s| matches!(s.state, SubState::ToOpen | SubState::ToStop(_)))
    }
}

/// Connections given input whose output is not drained yet, most recent
/// last (the SFU drains the last first).
#[derive(Debug, Default)]
pub(crate) struct Dirty(Vec<(ParticipantId, Pc)>);

impl Dirty {
    /// Marks `id`'s connection `pc`, if `id` is still there.
    pub(crate) fn mark(
        &mut self,
        participants: &mut HashMap<ParticipantId, Participant>,
        id: ParticipantId,
        pc: Pc,
    ) {
        if let Some(p) = participants.get_mut(&id) {
            self.mark_transport(id, p.transport_mut(pc));
        }
    }

    /// Marks `id`'s connection `transport`, already at hand.
    pub(crate) fn mark_transport(&mut self, id: ParticipantId, transport: &mut Transport) {
        transport.dirty = true;
        self.0.push((id, transport.pc));
    }

    /// The connection marked last.
    pub(crate) fn pop(&mut self) -> Option<(ParticipantId, Pc)> {
        self.0.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
