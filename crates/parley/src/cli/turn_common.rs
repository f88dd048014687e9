//! The TURN options `parley serve` and `parley turn` share: REST secrets,
//! relay addresses and ports, and the networks TURN may relay to. One
//! struct, flattened into both commands, resolved in one place, so both read
//! `PARLEY_TURN_*` the same way. `parley turn` spells the flags as declared
//! here; `parley serve` puts `turn-` before them ([`serve_spelling`]).

use std::net::IpAddr;
use std::ops::RangeInclusive;

use anyhow::bail;
use clap::{Arg, Args};
use parley_stun::Cidr;

/// The relay port range when none is given.
const RELAY_PORTS: &str = "49152-65535";

/// The shared TURN options, as the command line and environment give them.
#[derive(Debug, Default, Clone, Args)]
pub struct TurnCommonArgs {
    /// Address relay sockets bind to and clients are told; one IPv4 and one IPv6 at most.
    #[arg(
        long = "relay-ip",
        env = "PARLEY_TURN_RELAY_IP",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub relay_ips: Vec<IpAddr>,
    /// Port range for relay sockets [default: 49152-65535].
    #[arg(long, env = "PARLEY_TURN_RELAY_PORTS", value_name = "MIN-MAX")]
    pub relay_ports: Option<String>,
    /// Network peers may be in although the default policy denies it (e.g.
    /// an on-premises 10.0.0.0/8); repeat for several.
    #[arg(
        long = "allow-peer",
        env = "PARLEY_TURN_ALLOW_PEER",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub allow_peers: Vec<Cidr>,
    /// TURN REST API shared secret (as Synapse's turn_shared_secret); repeat
    /// to accept several while rotating.
    #[arg(
        long = "secret",
        env = "PARLEY_TURN_SECRET",
        value_name = "S",
        value_delimiter = ','
    )]
    pub secrets: Vec<String>,
}

/// The same options as a config file gives them (each command's file
/// names them its own way).
#[derive(Debug, Default)]
pub struct TurnCommonFile {
    /// Relay addresses.
    pub relay_ips: Vec<IpAddr>,
    /// Relay port range, `MIN-MAX`.
    pub relay_ports: Option<String>,
    /// Allowed peer networks, unparsed.
    pub allow_peers: Vec<String>,
    /// REST secrets.
    pub secrets: Vec<String>,
}

/// The shared TURN options, resolved and validated.
#[derive(Debug, Clone)]
pub struct TurnCommon {
    /// Addresses relay sockets bind to (none: the default): at most one
    /// IPv4 and one IPv6.
    pub relay_ips: Vec<IpAddr>,
    /// Ports for relay sockets.
    pub relay_ports: RangeInclusive<u16>,
    /// Networks peers may be in despite the default denials.
    pub allow_peers: Vec<Cidr>,
    /// TURN REST API shared secrets, none empty.
    pub secrets: Vec<String>,
}

/// `parley serve`'s spelling of these flags, `--turn-relay-ip` and so on,
/// with help that speaks of the built-in server; for `mut_args`, so any
/// other argument passes unchanged.
pub fn serve_spelling(arg: Arg) -> Arg {
    let (long, help) = match arg.get_id().as_str() {
        "relay_ips" => (
            "turn-relay-ip",
            "Address TURN relay sockets bind to, one IPv4 and one IPv6 at most (comma-separated or repeated) [default: the media bind address, or the first interface address]",
        ),
        "relay_ports" => (
            "turn-relay-ports",
            "Port range of TURN relay sockets [default: 49152-65535]",
        ),
        "allow_peers" => (
            "turn-allow-peer",
            "Network TURN may relay to although the default policy denies it; repeat for several",
        ),
        "secrets" => (
            "turn-secret",
            "Extra TURN REST secret, so other services can mint credentials for this TURN server; several comma-separated or repeated while rotating",
        ),
        _ => return arg,
    };
    arg.long(long).help(help)
}

impl TurnCommonArgs {
    /// Merges the command line and environment with `file` (a value given
    /// here wins, a list given here replaces the file's) and the defaults.
    /// `flags` is what the command's flags start with (`""` or `"turn-"`),
    /// for the errors.
    pub fn resolve(self, file: TurnCommonFile, flags: &str) -> anyhow::Result<TurnCommon> {
        let secrets = pick(self.secrets, file.secrets);
        if secrets.iter().any(String::is_empty) {
            bail!("a --{flags}secret must not be empty");
        }
        let allow_peers = if self.allow_peers.is_empty() {
            file.allow_peers
                .iter()
                .map(|s| s.parse::<Cidr>().map_err(anyhow::Error::from))
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            self.allow_peers
        };
        let relay_ips = pick(self.relay_ips, file.relay_ips);
        if relay_ips.iter().filter(|ip| ip.is_ipv4()).count() > 1
            || relay_ips.iter().filter(|ip| ip.is_ipv6()).count() > 1
        {
            bail!("give at most one IPv4 and one IPv6 --{flags}relay-ip");
        }
        let relay_ports = parse_ports(
            self.relay_ports
                .or(file.relay_ports)
                .as_deref()
                .unwrap_or(RELAY_PORTS),
        )?;
        Ok(TurnCommon {
            relay_ips,
            relay_ports,
            allow_peers,
            secrets,
        })
    }
}

/// The command line's list if it gave one, else the file's.
pub fn pick<T>(cli: Vec<T>, file: Vec<T>) -> Vec<T> {
    if cli.is_empty() { file } else { cli }
}

/// Parses `MIN-MAX`.
pub fn parse_ports(s: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let bad =
        || anyhow::anyhow!("a port range is MIN-MAX with 1 <= MIN <= MAX <= 65535, got {s:?}");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: TurnCommonArgs, file: TurnCommonFile) -> anyhow::Result<TurnCommon> {
        args.resolve(file, "")
    }

    #[test]
    fn the_command_line_replaces_the_file_and_defaults_fill_the_rest() {
        let file = TurnCommonFile {
            secrets: vec!["from-file".into()],
            allow_peers: vec!["10.0.0.0/8".into()],
            ..Default::default()
        };
        let args = TurnCommonArgs {
            secrets: vec!["s1".into(), "s2".into()],
            ..Default::default()
        };
        let c = resolve(args, file).unwrap();
        assert_eq!(c.secrets, ["s1", "s2"]);
        assert_eq!(c.allow_peers, vec!["10.0.0.0/8".parse::<Cidr>().unwrap()]);
        assert_eq!(c.relay_ports, 49152..=65535);
        assert!(c.relay_ips.is_empty());
    }

    #[test]
    fn mistakes_name_the_commands_flag() {
        let err = |args: TurnCommonArgs, flags: &str| {
            format!(
                "{:#}",
                args.resolve(TurnCommonFile::default(), flags).unwrap_err()
            )
        };
        let empty = TurnCommonArgs {
            secrets: vec![String::new()],
            ..Default::default()
        };
        assert!(err(empty.clone(), "").contains("a --secret must not"));
        assert!(err(empty, "turn-").contains("a --turn-secret must not"));
        let two_v4 = TurnCommonArgs {
            relay_ips: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
            ..Default::default()
        };
        assert!(err(two_v4, "turn-").contains("one IPv4 and one IPv6 --turn-relay-ip"));
        for bad in ["9-1", "0-10", "10"] {
            let ports = TurnCommonArgs {
                relay_ports: Some(bad.into()),
                ..Default::default()
            };
            assert!(err(ports, "").contains("MIN-MAX"), "{bad}");
        }
        let file = TurnCommonFile {
            allow_peers: vec!["not a network".into()],
            ..Default::default()
        };
        assert!(resolve(TurnCommonArgs::default(), file).is_err());
    }
}
