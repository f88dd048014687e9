//! Running the layer choice (`allocate.rs`) for subscribers: which of them
//! are due, what each could be sent, and carrying the decision out on their
//! forwarders and bandwidth estimators.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::media::MediaKind;

use crate::allocate::{
    ALLOCATE_EVERY, Allocation, USABLE_PERCENT, VideoWant, allocate, budget, cap_for, cost,
    with_headroom,
};
use crate::ids::{ParticipantId, Pc};
use crate::media::Choice;
use crate::participant::{Dirty, Participant, SubState};
use crate::rooms::Rooms;
use crate::speaker::SpeakerDetector;

/// Subscribers whose layers are to be decided again, and the room-wide rule
/// that limits them.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    /// Last-N: videos forwarded to each subscriber, 0 for all.
    last_n: usize,
    queue: Vec<ParticipantId>,
}

/// One video a subscriber could be sent, and how much it matters.
struct Candidate {
    /// The active speaker's first, then by who spoke last, then in
    /// subscription order.
    priority: (bool, Reverse<Option<Instant>>, usize),
    /// Index into the subscriber's subscriptions.
    index: usize,
    publisher: ParticipantId,
    want: VideoWant,
}

/// The decision for one subscriber and what its estimator is to aim for.
struct Plan {
    allocation: Allocation,
    /// The usable estimate the decision was made on.
    budget: Option<u64>,
    /// What was being sent before the decision.
    sending: u64,
    /// The estimate no longer covers what the last decision planned.
    short: bool,
    /// The estimator's target: (minimum, desired) bits per second.
    target: (u64, u64),
}

impl Allocator {
    /// Sets Last-N; a change queues `everyone`.
    pub(crate) fn set_last_n(
        &mut self,
        n: usize,
        everyone: impl IntoIterator<Item = ParticipantId>,
    ) {
        if n != self.last_n {
            self.last_n = n;
            self.queue.extend(everyone);
        }
    }

    /// Decides `id`'s layers at the next settle.
    pub(crate) fn queue(&mut self, id: ParticipantId) {
        self.queue.push(id);
    }

    /// Decides the layers of all of `ids` at the next settle.
    pub(crate) fn queue_all(&mut self, ids: &[ParticipantId]) {
        self.queue.extend(ids.iter().copied());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Runs the queued decisions, each subscriber once.
    pub(crate) fn run(
        &mut self,
        now: Instant,
        participants: &mut HashMap<ParticipantId, Participant>,
        rooms: &Rooms,
        dirty: &mut Dirty,
    ) {
        let mut ids = std::mem::take(&mut self.queue);
        ids.sort_unstable();
        ids.dedup();
        for id in ids.drain(..) {
            if self.decide(now, id, participants, rooms) {
                dirty.mark(participants, id, Pc::Subscribe);
            }
        }
        // Keep the buffer's capacity for next time.
        if self.queue.is_empty() {
            self.queue = ids;
        }
    }

    /// Decides what of each forwarded video `id` gets, and tells its
    /// bandwidth estimator what to aim for. Returns whether the subscribe
    /// connection has output to drain.
    fn decide(
        &self,
        now: Instant,
        id: ParticipantId,
        participants: &mut HashMap<ParticipantId, Participant>,
        rooms: &Rooms,
    ) -> bool {
        let Some(p) = participants.get(&id) else {
            return false;
        };
        let room_size = rooms.members(p.room).len();
        let speakers = rooms.speakers(p.room);
        let (audio_bps, mut videos) = candidates(now, p, participants, room_size, speakers);
        videos.sort_by_key(|v| v.priority);
        keep_last_n(&mut videos, self.last_n);
        let (order, wants): (Vec<usize>, Vec<VideoWant>) =
            videos.into_iter().map(|v| (v.index, v.want)).unzip();
        let plan = plan(now, p, audio_bps, &wants);
        let Some(p) = participants.get_mut(&id) else {
            return false;
        };
        apply(now, id, p, &order, &wants, plan)
    }
}

/// What `p` is sent of the audio (bits per second) and could be sent of
/// each video, unsorted.
fn candidates(
    now: Instant,
    p: &Participant,
    participants: &HashMap<ParticipantId, Participant>,
    room_size: usize,
    speakers: Option<&SpeakerDetector>,
) -> (u64, Vec<Candidate>) {
    let speaker = speakers.and_then(|s| s.current());
    let mut audio_bps = 0;
    let mut videos = Vec::new();
    for (index, sub) in p.subscriptions.iter().enumerate() {
        if !matches!(sub.state, SubState::Open(_)) {
            continue;
        }
        let publisher = sub.source.publisher;
        let Some(track) = participants
            .get(&publisher)
            .and_then(|o| o.published.iter().find(|t| t.mid == sub.source.mid))
        else {
            continue;
        };
        match sub.kind {
            MediaKind::Audio => audio_bps += track.bps(now),
            MediaKind::Video => {
                let layers = track.layer_info(now);
                if layers.is_empty() {
                    continue;
                }
                let cap = cap_for(&layers, sub.requested, room_size);
                let current = if sub.forwarder.is_paused() {
                    None
                } else {
                    sub.forwarder
                        .current()
                        .and_then(|c| layers.iter().position(|l| l.rid == c))
                };
                videos.push(Candidate {
                    priority: (
                        speaker != Some(publisher),
                        Reverse(speakers.and_then(|s| s.last_speech(publisher))),
                        index,
                    ),
                    index,
                    publisher,
                    want: VideoWant {
                        layers,
                        cap,
                        current,
                    },
                });
            }
        }
    }
    (audio_bps, videos)
}

/// Last-N: the videos of the `last_n` most recent speakers (all of each
/// one's: camera and screen), none of anyone else's; 0 keeps all. Tiles the
/// subscriber hides take no place. `videos` come in priority order.
fn keep_last_n(videos: &mut [Candidate], last_n: usize) {
    if last_n == 0 {
        return;
    }
    let mut shown: Vec<ParticipantId> = Vec::with_capacity(last_n);
    for video in videos {
        if video.want.cap.is_none() || shown.contains(&video.publisher) {
            continue;
        }
        if shown.len() < last_n {
            shown.push(video.publisher);
        } else {
            video.want.cap = None;
        }
    }
}

/// Decides `wants` (in priority order) on `p`'s estimates.
fn plan(now: Instant, p: &Participant, audio_bps: u64, wants: &[VideoWant]) -> Plan {
    // What is being sent now, at today's bitrates.
    let sending = audio_bps
        + wants
            .iter()
            .filter_map(|w| w.current.map(|c| cost(&w.layers, c)))
            .sum::<u64>();
    // Every wanted video's lowest layer: never cut without congestion
    // (an idle connection's estimate says nothing about the link).
    let floor = audio_bps
        + wants
            .iter()
            .filter(|w| w.cap.is_some())
            .map(|w| with_headroom(cost(&w.layers, 0)))
            .sum::<u64>();
    // The estimate no longer covers what the last decision planned: a
    // video going down stops its current layer at once (see
    // `Forwarder::choose_lower`).
    let short = p
        .estimates
        .latest()
        .is_some_and(|e| e * USABLE_PERCENT / 100 < p.allocated_bps);
    let fell = p.estimates.fell();
    let held = p.estimates.held(now);
    let budget = p
        .estimates
        .latest()
        .zip(held)
        .map(|(e, held)| budget(e, held, sending, floor, fell));
    let allocation = allocate(budget, audio_bps, wants);
    // What the estimator should aim for: everything wanted. The minimum it
    // must sustain is what is sent: padding up to a higher minimum would
    // keep a narrow link full and push the audio out; the estimator's own
    // probes find room to go up.
    let desired = (allocation.desired_bps * 100 / USABLE_PERCENT).max(1);
    let minimum = allocation.used_bps.min(desired);
    Plan {
        allocation,
        budget,
        sending,
        short,
        target: (minimum, desired),
    }
}

/// Hands each video's choice to its forwarder (`order` names the
/// subscription of each want) and the new target to the estimator. Returns
/// whether the estimator was told anything.
fn apply(
    now: Instant,
    id: ParticipantId,
    p: &mut Participant,
    order: &[usize],
    wants: &[VideoWant],
    plan: Plan,
) -> bool {
    for ((i, want), choice) in order.iter().zip(wants).zip(plan.allocation.choices) {
        let forwarder = &mut p.subscriptions[*i].forwarder;
        let going_down = match choice {
            Choice::Layer(rid) => want.current.is_some_and(|c| {
                want.layers
                    .iter()
                    .position(|l| l.rid == rid)
                    .is_some_and(|n| n < c)
            }),
            Choice::Paused => false,
        };
        if choice == Choice::Paused && want.current.is_some() {
            tracing::debug!(
                subscriber = %id,
                estimate = ?plan.budget,
                sending = plan.sending,
                "video paused: the estimate does not cover its lowest layer"
            );
        }
        match choice {
            Choice::Layer(rid) if going_down && plan.short => forwarder.choose_lower(rid),
            _ => forwarder.choose(choice),
        }
    }
    p.allocated_bps = plan.allocation.used_bps;
    p.next_allocation = now + ALLOCATE_EVERY;
    let (minimum, desired) = plan.target;
    if p.bwe_target == plan.target || p.estimates.latest().is_none() {
        return false;
    }
    p.bwe_target = plan.target;
    p.subscribe.guard(|rtc| {
        rtc.bwe()
            .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
    });
    true
}
