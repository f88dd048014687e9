//! The hub on a virtual clock, for the tests of this crate: a harness
//! that connects, sends and drains, and the fixed token source and clock
//! that make runs repeatable.

#![allow(dead_code)] // each test file uses part of it

use std::time::{Duration, Instant};

use parley_signal::{ConnId, ErrorCode, Hub, HubConfig, HubOutput, ServerMessage};

/// The hub's settings for a test, with ids mixed with `id_key`.
pub fn config(id_key: u64) -> HubConfig {
    HubConfig::new(
        vec!["127.0.0.1:10000".parse().unwrap()],
        id_key,
        counted_tokens(),
        fixed_clock(),
    )
}

pub struct Harness {
    pub hub: Hub,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        let config = config(42);
        Harness {
            hub: Hub::new(config),
            now: Instant::now(),
        }
    }

    pub fn with_limit(max: usize) -> Self {
        let mut config = config(42);
        config.rooms.max_members = max;
        Harness {
            hub: Hub::new(config),
            now: Instant::now(),
        }
    }

    pub fn connect(&mut self, n: u64) -> ConnId {
        let conn = ConnId(n);
        self.hub.handle_connect(self.now, conn);
        conn
    }

    pub fn send(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, conn, text);
    }

    pub fn join(&mut self, conn: ConnId, room: &str, name: &str) -> String {
        self.send(
            conn,
            &format!(r#"{{"type":"join","version":1,"room":"{room}","name":"{name}"}}"#),
        );
        let out = self.drain();
        for (to, m) in &out {
            if let ServerMessage::Joined { me, .. } = m {
                assert_eq!(*to, conn);
                return me.id.clone();
            }
        }
        panic!("no joined in {out:?}");
    }

    /// All messages sent since the last drain, in order.
    pub fn drain(&mut self) -> Vec<(ConnId, ServerMessage)> {
        let mut out = Vec::new();
        while let Some(o) = self.hub.poll_output() {
            if let HubOutput::Send { conn, message } = o {
                out.push((conn, message));
            }
        }
        out
    }

    pub fn messages_to(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        self.drain()
            .into_iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, m)| m)
            .collect()
    }

    pub fn error_code(&mut self, conn: ConnId, text: &str) -> ErrorCode {
        self.send(conn, text);
        let msgs = self.messages_to(conn);
        match msgs.as_slice() {
            [ServerMessage::Error { code, .. }] => *code,
            other => panic!("expected one error for {text:?}, got {other:?}"),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.hub.handle_timeout(self.now);
    }
}

/// A connection of a signed-in user (who owns, and so moderates, the rooms
/// they open first).
pub fn connect_signed_in(h: &mut Harness, n: u64) -> ConnId {
    let conn = ConnId(n);
    let meta = parley_signal::ConnMeta {
        ip: None,
        account: Some(parley_signal::Account {
            id: 1,
            name: "Ada".into(),
            domain: "example.org".into(),
        }),
    };
    h.hub.handle_connect_as(h.now, conn, meta);
    conn
}

/// Distinct tokens, as the random ones are, but the same in every run.
pub fn counted_tokens() -> parley_signal::TokenSource {
    let n = std::sync::atomic::AtomicU64::new(0);
    std::sync::Arc::new(move || {
        format!(
            "token-{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    })
}

pub fn fixed_clock() -> parley_signal::WallClock {
    std::sync::Arc::new(|| 1_700_000_000_000)
}
