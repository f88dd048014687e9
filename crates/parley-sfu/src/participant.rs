//! A participant's two peer connections, what it publishes, what it receives,
//! and the subscribe-side offer/answer bookkeeping.

use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;

use crate::codecs::{codecs_of, negotiated};
use crate::error::SfuError;
use crate::estimate::Estimates;
use crate::forward::Forwarder;
use crate::ids::{ParticipantId, Pc, RoomId, TrackKey};
use crate::track::PublishedTrack;
use crate::transport::{Transport, TransportConfig};

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

    pub(crate) fn track_mut(&mut self, mid: Mid) -> Option<&mut PublishedTrack> {
        self.published.iter_mut().find(|t| t.mid == mid)
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
        self.subscriptions
            .retain(|s| s.state != SubState::ToOpen || is_live(s.source));
        for sub in &mut self.subscriptions {
            if let SubState::Open(mid) = sub.state
                && !is_live(sub.source)
            {
                sub.state = SubState::ToStop(mid);
            }
        }
        let subs = &mut self.subscriptions;
        let anchor = &mut self.anchor;
        let made = self.subscribe.guard(|rtc| {
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
        });
        let Some(Some((offer, pending))) = made else {
            // Nothing to negotiate, or the connection is dead: undo the marks.
            self.rollback_offer();
            return None;
        };
        self.last_offer_id += 1;
        let mut codecs = crate::sdp::Codecs::new();
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
        let offer = Offer {
            id: self.last_offer_id,
            renew: std::mem::take(&mut self.renewed),
            sdp: crate::sdp::finish(&offer.to_sdp_string(), &codecs),
        };
        tracing::debug!(participant = %id, offer = offer.id, renew = offer.renew, "subscribe offer");
        self.pending_offer = Some(PendingOffer {
            pending,
            id: offer.id,
            sent_at: now,
        });
        Some(offer)
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
        crate::sdp::check_payload_types(sdp).map_err(bad)?;
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
