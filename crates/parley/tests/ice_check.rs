//! The connectivity check against a real third-party TURN server: coturn's
//! `turnserver` (Debian package `coturn`) on loopback. Right credentials
//! relay a test packet to Parley's media port over UDP and TCP; wrong ones
//! are reported as an authentication failure; a port where nothing listens
//! as a timeout. The same check runs from `parley check-ice --server`.
//! `turns:` is checked over TLS with the certificate verified as browsers
//! verify it.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use support::api::Api;
use support::{Process, Server};

const SECRET: &str = "coturn-rest-secret";

fn free_port() -> u16 {
    // Free for both UDP and TCP, as coturn listens on both.
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// coturn on 127.0.0.1:`port`, with a static user or a REST secret, allowed
/// to relay to loopback (where Parley's media port is in this test).
fn coturn(port: u16, rest: bool) -> Process {
    let found = Command::new("sh")
        .args(["-c", "command -v turnserver"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "turnserver is missing: it comes with Debian's coturn package (scripts/install-test-deps installs it)"
    );
    let relay_min = 40000 + (port % 1000) * 20;
    let mut args = vec![
        "-n".to_owned(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={relay_min}"),
        format!("--max-port={}", relay_min + 19),
        "--realm=parley.test".into(),
        "--allow-loopback-peers".into(),
        "--no-tls".into(),
        "--no-dtls".into(),
        "--no-cli".into(),
        "--no-multicast-peers".into(),
        "--log-file=stdout".into(),
        "--simple-log".into(),
        "--pidfile=".into(),
    ];
    if rest {
        args.push("--use-auth-secret".into());
        args.push(format!("--static-auth-secret={SECRET}"));
    } else {
        args.push("--lt-cred-mech".into());
        args.push("--user=alice:wonderland".into());
    }
    let child = Command::new("turnserver")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnserver");
    let process = Process(child);
    // Ready when it answers on TCP.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "turnserver did not listen on {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

/// Runs the check on `turn` (the TURN section), with only coturn's STUN.
async fn check(api: &Api, port: u16, turn: Value) -> Value {
    let answer = api
        .post(
            "/api/v1/ice/check",
            json!({
                "stun": {"builtin": false, "servers": [format!("stun:127.0.0.1:{port}")]},
                "turn": turn,
                "turn_provider": {"kind": "none"},
            }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    println!("{:#}", answer.body);
    answer.body
}

fn result<'a>(report: &'a Value, url: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == url)
        .unwrap_or_else(|| panic!("no result for {url} in {report:#}"))
}

#[tokio::test]
async fn coturn_passes_with_the_right_credentials_and_fails_clearly_otherwise() {
    let port = free_port();
    let _coturn = coturn(port, false);
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    let udp = format!("turn:127.0.0.1:{port}?transport=udp");
    let tcp = format!("turn:127.0.0.1:{port}?transport=tcp");

    let good = check(
        &api,
        port,
        json!({"servers": [{"urls": [udp, tcp], "username": "alice", "credential": "wonderland"}]}),
    )
    .await;
    assert_eq!(good["ok"], true, "{good:#}");
    for url in [&udp, &tcp] {
        let r = result(&good, url);
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            ["connect", "allocate", "permission", "relay", "release"]
        );
        assert!(
            r["summary"].as_str().unwrap().contains("arrived"),
            "the test packet reached Parley's media port: {r:#}"
        );
    }
    assert_eq!(result(&good, &format!("stun:127.0.0.1:{port}"))["ok"], true);

    let wrong = check(
        &api,
        port,
        json!({"servers": [{"urls": [udp], "username": "alice", "credential": "not-it"}]}),
    )
    .await;
    assert_eq!(wrong["ok"], false);
    let r = result(&wrong, &udp);
    assert_eq!(r["reason"], "auth", "{r:#}");
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("wrong username or password"),
        "{r:#}"
    );

    let closed = free_port();
    let nothing = format!("turn:127.0.0.1:{closed}?transport=udp");
    let silent = check(
        &api,
        port,
        json!({"servers": [{"urls": [nothing], "username": "alice", "credential": "wonderland"}]}),
    )
    .await;
    let r = result(&silent, &nothing);
    assert_eq!(r["reason"], "timeout", "{r:#}");
    assert!(
        r["summary"].as_str().unwrap().contains("nothing listens"),
        "{r:#}"
    );

    // Nothing the check tried was stored.
    assert_eq!(
        api.get("/api/v1/settings/turn").await.body["servers"],
        json!([])
    );
}

#[tokio::test]
async fn coturn_with_a_rest_secret_accepts_the_credentials_parley_mints() {
    let port = free_port();
    let _coturn = coturn(port, true);
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    let tcp = format!("turn:127.0.0.1:{port}?transport=tcp");
    let saved = api
        .put(
            "/api/v1/settings/turn",
            json!({"servers": [{"urls": [tcp], "secret": SECRET}]}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let report = check(
        &api,
        port,
        json!({"servers": [{"urls": [tcp], "secret": SECRET}]}),
    )
    .await;
    assert_eq!(result(&report, &tcp)["ok"], true, "{report:#}");
    let bad = check(
        &api,
        port,
        json!({"servers": [{"urls": [tcp], "secret": "another secret"}]}),
    )
    .await;
    // A wrong secret is an authentication failure, not clock skew: a
    // long-lived credential from the same secret fails too.
    assert_eq!(result(&bad, &tcp)["reason"], "auth", "{bad:#}");

    // The same check from the command line, through the API.
    let token = api.bearer.clone().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "check-ice",
            "--server",
            &format!("http://{}", server.http),
            "--token",
            token.trim_start_matches("Bearer "),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    println!("{text}");
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&tcp) && text.contains("all checks passed"),
        "{text}"
    );
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/install-test-deps installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA and a certificate it signed for 127.0.0.1, in `dir`.
fn certificates(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=Parley Test CA"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&ca, dir);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "leaf.key", "-out", "leaf.csr"]);
    openssl(&csr, dir);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
        dir,
    );
}

#[tokio::test]
async fn turns_is_checked_with_the_certificate_verified() {
    let dir = std::env::temp_dir().join(format!("parley-check-tls-{}", std::process::id()));
    certificates(&dir);
    let path = |f: &str| dir.join(f).to_string_lossy().to_string();
    let (cert, key, ca) = (path("leaf.pem"), path("leaf.key"), path("ca.pem"));
    let args = [
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--turn-tls-port",
        "0",
    ];
    let turns = |server: &Server| {
        let line = server
            .log
            .wait_for("TURN ready: ", Duration::from_secs(5))
            .unwrap();
        let port = line
            .split("tls 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split([';', ',', ' ']).next())
            .unwrap()
            .to_owned();
        format!("turns:127.0.0.1:{port}?transport=tcp")
    };

    // This machine trusts the test CA: the built-in TURN over TLS works.
    let trusted = Server::start_env(&args, &[("SSL_CERT_FILE", &ca)]);
    let api = Api::admin(&trusted).await;
    let report = api.post("/api/v1/ice/check", json!({})).await.body;
    println!("{report:#}");
    let r = result(&report, &turns(&trusted));
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["transport"], "tls");
    assert_eq!(report["ok"], true);

    // It does not: refused as a browser would refuse it.
    let untrusted = Server::start(&args);
    let api = Api::admin(&untrusted).await;
    let report = api.post("/api/v1/ice/check", json!({})).await.body;
    let r = result(&report, &turns(&untrusted));
    assert_eq!(r["reason"], "tls", "{r:#}");
    assert!(
        r["summary"].as_str().unwrap().contains("certificate"),
        "{r:#}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
