//! The settings, one section per resource.

use axum::Json;
use axum::extract::{Path, State};
use parley_settings::Section;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::http::AppState;
use crate::http::error::{ApiError, JsonBody};

fn section(key: &str) -> Result<Section, ApiError> {
    Section::from_key(key).ok_or_else(|| {
        let known: Vec<&str> = Section::ALL.iter().map(|s| s.key()).collect();
        ApiError::not_found(format!(
            "no settings section {key:?}; the sections are {}",
            known.join(", ")
        ))
    })
}

pub(super) async fn all(State(state): State<AppState>, _: Admin) -> Json<Value> {
    Json(state.services.settings.current().to_json())
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = section(&key)?;
    Ok(Json(state.services.settings.current().section(s)))
}

pub(super) async fn put(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(key): Path<String>,
    JsonBody(value): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let s = section(&key)?;
    let next = state.services.settings.update(s, value).await?;
    tracing::info!(by = %admin.user.login(), section = key, "settings saved");
    Ok(Json(next.section(s)))
}

pub(super) async fn reset(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = section(&key)?;
    let next = state.services.settings.reset(s).await?;
    tracing::info!(by = %admin.user.login(), section = key, "settings reset to defaults");
    Ok(Json(next.section(s)))
}

/// What is in force and what each section's default is, for the console.
pub(super) async fn defaults(State(state): State<AppState>, _: Admin) -> Json<Value> {
    Json(json!({ "defaults": state.services.settings.base().to_json() }))
}
