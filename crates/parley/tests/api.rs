//! The REST API of a real `parley serve`: every settings rule refuses bad
//! input with the field and the rule named and stores nothing; changes
//! apply without a restart; accounts and authorisation hold.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::Duration;

use parley_signal::{ErrorCode, ServerMessage};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Server;
use support::api::{ADMIN_PASSWORD, Api, session_of};
use support::ws::{connect, expect_error, join, next, send};

/// PUTs `value` to `section`, expects 422 naming `field` and `rule`, and
/// checks the section is as it was.
async fn refused(api: &Api, section: &str, value: Value, field: &str, rule: &str) -> String {
    let path = format!("/api/v1/settings/{section}");
    let before = api.get(&path).await.body;
    let answer = api.put(&path, value).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(answer.body["error"]["code"], "invalid");
    let (got_field, got_rule, message) = answer.field_error();
    assert_eq!(
        (got_field.as_str(), got_rule.as_str()),
        (field, rule),
        "{}",
        answer.body
    );
    assert_eq!(
        api.get(&path).await.body,
        before,
        "nothing stored for {section}"
    );
    message
}

#[tokio::test]
async fn each_settings_rule_is_named_and_nothing_is_stored() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;

    let six: Vec<String> = (1..=6)
        .map(|i| format!("stun:stun{i}.example.org"))
        .collect();
    let message = refused(
        &api,
        "stun",
        json!({"builtin": true, "servers": six}),
        "servers[5]",
        "max_items",
    )
    .await;
    assert!(message.contains("at most 5"), "{message}");

    let message = refused(
        &api,
        "turn",
        json!({"servers": [{"urls": ["http://turn.example.org"], "username": "u", "credential": "p"}]}),
        "servers[0].urls[0]",
        "url",
    )
    .await;
    assert!(message.contains("http:"), "{message}");

    let message = refused(
        &api,
        "rooms",
        json!({"enabled": true, "max_members": 61}),
        "max_members",
        "range",
    )
    .await;
    assert!(message.contains("between 2 and 60"), "{message}");

    let message = refused(
        &api,
        "rooms",
        json!({"enabled": true, "max_members": 20, "last_n": 61}),
        "last_n",
        "range",
    )
    .await;
    assert!(message.contains("at most 60"), "{message}");

    let message = refused(&api, "logging", json!({"level": "loud"}), "level", "shape").await;
    assert!(message.contains("loud"), "{message}");

    let message = refused(
        &api,
        "reactions",
        json!({"allowed": ["🎉", "lol"]}),
        "allowed[1]",
        "emoji",
    )
    .await;
    assert!(message.contains("lol"), "{message}");

    // A good value is stored and read back; the whole set shows it.
    let ok = api
        .put(
            "/api/v1/settings/stun",
            json!({"builtin": false, "servers": ["stun:stun.example.org:3478"]}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let all = api.get("/api/v1/settings").await.body;
    assert_eq!(all["stun"]["servers"][0], "stun:stun.example.org:3478");
    // Reset restores the built-in server: nothing leaves this server.
    let reset = api
        .call(Method::DELETE, "/api/v1/settings/stun", None)
        .await;
    assert_eq!(reset.body, json!({"builtin": true, "servers": []}));
    assert_eq!(
        api.get("/api/v1/settings/nonsense").await.status,
        StatusCode::NOT_FOUND
    );

    // Settings survive a restart: they are in the store.
    let stored = parley_store::Store::open(&server.data_dir)
        .unwrap()
        .setting("stun")
        .unwrap();
    assert_eq!(stored, None, "a reset section is not stored");
}

#[tokio::test]
async fn the_reconnection_grace_period_is_a_live_room_setting() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    refused(
        &api,
        "rooms",
        json!({"enabled": true, "max_members": 20, "reconnect_grace_secs": 301}),
        "reconnect_grace_secs",
        "range",
    )
    .await;
    let saved = api
        .put(
            "/api/v1/settings/rooms",
            json!({"enabled": true, "max_members": 20, "reconnect_grace_secs": 0}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["reconnect_grace_secs"], 0);

    // With no grace period, a vanished participant leaves at once.
    let (mut a, mut b) = (connect(&server).await, connect(&server).await);
    join(&mut a, "graceless", "Ada").await;
    let grace = join(&mut b, "graceless", "Grace").await;
    drop(b);
    let left = loop {
        if let ServerMessage::ParticipantLeft { id, .. } = next(&mut a).await {
            break id;
        }
    };
    assert_eq!(left, grace);
}

#[tokio::test]
async fn a_reaction_outside_the_list_is_refused_through_signaling() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    let saved = api
        .put(
            "/api/v1/settings/reactions",
            json!({"allowed": ["🎉", "🚀"]}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);

    let mut ws = connect(&server).await;
    send(
        &mut ws,
        r#"{"type":"join","version":1,"room":"party","name":"Ada"}"#,
    )
    .await;
    let (me, reactions) = loop {
        if let ServerMessage::Joined { me, reactions, .. } = next(&mut ws).await {
            break (me, reactions);
        }
    };
    assert_eq!(reactions, vec!["🎉", "🚀"]);
    send(&mut ws, r#"{"type":"reaction","emoji":"👍"}"#).await;
    let message = expect_error(&mut ws, ErrorCode::ReactionNotAllowed).await;
    assert!(
        message.contains("👍") && message.contains("🚀"),
        "{message}"
    );
    send(&mut ws, r#"{"type":"reaction","emoji":"🚀"}"#).await;
    assert_eq!(
        next(&mut ws).await,
        ServerMessage::Reaction {
            participant: me.id,
            emoji: "🚀".into()
        }
    );
}

#[tokio::test]
async fn changes_apply_without_a_restart() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;

    // A lowered member limit applies to the next join.
    let limit = api
        .put(
            "/api/v1/settings/rooms",
            json!({"enabled": true, "max_members": 2}),
        )
        .await;
    assert_eq!(limit.status, StatusCode::OK, "{}", limit.body);
    let (mut a, mut b, mut c) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    join(&mut a, "small", "Ada").await;
    join(&mut b, "small", "Grace").await;
    send(
        &mut c,
        r#"{"type":"join","version":1,"room":"small","name":"Linus"}"#,
    )
    .await;
    expect_error(&mut c, ErrorCode::RoomFull).await;
    api.put(
        "/api/v1/settings/rooms",
        json!({"enabled": false, "max_members": 20}),
    )
    .await;
    send(
        &mut c,
        r#"{"type":"join","version":1,"room":"other","name":"Linus"}"#,
    )
    .await;
    expect_error(&mut c, ErrorCode::ConferencingDisabled).await;

    // The log level switches at once: debug lines appear.
    assert!(
        !server.log.lines().iter().any(|l| l.contains(" DEBUG ")),
        "no debug lines at the default level"
    );
    api.put("/api/v1/settings/logging", json!({"level": "debug"}))
        .await;
    send(&mut c, "not json").await;
    expect_error(&mut c, ErrorCode::BadJson).await;
    assert!(
        server
            .log
            .wait_for(" DEBUG ", Duration::from_secs(5))
            .is_some(),
        "debug lines after switching to debug"
    );

    // New ICE servers reach the next joiner.
    api.put(
        "/api/v1/settings/stun",
        json!({"builtin": true, "servers": ["stun:stun.example.org:3478"]}),
    )
    .await;
    api.put(
        "/api/v1/settings/rooms",
        json!({"enabled": true, "max_members": 20}),
    )
    .await;
    let mut d = connect(&server).await;
    send(
        &mut d,
        r#"{"type":"join","version":1,"room":"fresh","name":"Ada"}"#,
    )
    .await;
    let servers = loop {
        if let ServerMessage::Joined { ice_servers, .. } = next(&mut d).await {
            break ice_servers;
        }
    };
    assert!(
        servers[0]
            .urls
            .contains(&"stun:stun.example.org:3478".to_owned()),
        "{servers:?}"
    );
}

#[tokio::test]
async fn a_taken_media_port_is_reported_and_a_free_one_is_used_at_once() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let before = api.get("/api/v1/settings/connection").await.body;
    let answer = api
        .put(
            "/api/v1/settings/connection",
            json!({"mode": "fixed", "udp_port": port, "tcp_port": port}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    let (field, rule, message) = answer.field_error();
    assert_eq!((field.as_str(), rule.as_str()), ("udp_port", "bind"));
    assert!(
        message.contains(&port.to_string()) && message.contains("in use"),
        "{message}"
    );
    assert_eq!(api.get("/api/v1/settings/connection").await.body, before);

    drop(taken);
    let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let moved = api
        .put(
            "/api/v1/settings/connection",
            json!({"mode": "fixed", "udp_port": port, "tcp_port": port}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    // The built-in TURN relays a test packet to the new port: media and
    // TURN's peer policy both followed the change.
    let report = api.post("/api/v1/ice/check", json!({})).await.body;
    assert_eq!(
        report["media_address"],
        format!("127.0.0.1:{port}"),
        "{report}"
    );
    assert_eq!(report["ok"], true, "{report:#}");
}

#[tokio::test]
async fn accounts_sessions_and_tokens_are_enforced() {
    let server = Server::start(&[]);
    let anonymous = Api::anonymous(&server);
    assert_eq!(
        anonymous.get("/api/v1/settings").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.get("/api/v1/openapi.json").await.status,
        StatusCode::OK
    );
    let wrong = anonymous
        .post(
            "/api/v1/setup",
            json!({"token": "guess", "login": "eve@example.org", "password": "long enough password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let admin = Api::admin(&server).await;
    // The link is used up.
    let again = anonymous
        .post(
            "/api/v1/setup",
            json!({"token": server.setup_token(), "login": "eve@example.org", "password": "long enough password"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);

    // Passwords are stored as argon2id hashes.
    let store = parley_store::Store::open(&server.data_dir).unwrap();
    let users = store.users().unwrap();
    assert!(users[0].password_hash.starts_with("$argon2id$"));
    assert!(!users[0].password_hash.contains(ADMIN_PASSWORD));

    // Signing in from another site's page is refused (login CSRF).
    let cross = anonymous
        .client
        .post(format!("{}/api/v1/login", anonymous.base))
        .header("origin", "https://evil.example")
        .json(&json!({"login": "admin@example.org", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);

    // A browser session: cookie flags, and CSRF on changes.
    let login = anonymous
        .post(
            "/api/v1/login",
            json!({"login": "Admin@Example.org", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let cookie = login.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (cookie, csrf) = session_of(&login);
    let mut browser = Api::anonymous(&server);
    browser.session = Some((cookie.clone(), csrf));
    assert_eq!(
        browser.get("/api/v1/session").await.body["user"]["login"],
        "admin@example.org"
    );
    let forged = browser
        .client
        .put(format!("{}/api/v1/settings/rooms", browser.base))
        .header("cookie", &cookie)
        .json(&json!({"enabled": false, "max_members": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(
        admin.get("/api/v1/settings/rooms").await.body["max_members"],
        20,
        "nothing changed"
    );

    // A user who is not an administrator.
    let created = admin
        .post(
            "/api/v1/users",
            json!({"login": "grace@example.org", "password": "another long password"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let unknown_domain = admin
        .post(
            "/api/v1/users",
            json!({"login": "x@nowhere.example", "password": "another long password"}),
        )
        .await;
    assert_eq!(unknown_domain.field_error().0, "login");
    let weak = admin
        .post(
            "/api/v1/users",
            json!({"login": "y@example.org", "password": "short"}),
        )
        .await;
    assert_eq!(
        (weak.field_error().0.as_str(), weak.field_error().1.as_str()),
        ("password", "strength")
    );
    let grace_login = anonymous
        .post(
            "/api/v1/login",
            json!({"login": "grace@example.org", "password": "another long password"}),
        )
        .await;
    let mut grace = Api::anonymous(&server);
    grace.session = Some(session_of(&grace_login));
    assert_eq!(
        grace.get("/api/v1/settings").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(grace.get("/api/v1/tokens").await.status, StatusCode::OK);

    // The last administrator cannot be demoted or deleted.
    let me = admin.get("/api/v1/session").await.body["user"]["id"].clone();
    let demote = admin
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{me}"),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);

    // Tokens can be revoked.
    let tokens = admin.get("/api/v1/tokens").await.body;
    let id = tokens["tokens"][0]["id"].clone();
    let revoked = admin
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get("/api/v1/settings").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Guessing is throttled.
    let mut last = StatusCode::OK;
    for _ in 0..12 {
        last = anonymous
            .post(
                "/api/v1/login",
                json!({"login": "grace@example.org", "password": "wrong password"}),
            )
            .await
            .status;
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(last, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = Server::start(&[]);
    let api = Api::admin(&server).await;
    let bad = api
        .client
        .put(format!("{}/api/v1/settings/rooms", api.base))
        .header("authorization", api.bearer.clone().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
    let huge = "x".repeat(100_000);
    let big = api
        .put("/api/v1/settings/reactions", json!({"allowed": [huge]}))
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let nowhere = api.get("/api/v1/nowhere").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.body["error"]["code"], "not_found");
}
