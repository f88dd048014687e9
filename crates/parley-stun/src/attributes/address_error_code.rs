//! ADDRESS-ERROR-CODE (RFC 8656 §18.12): why one family of a dual-family
//! allocation could not be served, while the other was.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

use super::Family;

/// The ADDRESS-ERROR-CODE attribute: family, error code, reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressErrorCode {
    /// The family that failed.
    pub family: Family,
    /// The error code (300–699).
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
}

impl AddressErrorCode {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x8001);

    fn value(&self) -> Vec<u8> {
        let family = match self.family {
            Family::V4 => 0x01,
            Family::V6 => 0x02,
        };
        let mut v = vec![family, 0, (self.code / 100) as u8, (self.code % 100) as u8];
        v.extend_from_slice(self.reason.as_bytes());
        v
    }
}

impl AttributeStaticType for AddressErrorCode {
    const TYPE: AttributeType = Self::TYPE_;
}

impl Attribute for AddressErrorCode {
    fn get_type(&self) -> AttributeType {
        Self::TYPE
    }
    fn length(&self) -> u16 {
        (4 + self.reason.len()) as u16
    }
}

impl AttributeWrite for AddressErrorCode {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Self::TYPE, &self.value()).into_owned()
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        let value = self.value();
        dest[4..4 + value.len()].copy_from_slice(&value);
        for b in &mut dest[4 + value.len()..] {
            *b = 0;
        }
    }
}

impl AttributeFromRaw<'_> for AddressErrorCode {
    fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
        raw.check_type_and_len(Self::TYPE, 4..=767)?;
        let family = match raw.value[0] {
            0x01 => Family::V4,
            0x02 => Family::V6,
            _ => return Err(StunParseError::InvalidAttributeData),
        };
        let code = u16::from(raw.value[2] & 0x07) * 100 + u16::from(raw.value[3]);
        let reason = std::str::from_utf8(&raw.value[4..])
            .map_err(|_| StunParseError::InvalidAttributeData)?
            .to_owned();
        Ok(AddressErrorCode {
            family,
            code,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let attr = AddressErrorCode {
            family: Family::V6,
            code: 440,
            reason: "Address Family not Supported".into(),
        };
        let raw = RawAttribute::from(&attr);
        assert_eq!(
            &raw.to_bytes()[..8],
            &[0x80, 0x01, 0x00, 32, 0x02, 0, 4, 40]
        );
        assert_eq!(AddressErrorCode::from_raw(raw).unwrap(), attr);
    }
}
