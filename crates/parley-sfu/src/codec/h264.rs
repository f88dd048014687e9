//! H.264 RTP payloads (RFC 6184): the NAL unit header of a single NAL unit
//! packet, of each unit in a STAP-A, or of the unit a FU-A fragment starts.
//! The SFU reads the unit types only, to find where a keyframe begins.

use str0m::format::{detect_h264_keyframe, detect_h264_nalu};

/// Sequence parameter set (NAL unit type 7).
const SPS: u8 = 7;

/// Whether an H.264 payload is the first packet of a keyframe.
/// `frame_start`: its RTP time is new on its layer.
///
/// A keyframe's first packet carries the parameter sets or the IDR slice.
/// Parameter sets come only at an access unit's start, so they mark it even
/// when the packet arrived after others of its frame; a frame of several IDR
/// slices has an IDR start in several packets, so an IDR counts only at the
/// frame's start.
pub(crate) fn starts_keyframe(payload: &[u8], frame_start: bool) -> bool {
    detect_h264_nalu(payload, SPS) || (frame_start && detect_h264_keyframe(payload))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Unit type 5: a slice of an IDR picture.
    const IDR: u8 = 5;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;

    #[test]
    fn a_keyframe_start_is_known_by_its_parameter_sets_even_when_late() {
        // STAP-A with SPS (7) and PPS (8), then an IDR slice (5) as a FU-A start.
        let stap = [24, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce];
        let idr_start = [28, 0x85, 0x88];
        let delta = [0x41, 0x9a];
        assert!(starts_keyframe(&stap, true));
        assert!(starts_keyframe(&stap, false));
        assert!(starts_keyframe(&idr_start, true));
        // Another slice's start within the frame is no entry point.
        assert!(!starts_keyframe(&idr_start, false));
        assert!(!starts_keyframe(&delta, true));
        // A FU-A fragment that is not the first says nothing.
        assert!(!starts_keyframe(&[28, 0x05, 0x88], true));
        assert!(!starts_keyframe(&[], true));
    }

    /// One H.264 RTP payload as built for the test.
    #[derive(Debug, Clone)]
    enum Built {
        /// A single NAL unit of this type.
        Single(u8),
        /// A STAP-A of units of these types.
        Aggregate(Vec<u8>),
        /// A FU-A fragment of a unit of this type; whether it is the first.
        Fragment(u8, bool),
    }

    impl Built {
        fn payload(&self) -> Vec<u8> {
            let header = |kind: u8| 0x60 | kind;
            match self {
                Built::Single(kind) => vec![header(*kind), 0x88, 0x84],
                Built::Aggregate(kinds) => {
                    let mut out = vec![header(STAP_A)];
                    for kind in kinds {
                        out.extend([0, 2, header(*kind), 0x42]);
                    }
                    out
                }
                Built::Fragment(kind, first) => {
                    vec![header(FU_A), u8::from(*first) << 7 | kind, 0x88]
                }
            }
        }

        fn starts_keyframe(&self, frame_start: bool) -> bool {
            let kinds: Vec<u8> = match self {
                Built::Single(kind) => vec![*kind],
                Built::Aggregate(kinds) => kinds.clone(),
                Built::Fragment(kind, true) => vec![*kind],
                Built::Fragment(_, false) => vec![],
            };
            kinds.contains(&SPS) || (frame_start && kinds.contains(&IDR))
        }
    }

    fn built() -> impl Strategy<Value = Built> {
        prop_oneof![
            (1u8..=23).prop_map(Built::Single),
            prop::collection::vec(1u8..=23, 1..5).prop_map(Built::Aggregate),
            (1u8..=23, any::<bool>()).prop_map(|(kind, first)| Built::Fragment(kind, first)),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..40),
            frame_start in any::<bool>(),
        ) {
            let _ = starts_keyframe(&bytes, frame_start);
        }

        #[test]
        fn a_built_payload_reads_back(b in built(), frame_start in any::<bool>()) {
            prop_assert_eq!(
                starts_keyframe(&b.payload(), frame_start),
                b.starts_keyframe(frame_start)
            );
        }
    }
}
