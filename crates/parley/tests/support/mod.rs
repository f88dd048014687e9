//! A real `parley` process for integration tests, on loopback only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server, stopped (by PID) when dropped.
pub struct Server {
    child: Child,
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--media-port",
                "0",
                "--turn-port",
                "0",
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start parley");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[parley] {line}");
                if !sent && let Some(rest) = line.split("ready: http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("parley did not report ready within 20 s");
        Server {
            child,
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
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
