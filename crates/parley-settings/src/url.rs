//! STUN and TURN URLs (RFC 7064, RFC 7065): `stun:host[:port]`,
//! `stuns:host[:port]`, `turn:host[:port][?transport=udp|tcp]`,
//! `turns:host[:port][?transport=tcp]`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The scheme of an ICE server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `stun:`
    Stun,
    /// `stuns:` (STUN over TLS)
    Stuns,
    /// `turn:`
    Turn,
    /// `turns:` (TURN over TLS)
    Turns,
}

impl Scheme {
    /// Whether this is a TURN scheme.
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Stun | Scheme::Turn => 3478,
            Scheme::Stuns | Scheme::Turns => 5349,
        }
    }
}

/// A parsed ICE server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name, IPv4 address, or IPv6 address without brackets.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// `udp` or `tcp`, when given (TURN only).
    pub transport: Option<String>,
}

impl IceUrl {
    /// Parses and checks a URL.
    pub fn parse(raw: &str) -> Result<IceUrl, String> {
        let raw = raw.trim();
        let (scheme, rest) = match raw.split_once(':') {
            Some(("stun", r)) => (Scheme::Stun, r),
            Some(("stuns", r)) => (Scheme::Stuns, r),
            Some(("turn", r)) => (Scheme::Turn, r),
            Some(("turns", r)) => (Scheme::Turns, r),
            Some((other, _)) => {
                return Err(format!(
                    "the scheme must be stun:, stuns:, turn: or turns:, not {other}:"
                ));
            }
            None => return Err("expected a URL like stun:stun.example.org:3478".into()),
        };
        if rest.starts_with("//") {
            return Err("ICE URLs have no //: write stun:host:port".into());
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => None,
            Some(q) => {
                let value = q.strip_prefix("transport=").ok_or_else(|| {
                    format!("unknown URL parameter {q:?}; only transport= is allowed")
                })?;
                if !scheme.is_turn() {
                    return Err("stun: URLs take no transport parameter".into());
                }
                match value {
                    "udp" if scheme == Scheme::Turn => Some("udp".to_owned()),
                    "tcp" => Some("tcp".to_owned()),
                    "udp" => return Err("turns: runs over TLS, so its transport is tcp".into()),
                    other => return Err(format!("transport must be udp or tcp, not {other:?}")),
                }
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or("an IPv6 address needs a closing ]")?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err("expected :port after the IPv6 address".into()),
            };
            (addr.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("{p:?} is not a port (1-65535)")),
                Ok(p) => p,
            },
            None => scheme.default_port(),
        };
        if host.is_empty() {
            return Err("the host is missing".into());
        }
        if !host.contains(':') && host.parse::<Ipv4Addr>().is_err() && !is_host_name(&host) {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        Ok(IceUrl {
            scheme,
            host,
            port,
            transport,
        })
    }
}

fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}:[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{scheme}:{}:{}", self.host, self.port)?;
        }
        if let Some(t) = &self.transport {
            write!(f, "?transport={t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_parse() {
        let u = IceUrl::parse("turn:turn.example.org:3478?transport=tcp").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport.as_deref()),
            (Scheme::Turn, "turn.example.org", 3478, Some("tcp"))
        );
        assert_eq!(IceUrl::parse("stun:stun.example.org").unwrap().port, 3478);
        assert_eq!(IceUrl::parse("turns:turn.example.org").unwrap().port, 5349);
        let v6 = IceUrl::parse("stun:[2001:db8::1]:19302").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 19302));
        assert_eq!(v6.to_string(), "stun:[2001:db8::1]:19302");
        assert_eq!(
            IceUrl::parse("stun:192.0.2.1:3478").unwrap().host,
            "192.0.2.1"
        );
    }

    #[test]
    fn bad_urls_say_why() {
        let cases = [
            ("http://turn.example.org", "scheme"),
            ("turn://turn.example.org", "//"),
            ("stun:", "host"),
            ("stun:host:0", "port"),
            ("stun:host:99999", "port"),
            ("stun:host?transport=udp", "no transport"),
            ("turn:host?transport=sctp", "udp or tcp"),
            ("turns:host?transport=udp", "TLS"),
            ("turn:host?foo=bar", "parameter"),
            ("stun:bad_host!", "host name"),
            ("stun:[::1", "closing"),
            ("stun.example.org", "URL"),
        ];
        for (url, hint) in cases {
            let e = IceUrl::parse(url).unwrap_err();
            assert!(e.contains(hint), "{url}: {e}");
        }
    }
}
