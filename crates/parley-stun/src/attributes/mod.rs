//! The TURN attributes (RFC 8656 §18, RFC 6156), implemented on the
//! `stun-types` attribute traits so they parse and write like its own.

mod address_error_code;
mod address_family;
mod channel_number;
mod data;
mod dont_fragment;
mod even_port;
mod lifetime;
mod peer_address;
mod requested_transport;

pub use address_error_code::AddressErrorCode;
pub use address_family::{AdditionalAddressFamily, Family, RequestedAddressFamily};
pub use channel_number::ChannelNumber;
pub use data::Data;
pub use dont_fragment::DontFragment;
pub use even_port::EvenPort;
pub use lifetime::Lifetime;
pub use peer_address::{XorPeerAddress, XorRelayedAddress};
pub use requested_transport::{RequestedTransport, UDP};

use stun_types::attribute::AttributeType;

/// RESERVATION-TOKEN (RFC 8656 §18.9). Parley does not reserve ports, so a
/// request carrying one is refused as unknown (420) like any other
/// comprehension-required attribute it does not implement.
pub const RESERVATION_TOKEN: AttributeType = AttributeType::new(0x0022);

/// Every comprehension-required attribute a TURN request to Parley may carry.
/// Anything else in the 0x0000–0x7FFF range gets 420 (RFC 8489 §14).
pub const KNOWN: &[AttributeType] = &[
    ChannelNumber::TYPE_,
    Lifetime::TYPE_,
    XorPeerAddress::TYPE_,
    Data::TYPE_,
    XorRelayedAddress::TYPE_,
    RequestedAddressFamily::TYPE_,
    EvenPort::TYPE_,
    RequestedTransport::TYPE_,
    DontFragment::TYPE_,
    AdditionalAddressFamily::TYPE_,
];
