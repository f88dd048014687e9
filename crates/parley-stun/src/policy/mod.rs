//! Which peers TURN may relay to. Deny by default: the relay must not become
//! a way into the server's own networks (loopback, private, link-local,
//! CGNAT), nor a multicast or otherwise special-purpose sender, in any
//! spelling of those addresses (IPv4-mapped, NAT64, 6to4, Teredo), nor
//! the server itself.

mod special;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;

pub use special::classify;

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
    /// Documentation ranges: 192.0.2/24, 198.51.100/24, 203.0.113/24,
    /// 2001:db8::/32, 3fff::/20.
    Documentation,
    /// Benchmarking ranges: 198.18.0.0/15 (RFC 2544), 2001:2::/48.
    Benchmarking,
    /// 0.0.0.0/8, 240/4, 192.0.0.0/24 and other special-purpose space.
    Reserved,
    /// 6to4 (2002::/16), Teredo (2001::/32), IPv4-compatible (::/96):
    /// tunnels and forms that can hide any IPv4 address.
    Tunnel,
    /// One of this server's own addresses: relaying there would loop the
    /// server's traffic back into itself.
    Own,
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
            Denied::Documentation => "documentation address",
            Denied::Benchmarking => "benchmarking address",
            Denied::Reserved => "reserved address",
            Denied::Tunnel => "tunnelled IPv4 address form",
            Denied::Own => "this server's own address",
            Denied::PortZero => "port 0",
        })
    }
}

/// The server itself, as a peer it must not relay to: the addresses it has
/// (relay addresses, listening addresses, and with a wildcard listener every
/// interface address) and the UDP ports it receives on there (its listening
/// ports and the relay port range). An own address on one of those ports is
/// refused whatever the allow list says: data sent there would come back
/// into the server as a new client or another allocation's peer, a loop that
/// lets one client make the server carry its traffic many times over. An
/// own address on another port is refused unless an allowed network covers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddresses {
    /// The server's addresses.
    pub ips: Vec<IpAddr>,
    /// The UDP ports it receives on at those addresses.
    pub ports: Vec<RangeInclusive<u16>>,
}

impl OwnAddresses {
    fn has_ip(&self, ip: IpAddr) -> bool {
        self.ips.iter().any(|own| own.to_canonical() == ip)
    }

    fn is_socket(&self, peer: SocketAddr) -> bool {
        self.has_ip(peer.ip().to_canonical()) && self.ports.iter().any(|r| r.contains(&peer.port()))
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
    /// The server's own addresses and ports, never relayed to.
    pub own: OwnAddresses,
}

impl PeerPolicy {
    /// Whether TURN may relay to `peer` (a Send indication, a ChannelBind).
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
        if self.own.is_socket(peer) {
            return Err(Denied::Own);
        }
        self.check_address(ip)
    }

    /// Whether TURN may install a permission for `peer`'s address. A
    /// permission covers every port of the address (RFC 8656 §9), but a
    /// request naming port 0 or one of the server's own sockets is refused
    /// all the same, as ChannelBind would refuse it.
    pub fn check_permission(&self, peer: SocketAddr) -> Result<(), Denied> {
        if peer.port() == 0 {
            return Err(Denied::PortZero);
        }
        if self.own.is_socket(peer) && !self.always.contains(&peer) {
            return Err(Denied::Own);
        }
        self.check_ip(peer.ip())
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
        self.check_address(canonical)
    }

    /// The address rules, past the exact addresses and ports.
    fn check_address(&self, ip: IpAddr) -> Result<(), Denied> {
        let allowed = self.allow.iter().any(|net| net.contains(ip));
        if self.own.has_ip(ip) && !allowed {
            return Err(Denied::Own);
        }
        if allowed {
            return Ok(());
        }
        match classify(ip) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_and_exact_addresses_open_holes_only_where_asked() {
        let policy = PeerPolicy {
            allow: vec!["10.20.0.0/16".parse().unwrap()],
            always: vec!["127.0.0.1:10000".parse().unwrap()],
            own: OwnAddresses::default(),
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
        assert_eq!(
            policy.check_permission("8.8.8.8:0".parse().unwrap()),
            Err(Denied::PortZero),
            "a permission naming port 0 is refused as a channel to it is"
        );
        assert_eq!(policy.check_ip("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(
            policy.check_ip("127.0.0.2".parse().unwrap()),
            Err(Denied::Loopback)
        );
    }

    /// A relay loop: the server's own relay ports and listening ports are
    /// never peers, even where the allow list covers the address; its other
    /// ports only where the allow list says so.
    #[test]
    fn the_server_itself_is_never_a_peer_unless_allowed_and_never_its_own_sockets() {
        let own = OwnAddresses {
            ips: vec![
                "198.51.100.4".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ],
            ports: vec![3478..=3478, 49152..=65535],
        };
        let strict = PeerPolicy {
            allow: Vec::new(),
            always: vec!["198.51.100.4:10000".parse().unwrap()],
            own: own.clone(),
        };
        let check = |p: &PeerPolicy, s: &str| p.check(s.parse().unwrap());
        let permit = |p: &PeerPolicy, s: &str| p.check_permission(s.parse().unwrap());
        assert_eq!(check(&strict, "198.51.100.4:50000"), Err(Denied::Own));
        assert_eq!(check(&strict, "198.51.100.4:3478"), Err(Denied::Own));
        assert_eq!(
            check(&strict, "[::ffff:198.51.100.4]:3478"),
            Err(Denied::Own)
        );
        assert_eq!(check(&strict, "198.51.100.4:22"), Err(Denied::Own));
        assert_eq!(check(&strict, "198.51.100.4:10000"), Ok(()), "the SFU");
        assert_eq!(permit(&strict, "198.51.100.4:50000"), Err(Denied::Own));
        assert_eq!(permit(&strict, "198.51.100.4:10000"), Ok(()));

        let open = PeerPolicy {
            allow: vec!["0.0.0.0/0".parse().unwrap()],
            always: Vec::new(),
            own,
        };
        assert_eq!(check(&open, "127.0.0.1:50000"), Err(Denied::Own));
        assert_eq!(check(&open, "198.51.100.4:3478"), Err(Denied::Own));
        assert_eq!(permit(&open, "127.0.0.1:65535"), Err(Denied::Own));
        assert_eq!(
            check(&open, "127.0.0.1:7000"),
            Ok(()),
            "allowed, not a loop"
        );
        assert_eq!(permit(&open, "127.0.0.1:7000"), Ok(()));
        assert_eq!(
            check(&open, "127.0.0.2:50000"),
            Ok(()),
            "not an own address"
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
