//! DONT-FRAGMENT (RFC 8656 §18.8): an empty flag asking for the DF bit on
//! datagrams relayed to peers.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// The DONT-FRAGMENT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DontFragment;

impl DontFragment {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x001A);
}

impl AttributeStaticType for DontFragment {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for DontFragment {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        0
    }
}

impl AttributeWrite for DontFragment {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Self::TYPE, &[])
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
    }
}

impl AttributeFromRaw<'_> for DontFragment {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 0..=0)?;
        Ok(DontFragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let raw = RawAttribute::from(&DontFragment);
        assert_eq!(raw.to_bytes(), [0x00, 0x1A, 0x00, 0x00]);
        assert_eq!(DontFragment::from_raw(raw).unwrap(), DontFragment);
    }
}
