//! Synthetic frames shaped enough like VP8, VP9, H.264 and Opus for an SFU
//! to find keyframes, layers and picture sizes in them. Nothing is encoded.

use str0m::format::Codec;

/// A frame of `size` bytes that the codec's depacketizer recognises as a
/// keyframe or not (and nothing more: no VP8 picture size).
pub fn video_frame(codec: Codec, keyframe: bool, size: usize) -> Vec<u8> {
    let mut data = vec![0x55u8; size];
    match codec {
        // Bit 0 of a VP8 frame's first byte is clear on keyframes (RFC 6386 §9.1).
        Codec::Vp8 => data[0] = if keyframe { 0x50 } else { 0x51 },
        // VP9 uncompressed header: frame marker, profile 0, frame_type 0 = key.
        Codec::Vp9 => data[0] = if keyframe { 0x82 } else { 0x86 },
        // H264 Annex B: SPS, PPS and an IDR slice, or one non-IDR slice.
        Codec::H264 => {
            let head: &[u8] = if keyframe {
                &[
                    0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0,
                    0, 1, 0x65,
                ]
            } else {
                &[0, 0, 0, 1, 0x41]
            };
            data[..head.len()].copy_from_slice(head);
        }
        other => panic!("no synthetic frames for {other:?}"),
    }
    data
}

/// A VP8 frame of `size` bytes (at least 11) with a real frame tag and, on
/// a keyframe, the start code and the picture size `width`×`height`
/// (RFC 6386 §9.1), so an SFU learns each layer's size from it. Bytes
/// after the header are 0x5a, for the caller to stamp.
pub fn vp8_frame(keyframe: bool, size: usize, width: u16, height: u16) -> Vec<u8> {
    let size = size.max(11);
    let mut frame = vec![0x5a; size];
    // Frame tag: bit 0 clear for a keyframe; show_frame set; a first
    // partition size that fits.
    let tag: u32 = u32::from(!keyframe) | (1 << 4) | (((size as u32 - 10) & 0x7ffff) << 5);
    frame[0..3].copy_from_slice(&tag.to_le_bytes()[0..3]);
    if keyframe {
        frame[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        frame[6..8].copy_from_slice(&width.to_le_bytes());
        frame[8..10].copy_from_slice(&height.to_le_bytes());
    }
    frame
}

/// The size of a frame of simulcast layer `layer` (0 lowest): 300·3^layer
/// bytes, keyframes twice that, so every (layer, keyframe) pair has its own
/// size and a subscriber can tell which layer reached it.
pub fn layer_frame_size(layer: usize, keyframe: bool) -> usize {
    300 * 3usize.pow(layer as u32) * if keyframe { 2 } else { 1 }
}

/// An RTP (not RTCP) datagram big enough to be video rather than Opus.
pub fn is_video_rtp(data: &[u8]) -> bool {
    data.len() > 500 && data[0] & 0xc0 == 0x80 && !(72..=79).contains(&(data[1] & 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp8_keyframe_carries_its_picture_size_and_a_delta_frame_none() {
        let key = vp8_frame(true, 100, 640, 360);
        assert_eq!(key[0] & 1, 0);
        assert_eq!(&key[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([key[6], key[7]]), 640);
        assert_eq!(u16::from_le_bytes([key[8], key[9]]), 360);
        let delta = vp8_frame(false, 100, 640, 360);
        assert_eq!(delta[0] & 1, 1);
        assert_ne!(&delta[3..6], &[0x9d, 0x01, 0x2a]);
    }

    #[test]
    fn every_layer_and_kind_of_frame_has_its_own_size() {
        let mut sizes: Vec<usize> = (0..3)
            .flat_map(|l| [layer_frame_size(l, false), layer_frame_size(l, true)])
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        assert_eq!(sizes.len(), 6);
    }
}
