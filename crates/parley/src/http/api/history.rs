//! A user's own history of meetings and calls: read, exported, deleted.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use parley_store::Meeting;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::http::AppState;
use crate::http::error::ApiError;

/// Most meetings one page lists.
const MAX_LIMIT: usize = 500;
/// Most meetings an export holds.
const EXPORT_LIMIT: usize = 100_000;

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    #[serde(default)]
    limit: Option<usize>,
}

fn meeting_json(m: &Meeting) -> Value {
    json!({
        "id": m.id,
        "room": m.room,
        "kind": m.kind,
        "started_at": m.started_at,
        "ended_at": m.ended_at,
        "duration_secs": m.ended_at.map(|e| e - m.started_at),
        "participants": m.participants.iter().map(|p| json!({
            "name": p.name,
            "account": p.account_id.is_some(),
            "joined_at": p.joined_at,
            "left_at": p.left_at,
        })).collect::<Vec<_>>(),
        "chat": m.chat.iter().map(|c| json!({
            "from": c.sender_name,
            "text": c.body,
            "private": c.recipient_id.is_some(),
            "at": c.sent_at,
        })).collect::<Vec<_>>(),
    })
}

pub(super) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            "range",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let id = caller.user.id;
    let meetings = state.services.db.run(move |s| s.history(id, limit)).await?;
    let retention = state.services.settings.current().history.retention_days;
    Ok(Json(json!({
        "meetings": meetings.iter().map(meeting_json).collect::<Vec<_>>(),
        "retention_days": retention,
    })))
}

pub(super) async fn export(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let user = caller.user;
    let id = user.id;
    let meetings = state
        .services
        .db
        .run(move |s| s.history(id, EXPORT_LIMIT))
        .await?;
    let body = json!({
        "user": { "login": user.login(), "display_name": user.display_name },
        "exported_at": crate::clock::unix_now_i64(),
        "meetings": meetings.iter().map(meeting_json).collect::<Vec<_>>(),
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"parley-history.json\"",
            ),
        ],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    ))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let id = caller.user.id;
    let deleted = state.services.db.run(move |s| s.delete_history(id)).await?;
    tracing::info!(user = id, "history deleted at the user's request");
    Ok(Json(json!({ "deleted": deleted })))
}
