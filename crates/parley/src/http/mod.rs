//! The HTTP side: pages, embedded assets, health check, the signaling
//! WebSocket, the REST API and the admin console.

pub mod api;
pub mod error;
pub mod server;
pub mod web;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use parley_signal::RoomName;

use crate::auth::Auth;
use crate::conference::ConferenceHandle;
use crate::db::Db;
use crate::ice_servers::IceService;
use crate::live_settings::SettingsService;
use crate::turn::TurnService;

/// The server's long-lived parts that handlers use.
pub struct Services {
    /// The store.
    pub db: Db,
    /// Sign-in throttling and first-run setup.
    pub auth: Auth,
    /// The live settings.
    pub settings: SettingsService,
    /// ICE servers and the connectivity check.
    pub ice: IceService,
    /// ACME HTTP-01 challenges in progress.
    pub acme: crate::tls::acme::Challenges,
}

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The conference task.
    pub conference: ConferenceHandle,
    /// The built-in TURN server, when on.
    pub turn: Option<Arc<TurnService>>,
    /// Everything else.
    pub services: Arc<Services>,
}

/// The application's routes. Tests call this with `oneshot`, no server needed.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| page("index.html")))
        .route("/r/{room}", get(room_page))
        .route("/assets/{*path}", get(asset))
        .route("/favicon.ico", get(|| page("favicon.svg")))
        .route("/healthz", get(healthz))
        .route("/.well-known/acme-challenge/{token}", get(acme_challenge))
        .route("/metrics", get(metrics))
        .route("/ws", get(ws::upgrade))
        .route("/login", get(|| page("login.html")))
        .route("/setup", get(|| page("setup.html")))
        .route("/admin", get(|| page("admin/index.html")))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .nest("/api/v1", api::router())
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// An ACME CA fetching the answer to an HTTP-01 challenge.
async fn acme_challenge(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> axum::response::Response {
    match state.services.acme.answer(&token) {
        Some(answer) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        concat!(
            r#"{"status":"ok","version":""#,
            env!("CARGO_PKG_VERSION"),
            r#""}"#
        ),
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    let conference = state.conference.stats().await;
    let turn = state.turn.as_ref().map(|t| t.metrics());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(conference, turn),
    )
        .into_response()
}

async fn room_page(Path(raw): Path<String>) -> Response {
    match RoomName::parse(&raw) {
        Ok(name) if name.as_str() == raw => asset_response("room.html"),
        // Same room, canonical spelling: one room, one URL.
        Ok(name) => Redirect::permanent(&format!("/r/{name}")).into_response(),
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("That is not a valid room name: it {reason}.\n"),
        )
            .into_response(),
    }
}

async fn page(path: &'static str) -> Response {
    asset_response(path)
}

async fn asset(Path(path): Path<String>) -> Response {
    asset_response(&path)
}

fn asset_response(path: &str) -> Response {
    match web::asset(path) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                // No build step means no hashed names: let browsers revalidate.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not found\n").into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found\n").into_response()
}

/// Nothing loads from anywhere but this server; no framing; no referrer leaks.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
