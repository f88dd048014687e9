//! `parley serve` settings: command line, `PARLEY_*` environment variables,
//! a TOML file, and embedded defaults, in that order of precedence.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use parley_settings::LogLevel;
use serde::Deserialize;

use super::turn_common::{TurnCommonArgs, TurnCommonFile, serve_spelling};
use crate::serve::{ServeConfig, TurnOptions};
use crate::tls::TlsFiles;
use crate::tls::acme::{self, AcmeOptions};

/// The most media workers (SFU shards) that may be asked for.
const MAX_MEDIA_WORKERS: usize = 64;

/// The most addresses that may be announced (as in the seed products).
pub const MAX_ANNOUNCE: usize = 4;

/// Command-line (and environment) settings of `parley serve`. Every field is
/// optional so that a config file can fill what the command line leaves out.
#[derive(Debug, Default, Clone, Args)]
#[command(mut_args(serve_spelling))]
pub struct ServeArgs {
    /// TOML config file with the same settings (command line and environment win).
    #[arg(long, env = "PARLEY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP and WebSocket listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "PARLEY_HTTP", value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// One-port mode: HTTPS, WSS and ICE-TCP on this address (e.g.
    /// 0.0.0.0:443), told apart by their first bytes; needs --tls-cert and
    /// --tls-key (reloaded when the files change).
    #[arg(long, env = "PARLEY_HTTPS", value_name = "ADDR:PORT")]
    pub https: Option<SocketAddr>,
    /// With --https: get the certificate for this host name from an ACME CA
    /// (Let's Encrypt), answering HTTP-01 challenges on --http (which the CA
    /// reaches on port 80), instead of --tls-cert/--tls-key.
    #[arg(long, env = "PARLEY_ACME_DOMAIN", value_name = "NAME")]
    pub acme_domain: Option<String>,
    /// Contact e-mail for the ACME CA.
    #[arg(long, env = "PARLEY_ACME_EMAIL", value_name = "ADDRESS")]
    pub acme_email: Option<String>,
    /// The ACME CA's directory URL [default: Let's Encrypt].
    #[arg(long, env = "PARLEY_ACME_DIRECTORY", value_name = "URL")]
    pub acme_directory: Option<String>,
    /// Extra root certificate (PEM) trusted for the ACME CA's own HTTPS (a private or test CA).
    #[arg(long, env = "PARLEY_ACME_CA_ROOT", value_name = "FILE")]
    pub acme_ca_root: Option<PathBuf>,
    /// UDP port for all media [default: 10000].
    #[arg(long, env = "PARLEY_MEDIA_PORT", value_name = "PORT")]
    pub media_port: Option<u16>,
    /// Address the media socket binds to [default: the --http address].
    #[arg(long, env = "PARLEY_MEDIA_BIND", value_name = "IP")]
    pub media_bind: Option<IpAddr>,
    /// Where the database lives [default: ./data].
    #[arg(long, env = "PARLEY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address clients reach the media port at, e.g. a public IP in front of
    /// NAT. Repeat (or separate with commas) for up to 4. Without it, the
    /// bound address (or each interface's address) is advertised.
    #[arg(
        long,
        env = "PARLEY_ANNOUNCE",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub announce: Vec<IpAddr>,
    /// Log level: debug, informational, warning, error or critical [default: informational].
    #[arg(long, env = "PARLEY_LOG", value_name = "LEVEL")]
    pub log: Option<String>,
    /// Most participants in one room, 2–60 [default: 20].
    #[arg(long, env = "PARLEY_MAX_ROOM_MEMBERS", value_name = "N")]
    pub max_room_members: Option<usize>,
    /// Media workers: SFU shards forwarding rooms in parallel, each room on
    /// one [default: one per CPU core this process may use; at most 64].
    #[arg(long, env = "PARLEY_MEDIA_WORKERS", value_name = "N")]
    pub media_workers: Option<usize>,
    /// Turn the built-in TURN server off.
    #[arg(long, env = "PARLEY_NO_TURN")]
    pub no_turn: bool,
    /// UDP and TCP port of the built-in TURN server [default: 3478].
    #[arg(long, env = "PARLEY_TURN_PORT", value_name = "PORT")]
    pub turn_port: Option<u16>,
    /// TLS port of the built-in TURN server, used with --tls-cert [default: 5349].
    #[arg(long, env = "PARLEY_TURN_TLS_PORT", value_name = "PORT")]
    pub turn_tls_port: Option<u16>,
    /// Host name (or IP) clients use in TURN URLs [default: the first media address].
    #[arg(long, env = "PARLEY_TURN_HOST", value_name = "NAME")]
    pub turn_host: Option<String>,
    /// Relay addresses and ports, allowed peers, secrets: `parley turn`'s
    /// options, spelled `--turn-…` here.
    #[command(flatten)]
    pub turn: TurnCommonArgs,
    /// Lifetime of the TURN credentials handed to participants, in seconds [default: 21600].
    #[arg(long, env = "PARLEY_TURN_CREDENTIAL_TTL", value_name = "SECS")]
    pub turn_credential_ttl: Option<u64>,
    /// TLS certificate chain (PEM), for TURN over TLS.
    #[arg(
        long,
        env = "PARLEY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(
        long,
        env = "PARLEY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The config file's shape: the same settings as the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    acme_domain: Option<String>,
    acme_email: Option<String>,
    acme_directory: Option<String>,
    acme_ca_root: Option<PathBuf>,
    media_port: Option<u16>,
    media_bind: Option<IpAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    announce: Vec<IpAddr>,
    log: Option<String>,
    max_room_members: Option<usize>,
    media_workers: Option<usize>,
    turn: Option<bool>,
    turn_port: Option<u16>,
    turn_tls_port: Option<u16>,
    turn_host: Option<String>,
    turn_relay_ip: Option<IpAddr>,
    turn_relay_ports: Option<String>,
    #[serde(default)]
    turn_allow_peers: Vec<String>,
    turn_secret: Option<String>,
    turn_credential_ttl: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// Merges command line, environment (already here), file and defaults, and validates.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let args = self;
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let http = args
            .http
            .or(file.http)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)));
        let media_port = args.media_port.or(file.media_port).unwrap_or(10000);
        let media_bind = args.media_bind.or(file.media_bind).unwrap_or(http.ip());
        let announce = if args.announce.is_empty() {
            file.announce
        } else {
            args.announce.clone()
        };
        let log = LogLevel::parse(
            args.log
                .as_deref()
                .or(file.log.as_deref())
                .unwrap_or("info"),
        )
        .map_err(anyhow::Error::msg)?;
        let max_room_members = args
            .max_room_members
            .or(file.max_room_members)
            .unwrap_or(20);
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));

        if announce.len() > MAX_ANNOUNCE {
            bail!(
                "at most {MAX_ANNOUNCE} announced addresses are allowed, {} given",
                announce.len()
            );
        }
        for ip in &announce {
            if ip.is_unspecified() || ip.is_multicast() {
                bail!("announced address {ip} cannot receive media; give a unicast address");
            }
        }
        if !(2..=60).contains(&max_room_members) {
            bail!("max_room_members must be between 2 and 60, got {max_room_members}");
        }
        let media_workers = match args.media_workers.or(file.media_workers) {
            Some(n) if (1..=MAX_MEDIA_WORKERS).contains(&n) => n,
            Some(n) => bail!("media_workers must be between 1 and {MAX_MEDIA_WORKERS}, got {n}"),
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_MEDIA_WORKERS),
        };
        let acme = match args.acme_domain.clone().or(file.acme_domain) {
            Some(domain) => {
                if domain.is_empty() || domain.parse::<IpAddr>().is_ok() || !domain.contains('.') {
                    bail!(
                        "acme_domain must be a host name such as meet.example.org, got {domain:?}"
                    );
                }
                Some(AcmeOptions {
                    domain,
                    email: args.acme_email.clone().or(file.acme_email),
                    directory: args
                        .acme_directory
                        .clone()
                        .or(file.acme_directory)
                        .unwrap_or_else(|| acme::LETS_ENCRYPT.to_owned()),
                    ca_root: args.acme_ca_root.clone().or(file.acme_ca_root),
                })
            }
            None => None,
        };
        let tls_files = match (
            args.tls_cert.clone().or(file.tls_cert.clone()),
            args.tls_key.clone().or(file.tls_key.clone()),
            &acme,
        ) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                bail!("give either tls_cert and tls_key or acme_domain, not both")
            }
            (None, None, Some(_)) => Some(acme::files(&data_dir)),
            (Some(cert), Some(key), None) => Some(TlsFiles { cert, key }),
            (None, None, None) => None,
            _ => bail!("TLS needs both tls_cert and tls_key"),
        };
        let https = match (args.https.or(file.https), &tls_files) {
            (Some(addr), Some(files)) => Some((addr, files.clone())),
            (Some(_), None) => {
                bail!("https (one-port mode) needs tls_cert and tls_key, or acme_domain")
            }
            (None, _) => None,
        };
        if acme.is_some() && https.is_none() {
            bail!("acme_domain is for one-port mode: give https too (e.g. 0.0.0.0:443)");
        }
        let turn_enabled = !args.no_turn && file.turn.unwrap_or(true);
        let turn = if turn_enabled {
            let tls = tls_files.clone().map(|files| {
                (
                    args.turn_tls_port.or(file.turn_tls_port).unwrap_or(5349),
                    files,
                )
            });
            let common = args.turn.clone().resolve(
                TurnCommonFile {
                    relay_ips: file.turn_relay_ip.into_iter().collect(),
                    relay_ports: file.turn_relay_ports,
                    allow_peers: file.turn_allow_peers,
                    secrets: file.turn_secret.into_iter().collect(),
                },
                "turn-",
            )?;
            let credential_ttl = args
                .turn_credential_ttl
                .or(file.turn_credential_ttl)
                .unwrap_or(6 * 3600);
            if !(60..=7 * 86_400).contains(&credential_ttl) {
                bail!(
                    "turn_credential_ttl must be between 60 seconds and 7 days, got {credential_ttl}"
                );
            }
            Some(TurnOptions {
                port: args.turn_port.or(file.turn_port).unwrap_or(3478),
                tls,
                host: args.turn_host.clone().or(file.turn_host),
                relay_ips: common.relay_ips,
                relay_ports: common.relay_ports,
                allow_peers: common.allow_peers,
                secrets: common.secrets,
                credential_ttl,
            })
        } else {
            None
        };
        Ok(ServeConfig {
            http,
            media: SocketAddr::new(media_bind, media_port),
            data_dir,
            announce,
            log,
            max_room_members,
            media_workers,
            turn,
            https,
            acme,
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

    fn resolve(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        args.resolve()
    }

    fn write_temp(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("parley-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_need_nothing() {
        let c = resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.http, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.media, "0.0.0.0:10000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.max_room_members, 20);
        assert_eq!(c.log, LogLevel::Informational);
        let turn = c.turn.expect("TURN is on by default");
        assert_eq!(turn.port, 3478);
        assert!(turn.tls.is_none());
        assert_eq!(turn.relay_ports, 49152..=65535);
        assert!(turn.secrets.is_empty() && turn.relay_ips.is_empty());
    }

    #[test]
    fn one_port_mode_needs_a_certificate_from_files_or_acme() {
        let https = Some("0.0.0.0:443".parse().unwrap());
        let err = resolve(&ServeArgs {
            https,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("acme_domain"), "{err}");
        let files = resolve(&ServeArgs {
            https,
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(files.https.unwrap().1.cert, PathBuf::from("c.pem"));
        let acme = resolve(&ServeArgs {
            https,
            acme_domain: Some("meet.example.org".into()),
            data_dir: Some("/var/lib/parley".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            acme.https.unwrap().1.cert,
            PathBuf::from("/var/lib/parley/acme/cert.pem")
        );
        assert_eq!(acme.acme.unwrap().directory, acme::LETS_ENCRYPT);
        for (args, says) in [
            (
                ServeArgs {
                    acme_domain: Some("meet.example.org".into()),
                    ..Default::default()
                },
                "give https too",
            ),
            (
                ServeArgs {
                    https,
                    acme_domain: Some("203.0.113.7".into()),
                    ..Default::default()
                },
                "host name",
            ),
            (
                ServeArgs {
                    https,
                    acme_domain: Some("meet.example.org".into()),
                    tls_cert: Some("c.pem".into()),
                    tls_key: Some("k.pem".into()),
                    ..Default::default()
                },
                "not both",
            ),
        ] {
            let err = resolve(&args).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn turn_can_be_turned_off_or_given_tls() {
        let off = resolve(&ServeArgs {
            no_turn: true,
            ..Default::default()
        })
        .unwrap();
        assert!(off.turn.is_none());
        let tls = resolve(&ServeArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(tls.turn.unwrap().tls.unwrap().0, 5349);
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let path = write_temp(
            "precedence",
            "http = \"127.0.0.1:9000\"\nmedia_port = 12000\nannounce = [\"203.0.113.9\"]\nlog = \"warning\"\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            media_port: Some(13000),
            ..Default::default()
        };
        let c = resolve(&args).unwrap();
        assert_eq!(c.http, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            c.media,
            "127.0.0.1:13000".parse().unwrap(),
            "media binds with http by default"
        );
        assert_eq!(c.announce, vec!["203.0.113.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.log, LogLevel::Warning);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn mistakes_are_explained() {
        let path = write_temp("typo", "htp = \"127.0.0.1:9000\"\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let err = format!("{:#}", resolve(&args).unwrap_err());
        assert!(err.contains("htp"), "{err}");
        std::fs::remove_file(path).unwrap();

        let five: Vec<IpAddr> = (1..=5).map(|i| IpAddr::from([192, 0, 2, i])).collect();
        let err = resolve(&ServeArgs {
            announce: five,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("at most 4"), "{err}");

        let err = resolve(&ServeArgs {
            max_room_members: Some(61),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("between 2 and 60"), "{err}");

        for n in [0, 65] {
            let err = resolve(&ServeArgs {
                media_workers: Some(n),
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                err.to_string()
                    .contains("media_workers must be between 1 and 64"),
                "{err}"
            );
        }

        let err = resolve(&ServeArgs {
            log: Some("loud".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("debug, informational"), "{err}");

        let err = resolve(&ServeArgs {
            config: Some(PathBuf::from("/nonexistent/parley.toml")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/parley.toml"),
            "{err:#}"
        );
    }
}
