//! Real `parley` processes for integration tests, on loopback only.

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process stopped (by PID) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `parley` with `args` and waits for a line containing `marker`;
/// returns the process and the rest of that line after the marker.
pub fn start_parley(args: &[&str], marker: &str) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start parley");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[parley] {line}");
            if !sent && let Some(rest) = line.split(&marker).nth(1) {
                let _ = tx.send(rest.to_owned());
                sent = true;
            }
        }
    });
    let rest = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("parley did not report ready within 20 s");
    (Process(child), rest)
}

/// A running `parley serve`, stopped (by PID) when dropped.
pub struct Server {
    _process: Process,
    /// The HTTP address it listens on.
    pub http: SocketAddr,
    data_dir: PathBuf,
}

impl Server {
    /// Starts `parley serve` on 127.0.0.1 with free ports and a fresh data directory.
    pub fn start(extra: &[&str]) -> Server {
        let data_dir = std::env::temp_dir().join(format!(
            "parley-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let data = data_dir.to_string_lossy().to_string();
        let mut args = vec![
            "serve",
            "--http",
            "127.0.0.1:0",
            "--media-port",
            "0",
            "--turn-port",
            "0",
            "--data-dir",
            &data,
        ];
        args.extend_from_slice(extra);
        let (process, ready) = start_parley(&args, "ready: http://");
        let addr = ready.split_whitespace().next().unwrap_or_default();
        Server {
            _process: process,
            http: addr.parse().expect("address in the ready line"),
            data_dir,
        }
    }

    /// The signaling WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
