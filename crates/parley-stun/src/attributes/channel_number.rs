//! CHANNEL-NUMBER (RFC 8656 §18.1): a 16-bit channel number and 16 bits RFFU.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// The CHANNEL-NUMBER attribute. RFC 8656 §12 allows 0x4000–0x4FFF; RFC 5766
/// allowed 0x4000–0x7FFF, and clients written to it (coturn's own among them)
/// still pick from the wider range, which cannot be mistaken for anything
/// else on a client's connection to the server. Parley accepts the wider
/// range. The server checks it; the codec carries any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelNumber(pub u16);

impl ChannelNumber {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x000C);
    /// The lowest valid channel number.
    pub const MIN: u16 = 0x4000;
    /// The highest valid channel number.
    pub const MAX: u16 = 0x7FFF;

    /// Whether the number is in the range clients may bind.
    pub fn is_valid(self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self.0)
    }
}

impl AttributeStaticType for ChannelNumber {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for ChannelNumber {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        4
    }
}

impl AttributeWrite for ChannelNumber {
    fn to_raw(&self) -> RawAttribute<'_> {
        let [a, b] = self.0.to_be_bytes();
        RawAttribute::new(Self::TYPE, &[a, b, 0, 0]).into_owned()
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        dest[4..6].copy_from_slice(&self.0.to_be_bytes());
        dest[6..8].copy_from_slice(&[0, 0]);
    }
}

impl AttributeFromRaw<'_> for ChannelNumber {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 4..=4)?;
        Ok(ChannelNumber(u16::from_be_bytes([
            raw.value[0],
            raw.value[1],
        ])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_knows_its_range() {
        let raw = RawAttribute::from(&ChannelNumber(0x4001));
        assert_eq!(raw.to_bytes(), [0x00, 0x0C, 0x00, 0x04, 0x40, 0x01, 0, 0]);
        let parsed = ChannelNumber::from_raw(raw).unwrap();
        assert!(parsed.is_valid());
        assert!(!ChannelNumber(0x3FFF).is_valid());
        assert!(ChannelNumber(0x7FFF).is_valid(), "RFC 5766's range");
        assert!(!ChannelNumber(0x8000).is_valid());
    }
}
