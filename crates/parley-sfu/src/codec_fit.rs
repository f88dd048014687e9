//! Keeping each video in a codec its subscribers decode: the tracks whose
//! fit may have changed wait here until the SFU settles, and are then
//! decided as `negotiated_codecs.rs` says (ask the publisher for another
//! codec, wait for it, or tell the subscribers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::events::SfuEvent;
use crate::ids::{ParticipantId, TrackKey};
use crate::negotiated_codecs::{Fit, codec_name, codecs_of, fit};
use crate::participant::{Participant, SubState};
use crate::rooms::Rooms;

/// Video tracks whose subscribers' codecs are to be checked against what
/// the publisher sends.
#[derive(Debug, Default)]
pub(crate) struct CodecFit {
    queue: Vec<TrackKey>,
}

impl CodecFit {
    /// Checks `key` at the next settle (an answer came, the publisher's codec
    /// was seen for the first time or switched, or a request ran out).
    pub(crate) fn queue(&mut self, key: TrackKey) {
        self.queue.push(key);
    }

    pub(crate) fn queue_all(&mut self, keys: impl IntoIterator<Item = TrackKey>) {
        self.queue.extend(keys);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Checks the queued tracks, each once, in the order they came.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        participants: &mut HashMap<ParticipantId, Participant>,
        rooms: &Rooms,
        events: &mut VecDeque<SfuEvent>,
    ) {
        let mut keys = std::mem::take(&mut self.queue);
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert(*k));
        for key in keys {
            check_track(now, key, participants, rooms, events);
        }
    }
}

fn check_track(
    now: Instant,
    key: TrackKey,
    participants: &mut HashMap<ParticipantId, Participant>,
    rooms: &Rooms,
    events: &mut VecDeque<SfuEvent>,
) {
    let Some(publisher) = participants.get(&key.publisher) else {
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
    let offered = codecs_of(&publisher.deliverable(key.mid));
    let answered = answered(key, rooms.members(publisher.room), participants);
    let accepted: Vec<&[Codec]> = answered.iter().map(|(_, a)| a.as_slice()).collect();
    match fit(now, current, &offered, asked, &accepted) {
        Fit::Fits | Fit::Waiting => {}
        Fit::Ask(codec) => {
            tracing::info!(publisher = %key.publisher, mid = %key.mid, from = codec_name(current),
                to = codec_name(codec), "asking a publisher for the codec every subscriber can decode");
            if let Some(t) = participants
                .get_mut(&key.publisher)
                .and_then(|p| p.track_mut(key.mid))
            {
                t.asked_codec = Some((codec, now));
            }
            events.push_back(SfuEvent::PublishCodec {
                participant: key.publisher,
                mid: key.mid.to_string(),
                codec: codec_name(codec),
            });
        }
        Fit::Tell { gave_up } => {
            if gave_up
                && let Some(t) = participants
                    .get_mut(&key.publisher)
                    .and_then(|p| p.track_mut(key.mid))
            {
                t.asked_codec = None;
            }
            tell(key, current, &answered, participants, events);
        }
    }
}

/// The subscribers of `key` among `members` that answered for it, with the
/// codecs they accept.
fn answered(
    key: TrackKey,
    members: &[ParticipantId],
    participants: &HashMap<ParticipantId, Participant>,
) -> Vec<(ParticipantId, Vec<Codec>)> {
    members
        .iter()
        .filter(|m| **m != key.publisher)
        .filter_map(|m| {
            let p = participants.get(m)?;
            let sub = p.subscriptions.iter().find(|s| s.source == key)?;
            let accepted = sub.accepted.clone()?;
            matches!(sub.state, SubState::Open(_)).then_some((*m, accepted))
        })
        .collect()
}

/// Tells each subscriber of `key` that cannot decode `current` (once per
/// codec) that it gets no video from that publisher.
fn tell(
    key: TrackKey,
    current: Codec,
    answered: &[(ParticipantId, Vec<Codec>)],
    participants: &mut HashMap<ParticipantId, Participant>,
    events: &mut VecDeque<SfuEvent>,
) {
    for (id, accepted) in answered.iter().filter(|(_, a)| !a.contains(&current)) {
        let Some(sub) = participants
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
        events.push_back(SfuEvent::NoCommonCodec {
            participant: *id,
            publisher: key.publisher,
            codec: codec_name(current),
            accepted,
        });
    }
}
