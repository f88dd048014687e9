//! Interoperability with coturn's own test client: `turnutils_uclient`
//! relays through `parley turn` to `turnutils_peer` (Debian package
//! `coturn`), with a static user and with a TURN REST secret, over UDP and
//! TCP, and every message comes back.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::process::{Command, Stdio};

use support::{Process, free_udp_port, require, start_parley};

const SECRET: &str = "interop-secret";

struct Lab {
    _turn: Process,
    _peer: Process,
    turn_port: u16,
    tls_port: Option<u16>,
    peer_port: u16,
}

fn lab() -> Lab {
    lab_with(&[])
}

/// The port after `marker` in the ready line, e.g. "tls 127.0.0.1:5349".
fn port_after(line: &str, marker: &str) -> Option<u16> {
    line.split(marker)
        .nth(1)?
        .split([';', ',', ' '])
        .find(|w| w.contains(':'))?
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

fn lab_with(extra: &[&str]) -> Lab {
    require("turnutils_uclient");
    require("turnutils_peer");
    let mut args = vec![
        "turn",
        "--listen",
        "127.0.0.1:0",
        "--realm",
        "parley.test",
        "--secret",
        SECRET,
        "--user",
        "alice:wonderland",
        "--relay-ip",
        "127.0.0.1",
        // turnutils_peer listens on loopback, which TURN refuses unless told.
        "--allow-peer",
        "127.0.0.1/32",
    ];
    args.extend_from_slice(extra);
    let (turn, ready) = start_parley(&args, "TURN ready: ");
    let turn_port = port_after(&ready, "udp and tcp ").expect("port in the ready line");
    let tls_port = port_after(&ready, "tls ");
    let peer_port = free_udp_port();
    let peer = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnutils_peer");
    std::thread::sleep(std::time::Duration::from_millis(300));
    Lab {
        _turn: turn,
        _peer: Process(peer),
        turn_port,
        tls_port,
        peer_port,
    }
}

/// Runs `turnutils_uclient` with `auth` and `extra` flags; returns (sent, received, lost).
fn uclient(lab: &Lab, auth: &[&str], extra: &[&str], peer: &str) -> (u64, u64, u64, String) {
    let mut args: Vec<String> = auth.iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    // uclient picks TLS with -S; the TLS listener has its own port.
    let port = if extra.contains(&"-S") {
        lab.tls_port.expect("a TLS listener")
    } else {
        lab.turn_port
    };
    args.extend(["-p".to_string(), port.to_string()]);
    args.extend(
        [
            "-e",
            peer,
            "-r",
            &lab.peer_port.to_string(),
            // 4 clients, 400 messages each, one every 5 ms: a moderate 800 messages/s.
            "-m",
            "4",
            "-n",
            "400",
            "-z",
            "5",
            "-l",
            "170",
            "-c",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let out = Command::new("timeout")
        .arg("60")
        .arg("turnutils_uclient")
        .args(&args)
        .output()
        .expect("run turnutils_uclient");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let field = |key: &str| -> u64 {
        text.lines()
            .rev()
            .find_map(|l| l.split(key).nth(1))
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let lost = text
        .lines()
        .rev()
        .find_map(|l| l.split("Total lost packets ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    (field("tot_send_msgs="), field("tot_recv_msgs="), lost, text)
}

fn relays_everything(auth: &[&str], extra: &[&str]) {
    let lab = lab();
    relays_everything_in(&lab, auth, extra);
}

fn relays_everything_in(lab: &Lab, auth: &[&str], extra: &[&str]) {
    let (mut sent, mut received, mut lost, mut text) = uclient(lab, auth, extra, "127.0.0.1");
    if sent == 0 && text.contains("channel bind: error 400") {
        // Seen once in a CI run of 8 (over TLS), never in 6 reruns: uclient
        // at random skips reading a ChannelBind response and may later bind
        // the same peer under another random number, which RFC 8656 §12
        // requires the server to refuse with 400. One more run tells that
        // apart from a server that refuses binds: it fails twice.
        eprintln!("uclient's channel bind was refused once; running it again:\n{text}");
        (sent, received, lost, text) = uclient(lab, auth, extra, "127.0.0.1");
    }
    eprintln!("auth {auth:?} {extra:?}: sent {sent}, received {received}, lost {lost}");
    assert_eq!(sent, 1600, "uclient sent all its messages:\n{text}");
    assert_eq!(received, sent, "every message came back:\n{text}");
    assert_eq!(lost, 0, "{text}");
}

#[test]
fn coturn_client_relays_over_udp_with_a_static_user() {
    relays_everything(&["-u", "alice", "-w", "wonderland"], &[]);
}

#[test]
fn coturn_client_relays_over_udp_with_rest_credentials() {
    relays_everything(&["-u", "synapse-user", "-W", SECRET], &[]);
}

#[test]
fn coturn_client_relays_over_tcp_with_a_static_user() {
    relays_everything(&["-u", "alice", "-w", "wonderland"], &["-t"]);
}

#[test]
fn coturn_client_relays_over_tcp_with_rest_credentials() {
    relays_everything(&["-u", "synapse-user", "-W", SECRET], &["-t"]);
}

#[test]
fn coturn_client_relays_with_send_indications_and_dont_fragment() {
    relays_everything(&["-u", "alice", "-w", "wonderland"], &["-s", "-g"]);
}

#[test]
fn coturn_client_is_refused_a_peer_outside_the_allow_list() {
    let lab = lab();
    let (_, received, _, text) =
        uclient(&lab, &["-u", "alice", "-w", "wonderland"], &[], "127.0.0.2");
    assert!(
        text.contains("403"),
        "127.0.0.2 is loopback and not allowed:\n{text}"
    );
    assert_eq!(received, 0);
}

#[test]
fn coturn_client_with_a_wrong_password_gets_no_allocation() {
    let lab = lab();
    let (_, received, _, text) = uclient(&lab, &["-u", "alice", "-w", "not-it"], &[], "127.0.0.1");
    assert!(text.contains("Cannot complete Allocation"), "{text}");
    assert_eq!(received, 0);
}

#[test]
fn coturn_client_relays_over_tls() {
    require("openssl");
    let dir = std::env::temp_dir().join(format!("parley-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=turn.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a test certificate");
    let (cert_s, key_s) = (
        cert.to_string_lossy().to_string(),
        key.to_string_lossy().to_string(),
    );
    let lab = lab_with(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--cert",
        &cert_s,
        "--key",
        &key_s,
    ]);
    relays_everything_in(&lab, &["-u", "alice", "-w", "wonderland"], &["-t", "-S"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
