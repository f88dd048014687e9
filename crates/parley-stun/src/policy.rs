//! Which peers TURN may relay to. Deny by default: the relay must not become
//! a way into the server's own networks (loopback, private, link-local,
//! CGNAT), nor a multicast or otherwise special-purpose sender, in any
//! spelling of those addresses (IPv4-mapped, NAT64, 6to4, Teredo).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CIDR network (expected e.g. 10.0.0.0/8 or 2001:db8::/32): {0}")]
pub struct BadCidr(String);

impl Cidr {
    /// A network; host bits of `addr` are ignored.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the network. IPv4-mapped IPv6 addresses match
    /// IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().map_err(|_| bad())?, Some(p)),
            None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a peer address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 0.0.0.0, `::`.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16 (RFC 1918), fc00::/7 (ULA).
    Private,
    /// 100.64.0.0/10 (RFC 6598).
    SharedCgnat,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 224/4, ff00::/8, 255.255.255.255.
    Multicast,
    /// 0.0.0.0/8, 240/4, 192.0.0.0/24 and other special-purpose space.
    Reserved,
    /// 6to4 (2002::/16), Teredo (2001::/32), IPv4-compatible (::/96),
    /// discard-only (100::/64): tunnels and forms that can hide any IPv4 address.
    Tunnel,
    /// Port 0, which nothing listens on.
    PortZero,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::Unspecified => "unspecified address",
            Denied::Loopback => "loopback address",
            Denied::Private => "private network address",
            Denied::SharedCgnat => "carrier-grade NAT address",
            Denied::LinkLocal => "link-local address",
            Denied::Multicast => "multicast or broadcast address",
            Denied::Reserved => "reserved address",
            Denied::Tunnel => "tunnelled IPv4 address form",
            Denied::PortZero => "port 0",
        })
    }
}

/// Classifies an address: `None` for ordinary public unicast.
pub fn classify(ip: IpAddr) -> Option<Denied> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Denied> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() {
        Some(Denied::Unspecified)
    } else if ip.is_loopback() {
        Some(Denied::Loopback)
    } else if ip.is_private() {
        Some(Denied::Private)
    } else if a == 100 && (64..128).contains(&b) {
        Some(Denied::SharedCgnat)
    } else if ip.is_link_local() {
        Some(Denied::LinkLocal)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(Denied::Multicast)
    } else if a == 0 || a >= 240 || (a == 192 && b == 0 && c == 0) {
        Some(Denied::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Denied> {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d: judge it as that address.
        return classify_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix (RFC 6052): the embedded IPv4 address decides.
        let [_, _, _, _, _, _, hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return classify_v4(v4).or(None);
    }
    if ip.is_unspecified() {
        Some(Denied::Unspecified)
    } else if ip.is_loopback() {
        Some(Denied::Loopback)
    } else if ip.is_unique_local() {
        Some(Denied::Private)
    } else if ip.is_unicast_link_local() || segments[0] & 0xffc0 == 0xfec0 {
        // fe80::/10, and the deprecated site-local fec0::/10.
        Some(Denied::LinkLocal)
    } else if ip.is_multicast() {
        Some(Denied::Multicast)
    } else if segments[0] == 0x2002
        || (segments[0] == 0x2001 && segments[1] == 0)
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || segments[..4] == [0x100, 0, 0, 0]
    {
        Some(Denied::Tunnel)
    } else {
        None
    }
}

/// The peer policy of one TURN server.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Networks relayed to despite being special (on-premises deployments).
    pub allow: Vec<Cidr>,
    /// Exact addresses always reachable, whatever their class: Parley's own
    /// SFU media sockets, so its TURN can relay to its SFU.
    pub always: Vec<SocketAddr>,
}

impl PeerPolicy {
    /// Whether TURN may relay to `peer`.
    pub fn check(&self, peer: SocketAddr) -> Result<(), Denied> {
        let ip = peer.ip().to_canonical();
        if self
            .always
            .iter()
            .any(|a| a.ip().to_canonical() == ip && a.port() == peer.port())
        {
            return Ok(());
        }
        if peer.port() == 0 {
            return Err(Denied::PortZero);
        }
        if self.allow.iter().any(|net| net.contains(ip)) {
            return Ok(());
        }
        match classify(peer.ip()) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Whether TURN may install a permission for `ip` (any port): the same
    /// rules, and an address reachable only on exact ports counts.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        let canonical = ip.to_canonical();
        if self
            .always
            .iter()
            .any(|a| a.ip().to_canonical() == canonical)
        {
            return Ok(());
        }
        self.check(SocketAddr::new(ip, 9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(s: &str) -> Option<Denied> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_special_family_is_denied() {
        let cases: &[(&str, Denied)] = &[
            ("0.0.0.0", Denied::Unspecified),
            ("0.1.2.3", Denied::Reserved),
            ("127.0.0.1", Denied::Loopback),
            ("127.255.0.9", Denied::Loopback),
            ("10.1.2.3", Denied::Private),
            ("172.16.0.1", Denied::Private),
            ("172.31.255.254", Denied::Private),
            ("192.168.1.1", Denied::Private),
            ("100.64.0.1", Denied::SharedCgnat),
            ("100.127.255.255", Denied::SharedCgnat),
            ("169.254.169.254", Denied::LinkLocal),
            ("224.0.0.1", Denied::Multicast),
            ("239.255.255.250", Denied::Multicast),
            ("255.255.255.255", Denied::Multicast),
            ("240.0.0.1", Denied::Reserved),
            ("192.0.0.8", Denied::Reserved),
            ("::", Denied::Unspecified),
            ("::1", Denied::Loopback),
            ("fc00::1", Denied::Private),
            ("fd12:3456::1", Denied::Private),
            ("fe80::1", Denied::LinkLocal),
            ("fec0::1", Denied::LinkLocal),
            ("ff02::1", Denied::Multicast),
            ("::ffff:127.0.0.1", Denied::Loopback),
            ("::ffff:10.0.0.1", Denied::Private),
            ("::ffff:169.254.1.1", Denied::LinkLocal),
            ("64:ff9b::7f00:1", Denied::Loopback),
            ("64:ff9b::a00:1", Denied::Private),
            ("2002:7f00:1::1", Denied::Tunnel),
            ("2002:c633:6401::1", Denied::Tunnel),
            ("2001:0:4136:e378::1", Denied::Tunnel),
            ("::7f00:1", Denied::Tunnel),
            ("100::1", Denied::Tunnel),
        ];
        for (addr, reason) in cases {
            assert_eq!(denied(addr), Some(*reason), "{addr}");
        }
    }

    #[test]
    fn public_unicast_is_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(denied(addr), None, "{addr}");
        }
    }

    #[test]
    fn allow_lists_and_exact_addresses_open_holes_only_where_asked() {
        let policy = PeerPolicy {
            allow: vec!["10.20.0.0/16".parse().unwrap()],
            always: vec!["127.0.0.1:10000".parse().unwrap()],
        };
        let ok = |s: &str| policy.check(s.parse().unwrap());
        assert_eq!(ok("10.20.3.4:5000"), Ok(()));
        assert_eq!(ok("[::ffff:10.20.3.4]:5000"), Ok(()));
        assert_eq!(ok("10.21.0.1:5000"), Err(Denied::Private));
        assert_eq!(ok("127.0.0.1:10000"), Ok(()), "the SFU is reachable");
        assert_eq!(ok("[::ffff:127.0.0.1]:10000"), Ok(()));
        assert_eq!(
            ok("127.0.0.1:10001"),
            Err(Denied::Loopback),
            "only on its port"
        );
        assert_eq!(ok("8.8.8.8:0"), Err(Denied::PortZero));
        assert_eq!(policy.check_ip("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(
            policy.check_ip("127.0.0.2".parse().unwrap()),
            Err(Denied::Loopback)
        );
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let host: Cidr = "2001:db8::1".parse().unwrap();
        assert!(host.contains("2001:db8::1".parse().unwrap()));
        assert!(!host.contains("2001:db8::2".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "fd00::/129", "nonsense/8", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
