//! What the SFU reads of an RTP payload: only the codec's clear header
//! (VP8's payload descriptor and frame tag, VP9's descriptor, H.264's NAL
//! unit headers), never the coded media, so forwarding works the same for
//! media the browsers encrypt end to end. Each codec has its module; this
//! one picks by codec.

pub(crate) mod h264;
pub(crate) mod vp8;
pub(crate) mod vp9;

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

use crate::media::PictureId;

/// What one payload's clear header says, as far as the SFU cares.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Header {
    /// VP8, with its payload descriptor unless it is malformed.
    Vp8(Option<vp8::Header>),
    Vp9,
    H264,
    /// A codec the SFU reads nothing of (audio).
    Other,
}

/// Reads the clear header of a `codec` payload.
pub(crate) fn read(codec: Codec, payload: &[u8]) -> Header {
    match codec {
        Codec::Vp8 => Header::Vp8(vp8::read(payload)),
        Codec::Vp9 => Header::Vp9,
        Codec::H264 => Header::H264,
        _ => Header::Other,
    }
}

impl Header {
    /// The picture size, when the packet starts a keyframe that says it
    /// (VP8 only: elsewhere it is deep in the bitstream).
    pub(crate) fn size(&self) -> Option<(u16, u16)> {
        match self {
            Header::Vp8(Some(h)) => h.size,
            _ => None,
        }
    }

    /// Whether the payload is the first packet of a keyframe, a clean place
    /// to start forwarding. `frame_start`: the packet's RTP time is new on
    /// its layer.
    pub(crate) fn starts_keyframe(&self, payload: &[u8], frame_start: bool) -> bool {
        match self {
            Header::Vp8(h) => h.is_some_and(|h| h.keyframe),
            Header::Vp9 => vp9::starts_keyframe(payload),
            Header::H264 => h264::starts_keyframe(payload, frame_start),
            Header::Other => false,
        }
    }

    /// The VP8 payload descriptor, for rewriting picture ids.
    pub(crate) fn vp8_descriptor(&self) -> Option<Vp8Descriptor> {
        match self {
            Header::Vp8(Some(h)) => Some(h.descriptor),
            _ => None,
        }
    }

    /// The VP8 picture id, when the descriptor has one.
    pub(crate) fn picture_id(&self) -> Option<PictureId> {
        match self {
            Header::Vp8(Some(h)) => h.picture_id,
            _ => None,
        }
    }

    /// The VP8 TL0PICIDX, when the descriptor has one.
    pub(crate) fn tl0_pic_idx(&self) -> Option<u8> {
        match self {
            Header::Vp8(Some(h)) => h.tl0_pic_idx,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_codec_is_read_by_its_own_rules() {
        // A VP8 keyframe start: S bit, partition 0, frame tag with P clear.
        let vp8 = [
            0x10, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
        ];
        let header = read(Codec::Vp8, &vp8);
        assert!(header.starts_keyframe(&vp8, false));
        assert_eq!(header.size(), Some((640, 360)));
        assert!(header.vp8_descriptor().is_some());
        // The same bytes mean nothing to a codec the SFU does not read.
        let opus = read(Codec::Opus, &vp8);
        assert!(!opus.starts_keyframe(&vp8, true));
        assert_eq!(opus.size(), None);
        assert!(opus.vp8_descriptor().is_none());
        // VP9: B set, P clear.
        assert!(read(Codec::Vp9, &[0x08, 0]).starts_keyframe(&[0x08, 0], false));
        // H.264: an IDR slice counts at a frame's start only.
        let idr = [0x65, 0x88];
        assert!(read(Codec::H264, &idr).starts_keyframe(&idr, true));
        assert!(!read(Codec::H264, &idr).starts_keyframe(&idr, false));
    }
}
