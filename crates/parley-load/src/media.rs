//! The synthetic media a load publisher sends and a load subscriber reads:
//! frames shaped enough like VP8 and Opus for the SFU (keyframe bit, VP8
//! keyframe picture size) that carry a stamp: which publisher track, which
//! layer, the frame's index and when it was sent. Nothing is encoded or
//! decoded.

/// The stamp's length in bytes.
pub const STAMP_LEN: usize = 13;
/// Where the stamp starts in a VP8 keyframe (after the 10-byte header).
const KEY_OFFSET: usize = 10;
/// Where the stamp starts in a VP8 interframe (after the 3-byte tag).
const DELTA_OFFSET: usize = 3;

/// A simulcast layer the publisher sends.
#[derive(Debug, Clone, Copy)]
pub struct Layer {
    /// Its rid.
    pub rid: &'static str,
    /// Picture size written in keyframes.
    pub width: u16,
    /// Picture size written in keyframes.
    pub height: u16,
    /// Target bitrate, bits per second.
    pub bitrate: u32,
}

/// The three layers of `parley load`: 150, 500 and 1500 kbps.
pub const LAYERS: [Layer; 3] = [
    Layer {
        rid: "q",
        width: 320,
        height: 180,
        bitrate: 150_000,
    },
    Layer {
        rid: "h",
        width: 640,
        height: 360,
        bitrate: 500_000,
    },
    Layer {
        rid: "f",
        width: 1280,
        height: 720,
        bitrate: 1_500_000,
    },
];

/// Video frames per second.
pub const FPS: u32 = 25;

/// What a frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Layer index (0 lowest), 0 for audio.
    pub layer: u8,
    /// Frame index, the same on every layer for the same moment.
    pub index: u32,
    /// Microseconds since the generator started.
    pub sent_us: u64,
}

fn put_stamp(buf: &mut [u8], at: usize, s: Stamp) {
    buf[at] = s.layer;
    buf[at + 1..at + 5].copy_from_slice(&s.index.to_be_bytes());
    buf[at + 5..at + 13].copy_from_slice(&s.sent_us.to_be_bytes());
}

fn get_stamp(buf: &[u8], at: usize) -> Option<Stamp> {
    let b = buf.get(at..at + STAMP_LEN)?;
    Some(Stamp {
        layer: b[0],
        index: u32::from_be_bytes(b[1..5].try_into().ok()?),
        sent_us: u64::from_be_bytes(b[5..13].try_into().ok()?),
    })
}

/// A VP8-shaped frame of `size` bytes (the shape the scenario tests'
/// peers send too, `parley_peer::vp8_frame`), stamped after its header.
pub fn vp8_frame(layer: &Layer, keyframe: bool, size: usize, stamp: Stamp) -> Vec<u8> {
    let size = size.max(KEY_OFFSET + STAMP_LEN + 1);
    let mut frame = parley_peer::vp8_frame(keyframe, size, layer.width, layer.height);
    put_stamp(
        &mut frame,
        if keyframe { KEY_OFFSET } else { DELTA_OFFSET },
        stamp,
    );
    frame
}

/// The stamp of a VP8-shaped frame.
pub fn vp8_stamp(frame: &[u8]) -> Option<Stamp> {
    let keyframe = frame.first()? & 1 == 0;
    get_stamp(frame, if keyframe { KEY_OFFSET } else { DELTA_OFFSET })
}

/// An Opus-shaped packet of 20 ms.
pub fn opus_frame(stamp: Stamp) -> Vec<u8> {
    let mut frame = vec![0xfc; 60];
    put_stamp(&mut frame, 1, stamp);
    frame
}

/// The stamp of an Opus-shaped packet.
pub fn opus_stamp(frame: &[u8]) -> Option<Stamp> {
    get_stamp(frame, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_and_keyframes_carry_their_size() {
        let s = Stamp {
            layer: 2,
            index: 77,
            sent_us: 123_456,
        };
        let key = vp8_frame(&LAYERS[2], true, 3000, s);
        assert_eq!(key[0] & 1, 0);
        assert_eq!(&key[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([key[6], key[7]]), 1280);
        assert_eq!(vp8_stamp(&key), Some(s));
        let delta = vp8_frame(&LAYERS[0], false, 500, s);
        assert_eq!(delta[0] & 1, 1);
        assert_eq!(vp8_stamp(&delta), Some(s));
        assert_eq!(opus_stamp(&opus_frame(s)), Some(s));
    }
}
