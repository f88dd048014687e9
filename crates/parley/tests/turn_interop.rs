//! Interoperability with coturn's own test client: `turnutils_uclient`
//! relays through `parley turn` to `turnutils_peer` (Debian package
//! `coturn`), with a static user and with a TURN REST secret, over UDP and
//! TCP, and every message comes back.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::process::{Command, Stdio};

use support::{Process, coturn, require, start_parley};

const SECRET: &str = "interop-secret";

struct Lab {
    _turn: Process,
    peer: coturn::Peer,
    turn_port: u16,
    tls_port: Option<u16>,
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
    let peer = coturn::start_peer();
    Lab {
        _turn: turn,
        peer,
        turn_port,
        tls_port,
    }
}

/// The lab's TURN port for `extra` flags: uclient picks TLS with -S, and
/// the TLS listener has its own port.
fn port_for(lab: &Lab, extra: &[&str]) -> u16 {
    if extra.contains(&"-S") {
        lab.tls_port.expect("a TLS listener")
    } else {
        lab.turn_port
    }
}

/// Runs `turnutils_uclient` through the lab to `peer` (an IP address).
fn uclient(lab: &Lab, auth: &[&str], extra: &[&str], peer: &str) -> (u64, u64, u64, String) {
    let run = coturn::uclient(port_for(lab, extra), auth, extra, peer, lab.peer.port);
    (run.sent, run.received, run.lost, run.text)
}

fn relays_everything(auth: &[&str], extra: &[&str]) {
    let lab = lab();
    relays_everything_in(&lab, auth, extra);
}

fn relays_everything_in(lab: &Lab, auth: &[&str], extra: &[&str]) {
    coturn::relays_everything(port_for(lab, extra), auth, extra, &lab.peer);
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

/// 127.0.0.1 is allowed, but the TURN server's own listening port there is
/// not a peer: relaying to it would loop the server's traffic into itself.
#[test]
fn coturn_client_is_refused_the_servers_own_port_as_a_peer() {
    let lab = lab();
    let run = coturn::uclient(
        lab.turn_port,
        &["-u", "alice", "-w", "wonderland"],
        &[],
        "127.0.0.1",
        lab.turn_port,
    );
    assert!(
        run.text.contains("403"),
        "its own port is refused:\n{}",
        run.text
    );
    assert_eq!(run.received, 0);
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
