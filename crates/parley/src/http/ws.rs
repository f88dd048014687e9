//! The signaling WebSocket: one task per connection, relaying frames to the
//! conference task and its replies back.

use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use parley_signal::{Account, ConnMeta, MAX_MESSAGE_BYTES};

use super::AppState;
use crate::auth;
use crate::conference::{Command, Outbound};

/// Frames beyond this size end the connection at the WebSocket layer (close
/// code 1009). Messages between the protocol limit and this get a polite
/// `too_large` error instead, so a client learns what went wrong.
const MAX_FRAME_BYTES: usize = 16 * MAX_MESSAGE_BYTES;
/// How long a connection closed for an oversized frame stays open so the
/// client can read the close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How often the server pings; browsers answer automatically.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Upgrades to the signaling WebSocket. A page of another site may not
/// open it (the session cookie would carry the user's room rights there);
/// the signed-in user, if any, comes from the session cookie.
pub(super) async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    parts: Parts,
) -> Response {
    if !auth::same_origin(&parts) {
        return (
            StatusCode::FORBIDDEN,
            "cross-site WebSocket refused: the Origin header names another site",
        )
            .into_response();
    }
    let account = match auth::identify(&parts, &state.services.db).await {
        Ok(caller) => caller.map(|c| Account {
            id: c.user.id,
            name: c.user.display_name,
            domain: c.user.domain,
        }),
        Err(e) => return e.into_response(),
    };
    let meta = ConnMeta {
        ip: Some(peer.ip()),
        account,
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(socket, state, meta))
}

async fn serve(socket: WebSocket, state: AppState, meta: ConnMeta) {
    let conference = state.conference;
    let Some((conn, mut outbound)) = conference.connect(meta).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;

    loop {
        tokio::select! {
            frame = stream.next() => {
                let command = match frame {
                    Some(Ok(Message::Text(text))) => Command::Text(conn, text.to_string()),
                    Some(Ok(Message::Binary(_))) => Command::Binary(conn),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Command::Activity(conn),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::debug!(conn = conn.0, "websocket error: {e}");
                        if is_too_big(e) {
                            // RFC 6455 §7.4.1: 1009, the message is too big to process.
                            let frame = CloseFrame {
                                code: 1009,
                                reason: format!("frames over {MAX_FRAME_BYTES} bytes are not accepted").into(),
                            };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            // The rest of the frame is still arriving and is
                            // not read (it could be any size): closing now
                            // would answer it with a TCP reset, which can
                            // destroy the close frame before the client reads
                            // it. A moment's wait lets the client see 1009.
                            tokio::time::sleep(CLOSE_LINGER).await;
                        }
                        break;
                    }
                };
                if !conference.send(command).await {
                    break;
                }
            }
            message = outbound.recv() => {
                match message {
                    Some(Outbound::Text(text)) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outbound::Close(reason)) => {
                        let frame = CloseFrame { code: 1000, reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                    None => break,
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    conference.send(Command::Disconnect(conn)).await;
}

/// Whether a read failed because a frame or message exceeded
/// [`MAX_FRAME_BYTES`] (tungstenite stops reading it at the header).
fn is_too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        error.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(_))
    )
}
