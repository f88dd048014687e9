//! coturn's test programs (Debian package `coturn`): `turnutils_peer`, an
//! echo peer, and `turnutils_uclient`, a TURN client that relays messages to
//! it and counts what comes back.

use std::process::{Command, Stdio};

use super::{Process, free_udp_port, require};

/// A running `turnutils_peer` on 127.0.0.1 (stopped when dropped).
pub struct Peer {
    _process: Process,
    /// Its UDP port.
    pub port: u16,
}

/// Starts `turnutils_peer` on a free loopback port below the default relay
/// port range (49152-65535): the TURN server under test relays from
/// 127.0.0.1 too, and refuses its own relay ports as peers.
pub fn start_peer() -> Peer {
    require("turnutils_peer");
    let port = (0..200)
        .map(|_| free_udp_port())
        .find(|p| *p < 49152)
        .expect("a free UDP port below 49152");
    let process = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnutils_peer");
    std::thread::sleep(std::time::Duration::from_millis(300));
    Peer {
        _process: Process(process),
        port,
    }
}

/// What one `turnutils_uclient` run counted.
pub struct Run {
    /// Messages sent.
    pub sent: u64,
    /// Messages that came back.
    pub received: u64,
    /// Packets lost (`u64::MAX` when not reported).
    pub lost: u64,
    /// Its whole output.
    pub text: String,
}

/// Runs `turnutils_uclient` against the TURN server on 127.0.0.1:`port`
/// with `auth` and `extra` flags, relaying to `peer_ip`:`peer_port`: 4
/// clients, 400 messages each, one every 5 ms (a moderate 800 messages/s).
pub fn uclient(port: u16, auth: &[&str], extra: &[&str], peer_ip: &str, peer_port: u16) -> Run {
    require("turnutils_uclient");
    let out = Command::new("timeout")
        .args(["60", "turnutils_uclient"])
        .args(auth)
        .args(extra)
        .args([
            "-p",
            &port.to_string(),
            "-e",
            peer_ip,
            "-r",
            &peer_port.to_string(),
        ])
        .args([
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
        ])
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
    Run {
        sent: field("tot_send_msgs="),
        received: field("tot_recv_msgs="),
        lost,
        text,
    }
}

/// Runs `turnutils_uclient` (see [`uclient`]) to `peer` and checks every
/// message came back with nothing lost.
pub fn relays_everything(port: u16, auth: &[&str], extra: &[&str], peer: &Peer) {
    let mut run = uclient(port, auth, extra, "127.0.0.1", peer.port);
    if run.sent == 0 && run.text.contains("channel bind: error 400") {
        // Seen once in a CI run of 8 (over TLS), never in 6 reruns: uclient
        // at random skips reading a ChannelBind response and may later bind
        // the same peer under another random number, which RFC 8656 §12
        // requires the server to refuse with 400. One more run tells that
        // apart from a server that refuses binds: it fails twice.
        eprintln!(
            "uclient's channel bind was refused once; running it again:\n{}",
            run.text
        );
        run = uclient(port, auth, extra, "127.0.0.1", peer.port);
    }
    let Run {
        sent,
        received,
        lost,
        text,
    } = run;
    eprintln!("auth {auth:?} {extra:?}: sent {sent}, received {received}, lost {lost}");
    assert_eq!(sent, 1600, "uclient sent all its messages:\n{text}");
    assert_eq!(received, sent, "every message came back:\n{text}");
    assert_eq!(lost, 0, "{text}");
}
