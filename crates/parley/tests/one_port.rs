//! One-port mode against a real `parley serve`: HTTPS on the one port, the
//! certificate reloaded when its files change, ICE-TCP handed over to the
//! SFU, TURN over TLS relaying every message of coturn's `turnutils_uclient`, and
//! anything else closed.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Process, coturn, start_parley_logged};

fn make_cert(dir: &Path, name: &str) {
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/install-test-deps installs it)");
    assert!(made.success(), "openssl could not make a test certificate");
}

/// Starts `parley serve` in one-port mode with a fresh certificate in `dir`
/// and `extra` arguments; returns the process, the one port and the log.
fn start_one_port(
    dir: &Path,
    extra: &[&str],
) -> (Process, std::net::SocketAddr, support::Log, String) {
    std::fs::create_dir_all(dir).unwrap();
    make_cert(dir, "first");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let data = dir.join("data");
    let mut args = vec![
        "serve",
        "--http",
        "127.0.0.1:0",
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--media-port",
        "0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (server, rest, log) = start_parley_logged(&args, "one-port mode on ");
    let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
    (server, addr, log, rest)
}

#[tokio::test]
async fn https_and_ice_tcp_share_one_port_and_the_certificate_is_reloaded() {
    let dir = std::env::temp_dir().join(format!("parley-one-port-{}", std::process::id()));
    let (_server, addr, log, _) = start_one_port(&dir, &["--no-turn", "--log", "debug"]);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let health = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The one port is advertised as an ICE-TCP candidate too.
    let ready = log.wait_for("ready:", Duration::from_secs(5)).unwrap();
    assert!(ready.contains(&format!("{addr}")), "{ready}");

    // An RFC 4571 frame holding STUN goes to ICE-TCP; a check for no
    // participant closes the connection.
    let mut ice = TcpStream::connect(addr).unwrap();
    ice.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut check = vec![0, 20, 0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
    check.extend([7u8; 12]);
    ice.write_all(&check).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(ice.read(&mut buf).unwrap(), 0, "closed without an answer");
    assert!(
        log.wait_for(
            "ICE-TCP connection for no participant",
            Duration::from_secs(5)
        )
        .is_some()
    );

    // Plain HTTP (neither TLS nor ICE-TCP) is closed too.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(plain.read(&mut buf).unwrap_or(0), 0);

    // A renewed certificate is picked up without a restart.
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    make_cert(&dir, "second");
    assert!(
        log.wait_for("TLS certificate", Duration::from_secs(25))
            .is_some_and(|l| l.contains("loaded again")),
        "{:?}",
        log.lines()
    );
    let again = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn coturn_client_relays_over_tls_on_the_one_port() {
    let dir = std::env::temp_dir().join(format!("parley-one-port-turn-{}", std::process::id()));
    let (_server, addr, _log, rest) = start_one_port(
        &dir,
        &[
            "--turn-port",
            "0",
            "--turn-tls-port",
            "0",
            "--turn-relay-ip",
            "127.0.0.1",
            "--turn-allow-peer",
            "127.0.0.1/32",
            "--turn-secret",
            "one-port-secret",
        ],
    );
    assert!(rest.contains("TURN over TLS"), "{rest}");
    let peer = coturn::start_peer();
    coturn::relays_everything(
        addr.port(),
        &["-u", "someone", "-W", "one-port-secret"],
        &["-t", "-S"],
        &peer,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
