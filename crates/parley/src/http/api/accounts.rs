//! Domains and users (administrators), and each user's access tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_store::{Role, User, UserUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::names::{Login, create_account, parse_domain};
use crate::auth::{Admin, Caller, password, tokens};
use crate::http::AppState;
use crate::http::error::{ApiError, JsonBody};

/// Longest display name.
const MAX_DISPLAY_NAME: usize = 64;
/// Longest token name.
const MAX_TOKEN_NAME: usize = 64;

/// A user as the API shows it (never the password hash).
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "login": u.login(),
        "domain": u.domain,
        "display_name": u.display_name,
        "role": u.role.as_str(),
        "disabled": u.disabled,
        "created_at": u.created_at,
    })
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    match raw {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(ApiError::field(
            "role",
            "enum",
            format!("role must be \"admin\" or \"user\", not {other:?}"),
        )),
    }
}

fn display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ApiError::field(
            "display_name",
            "length",
            format!("the display name needs 1-{MAX_DISPLAY_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "display_name",
            "characters",
            "the display name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

async fn hash_password(plain: String, field: &str) -> Result<String, ApiError> {
    password::check_strength(&plain).map_err(|m| ApiError::field(field, "strength", m))?;
    tokio::task::spawn_blocking(move || password::hash(&plain))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainBody {
    name: String,
}

pub(super) async fn domains(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let list = state.services.db.run(|s| s.domains()).await?;
    Ok(Json(json!({
        "domains": list.into_iter().map(|(name, users)| json!({"name": name, "users": users})).collect::<Vec<_>>()
    })))
}

pub(super) async fn create_domain(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<DomainBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_domain(&body.name).map_err(|m| ApiError::field("name", "format", m))?;
    let at = crate::clock::unix_now_i64();
    let stored = name.clone();
    state
        .services
        .db
        .run(move |s| s.create_domain(&stored, at))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name, "users": 0}))))
}

pub(super) async fn delete_domain(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = name.to_ascii_lowercase();
    state
        .services
        .db
        .run(move |s| s.delete_domain(&name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    login: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

pub(super) async fn users(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let list = state.services.db.run(|s| s.users()).await?;
    Ok(Json(
        json!({ "users": list.iter().map(user_json).collect::<Vec<_>>() }),
    ))
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let login = Login::parse(&body.login).map_err(|m| ApiError::field("login", "format", m))?;
    let role = parse_role(body.role.as_deref().unwrap_or("user"))?;
    let display_name = display_name(body.display_name.as_deref().unwrap_or(&login.local))?;
    let hash = hash_password(body.password, "password").await?;
    let at = crate::clock::unix_now_i64();
    let user = state
        .services
        .db
        .run(move |s| create_account(s, login, display_name, hash, role, false, at))
        .await
        .map_err(|e| match e {
            parley_store::StoreError::NotFound(what) => ApiError::field(
                "login",
                "domain",
                format!("{what} does not exist; create the domain first"),
            ),
            other => other.into(),
        })?;
    tracing::info!(by = %admin.user.login(), user = %user.login(), "user created");
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

pub(super) async fn user(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let user = state.services.db.run(move |s| s.user(id)).await?;
    user.map(|u| Json(user_json(&u)))
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<UserPatch>,
) -> Result<Json<Value>, ApiError> {
    let update = UserUpdate {
        display_name: body.display_name.as_deref().map(display_name).transpose()?,
        password_hash: match body.password {
            Some(p) => Some(hash_password(p, "password").await?),
            None => None,
        },
        role: body.role.as_deref().map(parse_role).transpose()?,
        disabled: body.disabled,
    };
    let user = state
        .services
        .db
        .run(move |s| s.update_user(id, &update))
        .await?;
    tracing::info!(by = %admin.user.login(), user = %user.login(), "user changed");
    Ok(Json(user_json(&user)))
}

pub(super) async fn delete_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.services.db.run(move |s| s.delete_user(id)).await?;
    tracing::info!(by = %admin.user.login(), user = id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenBody {
    name: String,
}

pub(super) async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let id = caller.user.id;
    let list = state.services.db.run(move |s| s.api_tokens(id)).await?;
    Ok(Json(json!({
        "tokens": list.iter().map(|t| json!({
            "id": t.id, "name": t.name, "created_at": t.created_at, "last_used_at": t.last_used_at
        })).collect::<Vec<_>>()
    })))
}

/// Creates a token; its secret is in this answer only.
pub(super) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME {
        return Err(ApiError::field(
            "name",
            "length",
            format!("the token name needs 1-{MAX_TOKEN_NAME} characters"),
        ));
    }
    let secret = tokens::new_api_token();
    let digest = tokens::digest(&secret);
    let (id, at) = (caller.user.id, crate::clock::unix_now_i64());
    let token = state
        .services
        .db
        .run(move |s| s.create_api_token(id, &name, &digest, at))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": token.id, "name": token.name, "created_at": token.created_at, "token": secret
        })),
    ))
}

pub(super) async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = caller.user.id;
    state
        .services
        .db
        .run(move |s| s.delete_api_token(user, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
