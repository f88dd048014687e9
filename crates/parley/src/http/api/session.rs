//! Signing in and out, the first-run setup, and the caller's own password.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_store::{Role, StoreError, UserUpdate};
use serde::Deserialize;
use serde_json::json;

use super::accounts::user_json;
use crate::auth::names::{Login, create_account};
use crate::auth::{self, Caller, Credential, password, tokens};
use crate::http::AppState;
use crate::http::error::{ApiError, JsonBody};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    login: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupBody {
    token: String,
    login: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    current: String,
    new: String,
}

/// Signing in from another site's page (login CSRF) is refused.
fn refuse_cross_site(parts: &Parts) -> Result<(), ApiError> {
    if auth::same_origin(parts) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "cross-site request refused: the Origin header names another site",
        ))
    }
}

/// Starts a session for `user`: the cookie and the CSRF token.
async fn start_session(
    state: &AppState,
    parts: &Parts,
    user: parley_store::User,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let secret = tokens::random_secret();
    let csrf = tokens::random_secret();
    let digest = tokens::digest(&secret);
    let now = crate::clock::unix_now_i64();
    let (id, csrf_stored) = (user.id, csrf.clone());
    state
        .services
        .db
        .run(move |s| {
            s.purge_sessions(now)?;
            s.create_session(&digest, id, &csrf_stored, now, now + auth::SESSION_SECONDS)
        })
        .await?;
    let cookie = auth::session_cookie(&secret, auth::over_https(&parts.headers));
    Ok((
        status,
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "user": user_json(&user), "csrf_token": csrf })),
    )
        .into_response())
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    parts: Parts,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&parts)?;
    if let Err(wait) = state.services.auth.limiter.attempt(peer.ip(), &body.login) {
        return Err(ApiError::too_many(
            "too many sign-in attempts; wait a little and try again",
            wait.as_secs(),
        ));
    }
    let refused = || ApiError::unauthorized("wrong login or password");
    let login = Login::parse(&body.login).ok();
    let user = match login {
        Some(l) => {
            state
                .services
                .db
                .run(move |s| s.user_by_login(&l.local, &l.domain))
                .await?
        }
        None => None,
    };
    let hash = user
        .as_ref()
        .map_or_else(|| password::decoy().to_owned(), |u| u.password_hash.clone());
    let given = body.password;
    let matches = tokio::task::spawn_blocking(move || password::verify(&given, &hash))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if matches && !user.disabled => {
            tracing::info!(user = %user.login(), "signed in");
            start_session(&state, &parts, user, StatusCode::OK).await
        }
        Some(user) if matches => {
            tracing::info!(user = %user.login(), "sign-in refused: account disabled");
            Err(ApiError::forbidden(
                "this account is disabled; ask an administrator",
            ))
        }
        _ => Err(refused()),
    }
}

pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    if let Credential::Session { digest, .. } = caller.credential {
        state
            .services
            .db
            .run(move |s| s.delete_session(&digest))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::expired_cookie())],
    )
        .into_response())
}

pub(super) async fn session(caller: Caller) -> Json<serde_json::Value> {
    let csrf = match &caller.credential {
        Credential::Session { csrf, .. } => Some(csrf.clone()),
        Credential::Token => None,
    };
    Json(json!({ "user": user_json(&caller.user), "csrf_token": csrf }))
}

/// Changes the caller's password. Every session of theirs ends (a stolen
/// one included); a browser that changed it gets a fresh session at once.
pub(super) async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    password::check_strength(&body.new).map_err(|m| ApiError::field("new", "strength", m))?;
    let hash = caller.user.password_hash.clone();
    let (current, new) = (body.current, body.new);
    let new_hash = tokio::task::spawn_blocking(move || {
        if password::verify(&current, &hash) {
            password::hash(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let Some(new_hash) = new_hash else {
        return Err(ApiError::field(
            "current",
            "match",
            "the current password is wrong",
        ));
    };
    let id = caller.user.id;
    let user = state
        .services
        .db
        .run(move |s| {
            s.update_user(
                id,
                &UserUpdate {
                    password_hash: Some(new_hash),
                    ..Default::default()
                },
            )
        })
        .await?;
    tracing::info!(user = %user.login(), "password changed");
    match caller.credential {
        Credential::Session { .. } => start_session(&state, &parts, user, StatusCode::OK).await,
        Credential::Token => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub(super) async fn setup_status(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "needed": state.services.auth.setup_pending() }))
}

/// Creates the first administrator with the one-time token printed at start.
pub(super) async fn setup(
    State(state): State<AppState>,
    parts: Parts,
    JsonBody(body): JsonBody<SetupBody>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&parts)?;
    let login = Login::parse(&body.login).map_err(|m| ApiError::field("login", "format", m))?;
    password::check_strength(&body.password)
        .map_err(|m| ApiError::field("password", "strength", m))?;
    let display_name = body
        .display_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| login.local.clone());
    if !state.services.auth.take_setup(&body.token) {
        return Err(ApiError::forbidden(
            "this setup link is used up or wrong; an administrator exists already, or restart the server for a new link",
        ));
    }
    let token = body.token;
    let plain = body.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&plain))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let now = crate::clock::unix_now_i64();
    let created = state
        .services
        .db
        .run(move |s| {
            if !s.users()?.is_empty() {
                // Someone ran `parley admin create-user` meanwhile.
                return Err(StoreError::Refused(
                    "an account exists already; sign in instead".into(),
                ));
            }
            create_account(s, login, display_name, hash, Role::Admin, true, now)
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(user = %user.login(), "first administrator created");
            start_session(&state, &parts, user, StatusCode::CREATED).await
        }
        Err(e) => {
            if !matches!(e, StoreError::Refused(_)) {
                state.services.auth.restore_setup(token);
            }
            Err(e.into())
        }
    }
}
