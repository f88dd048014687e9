//! `parley turn`: the TURN server alone, for other servers (Matrix Synapse,
//! Nextcloud Talk, Jitsi) to hand to their clients. Command line,
//! `PARLEY_TURN_*` environment variables, or a TOML file, in that order.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use super::turn_common::{TurnCommonArgs, TurnCommonFile, pick};
use crate::tls::TlsFiles;
use crate::turn::TurnSettings;

/// Settings of `parley turn`.
#[derive(Debug, Default, Clone, Args)]
pub struct TurnArgs {
    /// TOML file with the same settings (command line and environment win).
    #[arg(long, env = "PARLEY_TURN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP and TCP listening address; repeat for several [default: 0.0.0.0:3478].
    #[arg(
        long,
        env = "PARLEY_TURN_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,
    /// TLS listening address [default: 0.0.0.0:5349 when --cert is set].
    #[arg(
        long,
        env = "PARLEY_TURN_TLS_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    pub tls_listen: Vec<SocketAddr>,
    /// TLS certificate chain (PEM) for TURN over TLS.
    #[arg(long, env = "PARLEY_TURN_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "PARLEY_TURN_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Realm of the long-term credentials, e.g. the server's domain.
    #[arg(long, env = "PARLEY_TURN_REALM", value_name = "REALM")]
    pub realm: Option<String>,
    /// Secrets, relay addresses and ports, allowed peers: as in `parley serve`.
    #[command(flatten)]
    pub common: TurnCommonArgs,
    /// A static user, NAME:PASSWORD; repeat for several.
    #[arg(
        long = "user",
        env = "PARLEY_TURN_USER",
        value_name = "NAME:PASSWORD",
        value_delimiter = ','
    )]
    pub users: Vec<String>,
    /// Most allocations at once [default: 10000].
    #[arg(long, env = "PARLEY_TURN_MAX_ALLOCATIONS", value_name = "N")]
    pub max_allocations: Option<usize>,
    /// Most allocations one username may hold [default: 50].
    #[arg(long, env = "PARLEY_TURN_MAX_ALLOCATIONS_PER_USER", value_name = "N")]
    pub max_allocations_per_user: Option<usize>,
    /// Bytes per second one allocation may relay, 0 for no limit [default: 0].
    #[arg(long, env = "PARLEY_TURN_BANDWIDTH", value_name = "BYTES")]
    pub bandwidth: Option<u64>,
    /// SOFTWARE attribute to send; none unless set.
    #[arg(long, env = "PARLEY_TURN_SOFTWARE", value_name = "NAME")]
    pub software: Option<String>,
    /// HTTP address for /metrics (Prometheus) and /healthz; off unless set.
    #[arg(long, env = "PARLEY_TURN_METRICS", value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Worker threads [default: one per core].
    #[arg(long, env = "PARLEY_TURN_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Log level: debug, info, warning, error or critical [default: info].
    #[arg(long, env = "PARLEY_TURN_LOG", value_name = "LEVEL")]
    pub log: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    tls_listen: Vec<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    realm: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    relay_ips: Vec<IpAddr>,
    relay_ports: Option<String>,
    #[serde(default)]
    allow_peers: Vec<String>,
    max_allocations: Option<usize>,
    max_allocations_per_user: Option<usize>,
    bandwidth: Option<u64>,
    software: Option<String>,
    metrics: Option<SocketAddr>,
    workers: Option<usize>,
    log: Option<String>,
}

/// `parley turn` settings, resolved.
#[derive(Debug, Clone)]
pub struct TurnCommand {
    /// The service settings.
    pub settings: TurnSettings,
    /// Where /metrics is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Log level name.
    pub log: String,
}

impl TurnArgs {
    /// Merges command line, environment, file and defaults, and validates.
    pub fn resolve(self) -> anyhow::Result<TurnCommand> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = pick(self.listen, file.listen);
        let listen = if listen.is_empty() {
            vec![SocketAddr::from(([0, 0, 0, 0], 3478))]
        } else {
            listen
        };
        let cert = self.cert.or(file.cert);
        let key = self.key.or(file.key);
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("TURN over TLS needs both a certificate and a key"),
        };
        let tls_listen = pick(self.tls_listen, file.tls_listen);
        let tls_listen = if tls_listen.is_empty() && tls.is_some() {
            vec![SocketAddr::from(([0, 0, 0, 0], 5349))]
        } else {
            tls_listen
        };
        let Some(realm) = self.realm.or(file.realm) else {
            bail!("--realm is required (for example your domain name)");
        };
        if realm.is_empty() || realm.len() > 127 {
            bail!("the realm must be 1 to 127 characters");
        }
        let users = pick(self.users, file.users)
            .into_iter()
            .map(|u| match u.split_once(':') {
                Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                    Ok((name.to_owned(), password.to_owned()))
                }
                _ => bail!("a --user is NAME:PASSWORD, got {u:?}"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let common = self.common.resolve(
            TurnCommonFile {
                relay_ips: file.relay_ips,
                relay_ports: file.relay_ports,
                allow_peers: file.allow_peers,
                secrets: file.secrets,
            },
            "",
        )?;
        let bandwidth = self.bandwidth.or(file.bandwidth).filter(|b| *b > 0);
        let workers = self
            .workers
            .or(file.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        if workers == 0 || workers > 256 {
            bail!("workers must be between 1 and 256");
        }
        Ok(TurnCommand {
            settings: TurnSettings {
                listen,
                tls_listen,
                tls,
                realm,
                secrets: common.secrets,
                users,
                relay_ips: common.relay_ips,
                relay_ports: common.relay_ports,
                allow_peers: common.allow_peers,
                always_peers: Vec::new(),
                own_ips: Vec::new(),
                max_allocations: self
                    .max_allocations
                    .or(file.max_allocations)
                    .unwrap_or(10_000),
                max_allocations_per_user: self
                    .max_allocations_per_user
                    .or(file.max_allocations_per_user)
                    .unwrap_or(50),
                bandwidth,
                software: self.software.or(file.software),
                workers,
            },
            metrics: self.metrics.or(file.metrics),
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_command_line_resolves() {
        let args = TurnArgs {
            listen: vec!["127.0.0.1:3478".parse().unwrap()],
            realm: Some("example.org".into()),
            common: TurnCommonArgs {
                secrets: vec!["s1".into(), "s2".into()],
                relay_ips: vec!["127.0.0.1".parse().unwrap()],
                relay_ports: Some("50000-50100".into()),
                allow_peers: vec!["127.0.0.0/8".parse().unwrap()],
            },
            users: vec!["alice:pw".into()],
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(
            c.settings.users,
            vec![("alice".to_owned(), "pw".to_owned())]
        );
        assert_eq!(c.settings.secrets, ["s1", "s2"]);
        assert_eq!(c.settings.relay_ports, 50000..=50100);
        assert!(c.settings.tls.is_none() && c.settings.tls_listen.is_empty());
        assert_eq!(c.settings.max_allocations, 10_000);
    }

    #[test]
    fn mistakes_are_named() {
        let secret = || TurnCommonArgs {
            secrets: vec!["s".into()],
            ..Default::default()
        };
        let base = || TurnArgs {
            realm: Some("r".into()),
            common: secret(),
            ..Default::default()
        };
        let err = |a: TurnArgs| format!("{:#}", a.resolve().unwrap_err());
        assert!(
            err(TurnArgs {
                realm: None,
                ..base()
            })
            .contains("--realm")
        );
        assert!(
            err(TurnArgs {
                users: vec!["nopassword".into()],
                ..base()
            })
            .contains("NAME:PASSWORD")
        );
        assert!(
            err(TurnArgs {
                common: TurnCommonArgs {
                    relay_ports: Some("9-1".into()),
                    ..secret()
                },
                ..base()
            })
            .contains("MIN-MAX")
        );
        assert!(
            err(TurnArgs {
                cert: Some("c.pem".into()),
                ..base()
            })
            .contains("certificate and a key")
        );
        assert!(
            err(TurnArgs {
                common: TurnCommonArgs {
                    secrets: vec![String::new()],
                    ..Default::default()
                },
                ..base()
            })
            .contains("a --secret must not be empty")
        );
        let two_v4 = vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()];
        assert!(
            err(TurnArgs {
                common: TurnCommonArgs {
                    relay_ips: two_v4,
                    ..secret()
                },
                ..base()
            })
            .contains("one IPv4 and one IPv6 --relay-ip")
        );
    }
}
