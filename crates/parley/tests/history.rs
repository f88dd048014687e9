//! History on a real `parley serve`: a meeting's participants, times and
//! chat appear for its signed-in participants after it ends, can be
//! exported, and are deleted on request.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::Duration;

use parley_signal::ServerMessage;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Server;
use support::api::{Api, USER_PASSWORD};
use support::ws::{Ws, connect, connect_with, next, send};

async fn join(ws: &mut Ws, name: &str) {
    send(
        ws,
        &format!(r#"{{"type":"join","version":1,"room":"retro","name":"{name}"}}"#),
    )
    .await;
    loop {
        if matches!(next(ws).await, ServerMessage::Joined { .. }) {
            return;
        }
    }
}

async fn history(api: &Api) -> Value {
    // The history is written by a background task: wait until it shows.
    for _ in 0..50 {
        let answer = api.get("/api/v1/history").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let m = &answer.body["meetings"];
        if m.as_array().is_some_and(|a| !a.is_empty()) && !m[0]["ended_at"].is_null() {
            return answer.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no ended meeting in the history");
}

#[tokio::test(flavor = "current_thread")]
async fn a_meeting_appears_in_its_participants_history_and_can_be_exported_and_deleted() {
    let server = Server::start(&[]);
    let admin = Api::admin(&server).await;
    admin
        .create_users(&[("ada@example.org", "Ada"), ("ben@example.org", "Ben")])
        .await;
    let ada = Api::signed_in(&server, "ada@example.org", USER_PASSWORD).await;
    let ben = Api::signed_in(&server, "ben@example.org", USER_PASSWORD).await;

    let mut ada_ws = connect_with(&server, &[("cookie", &ada.cookie())])
        .await
        .unwrap();
    let mut ben_ws = connect_with(&server, &[("cookie", &ben.cookie())])
        .await
        .unwrap();
    let mut guest_ws = connect(&server).await;
    join(&mut ada_ws, "Ada").await;
    join(&mut ben_ws, "Ben").await;
    join(&mut guest_ws, "Gus").await;
    send(
        &mut ada_ws,
        r#"{"type":"chat","text":"notes: https://example.org"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for ws in [&mut guest_ws, &mut ben_ws, &mut ada_ws] {
        send(ws, r#"{"type":"leave"}"#).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = history(&ada).await;
    let m = &body["meetings"][0];
    assert_eq!(m["room"], "retro");
    assert_eq!(m["kind"], "meeting");
    let names: Vec<&str> = m["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Ben", "Gus"]);
    assert_eq!(m["participants"][2]["account"], false);
    assert!(
        m["participants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["left_at"].is_null())
    );
    assert_eq!(m["chat"][0]["text"], "notes: https://example.org");
    assert_eq!(body["retention_days"], 30);
    assert_eq!(history(&ben).await["meetings"][0]["id"], m["id"]);

    // Export: the same, as a download.
    let export = ada.get("/api/v1/history/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("parley-history.json")
    );
    assert_eq!(export.body["meetings"][0]["id"], m["id"]);
    assert_eq!(export.body["user"]["login"], "ada@example.org");

    // Ada deletes hers; Ben's stays without her chat.
    let deleted = ada.call(Method::DELETE, "/api/v1/history", None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["deleted"], 1);
    let mine = ada.get("/api/v1/history").await;
    assert_eq!(mine.body["meetings"], json!([]));
    let bens = ben.get("/api/v1/history").await.body;
    assert_eq!(
        bens["meetings"][0]["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(bens["meetings"][0]["chat"], json!([]));

    // Guests have no history endpoint.
    let guest = Api::anonymous(&server).get("/api/v1/history").await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
}
