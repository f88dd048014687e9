//! Real `parley` processes for integration tests, on loopback only.

#![allow(dead_code)] // each test binary uses part of this

pub mod api;
pub mod coturn;
pub mod smtp;
pub mod ws;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// A child process stopped (by PID) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every line a process wrote to stderr so far.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (up to `limit`) for a line containing `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> Option<String> {
        let until = std::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `parley` with `args` and waits for a line containing `marker`;
/// returns the process and the rest of that line after the marker.
pub fn start_parley(args: &[&str], marker: &str) -> (Process, String) {
    let (process, rest, _) = start_parley_logged(args, marker);
    (process, rest)
}

/// As [`start_parley`], also keeping every line of stderr.
pub fn start_parley_logged(args: &[&str], marker: &str) -> (Process, String, Log) {
    start_parley_env(args, &[], marker)
}

/// As [`start_parley_logged`], with extra environment variables.
pub fn start_parley_env(
    args: &[&str],
    env: &[(&str, &str)],
    marker: &str,
) -> (Process, String, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start parley");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_owned();
    let log = Log::default();
    let kept = log.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[parley] {line}");
            if let Ok(mut l) = kept.0.lock() {
                l.push(line.clone());
            }
            if !sent && let Some(rest) = line.split(&marker).nth(1) {
                let _ = tx.send(rest.to_owned());
                sent = true;
            }
        }
    });
    let rest = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("parley did not report ready within 20 s");
    (Process(child), rest, log)
}

/// A running `parley serve`, stopped (by PID) when dropped.
pub struct Server {
    _process: Process,
    /// The HTTP address it listens on.
    pub http: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// What it logged.
    pub log: Log,
    /// Whether the data directory goes with it.
    owns_dir: bool,
}

impl Server {
    /// Starts `parley serve` on 127.0.0.1 with free ports and a fresh data directory.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_env(extra, &[])
    }

    /// As [`Server::start`], with extra environment variables.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server::start_in(&scratch_dir(), extra, env);
        server.owns_dir = true;
        server
    }

    /// As [`Server::start_env`] on the data directory `data_dir`, which is
    /// kept when the server stops (for restarts on the same data).
    pub fn start_in(data_dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let data_dir = data_dir.to_path_buf();
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
        let (process, ready, log) = start_parley_env(&args, env, "ready: http://");
        let addr = ready.split_whitespace().next().unwrap_or_default();
        Server {
            _process: process,
            http: addr.parse().expect("address in the ready line"),
            data_dir,
            log,
            owns_dir: false,
        }
    }

    /// Ends the process with SIGKILL, as a crash or `kill -9` would.
    pub fn kill(self) {
        drop(self);
    }

    /// The one-time setup token printed at first start.
    pub fn setup_token(&self) -> String {
        let line = self
            .log
            .wait_for("/setup#token=", Duration::from_secs(5))
            .expect("the first-run setup link");
        line.split("/setup#token=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("a token after the link")
            .to_owned()
    }

    /// The TURN port from the TURN ready line.
    pub fn turn_port(&self) -> u16 {
        let line = self
            .log
            .wait_for("TURN ready: udp and tcp ", Duration::from_secs(5))
            .expect("TURN ready line");
        line.split("TURN ready: udp and tcp ")
            .nth(1)
            .and_then(|r| r.split([';', ',', ' ']).next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("the TURN port")
    }

    /// The signaling WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `_process` drops after this: `Child::kill` is SIGKILL.
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A fresh path for a data directory, under the system's temporary directory.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "parley-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Fails with a clear message when a tool the test needs is missing.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: scripts/install-test-deps installs it (Debian's coturn, pebble, openssl)"
    );
}

/// A UDP port free right now on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}
