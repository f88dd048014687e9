//! The REST API under `/api/v1`, described by `openapi.json` (served at
//! `/api/v1/openapi.json`). JSON in and out; errors as in [`super::error`].

mod accounts;
mod buddies;
mod conferences;
mod history;
mod ice;
mod rooms;
mod session;
mod settings;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

pub use accounts::user_json;

use super::AppState;
use super::error::ApiError;

/// The OpenAPI 3.1 description of everything below.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest request body.
const MAX_BODY: usize = 64 * 1024;

/// Every route, as the OpenAPI document must list it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/setup"),
    ("post", "/api/v1/setup"),
    ("post", "/api/v1/login"),
    ("post", "/api/v1/logout"),
    ("get", "/api/v1/session"),
    ("put", "/api/v1/session/password"),
    ("get", "/api/v1/domains"),
    ("post", "/api/v1/domains"),
    ("delete", "/api/v1/domains/{name}"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/settings"),
    ("get", "/api/v1/settings/defaults"),
    ("get", "/api/v1/settings/{section}"),
    ("put", "/api/v1/settings/{section}"),
    ("delete", "/api/v1/settings/{section}"),
    ("get", "/api/v1/ice/servers"),
    ("post", "/api/v1/ice/check"),
    ("get", "/api/v1/rooms"),
    ("get", "/api/v1/buddies"),
    ("get", "/api/v1/history"),
    ("delete", "/api/v1/history"),
    ("get", "/api/v1/history/export"),
    ("get", "/api/v1/conferences"),
    ("post", "/api/v1/conferences"),
    ("put", "/api/v1/conferences/{id}"),
    ("delete", "/api/v1/conferences/{id}"),
    ("get", "/api/v1/conferences/{id}/ics"),
];

/// The API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/setup", get(session::setup_status).post(session::setup))
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route("/session", get(session::session))
        .route("/session/password", put(session::change_password))
        .route(
            "/domains",
            get(accounts::domains).post(accounts::create_domain),
        )
        .route(
            "/domains/{name}",
            axum::routing::delete(accounts::delete_domain),
        )
        .route("/users", get(accounts::users).post(accounts::create_user))
        .route(
            "/users/{id}",
            get(accounts::user)
                .patch(accounts::update_user)
                .delete(accounts::delete_user),
        )
        .route(
            "/tokens",
            get(accounts::tokens).post(accounts::create_token),
        )
        .route(
            "/tokens/{id}",
            axum::routing::delete(accounts::delete_token),
        )
        .route("/settings", get(settings::all))
        .route("/settings/defaults", get(settings::defaults))
        .route(
            "/settings/{section}",
            get(settings::get)
                .put(settings::put)
                .delete(settings::reset),
        )
        .route("/ice/servers", get(ice::servers))
        .route("/ice/check", post(ice::check))
        .route("/rooms", get(rooms::rooms))
        .route("/buddies", get(buddies::buddies))
        .route("/history", get(history::history).delete(history::delete))
        .route("/history/export", get(history::export))
        .route(
            "/conferences",
            get(conferences::list).post(conferences::create),
        )
        .route(
            "/conferences/{id}",
            axum::routing::put(conferences::update).delete(conferences::cancel),
        )
        .route("/conferences/{id}/ics", get(conferences::calendar))
        .fallback(|| async {
            ApiError::not_found("no such API endpoint; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Answers carry account data and fresh credentials: never cache.
        .layer(axum::middleware::map_response(no_store))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "openapi.json lacks {method} {path}"
            );
        }
        let listed: usize = paths
            .values()
            .map(|p| {
                p.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .count()
            })
            .sum();
        assert_eq!(
            listed,
            ROUTES.len(),
            "openapi.json lists routes that do not exist"
        );
    }
}
