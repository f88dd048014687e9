//! Scheduled conferences: create, list, change, cancel, download as `.ics`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use parley_store::Conference;
use serde_json::{Value, json};

use crate::auth::{Caller, password};
use crate::http::AppState;
use crate::http::error::{ApiError, JsonBody};
use crate::schedule::{self, ConferenceBody};

/// Where links in invitations point: the mail setting, else the address
/// this request came to.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.services.settings.current().mail.public_url.clone();
    if !configured.is_empty() {
        return configured;
    }
    let https = crate::auth::over_https(headers);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

fn conference_json(c: &Conference, viewer: i64, base: &str) -> Value {
    let organizer = c.organizer_id == viewer;
    json!({
        "id": c.id,
        "title": c.title,
        "room": c.room,
        "link": schedule::link(base, &c.room),
        "starts_local": c.starts_local,
        "time_zone": c.time_zone,
        "starts_at": c.starts_at,
        "duration_min": c.duration_min,
        "cancelled": c.cancelled,
        "sequence": c.sequence,
        "organizer": { "name": c.organizer_name, "login": c.organizer_login, "you": organizer },
        "invitees": c.invitees.iter().map(|i| {
            let mut v = json!({ "email": i.email, "account": i.account_id.is_some() });
            // Delivery problems are the organizer's to see.
            if organizer {
                v["delivery"] = json!(i.delivery);
            }
            v
        }).collect::<Vec<_>>(),
    })
}

async fn hash_room_password(plain: Option<&String>) -> Result<Option<String>, ApiError> {
    let Some(plain) = plain.filter(|p| !p.is_empty()).cloned() else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || password::hash(&plain))
        .await
        .map_err(ApiError::internal)?
        .map(Some)
        .map_err(ApiError::internal)
}

async fn load(state: &AppState, id: i64) -> Result<Conference, ApiError> {
    state
        .services
        .db
        .run(move |s| s.conference(id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such conference"))
}

async fn owned(state: &AppState, id: i64, caller: &Caller) -> Result<Conference, ApiError> {
    let c = load(state, id).await?;
    if c.organizer_id != caller.user.id {
        return Err(ApiError::forbidden(
            "only the organizer can change a conference",
        ));
    }
    Ok(c)
}

/// E-mails `recipients` about `conference` in the background.
fn mail(
    state: &AppState,
    conference: &Conference,
    recipients: Vec<String>,
    base_url: &str,
    password: Option<String>,
    cancelled: bool,
) {
    schedule::send_invitations(
        state.services.db.clone(),
        state.services.settings.current(),
        schedule::Mailing {
            conference: conference.clone(),
            recipients,
            base_url: base_url.to_owned(),
            password,
            cancelled,
        },
    );
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let me = caller.user.id;
    let now = crate::clock::unix_now_i64();
    let list = state
        .services
        .db
        .run(move |s| s.upcoming_conferences(me, now))
        .await?;
    let base = base_url(&state, &headers);
    Ok(Json(json!({
        "conferences": list.iter().map(|c| conference_json(c, me, &base)).collect::<Vec<_>>(),
        "mail": state.services.settings.current().mail.enabled,
    })))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ConferenceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let draft = body.validate()?;
    let room = schedule::room_for(&draft.title);
    let phc = hash_room_password(body.password.as_ref()).await?;
    let me = caller.user.id;
    let uid = format!("{:032x}@parley", rand::random::<u128>());
    let at = crate::clock::unix_now_i64();
    let stored_room = room.clone();
    let conference = state
        .services
        .db
        .run(move |s| s.create_conference(&uid, me, &stored_room, &draft, at))
        .await?;
    schedule::configure_room(&state.conference, &room, me, phc, Some(body.lobby)).await?;
    let base = base_url(&state, &headers);
    let password = body.password.filter(|p| !p.is_empty());
    let everyone = schedule::invitee_emails(&conference);
    mail(&state, &conference, everyone, &base, password, false);
    tracing::info!(conference = conference.id, "conference scheduled");
    Ok((
        StatusCode::CREATED,
        Json(conference_json(&conference, me, &base)),
    ))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<ConferenceBody>,
) -> Result<Json<Value>, ApiError> {
    let current = owned(&state, id, &caller).await?;
    if current.cancelled {
        return Err(ApiError::conflict("the conference was cancelled"));
    }
    let draft = body.validate()?;
    let phc = hash_room_password(body.password.as_ref()).await?;
    let at = crate::clock::unix_now_i64();
    let before = state
        .services
        .db
        .run(move |s| s.update_conference(id, &draft, at))
        .await?;
    let conference = load(&state, id).await?;
    schedule::configure_room(
        &state.conference,
        &conference.room,
        caller.user.id,
        phc,
        Some(body.lobby),
    )
    .await?;
    let base = base_url(&state, &headers);
    let removed = schedule::removed(&before, &conference.invitees);
    if !removed.is_empty() {
        mail(&state, &conference, removed, &base, None, true);
    }
    let password = body.password.filter(|p| !p.is_empty());
    let everyone = schedule::invitee_emails(&conference);
    mail(&state, &conference, everyone, &base, password, false);
    Ok(Json(conference_json(&conference, caller.user.id, &base)))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    owned(&state, id, &caller).await?;
    let at = crate::clock::unix_now_i64();
    state
        .services
        .db
        .run(move |s| s.cancel_conference(id, at))
        .await
        .map_err(|_| ApiError::conflict("the conference was already cancelled"))?;
    let conference = load(&state, id).await?;
    let base = base_url(&state, &headers);
    let everyone = schedule::invitee_emails(&conference);
    mail(&state, &conference, everyone, &base, None, true);
    Ok(Json(conference_json(&conference, caller.user.id, &base)))
}

pub(super) async fn calendar(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let c = load(&state, id).await?;
    let me = caller.user.id;
    let invited = c.invitees.iter().any(|i| i.account_id == Some(me));
    if c.organizer_id != me && !invited {
        return Err(ApiError::not_found("no such conference"));
    }
    let base = base_url(&state, &headers);
    let (body, _) =
        schedule::calendar_for(&c, &base, None, c.cancelled).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"invite.ics\"",
            ),
        ],
        body,
    ))
}
