//! VP9 RTP payloads (RFC 9628): the first byte of the payload descriptor,
//! `I|P|L|F|B|E|V|Z`, says whether a packet begins a frame (B) and whether
//! that frame is predicted from earlier ones (P). That is all the SFU reads.

use str0m::format::detect_vp9_keyframe;

/// The B bit: the packet begins a frame.
const BEGINS_FRAME: u8 = 0x08;

/// Whether a VP9 payload is the first packet of a keyframe: it begins a
/// frame (B) that is not inter-picture predicted (P clear).
pub(crate) fn starts_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & BEGINS_FRAME != 0) && detect_vp9_keyframe(payload)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_keyframe_begins_an_unpredicted_frame() {
        // B, no P (with I and a 15-bit picture id following).
        assert!(starts_keyframe(&[0x88, 0x80, 0x01, 0xaa]));
        // B with P: a delta frame.
        assert!(!starts_keyframe(&[0xc8, 0x80, 0x01, 0xaa]));
        // A later packet of a keyframe: no B.
        assert!(!starts_keyframe(&[0x84, 0xaa]));
        assert!(!starts_keyframe(&[]));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = starts_keyframe(&bytes);
        }

        #[test]
        fn a_built_descriptor_reads_back(
            flags in any::<[bool; 8]>(),
            rest in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            // I|P|L|F|B|E|V|Z, most significant bit first.
            let first = flags.iter().fold(0u8, |byte, bit| byte << 1 | u8::from(*bit));
            let (predicted, begins) = (flags[1], flags[4]);
            let mut payload = vec![first];
            payload.extend(rest);
            prop_assert_eq!(starts_keyframe(&payload), begins && !predicted);
        }
    }
}
