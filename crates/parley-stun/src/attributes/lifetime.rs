//! LIFETIME (RFC 8656 §18.2): seconds until an allocation expires unless refreshed.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// The LIFETIME attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub u32);

impl Lifetime {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x000D);
}

impl AttributeStaticType for Lifetime {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for Lifetime {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        4
    }
}

impl AttributeWrite for Lifetime {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Self::TYPE, &self.0.to_be_bytes()).into_owned()
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        dest[4..8].copy_from_slice(&self.0.to_be_bytes());
    }
}

impl AttributeFromRaw<'_> for Lifetime {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 4..=4)?;
        Ok(Lifetime(u32::from_be_bytes([
            raw.value[0],
            raw.value[1],
            raw.value[2],
            raw.value[3],
        ])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let raw = RawAttribute::from(&Lifetime(600));
        assert_eq!(raw.to_bytes(), [0x00, 0x0D, 0x00, 0x04, 0, 0, 0x02, 0x58]);
        assert_eq!(Lifetime::from_raw(raw).unwrap(), Lifetime(600));
    }

    #[test]
    fn refuses_a_wrong_length() {
        let raw = RawAttribute::new(Lifetime::TYPE, &[0, 0, 2]);
        assert!(Lifetime::from_raw(raw).is_err());
    }
}
