//! EVEN-PORT (RFC 8656 §18.5): ask for an even relayed port; the R bit asks
//! to reserve the next one too.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// The EVEN-PORT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvenPort {
    /// The R bit: reserve the next higher port for a later allocation.
    pub reserve: bool,
}

impl EvenPort {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x0018);
}

impl AttributeStaticType for EvenPort {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for EvenPort {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        1
    }
}

impl AttributeWrite for EvenPort {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Self::TYPE, &[u8::from(self.reserve) << 7]).into_owned()
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        dest[4] = u8::from(self.reserve) << 7;
        dest[5..8].copy_from_slice(&[0, 0, 0]);
    }
}

impl AttributeFromRaw<'_> for EvenPort {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 1..=1)?;
        Ok(EvenPort {
            reserve: raw.value[0] & 0x80 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_reserve_bit() {
        for reserve in [false, true] {
            let attr = EvenPort { reserve };
            let raw = RawAttribute::from(&attr);
            assert_eq!(EvenPort::from_raw(raw).unwrap(), EvenPort { reserve });
        }
    }
}
