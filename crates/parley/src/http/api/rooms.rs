//! Rooms in use now, and rooms used before.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::http::AppState;
use crate::http::error::ApiError;

pub(super) async fn rooms(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let active = state.conference.rooms().await;
    let known = state.services.db.run(|s| s.rooms()).await?;
    Ok(Json(json!({
        "active": active.iter().map(|(name, members)| json!({
            "name": name,
            "participants": members.iter().map(|m| json!({"id": m.id, "name": m.name, "mic": m.mic, "camera": m.camera})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "known": known.iter().map(|r| json!({
            "name": r.name,
            "first_opened_at": r.first_opened_at,
            "last_opened_at": r.last_opened_at,
            "times_opened": r.times_opened,
        })).collect::<Vec<_>>(),
    })))
}
