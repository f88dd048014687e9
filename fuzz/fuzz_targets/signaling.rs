//! Fuzzes the signaling path a client reaches: one text frame into
//! `ClientMessage::parse`, and a run of frames from three connections into
//! a real `Hub` (joins, offers with SDP, answers, candidates, chat,
//! security, moderation, calls…), with the driver's password work and time
//! played along. Nothing a client sends may panic the hub, and every error
//! it answers must serialize and name a known code. (A str0m panic the
//! SFU's guard contains is allowed: see `contained.rs`.)

#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::{Duration, Instant};

mod contained;

use libfuzzer_sys::fuzz_target;
use parley_signal::{Account, ClientMessage, ConnId, ConnMeta, Hub, HubConfig, HubOutput, ServerMessage};

struct State {
    hub: Hub,
    now: Instant,
    frames: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(fresh());
}

fn fresh() -> State {
    let config = HubConfig::new(vec!["203.0.113.7:10000".parse().unwrap()], 7);
    let mut hub = Hub::new(config);
    let now = Instant::now();
    for n in 1..=3u64 {
        let meta = ConnMeta {
            ip: Some(IpAddr::from([198, 51, 100, n as u8])),
            account: (n == 1).then(|| Account { id: 1, name: "Owner".into(), domain: "example.org".into() }),
        };
        hub.handle_connect_as(now, ConnId(n), meta);
    }
    State { hub, now, frames: 0 }
}

/// Plays the driver: hashes and checks passwords (the "hash" of p is
/// "hash:p"), and checks what goes to clients.
fn pump(s: &mut State) {
    while let Some(out) = s.hub.poll_output() {
        match out {
            HubOutput::HashPassword { room, ticket, password } => {
                s.hub.handle_password_hashed(&room, ticket, format!("hash:{password}"));
            }
            HubOutput::CheckPassword { conn, ticket, phc, password } => {
                let ok = phc == format!("hash:{password}");
                s.hub.handle_password_checked(s.now, conn, ticket, ok);
            }
            HubOutput::Send { message, .. } => {
                let json = message.to_json();
                let back: ServerMessage = serde_json::from_str(&json).expect("server messages parse back");
                assert_eq!(back, message, "server messages round-trip");
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| contained::run(|| one(data)));

fn one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ClientMessage::parse(&text);

    STATE.with(|state| {
        let mut s = state.borrow_mut();
        // Start afresh now and then, so state does not pile up across runs.
        s.frames += 1;
        if s.frames > 20_000 {
            *s = fresh();
        }
        // Lines are frames; the first byte of a line picks the connection.
        for line in text.split('\n') {
            let Some(first) = line.bytes().next() else {
                continue;
            };
            let rest = &line[line.chars().next().map_or(0, char::len_utf8)..];
            let conn = ConnId(1 + u64::from(first % 3));
            s.now += Duration::from_millis(u64::from(first % 50));
            let now = s.now;
            match first {
                b'~' => s.hub.handle_timeout(now),
                b'^' => s.hub.handle_disconnect(now, conn),
                b'`' => s.hub.handle_binary(now, conn),
                _ => s.hub.handle_text(now, conn, rest),
            }
            pump(&mut s);
        }
    });
}
