//! The buddy list: the users a signed-in user may call, with their presence.

use axum::Json;
use axum::extract::{Query, State};
use parley_settings::BuddyList;
use parley_signal::PresenceStatus;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::http::AppState;
use crate::http::error::ApiError;

#[derive(Deserialize)]
pub(super) struct BuddyQuery {
    /// Part of a name or login, case-insensitive.
    #[serde(default)]
    q: String,
}

/// Longest search text.
const MAX_QUERY: usize = 100;

pub(super) async fn buddies(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<BuddyQuery>,
) -> Result<Json<Value>, ApiError> {
    if query.q.chars().count() > MAX_QUERY {
        return Err(ApiError::field(
            "q",
            "length",
            format!("search for at most {MAX_QUERY} characters"),
        ));
    }
    let all_domains = state.services.settings.current().history.buddy_list == BuddyList::AllDomains;
    let users = state.services.db.run(|s| s.users()).await?;
    let presence: std::collections::HashMap<i64, PresenceStatus> =
        state.conference.presence().await.into_iter().collect();
    let needle = query.q.trim().to_lowercase();
    let me = &caller.user;
    let mut list: Vec<Value> = users
        .iter()
        .filter(|u| u.id != me.id && !u.disabled)
        .filter(|u| all_domains || u.domain == me.domain)
        .filter(|u| {
            needle.is_empty()
                || u.display_name.to_lowercase().contains(&needle)
                || u.login().contains(&needle)
        })
        .map(|u| {
            let status = presence
                .get(&u.id)
                .copied()
                .unwrap_or(PresenceStatus::Offline);
            json!({
                "id": u.id,
                "name": u.display_name,
                "login": u.login(),
                "domain": u.domain,
                "status": status,
            })
        })
        .collect();
    list.sort_by(|a, b| {
        a["name"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .cmp(&b["name"].as_str().unwrap_or_default().to_lowercase())
    });
    Ok(Json(json!({ "buddies": list, "all_domains": all_domains })))
}
