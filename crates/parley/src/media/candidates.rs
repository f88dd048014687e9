//! Which addresses the SFU advertises as its ICE host candidates, and which
//! of them an incoming datagram was sent to.

use std::net::{IpAddr, SocketAddr};

/// The media socket's advertised addresses: the announced ones if any, else
/// the bound address, else (bound to all interfaces) each interface address
/// of the bound family. Loopback is advertised only when nothing else exists.
pub fn host_candidates(
    bound: SocketAddr,
    announce: &[IpAddr],
    interfaces: &[IpAddr],
) -> Vec<SocketAddr> {
    let port = bound.port();
    if !announce.is_empty() {
        return announce
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
    }
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let dual_stack = bound.is_ipv6();
    let usable = |ip: &&IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => dual_stack && !v6.is_unicast_link_local() && !v6.is_unspecified(),
    };
    let mut found: Vec<IpAddr> = interfaces
        .iter()
        .filter(usable)
        .filter(|ip| !ip.is_loopback())
        .copied()
        .collect();
    if found.is_empty() {
        found = interfaces
            .iter()
            .filter(usable)
            .filter(|ip| ip.is_loopback())
            .copied()
            .collect();
    }
    found.sort();
    found.dedup();
    found
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// Addresses as one line for logs: `a, b, c`.
pub fn show_addrs(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The addresses of this machine's interfaces.
pub fn interface_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!("cannot list network interfaces: {e}");
            Vec::new()
        }
    }
}

/// Names the candidate a datagram arrived on, from its destination IP (when
/// the socket reports it) for ICE's bookkeeping. With announced addresses
/// behind NAT, the packet's destination is the private address; it is
/// credited to the first announced address of the same family.
pub fn arrival_candidate(
    dst_ip: Option<IpAddr>,
    candidates: &[SocketAddr],
    local: SocketAddr,
) -> SocketAddr {
    let Some(ip) = dst_ip.map(|ip| ip.to_canonical()) else {
        return candidates.first().copied().unwrap_or(local);
    };
    candidates
        .iter()
        .find(|c| c.ip() == ip)
        .or_else(|| candidates.iter().find(|c| c.is_ipv4() == ip.is_ipv4()))
        .or(candidates.first())
        .copied()
        .unwrap_or(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn announced_addresses_win() {
        let c = host_candidates(
            sa("0.0.0.0:10000"),
            &[ip("203.0.113.7"), ip("10.0.0.2")],
            &[ip("10.0.0.2")],
        );
        assert_eq!(c, vec![sa("203.0.113.7:10000"), sa("10.0.0.2:10000")]);
    }

    #[test]
    fn a_specific_bind_address_is_advertised_as_is() {
        assert_eq!(
            host_candidates(sa("127.0.0.1:4000"), &[], &[]),
            vec![sa("127.0.0.1:4000")]
        );
    }

    #[test]
    fn all_interfaces_means_each_usable_address_of_the_family() {
        let ifs = [
            ip("127.0.0.1"),
            ip("192.0.2.2"),
            ip("169.254.1.1"),
            ip("fd00::2"),
            ip("::1"),
        ];
        assert_eq!(
            host_candidates(sa("0.0.0.0:10000"), &[], &ifs),
            vec![sa("192.0.2.2:10000")]
        );
        let dual = host_candidates(sa("[::]:10000"), &[], &ifs);
        assert_eq!(dual, vec![sa("192.0.2.2:10000"), sa("[fd00::2]:10000")]);
        // Only loopback on the machine: use it rather than nothing.
        assert_eq!(
            host_candidates(sa("0.0.0.0:10000"), &[], &[ip("127.0.0.1")]),
            vec![sa("127.0.0.1:10000")]
        );
    }

    #[test]
    fn arrivals_are_credited_to_the_right_candidate() {
        let cands = [
            sa("203.0.113.7:10000"),
            sa("10.0.0.2:10000"),
            sa("[2001:db8::1]:10000"),
        ];
        let local = sa("0.0.0.0:10000");
        assert_eq!(
            arrival_candidate(Some(ip("10.0.0.2")), &cands, local),
            cands[1]
        );
        // Behind NAT the private address is the destination; credit the public one.
        assert_eq!(
            arrival_candidate(Some(ip("172.16.0.5")), &cands, local),
            cands[0]
        );
        assert_eq!(
            arrival_candidate(Some(ip("::ffff:10.0.0.2")), &cands, local),
            cands[1]
        );
        assert_eq!(
            arrival_candidate(Some(ip("2001:db8::9")), &cands, local),
            cands[2]
        );
        assert_eq!(arrival_candidate(None, &cands, local), cands[0]);
    }
}
