//! Room security at the WebSocket level, against a real `parley serve`: a
//! room password cannot be skipped by sending signaling messages directly,
//! wrong passwords are limited, a knocking or refused connection hears
//! nothing of the room and can do nothing in it, and another site's page
//! cannot open the signaling socket with the user's cookie.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use parley_signal::{ErrorCode, Role, ServerMessage};

use support::Server;
use support::api::{ADMIN_PASSWORD, Api};
use support::ws::{Ws, connect, connect_with, expect_error, next, send};

const PASSWORD: &str = "tide pool 42";

/// Sends a ping and checks the pong is the next message: nothing else was
/// sent to this connection before it.
async fn heard_nothing(ws: &mut Ws) {
    send(ws, r#"{"type":"ping"}"#).await;
    match next(ws).await {
        ServerMessage::Pong => {}
        other => panic!("expected nothing but the pong, got {other:?}"),
    }
}

/// The first administrator, signed in, joins "vault" (owning it) and sets
/// the password; returns its session cookie and its connection.
async fn owner_with_password(server: &Server) -> (String, Ws) {
    let _admin = Api::admin(server).await;
    let cookie = Api::signed_in(server, "admin@example.org", ADMIN_PASSWORD)
        .await
        .cookie();
    let mut owner = connect_with(server, &[("cookie", &cookie)]).await.unwrap();
    send(
        &mut owner,
        r#"{"type":"join","version":1,"room":"vault","name":"Owner"}"#,
    )
    .await;
    // (A signed-in connection hears presence first.)
    let me = loop {
        if let ServerMessage::Joined { me, .. } = next(&mut owner).await {
            break me;
        }
    };
    assert_eq!(me.role, Role::Moderator);
    send(
        &mut owner,
        &format!(r#"{{"type":"security","password":"{PASSWORD}"}}"#),
    )
    .await;
    loop {
        if let ServerMessage::Security { security } = next(&mut owner).await
            && security.password
        {
            break;
        }
    }
    (cookie, owner)
}

async fn join_with(ws: &mut Ws, password: Option<&str>) {
    let password = password.map_or(String::new(), |p| format!(r#","password":"{p}""#));
    send(
        ws,
        &format!(r#"{{"type":"join","version":1,"room":"vault","name":"Eve"{password},"role":"moderator"}}"#),
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_room_password_cannot_be_bypassed_over_the_websocket() {
    let server = Server::start(&[]);
    // The signed-in owner sets a password.
    let (cookie, mut owner) = owner_with_password(&server).await;

    // Another site's page cannot open the socket with the user's cookie.
    let cross = connect_with(
        &server,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    assert!(cross.is_err(), "a cross-site WebSocket was accepted");

    let mut eve = connect(&server).await;
    join_with(&mut eve, None).await;
    expect_error(&mut eve, ErrorCode::PasswordRequired).await;
    join_with(&mut eve, Some("tide pool 41")).await;
    expect_error(&mut eve, ErrorCode::WrongPassword).await;

    // Nothing a room member could send works without getting in.
    for message in [
        r#"{"type":"offer","pc":"publish","sdp":"v=0\r\n"}"#,
        r#"{"type":"answer","pc":"subscribe","sdp":"v=0\r\n"}"#,
        r#"{"type":"candidate","pc":"publish","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}"#,
        r#"{"type":"media","mic":true}"#,
        r#"{"type":"chat","text":"let me in"}"#,
        r#"{"type":"reaction","emoji":"👍"}"#,
        r#"{"type":"hand","raised":true}"#,
        r#"{"type":"screen","mid":"0"}"#,
        r#"{"type":"security","password":""}"#,
        r#"{"type":"admit","all":true}"#,
        r#"{"type":"moderate","action":"remove","participant":"p0000000000000000"}"#,
        r#"{"type":"end_meeting"}"#,
    ] {
        send(&mut eve, message).await;
        expect_error(&mut eve, ErrorCode::NotJoined).await;
    }
    // The room's chat and arrivals never reach the refused connection.
    send(&mut owner, r#"{"type":"chat","text":"for members only"}"#).await;
    heard_nothing(&mut eve).await;

    // Wrong guesses are limited per address: five, then a wait.
    for _ in 0..4 {
        join_with(&mut eve, Some("guess")).await;
        expect_error(&mut eve, ErrorCode::WrongPassword).await;
    }
    join_with(&mut eve, Some(PASSWORD)).await;
    let message = expect_error(&mut eve, ErrorCode::RateLimited).await;
    assert!(message.contains("try again in"), "{message}");
    // A new connection from the same address does not reset the count.
    let mut again = connect(&server).await;
    join_with(&mut again, Some(PASSWORD)).await;
    expect_error(&mut again, ErrorCode::RateLimited).await;

    // The owner still runs the room, and the password is still required.
    send(&mut owner, r#"{"type":"ping"}"#).await;
    loop {
        if matches!(next(&mut owner).await, ServerMessage::Pong) {
            break;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_right_password_admits_as_a_participant_only() {
    let server = Server::start(&[]);
    let (_, _owner) = owner_with_password(&server).await;

    let mut eve = connect(&server).await;
    join_with(&mut eve, Some(PASSWORD)).await;
    let ServerMessage::Joined { me, security, .. } = next(&mut eve).await else {
        panic!("not joined with the right password");
    };
    assert_eq!(
        me.role,
        Role::Participant,
        "a `role` field in join is ignored"
    );
    assert!(security.password);
    send(&mut eve, r#"{"type":"security","password":""}"#).await;
    expect_error(&mut eve, ErrorCode::Forbidden).await;
    send(&mut eve, r#"{"type":"end_meeting"}"#).await;
    expect_error(&mut eve, ErrorCode::Forbidden).await;
}
