//! XOR-PEER-ADDRESS (RFC 8656 §18.3) and XOR-RELAYED-ADDRESS (§18.5): transport
//! addresses XOR-ed with the magic cookie and transaction id, like
//! XOR-MAPPED-ADDRESS.

use std::net::SocketAddr;

use stun_types::attribute::{
    Attribute, AttributeFromRaw, AttributeStaticType, AttributeType, AttributeWrite,
    AttributeWriteExt, RawAttribute, XorSocketAddr,
};
use stun_types::message::{StunParseError, TransactionId};

macro_rules! xor_address_attribute {
    ($(#[$doc:meta])* $name:ident, $code:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(XorSocketAddr);

        impl $name {
            pub(crate) const TYPE_: AttributeType = AttributeType::new($code);

            /// Encodes `addr` for a message with `transaction`.
            pub fn new(addr: SocketAddr, transaction: TransactionId) -> Self {
                $name(XorSocketAddr::new(addr, transaction))
            }

            /// Decodes the address of a message with `transaction`.
            pub fn addr(&self, transaction: TransactionId) -> SocketAddr {
                self.0.addr(transaction)
            }
        }

        impl AttributeStaticType for $name {
            const TYPE: AttributeType = Self::TYPE_;
        }

        impl Attribute for $name {
            fn get_type(&self) -> AttributeType {
                Self::TYPE
            }
            fn length(&self) -> u16 {
                self.0.length()
            }
        }

        impl AttributeWrite for $name {
            fn to_raw(&self) -> RawAttribute<'_> {
                self.0.to_raw(Self::TYPE)
            }
            fn write_into_unchecked(&self, dest: &mut [u8]) {
                self.write_header_unchecked(dest);
                self.0.write_into_unchecked(&mut dest[4..]);
            }
        }

        impl AttributeFromRaw<'_> for $name {
            fn from_raw_ref(raw: &RawAttribute) -> Result<Self, StunParseError> {
                raw.check_type_and_len(Self::TYPE, ..)?;
                Ok($name(XorSocketAddr::from_raw(raw)?))
            }
        }
    };
}

xor_address_attribute!(
    /// XOR-PEER-ADDRESS: a peer's address as the client names it.
    XorPeerAddress,
    0x0012
);

xor_address_attribute!(
    /// XOR-RELAYED-ADDRESS: the address the server relays from.
    XorRelayedAddress,
    0x0016
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        let tid = TransactionId::from(0x1234_5678_9abc_def0_1122_3344u128);
        for addr in ["198.51.100.7:3478", "[2001:db8::7]:49152"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let peer = XorPeerAddress::new(addr, tid);
            let raw = RawAttribute::from(&peer);
            assert_eq!(u16::from(raw.get_type()), 0x0012);
            assert_eq!(XorPeerAddress::from_raw(raw).unwrap().addr(tid), addr);
            let relayed = XorRelayedAddress::new(addr, tid);
            let raw = RawAttribute::from(&relayed);
            assert_eq!(u16::from(raw.get_type()), 0x0016);
            assert_eq!(XorRelayedAddress::from_raw(raw).unwrap().addr(tid), addr);
        }
    }
}
