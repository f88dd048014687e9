//! Accounts as the HTTP side sees them: who is calling (session cookie or
//! personal access token), whether they may, the first-run setup link, and
//! login throttling.
//!
//! Browsers hold a session cookie (`HttpOnly`, `SameSite=Strict`); every
//! request that changes something must also carry the session's CSRF token
//! in `X-CSRF-Token`. API clients send `Authorization: Bearer <token>`
//! instead, which browsers never add by themselves, so no CSRF token is needed.

pub mod limiter;
pub mod names;
pub mod password;
pub mod tokens;

use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use parley_store::{Role, User};

use crate::db::Db;
use crate::http::AppState;
use crate::http::error::ApiError;
use limiter::LoginLimiter;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "parley_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a browser stays signed in.
pub const SESSION_SECONDS: i64 = 7 * 86_400;

/// Login throttling and the first-run setup token.
pub struct Auth {
    /// Login attempts.
    pub limiter: LoginLimiter,
    setup: Mutex<Option<String>>,
}

impl Auth {
    /// With a setup token when the database has no administrator yet.
    pub fn new(setup_token: Option<String>) -> Auth {
        Auth {
            limiter: LoginLimiter::default(),
            setup: Mutex::new(setup_token),
        }
    }

    /// Whether the first administrator still has to be created.
    pub fn setup_pending(&self) -> bool {
        self.setup.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Uses up the setup token if `token` is it.
    pub fn take_setup(&self, token: &str) -> bool {
        let Ok(mut setup) = self.setup.lock() else {
            return false;
        };
        match setup.as_deref() {
            Some(t) if tokens::same(t, token) => {
                *setup = None;
                true
            }
            _ => false,
        }
    }

    /// Puts the token back (creating the administrator failed).
    pub fn restore_setup(&self, token: String) {
        if let Ok(mut setup) = self.setup.lock() {
            *setup = Some(token);
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A browser session, by the digest of its cookie.
    Session {
        /// What the store keeps.
        digest: Vec<u8>,
        /// The session's CSRF token.
        csrf: String,
    },
    /// A personal access token.
    Token,
}

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub user: User,
    /// How.
    pub credential: Credential,
}

/// A signed-in administrator.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses requests another site's page made: `Origin`, when a browser
/// sends it, must name this host.
pub fn same_origin(parts: &Parts) -> bool {
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// Finds the caller, if signed in, without checking CSRF.
pub async fn identify(parts: &Parts, db: &Db) -> Result<Option<Caller>, ApiError> {
    let now = crate::clock::unix_now_i64();
    if let Some(token) = bearer(parts) {
        let digest = tokens::digest(&token);
        let user = db.run(move |s| s.api_token_user(&digest, now)).await?;
        return match user {
            Some(user) => Ok(Some(Caller {
                user,
                credential: Credential::Token,
            })),
            None => Err(ApiError::unauthorized(
                "the access token is unknown, revoked, or its account is disabled",
            )),
        };
    }
    let Some(secret) = cookie(parts, SESSION_COOKIE) else {
        return Ok(None);
    };
    let digest = tokens::digest(&secret);
    let lookup = digest.clone();
    let session = db.run(move |s| s.session(&lookup, now)).await?;
    Ok(session.map(|s| Caller {
        user: s.user,
        credential: Credential::Session {
            digest,
            csrf: s.csrf_token,
        },
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = identify(parts, &state.services.db)
            .await?
            .ok_or_else(|| ApiError::unauthorized("sign in first"))?;
        if let Credential::Session { csrf, .. } = &caller.credential
            && changes_something(&parts.method)
        {
            if !same_origin(parts) {
                return Err(ApiError::forbidden(
                    "cross-site request refused: the Origin header names another site",
                ));
            }
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !tokens::same(sent, csrf) {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header: send the csrf_token from GET /api/v1/session",
                ));
            }
        }
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.user.role != Role::Admin {
            return Err(ApiError::forbidden("administrators only"));
        }
        Ok(Admin(caller))
    }
}

/// The `Set-Cookie` value for a new session (`Secure` behind an HTTPS proxy).
pub fn session_cookie(secret: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that signs a browser out.
pub fn expired_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether the browser reached us over HTTPS (through a proxy that says so).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}
