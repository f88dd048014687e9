//! VP8 RTP payloads (RFC 7741): the payload descriptor before each
//! packet's data, and the frame header of a keyframe's first packet (RFC
//! 6386 §9.1), which tells the picture size.
//!
//! str0m parses the descriptor and rewrites its picture ids; this module
//! adds what the SFU needs besides: the descriptor's length, the width its
//! picture id is written in, and a keyframe's size, which ranks simulcast
//! layers whatever order the SDP gave them in.

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

use crate::media::PictureId;

/// What a VP8 payload descriptor (and the frame header after it) says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// As str0m parsed it: needed again to rewrite picture ids.
    pub(crate) descriptor: Vp8Descriptor,
    /// The packet starts a keyframe (S bit, partition 0, key frame tag).
    pub(crate) keyframe: bool,
    /// A keyframe's picture size (width, height).
    pub(crate) size: Option<(u16, u16)>,
    pub(crate) picture_id: Option<PictureId>,
    pub(crate) tl0_pic_idx: Option<u8>,
}

/// Reads a VP8 payload's descriptor; none if it is malformed or nothing
/// follows it.
pub(crate) fn read(payload: &[u8]) -> Option<Header> {
    let descriptor = Vp8Descriptor::parse(payload).ok()?;
    let keyframe = descriptor.starts_keyframe(payload);
    let size = if keyframe {
        keyframe_size(&payload[descriptor_len(payload)..])
    } else {
        None
    };
    Some(Header {
        descriptor,
        keyframe,
        size,
        picture_id: descriptor.picture_id().map(|value| PictureId {
            value,
            long: long_picture_id(payload),
        }),
        tl0_pic_idx: descriptor.tl0_pic_idx(),
    })
}

/// The length of a VP8 RTP payload descriptor (RFC 7741 §4.2), which the
/// VP8 payload header follows; never past the payload's end.
pub(crate) fn descriptor_len(payload: &[u8]) -> usize {
    let byte = |i: usize| payload.get(i).copied().unwrap_or(0);
    if byte(0) & 0x80 == 0 {
        return 1.min(payload.len());
    }
    let extension = byte(1);
    let mut len = 2;
    if extension & 0x80 != 0 {
        // PictureID: one byte, or two when its M bit is set.
        len += if byte(len) & 0x80 != 0 { 2 } else { 1 };
    }
    if extension & 0x40 != 0 {
        len += 1; // TL0PICIDX
    }
    if extension & 0x30 != 0 {
        len += 1; // TID/Y/KEYIDX
    }
    len.min(payload.len())
}

/// Whether a VP8 payload descriptor writes its PictureID in 15 bits.
pub(crate) fn long_picture_id(payload: &[u8]) -> bool {
    payload.len() > 2 && payload[0] & 0x80 != 0 && payload[1] & 0x80 != 0 && payload[2] & 0x80 != 0
}

/// The picture size of a VP8 keyframe (RFC 6386 §9.1: a 3-byte frame tag
/// with bit 0 clear, the start code 9d 01 2a, then 14-bit width and height).
pub(crate) fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

/// The patch that writes `picture_id` and `tl0_pic_idx` (those given) into
/// a copy of the payload `descriptor` was read from; none when there is
/// nothing to rewrite or the descriptor lacks the field.
pub(crate) fn rewrite(
    descriptor: Option<Vp8Descriptor>,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
) -> Option<Vp8Patch> {
    descriptor
        .filter(|_| picture_id.is_some() || tl0_pic_idx.is_some())
        .and_then(|d| {
            let mut patch = d.patch();
            if let Some(id) = picture_id {
                patch = patch.picture_id(id);
            }
            if let Some(tl0) = tl0_pic_idx {
                patch = patch.tl0_pic_idx(tl0);
            }
            patch.build().ok()
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keyframes_tell_their_size() {
        // Frame tag (key, shown), start code, 640x360 with scaling bits set.
        let frame = [
            0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x81, 0, 0,
        ];
        assert_eq!(keyframe_size(&frame), Some((640, 360)));
        let mut delta = frame;
        delta[0] |= 1;
        assert_eq!(keyframe_size(&delta), None);
        assert_eq!(keyframe_size(&frame[..6]), None);
        assert_eq!(keyframe_size(&[0x50, 0, 0, 1, 2, 3, 4, 5, 6, 7]), None);
    }

    #[test]
    fn payload_descriptors_are_measured() {
        // No extension: one byte.
        assert_eq!(descriptor_len(&[0x10, 0x50]), 1);
        // X, I with a 15-bit picture id, L, T: 1 + 1 + 2 + 1 + 1.
        let long = [0x90, 0xe0, 0x80 | 0x12, 0x34, 7, 0x40, 0x50];
        assert_eq!(descriptor_len(&long), 6);
        assert!(long_picture_id(&long));
        // X, I with a 7-bit picture id.
        let short = [0x90, 0x80, 0x12, 0x50];
        assert_eq!(descriptor_len(&short), 3);
        assert!(!long_picture_id(&short));
        // Truncated: never past the end.
        assert_eq!(descriptor_len(&[0x90]), 1);
    }

    #[test]
    fn a_descriptor_is_read_with_its_picture_id_and_keyframe() {
        // X, S; I (15-bit id 0x1234), L, T; then a 640x360 keyframe.
        let payload = [
            0x90, 0xe0, 0x92, 0x34, 7, 0x40, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68,
            0x01,
        ];
        let header = read(&payload).expect("a well-formed descriptor");
        assert!(header.keyframe);
        assert_eq!(header.size, Some((640, 360)));
        assert_eq!(
            header.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true
            })
        );
        assert_eq!(header.tl0_pic_idx, Some(7));
        assert!(rewrite(Some(header.descriptor), Some(5), Some(8)).is_some());
        assert!(rewrite(Some(header.descriptor), None, None).is_none());
        // Nothing after the descriptor: malformed.
        assert!(read(&payload[..6]).is_none());
        assert!(read(&[]).is_none());
    }

    /// The fields a built descriptor carries.
    #[derive(Debug, Clone)]
    struct Built {
        picture_id: Option<(u16, bool)>,
        tl0_pic_idx: Option<u8>,
        tid_keyidx: Option<u8>,
        start: bool,
        partition: u8,
        keyframe: bool,
        size: (u16, u16),
    }

    impl Built {
        fn descriptor(&self) -> Vec<u8> {
            let extended = self.picture_id.is_some() || self.tid_keyidx.is_some();
            let mut out =
                vec![u8::from(extended) << 7 | u8::from(self.start) << 4 | self.partition];
            if extended {
                out.push(
                    u8::from(self.picture_id.is_some()) << 7
                        | u8::from(self.tl0_pic_idx.is_some()) << 6
                        | if self.tid_keyidx.is_some() { 0x30 } else { 0 },
                );
            }
            match self.picture_id {
                Some((id, true)) => out.extend([0x80 | (id >> 8) as u8, id as u8]),
                Some((id, false)) => out.push(id as u8),
                None => {}
            }
            out.extend(self.tl0_pic_idx);
            out.extend(self.tid_keyidx);
            out
        }

        fn payload(&self) -> Vec<u8> {
            let mut out = self.descriptor();
            let (w, h) = self.size;
            out.extend([
                0x50 | u8::from(!self.keyframe),
                0x2a,
                0x01,
                0x9d,
                0x01,
                0x2a,
            ]);
            out.extend(w.to_le_bytes());
            out.extend(h.to_le_bytes());
            out
        }
    }

    fn built() -> impl Strategy<Value = Built> {
        (
            prop::option::of((0u16..0x8000, any::<bool>())),
            prop::option::of(any::<u8>()),
            prop::option::of(any::<u8>()),
            any::<bool>(),
            0u8..8,
            any::<bool>(),
            (1u16..0x4000, 1u16..0x4000),
        )
            .prop_map(
                |(picture_id, tl0_pic_idx, tid_keyidx, start, partition, keyframe, size)| {
                    let picture_id =
                        picture_id.map(|(id, long)| (if long { id } else { id & 0x7f }, long));
                    // TL0PICIDX comes only with a TID (RFC 7741 §4.2).
                    let tid_keyidx = if tl0_pic_idx.is_some() {
                        tid_keyidx.or(Some(0))
                    } else {
                        tid_keyidx
                    };
                    Built {
                        picture_id,
                        tl0_pic_idx,
                        tid_keyidx,
                        start,
                        partition,
                        keyframe,
                        size,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = read(&bytes);
            prop_assert!(descriptor_len(&bytes) <= bytes.len());
            let _ = long_picture_id(&bytes);
            let _ = keyframe_size(&bytes);
        }

        #[test]
        fn a_built_descriptor_reads_back(b in built()) {
            let payload = b.payload();
            let header = read(&payload).expect("a well-formed descriptor");
            prop_assert_eq!(descriptor_len(&payload), b.descriptor().len());
            prop_assert_eq!(
                header.picture_id,
                b.picture_id.map(|(value, long)| PictureId { value, long })
            );
            prop_assert_eq!(header.tl0_pic_idx, b.tl0_pic_idx);
            let keyframe = b.start && b.partition == 0 && b.keyframe;
            prop_assert_eq!(header.keyframe, keyframe);
            prop_assert_eq!(header.size, keyframe.then_some(b.size));
        }
    }
}
