//! ChannelData messages (RFC 8656 §12.4) and how STUN and ChannelData share
//! one transport: on datagrams by the first byte, on streams by framing.

/// Size of a ChannelData header: channel number and length.
pub const HEADER: usize = 4;

/// A parsed ChannelData message, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number (0x4000–0x7FFF, see [`ChannelNumber`](crate::attributes::ChannelNumber)).
    pub channel: u16,
    /// The application data.
    pub data: &'a [u8],
}

/// Why bytes are not a ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelDataError {
    /// Shorter than the header, or than the length the header claims.
    #[error("ChannelData truncated")]
    Truncated,
    /// The channel number is outside 0x4000–0x7FFF.
    #[error("channel number {0:#06x} out of range")]
    BadChannel(u16),
}

impl<'a> ChannelData<'a> {
    /// Parses a ChannelData message. Bytes after the stated length (UDP
    /// padding, RFC 8656 §12.5) are ignored.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        if buf.len() < HEADER {
            return Err(ChannelDataError::Truncated);
        }
        let channel = u16::from_be_bytes([buf[0], buf[1]]);
        if !(0x4000..=0x7FFF).contains(&channel) {
            return Err(ChannelDataError::BadChannel(channel));
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        let data = buf
            .get(HEADER..HEADER + len)
            .ok_or(ChannelDataError::Truncated)?;
        Ok(ChannelData { channel, data })
    }

    /// Writes the header for `len` bytes on `channel`.
    pub fn header(channel: u16, len: usize) -> [u8; HEADER] {
        let [c0, c1] = channel.to_be_bytes();
        let [l0, l1] = (len as u16).to_be_bytes();
        [c0, c1, l0, l1]
    }
}

/// What a datagram or stream frame holds, told by its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// First two bits 00.
    Stun,
    /// 0x40–0x7F.
    ChannelData,
    /// Anything else.
    Other,
}

/// Classifies by the first byte.
pub fn kind(buf: &[u8]) -> Kind {
    match buf.first() {
        Some(0..=3) => Kind::Stun,
        Some(0x40..=0x7F) => Kind::ChannelData,
        _ => Kind::Other,
    }
}

/// The STUN magic cookie (RFC 8489 §5), bytes 4–7 of every STUN message.
pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Whether `buf` starts like a STUN message: a STUN first byte (RFC 7983)
/// and the magic cookie (so at least 8 bytes are needed).
pub fn starts_with_stun(buf: &[u8]) -> bool {
    kind(buf) == Kind::Stun && buf.get(4..8) == Some(&MAGIC_COOKIE[..])
}

/// How long the next frame on a TCP or TLS stream is (RFC 8656 §12.5): a
/// STUN message is its 20-byte header plus its length; ChannelData is its
/// 4-byte header plus its length rounded up to a multiple of 4.
/// `Ok(None)` means more bytes are needed; an error means the stream is
/// garbage and should be closed.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ChannelDataError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    match kind(buf) {
        Kind::Stun => Ok(Some(20 + len)),
        Kind::ChannelData => Ok(Some(HEADER + len.next_multiple_of(4))),
        Kind::Other => Err(ChannelDataError::BadChannel(u16::from_be_bytes([
            buf[0], buf[1],
        ]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_ignores_padding() {
        let msg = [0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0];
        let cd = ChannelData::parse(&msg).unwrap();
        assert_eq!(cd.channel, 0x4001);
        assert_eq!(cd.data, b"abc");
        assert_eq!(ChannelData::header(0x4001, 3), [0x40, 0x01, 0x00, 0x03]);
    }

    #[test]
    fn refuses_short_and_out_of_range() {
        assert_eq!(
            ChannelData::parse(&[0x40, 0x01, 0x00]),
            Err(ChannelDataError::Truncated)
        );
        assert_eq!(
            ChannelData::parse(&[0x40, 0x01, 0x00, 0x09, 1]),
            Err(ChannelDataError::Truncated)
        );
        assert_eq!(
            ChannelData::parse(&[0x80, 0x00, 0x00, 0x00]),
            Err(ChannelDataError::BadChannel(0x8000))
        );
    }

    #[test]
    fn frames_streams() {
        assert_eq!(stream_frame_len(&[0x00, 0x01, 0x00]), Ok(None));
        assert_eq!(stream_frame_len(&[0x00, 0x01, 0x00, 0x08]), Ok(Some(28)));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x05]), Ok(Some(12)));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x08]), Ok(Some(12)));
        assert!(stream_frame_len(&[0x80, 0x00, 0x00, 0x08]).is_err());
        assert_eq!(kind(&[0x16]), Kind::Other);
    }
}
