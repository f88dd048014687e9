//! What participants are given, and the connectivity check.

use axum::Json;
use axum::extract::State;
use parley_settings::Section;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::ice_servers::{CheckContext, check_settings};

/// The ICE servers a participant joining now gets (with freshly minted
/// credentials), the transport policy, and the provider's state.
pub(super) async fn servers(State(state): State<AppState>, _: Admin) -> Json<Value> {
    let ice = &state.services.ice;
    let config = ice.composer.compose_for("preview");
    Json(json!({
        "ice_servers": config.servers,
        "ice_transport_policy": config.policy,
        "provider": ice.provider.status(),
    }))
}

/// Unsaved sections to check instead of the stored ones.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckBody {
    #[serde(default)]
    stun: Option<Value>,
    #[serde(default)]
    turn: Option<Value>,
    #[serde(default)]
    turn_provider: Option<Value>,
}

/// Runs the connectivity check on the settings in force, or on the
/// unsaved sections given (validated as a save would, stored never).
pub(super) async fn check(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut settings = (*state.services.settings.current()).clone();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let body: CheckBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a check request: {e}")))?;
        for (section, value) in [
            (Section::Stun, body.stun),
            (Section::Turn, body.turn),
            (Section::TurnProvider, body.turn_provider),
        ] {
            if let Some(v) = value {
                // Several sections may be sent: name the section in each field.
                settings = settings.with_section(section, v).map_err(|mut e| {
                    for f in &mut e.0 {
                        f.field = if f.field.is_empty() {
                            section.key().to_owned()
                        } else {
                            format!("{}.{}", section.key(), f.field)
                        };
                    }
                    e
                })?;
            }
        }
    }
    let ice = &state.services.ice;
    let media = state.conference.addresses().borrow().clone();
    tracing::info!(by = %admin.user.login(), "connectivity check");
    let report = check_settings(
        &settings,
        CheckContext {
            builtin: ice.builtin.as_ref(),
            media: &media,
            arrivals: &ice.arrivals,
            client: &ice.client,
        },
    )
    .await;
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}
