//! Sending one incoming packet to one subscriber: the forwarder decides,
//! and what it passes is written into the subscriber's outgoing stream,
//! sharing the publisher's payload and rewriting only the header fields the
//! forwarder renumbers.

use str0m::media::{MediaKind, Mid, Rid};
use str0m::rtp::{RtpWrite, SeqNo};

use crate::codec;
use crate::forward::{Out, Verdict};
use crate::ids::TrackKey;
use crate::participant::{Participant, SubState, Subscription};
use crate::track::{Incoming, Received};
use crate::transport::Transport;

/// What became of one packet for one subscriber.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Something was written: the subscribe connection has output to drain.
    pub(crate) written: bool,
    /// Frames (video frames' last packets, audio packets) written.
    pub(crate) frames: u64,
    /// The packet was dropped while the forwarder waits for a keyframe on
    /// this layer.
    pub(crate) wants_keyframe: Option<Option<Rid>>,
}

/// Offers `incoming`, of track `key`, to subscriber `p`: nothing happens
/// unless its subscribe connection is up and the track's m-line is open.
pub(crate) fn deliver(p: &mut Participant, key: TrackKey, incoming: &Incoming) -> Delivery {
    let mut delivery = Delivery::default();
    if !p.subscribe.is_connected() {
        return delivery;
    }
    let Some(sub) = p.subscriptions.iter_mut().find(|s| s.source == key) else {
        return delivery;
    };
    let SubState::Open(out_mid) = sub.state else {
        return delivery;
    };
    let is_video = incoming.kind == MediaKind::Video;
    let verdict = if is_video {
        sub.forwarder.on_video(&incoming.facts)
    } else {
        sub.forwarder.on_audio(&incoming.facts)
    };
    let out = match verdict {
        Verdict::Forward(out) => out,
        Verdict::Drop => {
            delivery.wants_keyframe = sub.forwarder.wants_keyframe();
            return delivery;
        }
    };
    let received = &incoming.received;
    delivery.written = write(&mut p.subscribe, sub, out_mid, received, out);
    if delivery.written && (received.marker || !is_video) {
        delivery.frames += 1;
    }
    if !incoming.late_entry.is_empty() && sub.forwarder.just_entered() {
        // Entered at a keyframe start that came late: what came before it
        // follows, as the forwarder maps it.
        for kept in &incoming.late_entry {
            if let Verdict::Forward(out) = sub.forwarder.on_video(&kept.facts)
                && write(&mut p.subscribe, sub, out_mid, kept, out)
            {
                delivery.written = true;
                delivery.frames += u64::from(kept.marker);
            }
        }
    }
    delivery
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
    let patch = codec::vp8::rewrite(vp8, out.picture_id, out.tl0_pic_idx);
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
