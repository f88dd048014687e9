//! Which addresses are not globally reachable, after IANA's IPv4 and IPv6
//! Special-Purpose Address Registries (RFC 6890 and its updates): every
//! block whose "Globally Reachable" is False or N/A is refused, and IPv4
//! addresses embedded in IPv6 forms (mapped, NAT64, IPv4-compatible, 6to4,
//! Teredo) are decoded first, so a hidden loopback or private address is
//! refused as what it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Denied;

/// Classifies an address: `None` for globally reachable unicast.
pub fn classify(ip: IpAddr) -> Option<Denied> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `ip` lies in `net/prefix`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Whether `ip` lies in `net/prefix`.
fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The IPv4 special-purpose blocks that are not globally reachable, most
/// specific first where blocks nest.
const V4: &[([u8; 4], u32, Denied)] = &[
    ([0, 0, 0, 0], 32, Denied::Unspecified),
    ([0, 0, 0, 0], 8, Denied::Reserved), // "this network" (RFC 791)
    ([10, 0, 0, 0], 8, Denied::Private), // RFC 1918
    ([100, 64, 0, 0], 10, Denied::SharedCgnat), // RFC 6598
    ([127, 0, 0, 0], 8, Denied::Loopback),
    ([169, 254, 0, 0], 16, Denied::LinkLocal),
    ([172, 16, 0, 0], 12, Denied::Private),
    ([192, 0, 0, 0], 24, Denied::Reserved), // IETF protocol assignments (but .9, .10)
    ([192, 0, 2, 0], 24, Denied::Documentation), // TEST-NET-1
    ([192, 88, 99, 0], 24, Denied::Reserved), // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16, Denied::Private),
    ([198, 18, 0, 0], 15, Denied::Benchmarking), // RFC 2544
    ([198, 51, 100, 0], 24, Denied::Documentation), // TEST-NET-2
    ([203, 0, 113, 0], 24, Denied::Documentation), // TEST-NET-3
    ([224, 0, 0, 0], 4, Denied::Multicast),
    ([255, 255, 255, 255], 32, Denied::Multicast), // limited broadcast
    ([240, 0, 0, 0], 4, Denied::Reserved),
];

/// Globally reachable exceptions inside [`V4`]'s blocks: PCP anycast and
/// TURN anycast (RFC 7723, RFC 8155).
const V4_REACHABLE: &[[u8; 4]] = &[[192, 0, 0, 9], [192, 0, 0, 10]];

fn classify_v4(ip: Ipv4Addr) -> Option<Denied> {
    if V4_REACHABLE.contains(&ip.octets()) {
        return None;
    }
    V4.iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// The IPv6 special-purpose blocks that are not globally reachable (the
/// forms embedding IPv4 are decoded before these are looked at).
const V6: &[([u16; 8], u32, Denied)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, Denied::Unspecified),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, Denied::Loopback),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Denied::Reserved), // local-use translation (RFC 8215)
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Denied::Reserved),     // discard-only (RFC 6666)
    ([0x100, 0, 0, 1, 0, 0, 0, 0], 64, Denied::Reserved),     // dummy prefix (RFC 9780)
    ([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Denied::Benchmarking), // RFC 5180
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Denied::Documentation), // RFC 3849
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Denied::Documentation), // RFC 9637
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Denied::Reserved),    // SRv6 SIDs (RFC 9602)
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Denied::Private),      // unique local (RFC 4193)
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Denied::LinkLocal),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Denied::LinkLocal), // deprecated site-local
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Denied::Multicast),
];

/// Globally reachable blocks inside 2001::/23 (IETF protocol assignments,
/// which is otherwise not): PCP, TURN and DNS-SD SRP anycast, AMT, AS112,
/// ORCHIDv2, drone remote ID.
const V6_REACHABLE_IN_2001_23: &[([u16; 8], u32)] = &[
    ([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
    ([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
    ([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
    ([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
];

fn v4_at(ip: Ipv6Addr, word: usize) -> Ipv4Addr {
    let s = ip.segments();
    Ipv4Addr::from((u32::from(s[word]) << 16) | u32::from(s[word + 1]))
}

fn classify_v6(ip: Ipv6Addr) -> Option<Denied> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d: judge it as that address.
        return classify_v4(v4);
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        // The well-known NAT64 prefix (RFC 6052) is globally reachable; the
        // IPv4 address inside decides.
        return classify_v4(v4_at(ip, 6));
    }
    if let Some(why) = V6
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
    {
        return Some(why);
    }
    // Tunnels and deprecated forms that can carry any IPv4 address: what
    // they hide is named first, and they are refused anyway (N/A in the
    // registry: reachable only through relays the server does not control).
    if in_v6(ip, [0; 8], 96) {
        // IPv4-compatible (RFC 4291, deprecated).
        return Some(classify_v4(v4_at(ip, 6)).unwrap_or(Denied::Tunnel));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        // 6to4 (RFC 3056): the IPv4 address follows the prefix.
        return Some(classify_v4(v4_at(ip, 1)).unwrap_or(Denied::Tunnel));
    }
    if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32) {
        // Teredo (RFC 4380): the server's IPv4 address, then the client's
        // inverted in the last 32 bits.
        let client = Ipv4Addr::from(!u32::from(v4_at(ip, 6)));
        let why = classify_v4(client).or_else(|| classify_v4(v4_at(ip, 2)));
        return Some(why.unwrap_or(Denied::Tunnel));
    }
    if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 23)
        && !V6_REACHABLE_IN_2001_23
            .iter()
            .any(|(net, prefix)| in_v6(ip, *net, *prefix))
    {
        return Some(Denied::Reserved);
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        // Outside 2000::/3 nothing is allocated for global unicast.
        return Some(Denied::Reserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(s: &str) -> Option<Denied> {
        classify(s.parse().unwrap())
    }

    /// Every block of the two registries that is not globally reachable,
    /// with an address at each end, and the forms embedding IPv4.
    #[test]
    fn every_block_the_registries_call_not_globally_reachable_is_denied() {
        let cases: &[(&str, Denied)] = &[
            ("0.0.0.0", Denied::Unspecified),
            ("0.1.2.3", Denied::Reserved),
            ("0.255.255.255", Denied::Reserved),
            ("10.0.0.0", Denied::Private),
            ("10.255.255.255", Denied::Private),
            ("100.64.0.1", Denied::SharedCgnat),
            ("100.127.255.255", Denied::SharedCgnat),
            ("127.0.0.1", Denied::Loopback),
            ("127.255.0.9", Denied::Loopback),
            ("169.254.169.254", Denied::LinkLocal),
            ("172.16.0.1", Denied::Private),
            ("172.31.255.254", Denied::Private),
            ("192.0.0.0", Denied::Reserved),
            ("192.0.0.8", Denied::Reserved),
            ("192.0.0.170", Denied::Reserved),
            ("192.0.0.171", Denied::Reserved),
            ("192.0.0.255", Denied::Reserved),
            ("192.0.2.1", Denied::Documentation),
            ("192.88.99.1", Denied::Reserved),
            ("192.88.99.2", Denied::Reserved),
            ("192.168.1.1", Denied::Private),
            ("198.18.0.1", Denied::Benchmarking),
            ("198.19.255.254", Denied::Benchmarking),
            ("198.51.100.7", Denied::Documentation),
            ("203.0.113.7", Denied::Documentation),
            ("224.0.0.1", Denied::Multicast),
            ("239.255.255.250", Denied::Multicast),
            ("240.0.0.1", Denied::Reserved),
            ("255.255.255.254", Denied::Reserved),
            ("255.255.255.255", Denied::Multicast),
            ("::", Denied::Unspecified),
            ("::1", Denied::Loopback),
            ("::ffff:127.0.0.1", Denied::Loopback),
            ("::ffff:10.0.0.1", Denied::Private),
            ("::ffff:198.18.0.1", Denied::Benchmarking),
            ("64:ff9b::7f00:1", Denied::Loopback),
            ("64:ff9b::a00:1", Denied::Private),
            ("64:ff9b::c612:1", Denied::Benchmarking),
            ("64:ff9b:1::808:808", Denied::Reserved),
            ("100::1", Denied::Reserved),
            ("100:0:0:1::1", Denied::Reserved),
            ("2001:2::1", Denied::Benchmarking),
            ("2001:10::1", Denied::Reserved), // deprecated ORCHID
            ("2001:100::1", Denied::Reserved),
            ("2001:1::4", Denied::Reserved),
            ("2001:db8::1", Denied::Documentation),
            ("3fff::1", Denied::Documentation),
            ("3fff:fff::1", Denied::Documentation),
            ("5f00::1", Denied::Reserved),
            ("fc00::1", Denied::Private),
            ("fd12:3456::1", Denied::Private),
            ("fe80::1", Denied::LinkLocal),
            ("fec0::1", Denied::LinkLocal),
            ("ff02::1", Denied::Multicast),
            ("4000::1", Denied::Reserved),
            ("::7f00:1", Denied::Loopback), // IPv4-compatible, hiding loopback
            ("::808:808", Denied::Tunnel),
            ("2002:7f00:1::1", Denied::Loopback), // 6to4 of 127.0.0.1
            ("2002:c0a8:101::1", Denied::Private), // 6to4 of 192.168.1.1
            ("2002:808:808::1", Denied::Tunnel),
            // Teredo: server 65.54.227.120, client 127.0.0.1 (inverted).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Denied::Loopback),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", Denied::Tunnel),
        ];
        for (addr, reason) in cases {
            assert_eq!(denied(addr), Some(*reason), "{addr}");
        }
    }

    #[test]
    fn globally_reachable_unicast_is_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.3.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:30::1",
            "2001:200::1",
            "2620:4f:8000::1",
        ] {
            assert_eq!(denied(addr), None, "{addr}");
        }
    }
}
