//! REQUESTED-TRANSPORT (RFC 8656 §18.7): the relayed transport's IP protocol number.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// IP protocol number of UDP, the only relayed transport Parley offers.
pub const UDP: u8 = 17;

/// The REQUESTED-TRANSPORT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x0019);
}

impl AttributeStaticType for RequestedTransport {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for RequestedTransport {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        4
    }
}

impl AttributeWrite for RequestedTransport {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Self::TYPE, &[self.0, 0, 0, 0]).into_owned()
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        dest[4..8].copy_from_slice(&[self.0, 0, 0, 0]);
    }
}

impl AttributeFromRaw<'_> for RequestedTransport {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 4..=4)?;
        Ok(RequestedTransport(raw.value[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let raw = RawAttribute::from(&RequestedTransport(UDP));
        assert_eq!(raw.to_bytes(), [0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
        assert_eq!(
            RequestedTransport::from_raw(raw).unwrap(),
            RequestedTransport(UDP)
        );
    }
}
