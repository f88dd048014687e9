//! Which codecs each end negotiated, and what to do when a subscriber
//! cannot decode the codec a publisher sends.
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
//!
//! Everything here is pure; `codec_fit.rs` gathers the inputs per track and
//! carries out the [`Fit`].

use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::format::{Codec, PayloadParams};
use str0m::media::Mid;

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

/// What to do about one video track's codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Every subscriber that answered decodes what the publisher sends.
    Fits,
    /// The publisher was asked for a codec every subscriber decodes and
    /// still has time to switch.
    Waiting,
    /// Ask the publisher to send this codec, which every subscriber decodes.
    Ask(Codec),
    /// Tell the subscribers that cannot decode what is sent. `gave_up`: the
    /// publisher was asked for the common codec [`ASK_PATIENCE`] ago and did
    /// not switch; the request is forgotten, so only a change in the room
    /// asks again.
    Tell {
        /// Forget the publisher's pending request.
        gave_up: bool,
    },
}

/// Decides about a track sent in `current`, whose publisher negotiated
/// `offered` and was last asked for `asked` (codec, when), given what each
/// subscriber that answered for it accepts.
pub(crate) fn fit(
    now: Instant,
    current: Codec,
    offered: &[Codec],
    asked: Option<(Codec, Instant)>,
    accepted: &[&[Codec]],
) -> Fit {
    if accepted.iter().all(|a| a.contains(&current)) {
        return Fit::Fits;
    }
    let common = offered
        .iter()
        .copied()
        .find(|c| accepted.iter().all(|a| a.contains(c)));
    let Some(codec) = common else {
        return Fit::Tell { gave_up: false };
    };
    match asked {
        Some((c, at)) if c == codec && now < at + ASK_PATIENCE => Fit::Waiting,
        Some((c, _)) if c == codec => Fit::Tell { gave_up: true },
        _ => Fit::Ask(codec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codec_every_subscriber_decodes_is_asked_for_and_waited_on() {
        let now = Instant::now();
        let both: &[Codec] = &[Codec::Vp8, Codec::H264];
        let vp8_only: &[Codec] = &[Codec::Vp8];
        let offered = [Codec::H264, Codec::Vp8];
        assert_eq!(
            fit(now, Codec::H264, &offered, None, &[both, both]),
            Fit::Fits
        );
        assert_eq!(
            fit(now, Codec::H264, &offered, None, &[both, vp8_only]),
            Fit::Ask(Codec::Vp8)
        );
        let asked = Some((Codec::Vp8, now));
        assert_eq!(
            fit(now, Codec::H264, &offered, asked, &[vp8_only]),
            Fit::Waiting
        );
        assert_eq!(
            fit(
                now + ASK_PATIENCE,
                Codec::H264,
                &offered,
                asked,
                &[vp8_only]
            ),
            Fit::Tell { gave_up: true }
        );
        // Asked for another codec before the room changed: ask again.
        let other = Some((Codec::Vp9, now));
        assert_eq!(
            fit(now, Codec::H264, &offered, other, &[vp8_only]),
            Fit::Ask(Codec::Vp8)
        );
    }

    #[test]
    fn without_a_common_codec_the_subscribers_are_told() {
        let now = Instant::now();
        let vp9_only: &[Codec] = &[Codec::Vp9];
        let offered = [Codec::H264, Codec::Vp8];
        assert_eq!(
            fit(now, Codec::H264, &offered, None, &[vp9_only]),
            Fit::Tell { gave_up: false }
        );
    }
}
