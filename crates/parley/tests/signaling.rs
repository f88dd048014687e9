//! The signaling WebSocket of a real `parley` process: bad input gets a
//! named error, and neither the connection nor the room nor the server suffers.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_signal::{ErrorCode, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use support::Server;
use support::ws::{connect, expect_error, join, next};

async fn http_status(server: &Server, path: &str) -> u16 {
    let mut tcp = TcpStream::connect(server.http).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn garbage_gets_named_errors_and_the_connection_lives_on() {
    let server = Server::start(&[]);
    let mut ws = connect(&server).await;

    ws.send(Message::Text("hello".into())).await.unwrap();
    let message = expect_error(&mut ws, ErrorCode::BadJson).await;
    assert!(message.contains("not JSON"), "{message}");

    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    expect_error(&mut ws, ErrorCode::BadJson).await;

    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100_000));
    ws.send(Message::Text(big.into())).await.unwrap();
    let message = expect_error(&mut ws, ErrorCode::TooLarge).await;
    assert!(message.contains("65536"), "{message}");

    ws.send(Message::Text(
        r#"{"type":"answer","pc":"subscribe","sdp":""}"#.into(),
    ))
    .await
    .unwrap();
    expect_error(&mut ws, ErrorCode::NotJoined).await;

    // Still a perfectly good connection.
    join(&mut ws, "survivors", "Ada").await;
    ws.send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, ServerMessage::Pong);
}

/// docs/protocol.md: frames over 1 MiB close the connection with 1009.
#[tokio::test]
async fn an_oversized_frame_closes_the_connection_with_1009() {
    let server = Server::start(&[]);
    let ws = connect(&server).await;
    let (mut write, mut read) = ws.split();
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2 << 20));
    // Sending and reading at once, as a browser does: the server does not
    // read the rest of the frame, so the write may stall or be reset.
    let sending = tokio::spawn(async move {
        let _ = write.send(Message::Text(big.into())).await;
    });
    let close = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(frame) = read.next().await {
            match frame {
                Ok(Message::Close(close)) => return close,
                Ok(_) => continue,
                Err(e) => panic!("the connection ended without a close frame: {e}"),
            }
        }
        panic!("the connection ended without a close frame");
    })
    .await
    .expect("a close frame within 10 s");
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    sending.abort();
}

#[tokio::test]
async fn a_malformed_offer_leaves_the_room_untouched() {
    let server = Server::start(&[]);
    let (mut a, mut b) = (connect(&server).await, connect(&server).await);
    join(&mut a, "steady", "Ada").await;
    let grace = join(&mut b, "steady", "Grace").await;
    assert!(matches!(
        next(&mut a).await,
        ServerMessage::ParticipantJoined { .. }
    ));

    for bad in [
        r#"{"type":"offer","pc":"publish","sdp":"v=0\r\nthis is not SDP"}"#,
        r#"{"type":"offer","pc":"publish","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}"#,
    ] {
        b.send(Message::Text(bad.into())).await.unwrap();
        expect_error(&mut b, ErrorCode::SdpRejected).await;
    }
    // Grace is still in the room: a state change of hers reaches Ada.
    b.send(Message::Text(r#"{"type":"media","mic":false}"#.into()))
        .await
        .unwrap();
    match next(&mut a).await {
        ServerMessage::ParticipantUpdated { participant } => {
            assert_eq!(participant.id, grace);
            assert!(!participant.mic);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_participant_vanishing_is_announced_and_the_server_stays_up() {
    let server = Server::start(&[]);
    let (mut a, mut b) = (connect(&server).await, connect(&server).await);
    join(&mut a, "abrupt", "Ada").await;
    let grace = join(&mut b, "abrupt", "Grace").await;
    assert!(matches!(
        next(&mut a).await,
        ServerMessage::ParticipantJoined { .. }
    ));

    // No close frame: the TCP connection just goes away. Grace keeps her
    // place while she may reconnect (rooms.reconnect_grace_secs, 30 s).
    drop(b);
    match next(&mut a).await {
        ServerMessage::ParticipantUpdated { participant } => {
            assert_eq!(participant.id, grace);
            assert!(participant.reconnecting);
        }
        other => panic!("{other:?}"),
    }

    // A frame far beyond any limit ends that connection at the WebSocket
    // layer, and nothing else.
    let mut c = connect(&server).await;
    let huge = "x".repeat(4 * 1024 * 1024);
    let _ = c.send(Message::Text(huge.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "an oversized frame closes its connection");

    assert_eq!(http_status(&server, "/healthz").await, 200);
    a.send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next(&mut a).await, ServerMessage::Pong);
    let mut d = connect(&server).await;
    join(&mut d, "abrupt", "Lin").await;
}

#[tokio::test]
async fn pages_and_assets_are_served_with_a_strict_policy() {
    let server = Server::start(&[]);
    assert_eq!(http_status(&server, "/").await, 200);
    assert_eq!(http_status(&server, "/r/team-sync").await, 200);
    assert_eq!(http_status(&server, "/r/Team-Sync").await, 308);
    assert_eq!(http_status(&server, "/r/no%20spaces").await, 400);
    assert_eq!(http_status(&server, "/assets/js/protocol.js").await, 200);
    assert_eq!(http_status(&server, "/assets/../Cargo.toml").await, 404);
    assert_eq!(http_status(&server, "/assets/%2e%2e/Cargo.toml").await, 404);
    assert_eq!(http_status(&server, "/nothing-here").await, 404);

    let mut tcp = TcpStream::connect(server.http).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");
}
