//! REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6, RFC 6156) and
//! ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11): which IP family to relay from.

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute,
};
use stun_types::message::StunParseError;

/// An address family as TURN numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// 0x01.
    V4,
    /// 0x02.
    V6,
}

impl Family {
    fn code(self) -> u8 {
        match self {
            Family::V4 => 0x01,
            Family::V6 => 0x02,
        }
    }

    fn from_code(code: u8) -> Result<Self, StunParseError> {
        match code {
            0x01 => Ok(Family::V4),
            0x02 => Ok(Family::V6),
            _ => Err(StunParseError::InvalidAttributeData),
        }
    }

    /// The family of an address.
    pub fn of(addr: std::net::IpAddr) -> Self {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

macro_rules! family_attribute {
    ($(#[$doc:meta])* $name:ident, $code:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub Family);

        impl $name {
            pub(crate) const TYPE_: AttributeType = AttributeType::new($code);
        }

        impl AttributeStaticType for $name {
            const TYPE: AttributeType = Self::TYPE_;
        }

        impl Attribute for $name {
            fn get_type(&self) -> AttributeType {
                Self::TYPE
            }
            fn length(&self) -> u16 {
                4
            }
        }

        impl AttributeWrite for $name {
            fn to_raw(&self) -> RawAttribute<'_> {
                RawAttribute::new(Self::TYPE, &[self.0.code(), 0, 0, 0]).into_owned()
            }
            fn write_into_unchecked(&self, dest: &mut [u8]) {
                self.write_header_unchecked(dest);
                dest[4..8].copy_from_slice(&[self.0.code(), 0, 0, 0]);
            }
        }

        impl AttributeFromRaw<'_> for $name {
            fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
                raw.check_type_and_len(Self::TYPE, 4..=4)?;
                Ok($name(Family::from_code(raw.value[0])?))
            }
        }
    };
}

family_attribute!(
    /// REQUESTED-ADDRESS-FAMILY: relay from this family instead of IPv4.
    RequestedAddressFamily,
    0x0017
);

family_attribute!(
    /// ADDITIONAL-ADDRESS-FAMILY: also relay from this family (only IPv6 is allowed).
    AdditionalAddressFamily,
    0x8000
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_families() {
        let raw = RawAttribute::from(&RequestedAddressFamily(Family::V6));
        assert_eq!(raw.to_bytes(), [0x00, 0x17, 0x00, 0x04, 0x02, 0, 0, 0]);
        assert_eq!(
            RequestedAddressFamily::from_raw(raw).unwrap(),
            RequestedAddressFamily(Family::V6)
        );
        let raw = RawAttribute::new(RequestedAddressFamily::TYPE, &[0x03, 0, 0, 0]);
        assert!(RequestedAddressFamily::from_raw(raw).is_err());
        let raw = RawAttribute::from(&AdditionalAddressFamily(Family::V6));
        assert_eq!(u16::from(raw.get_type()), 0x8000);
    }
}
