//! `kill -9` in the middle of work: a real `parley serve` is killed while
//! chat messages, joins and settings are being written, restarted on the
//! same data directory three times, and must start cleanly with everything
//! it acknowledged (a chat echo, `joined`, a 200 to a settings save) there.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_signal::ServerMessage;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use support::api::{ADMIN_PASSWORD, Api, USER_PASSWORD};
use support::ws::{connect_with, join};
use support::{Server, scratch_dir};

/// Removes the shared data directory at the end, however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the server acknowledged before it was killed.
#[derive(Default)]
struct Acked {
    chats: BTreeSet<String>,
    guests: BTreeSet<String>,
    /// The last settings save answered 200, and the one in flight after it.
    stun: Option<String>,
    stun_in_flight: Option<String>,
}

fn stun_url(round: usize, i: usize) -> String {
    format!("stun:s{round}-{i}.example.org:3478")
}

/// Ada's chat: after `pause`, a burst of 90 messages (the rate limit's
/// burst is 100), each acknowledged by its echo. Returns once 60 echoes
/// came: the kill follows at once, with the rest of the burst in the server
/// (a reply that ran ahead of its write would be lost then).
async fn chat(server: &Server, round: usize, pause: Duration, acked: Arc<Mutex<Acked>>) {
    let ada = Api::signed_in(server, "ada@example.org", USER_PASSWORD).await;
    let mut ws = connect_with(server, &[("cookie", &ada.cookie())])
        .await
        .unwrap();
    let me = join(&mut ws, &format!("crash{round}"), "Ada").await;
    tokio::time::sleep(pause).await;
    for i in 0..90 {
        let text = format!(r#"{{"type":"chat","text":"r{round}-{i}"}}"#);
        ws.feed(Message::Text(text.into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut echoes = 0;
    while echoes < 60 {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echoes within 5 s")
            .expect("the connection open")
            .unwrap();
        let Message::Text(text) = frame else { continue };
        if let Ok(ServerMessage::Chat { message }) = serde_json::from_str(&text)
            && message.from == me
        {
            acked.lock().unwrap().chats.insert(message.text);
            echoes += 1;
        }
    }
}

/// Guests joining one after another (and staying), each acknowledged by `joined`.
async fn guests(server: &Server, round: usize, acked: Arc<Mutex<Acked>>) {
    let mut kept = Vec::new();
    for i in 0..200 {
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(server.ws_url()),
        )
        .await
        else {
            return;
        };
        let name = format!("G{round}-{i}");
        let join =
            format!(r#"{{"type":"join","version":1,"room":"crash{round}","name":"{name}"}}"#);
        if ws.send(Message::Text(join.into())).await.is_err() {
            return;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(ServerMessage::Joined { .. }) = serde_json::from_str(&text) {
                        acked.lock().unwrap().guests.insert(name);
                        break;
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
        kept.push(ws);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The administrator saving the STUN settings again and again.
async fn settings(server: &Server, round: usize, acked: Arc<Mutex<Acked>>) {
    let admin = Api::signed_in(server, "admin@example.org", ADMIN_PASSWORD).await;
    for i in 0..500 {
        let url = stun_url(round, i);
        acked.lock().unwrap().stun_in_flight = Some(url.clone());
        let save = admin.put(
            "/api/v1/settings/stun",
            json!({"builtin": true, "servers": [url]}),
        );
        match tokio::time::timeout(Duration::from_secs(2), save).await {
            Ok(answer) if answer.status == StatusCode::OK => {
                acked.lock().unwrap().stun = Some(url);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(answer) => panic!(
                "a settings save answered {}: {}",
                answer.status, answer.body
            ),
            Err(_) => return,
        }
    }
}

/// Starts the server on `dir`, runs the three writers, and kills the
/// server with SIGKILL in the middle of the chat's burst.
async fn round(dir: &Path, round: usize, pause: Duration, acked: &Arc<Mutex<Acked>>) {
    let server = Server::start_in(dir, &[], &[]);
    if round == 0 {
        let admin = Api::admin(&server).await;
        admin.create_users(&[("ada@example.org", "Ada")]).await;
    }
    tokio::select! {
        () = chat(&server, round, pause, acked.clone()) => {}
        _ = guests(&server, round, acked.clone()) => panic!("the guests ran out before the kill"),
        () = settings(&server, round, acked.clone()) => panic!("the settings ran out before the kill"),
    }
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_acknowledged_survives_kill_9_three_times() {
    let dir = scratch_dir();
    let _scratch = Scratch(dir.clone());
    let acked = Arc::new(Mutex::new(Acked::default()));
    // The guests and the settings at different points when the kill comes.
    for (n, ms) in [300, 700, 1100].into_iter().enumerate() {
        round(&dir, n, Duration::from_millis(ms), &acked).await;
    }

    // The fourth start: clean, and everything acknowledged is there.
    let server = Server::start_in(&dir, &[], &[]);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.chats.len() >= 180, "too little chat was acknowledged");
    assert!(acked.guests.len() > 10, "too few guests were acknowledged");

    let ada = Api::signed_in(&server, "ada@example.org", USER_PASSWORD).await;
    let history = ada.get("/api/v1/history").await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let meetings = history.body["meetings"].as_array().unwrap().clone();
    let texts = |field: &str, key: &str| -> BTreeSet<String> {
        meetings
            .iter()
            .flat_map(|m| m[field].as_array().cloned().unwrap_or_default())
            .filter_map(|c: Value| c[key].as_str().map(str::to_owned))
            .collect()
    };
    let chats = texts("chat", "text");
    let lost: Vec<_> = acked.chats.difference(&chats).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged chat messages lost, e.g. {:?}",
        lost.len(),
        acked.chats.len(),
        &lost[..lost.len().min(5)]
    );
    let people = texts("participants", "name");
    let lost: Vec<_> = acked.guests.difference(&people).collect();
    assert!(lost.is_empty(), "acknowledged joins lost: {lost:?}");
    assert!(
        meetings.iter().all(|m| !m["ended_at"].is_null()),
        "meetings the kills left open are closed at start"
    );

    let admin = Api::signed_in(&server, "admin@example.org", ADMIN_PASSWORD).await;
    let stun = admin.get("/api/v1/settings/stun").await.body;
    let stored = stun["servers"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        Some(&stored) == acked.stun.as_ref() || Some(&stored) == acked.stun_in_flight.as_ref(),
        "the STUN setting is {stored}, acknowledged {:?}",
        acked.stun
    );
    // Each round's three kinds of work, seen in the history of its meeting.
    for n in 0..3 {
        assert!(
            meetings.iter().any(|m| m["room"] == format!("crash{n}")),
            "round {n}'s meeting is missing"
        );
    }
    drop(server);
}
