//! A signaling client for tests: connect, join, read the next message.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_signal::{ErrorCode, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Server;

/// A signaling WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(server: &Server) -> Ws {
    tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap()
        .0
}

/// The next protocol message, skipping pings and subscribe offers (these
/// tests speak no WebRTC); panics after 5 s.
pub async fn next(ws: &mut Ws) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the connection to stay open")
            .unwrap();
        if let Message::Text(text) = frame {
            match serde_json::from_str(&text).unwrap() {
                ServerMessage::Offer { .. } => continue,
                message => return message,
            }
        }
    }
}

pub async fn expect_error(ws: &mut Ws, code: ErrorCode) -> String {
    match next(ws).await {
        ServerMessage::Error {
            code: got, message, ..
        } => {
            assert_eq!(got, code, "{message}");
            message
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

pub async fn join(ws: &mut Ws, room: &str, name: &str) -> String {
    let join = format!(r#"{{"type":"join","version":1,"room":"{room}","name":"{name}"}}"#);
    ws.send(Message::Text(join.into())).await.unwrap();
    loop {
        if let ServerMessage::Joined { me, .. } = next(ws).await {
            return me.id;
        }
    }
}

/// Sends one JSON text frame.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .unwrap();
}

/// Connects with extra request headers (a session cookie, an Origin).
pub async fn connect_with(
    server: &Server,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server.ws_url().into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}
