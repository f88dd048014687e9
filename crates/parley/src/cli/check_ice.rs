//! `parley check-ice`: the connectivity check from the command line, either
//! run by a Parley server on its own settings (`--server`), or stand-alone
//! against URLs given here.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use parley_ice::probe::{Next, Probe};
use parley_settings::url::IceUrl;
use serde_json::Value;
use tokio::net::UdpSocket;

use crate::ice_servers::check::{self, Peer, Target};

/// `parley check-ice`.
#[derive(Debug, Args)]
pub struct CheckIceArgs {
    /// STUN or TURN URLs to check stand-alone, e.g. turn:turn.example.org:3478?transport=tcp.
    urls: Vec<String>,
    /// TURN username (stand-alone).
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// TURN password (stand-alone).
    #[arg(long, value_name = "PASSWORD", env = "PARLEY_TURN_CREDENTIAL")]
    credential: Option<String>,
    /// TURN REST secret to mint credentials with (stand-alone). Read as
    /// `parley serve` and `parley turn` read it: of several (comma-separated,
    /// while rotating) the first is used.
    #[arg(long, value_name = "S", env = "PARLEY_TURN_SECRET", value_delimiter = ',', conflicts_with_all = ["username", "credential"])]
    secret: Vec<String>,
    /// A Parley server to run the check on its own settings, e.g. http://localhost:8080.
    #[arg(long, value_name = "URL", conflicts_with_all = ["urls", "username", "credential", "secret"])]
    server: Option<String>,
    /// Personal access token of an administrator (with --server).
    #[arg(long, env = "PARLEY_TOKEN", value_name = "TOKEN")]
    token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the check; fails (exit status 1) if anything failed.
pub async fn run(args: CheckIceArgs) -> anyhow::Result<()> {
    let report = match &args.server {
        Some(server) => remote(server, args.token.as_deref()).await?,
        None => local(&args).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report["ok"].as_bool() != Some(true) {
        bail!("the check found problems");
    }
    Ok(())
}

async fn remote(server: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let Some(token) = token else {
        bail!("--server needs an administrator's access token: --token or PARLEY_TOKEN");
    };
    let url = format!("{}/api/v1/ice/check", server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{server} did not answer with JSON"))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{server} refused the check ({status}): {message}");
    }
    Ok(body)
}

async fn local(args: &CheckIceArgs) -> anyhow::Result<Value> {
    if args.urls.is_empty() {
        bail!(
            "give STUN/TURN URLs to check, or --server URL to have a Parley server check its settings"
        );
    }
    let mut targets = Vec::new();
    for url in &args.urls {
        let parsed = IceUrl::parse(url).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        let credentials = match (args.secret.first(), &args.username, &args.credential) {
            (Some(secret), _, _) => Some(parley_stun::mint_rest_credential(
                secret.as_bytes(),
                "parley-check",
                crate::clock::unix_now() + 600,
            )),
            (None, Some(u), Some(c)) => Some((u.clone(), c.clone())),
            (None, None, None) => None,
            _ => bail!("give both --username and --credential"),
        };
        if parsed.scheme.is_turn() && credentials.is_none() {
            bail!("{url} is a TURN URL: give --username and --credential, or --secret");
        }
        targets.push(Target {
            url: url.clone(),
            source: if parsed.scheme.is_turn() {
                "turn"
            } else {
                "stun"
            },
            credentials,
            secret: args.secret.first().cloned(),
        });
    }
    let peer = local_peer(&args.urls[0]).await?;
    let mut results = Vec::new();
    // One at a time: the test packets all arrive on the one peer socket.
    for t in &targets {
        results.push(check::check(t, &peer).await);
    }
    let ok = results.iter().all(|r| r.ok);
    Ok(serde_json::json!({ "ok": ok, "results": results, "notes": [] }))
}

/// A UDP socket the TURN server relays test packets to, at the address
/// the server sees it from (a Binding request to the server tells).
async fn local_peer(first_url: &str) -> anyhow::Result<Peer> {
    let url = IceUrl::parse(first_url).map_err(anyhow::Error::msg)?;
    let server = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .with_context(|| format!("cannot resolve {}", url.host))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{} has no IPv4 address", url.host))?;
    let socket = UdpSocket::bind("0.0.0.0:0").await?;
    let mut probe = Probe::stun();
    let mut mapped = None;
    if let Next::Request(bytes) = probe.start() {
        for _ in 0..3 {
            socket.send_to(&bytes, server).await?;
            let mut buf = [0u8; 1500];
            if let Ok(Ok((n, _))) = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                socket.recv_from(&mut buf),
            )
            .await
            {
                probe.handle(&buf[..n]);
                mapped = probe.mapped();
                break;
            }
        }
    }
    let address = match mapped {
        Some(a) => a,
        None => {
            // No STUN answer on UDP: use the address routing picks.
            let probe_socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
            probe_socket.connect(server)?;
            SocketAddr::new(probe_socket.local_addr()?.ip(), socket.local_addr()?.port())
        }
    };
    Ok(Peer::Socket {
        socket: Arc::new(socket),
        address,
    })
}

fn print_report(report: &Value) {
    if let Some(p) = report.get("provider").filter(|p| !p.is_null()) {
        let ok = p["ok"].as_bool() == Some(true);
        println!(
            "{} TURN provider {}: {}",
            mark(ok),
            p["kind"].as_str().unwrap_or("?"),
            p["detail"].as_str().unwrap_or("")
        );
    }
    for r in report["results"].as_array().into_iter().flatten() {
        let ok = r["ok"].as_bool() == Some(true);
        println!(
            "{} {} ({}, {}){}: {}",
            mark(ok),
            r["url"].as_str().unwrap_or("?"),
            r["transport"].as_str().unwrap_or("?"),
            r["source"].as_str().unwrap_or("?"),
            r["reason"]
                .as_str()
                .map(|why| format!(" [{why}]"))
                .unwrap_or_default(),
            r["summary"].as_str().unwrap_or("")
        );
        if !ok {
            for s in r["steps"].as_array().into_iter().flatten() {
                println!(
                    "      {:<10} {:<4} {}",
                    s["name"].as_str().unwrap_or("?"),
                    if s["ok"].as_bool() == Some(true) {
                        "ok"
                    } else {
                        "FAIL"
                    },
                    s["detail"].as_str().unwrap_or("")
                );
            }
        }
    }
    for n in report["notes"].as_array().into_iter().flatten() {
        println!("! {}", n.as_str().unwrap_or(""));
    }
    let ok = report["ok"].as_bool() == Some(true);
    println!(
        "{}",
        if ok {
            "all checks passed"
        } else {
            "some checks failed"
        }
    );
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}
