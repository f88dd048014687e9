//! Codec fit between publishers and subscribers.
//!
//! The SFU forwards packets as they are, so a subscriber can only receive a
//! video in the codec its publisher sends. Subscribe offers list, per video
//! section, the codecs the publisher negotiated (what it may send); the
//! answer says which of them the subscriber can decode. When a subscriber
//! cannot decode what the publisher sends, the SFU asks the publisher for the
//! first of its codecs that every subscriber of the track accepts (the
//! room's common codec: a Safari publisher preferring H264 and a subscriber
//! without it meet on VP8; an H264-only device gets H264). Only when there
//! is none, or the publisher has not switched [`ASK_PATIENCE`] after being
//! asked (a client that cannot change codecs), is the subscriber told it
//! will get no video from that publisher.

use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid};

use crate::ids::{ParticipantId, TrackKey};
use crate::participant::SubState;
use crate::{Sfu, SfuEvent};

/// How long a publisher asked for another codec has to start sending it
/// before the subscribers that cannot decode the old one are told.
pub const ASK_PATIENCE: Duration = Duration::from_secs(5);

/// A codec's name as the protocol writes it: the RTP encoding name in lower
/// case (`vp8`, `vp9`, `h264`, `av1`, `opus`).
pub fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "opus",
        Codec::PCMU => "pcmu",
        Codec::PCMA => "pcma",
        Codec::Vp8 => "vp8",
        Codec::Vp9 => "vp9",
        Codec::H264 => "h264",
        Codec::H265 => "h265",
        Codec::Av1 => "av1",
        _ => "other",
    }
}

/// The codecs negotiated on `mid` of `rtc`, in the remote side's order of
/// preference, resends (RTX) and duplicates (several H264 profiles) left out.
pub(crate) fn negotiated(rtc: &Rtc, mid: Mid) -> Vec<PayloadParams> {
    let Some(media) = rtc.media(mid) else {
        return Vec::new();
    };
    let config = rtc.codec_config();
    media
        .remote_pts()
        .iter()
        .filter_map(|pt| config.find(|p| p.pt() == *pt).copied())
        .filter(|p| {
            !matches!(
                p.spec().codec,
                Codec::Rtx | Codec::Red | Codec::CN | Codec::Tele | Codec::Null | Codec::Unknown
            )
        })
        .collect()
}

/// The distinct codecs of `params`, in order.
pub(crate) fn codecs_of(params: &[PayloadParams]) -> Vec<Codec> {
    let mut codecs: Vec<Codec> = Vec::new();
    for p in params {
        if !codecs.contains(&p.spec().codec) {
            codecs.push(p.spec().codec);
        }
    }
    codecs
}

impl Sfu {
    /// What the SFU can deliver of `source`: the publisher's negotiated
    /// codecs for that track, empty while unknown.
    pub(crate) fn deliverable(&self, source: TrackKey) -> Vec<PayloadParams> {
        self.participants
            .get(&source.publisher)
            .map(|p| negotiated(&p.publish.rtc, source.mid))
            .unwrap_or_default()
    }

    /// Checks the subscribers of the video tracks whose codec fit may have
    /// changed (an answer, a publisher's codec seen for the first time or
    /// switched), and asks or tells as the module documentation says.
    pub(crate) fn check_codec_fit(&mut self, now: Instant) {
        let mut keys = std::mem::take(&mut self.to_check_codecs);
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(*k));
        for key in keys {
            self.check_track_codec(now, key);
        }
    }

    fn check_track_codec(&mut self, now: Instant, key: TrackKey) {
        let Some(publisher) = self.participants.get(&key.publisher) else {
            return;
        };
        let Some(track) = publisher
            .published
            .iter()
            .find(|t| t.mid == key.mid && t.kind == MediaKind::Video)
        else {
            return;
        };
        let Some(current) = track.codec() else {
            return; // nothing received yet
        };
        let asked = track.asked_codec;
        let offered = codecs_of(&negotiated(&publisher.publish.rtc, key.mid));
        let room = publisher.room;
        let members = self.rooms.get(&room).cloned().unwrap_or_default();
        // Subscribers that answered for this track, and what they accept.
        let answered: Vec<(ParticipantId, Vec<Codec>)> = members
            .iter()
            .filter(|m| **m != key.publisher)
            .filter_map(|m| {
                let p = self.participants.get(m)?;
                let sub = p.subscriptions.iter().find(|s| s.source == key)?;
                let accepted = sub.accepted.clone()?;
                matches!(sub.state, SubState::Open(_)).then_some((*m, accepted))
            })
            .collect();
        if answered.iter().all(|(_, a)| a.contains(&current)) {
            return;
        }
        let common = offered
            .iter()
            .copied()
            .find(|c| answered.iter().all(|(_, a)| a.contains(c)));
        if let Some(codec) = common {
            let waiting = asked.is_some_and(|(c, at)| c == codec && now < at + ASK_PATIENCE);
            if waiting {
                return;
            }
            if asked.is_none_or(|(c, _)| c != codec) {
                tracing::info!(publisher = %key.publisher, mid = %key.mid, from = codec_name(current),
                    to = codec_name(codec), "asking a publisher for the codec every subscriber can decode");
                if let Some(t) = self
                    .participants
                    .get_mut(&key.publisher)
                    .and_then(|p| p.track_mut(key.mid))
                {
                    t.asked_codec = Some((codec, now));
                }
                self.events.push_back(SfuEvent::PublishCodec {
                    participant: key.publisher,
                    mid: key.mid.to_string(),
                    codec: codec_name(codec),
                });
                return;
            }
            // Asked long enough ago and still not sent: say so below, and
            // ask again only when the room changes.
            if let Some(t) = self
                .participants
                .get_mut(&key.publisher)
                .and_then(|p| p.track_mut(key.mid))
            {
                t.asked_codec = None;
            }
        }
        for (id, accepted) in answered.iter().filter(|(_, a)| !a.contains(&current)) {
            let Some(sub) = self
                .participants
                .get_mut(id)
                .and_then(|p| p.subscriptions.iter_mut().find(|s| s.source == key))
            else {
                continue;
            };
            if sub.warned == Some(current) {
                continue;
            }
            sub.warned = Some(current);
            let accepted: Vec<&'static str> = accepted.iter().map(|c| codec_name(*c)).collect();
            tracing::warn!(subscriber = %id, publisher = %key.publisher, codec = codec_name(current),
                ?accepted, "a subscriber can decode none of a publisher's video codecs");
            self.events.push_back(SfuEvent::NoCommonCodec {
                participant: *id,
                publisher: key.publisher,
                codec: codec_name(current),
                accepted,
            });
        }
    }
}
