//! Rooms in use now (with each participant's media path, and what the
//! paths say about the network), and rooms used before.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use parley_signal::{ConnectionReport, MediaPath};
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
    let media_port = state
        .conference
        .addresses()
        .borrow()
        .current
        .first()
        .map(|a| a.port());
    let paths: Vec<Option<ConnectionReport>> = active
        .iter()
        .flat_map(|(_, members)| members.iter().map(|(_, path)| *path))
        .collect();
    Ok(Json(json!({
        "active": active.iter().map(|(name, members)| json!({
            "name": name,
            "participants": members.iter().map(|(m, path)| json!({
                "id": m.id,
                "name": m.name,
                "mic": m.mic,
                "camera": m.camera,
                "reconnecting": m.reconnecting,
                "path": path.map(|p| json!({
                    "path": p.path,
                    "rtt_ms": p.rtt_ms,
                    "loss_permille": p.loss_permille,
                })),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "connectivity": connectivity(&paths, media_port),
        "known": known.iter().map(|r| json!({
            "name": r.name,
            "first_opened_at": r.first_opened_at,
            "last_opened_at": r.last_opened_at,
            "times_opened": r.times_opened,
        })).collect::<Vec<_>>(),
    })))
}

/// How the participants' media reaches the server, counted by path, with
/// advice for the administrator when the counts point at a blocked port.
fn connectivity(paths: &[Option<ConnectionReport>], media_port: Option<u16>) -> Value {
    let mut by_path: BTreeMap<MediaPath, usize> = BTreeMap::new();
    for p in paths.iter().flatten() {
        *by_path.entry(p.path).or_default() += 1;
    }
    let reported: usize = by_path.values().sum();
    // Rounded to the nearest percent for the words; the 20 % thresholds
    // compare exactly (5 n >= reported).
    let share = |n: usize| (100 * n + reported / 2).checked_div(reported).unwrap_or(0);
    let fifth = |n: usize| n > 0 && 5 * n >= reported;
    let count = |paths: &[MediaPath]| {
        paths
            .iter()
            .map(|p| by_path.get(p).copied().unwrap_or(0))
            .sum::<usize>()
    };
    let port = media_port.map_or_else(|| "the media port".to_owned(), |p| format!("UDP {p}"));
    let mut advice = Vec::new();
    let tls = count(&[MediaPath::TurnTls]);
    let tcp = count(&[MediaPath::Tcp, MediaPath::TurnTcp, MediaPath::TurnTls]);
    let relayed = count(&[MediaPath::TurnUdp, MediaPath::TurnTcp, MediaPath::TurnTls]);
    if fifth(tls) {
        advice.push(format!(
            "{}% of participants are relayed over TLS: {port} and TURN over UDP and TCP are probably blocked on their networks.",
            share(tls)
        ));
    } else if fifth(tcp) {
        advice.push(format!(
            "{}% of participants send media over TCP: {port} is probably blocked on their networks (or not forwarded to this server).",
            share(tcp)
        ));
    }
    if fifth(relayed) && count(&[MediaPath::TurnUdp]) == relayed {
        advice.push(format!(
            "{}% of participants are relayed through TURN over UDP although UDP works for them: check that the announced address and {port} reach this server.",
            share(relayed)
        ));
    }
    json!({
        "participants": paths.len(),
        "reported": reported,
        "by_path": by_path.iter().map(|(p, n)| (serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "advice": advice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(path: MediaPath) -> Option<ConnectionReport> {
        Some(ConnectionReport {
            path,
            rtt_ms: 20,
            loss_permille: 0,
        })
    }

    #[test]
    fn blocked_udp_is_pointed_out_and_a_healthy_room_is_not() {
        let healthy = connectivity(
            &[report(MediaPath::Udp), report(MediaPath::Udp), None],
            Some(10000),
        );
        assert_eq!(healthy["participants"], 3);
        assert_eq!(healthy["reported"], 2);
        assert_eq!(healthy["by_path"]["udp"], 2);
        assert_eq!(healthy["advice"], json!([]));

        let tls = connectivity(
            &[
                report(MediaPath::Udp),
                report(MediaPath::Udp),
                report(MediaPath::TurnTls),
            ],
            Some(10000),
        );
        let advice = tls["advice"][0].as_str().unwrap();
        assert!(
            advice.starts_with("33% of participants are relayed over TLS"),
            "{advice}"
        );
        assert!(advice.contains("UDP 10000"), "{advice}");

        let tcp = connectivity(
            &[report(MediaPath::Tcp), report(MediaPath::Udp)],
            Some(10000),
        );
        let advice = tcp["advice"][0].as_str().unwrap();
        assert!(
            advice.starts_with("50% of participants send media over TCP"),
            "{advice}"
        );

        let relayed = connectivity(&[report(MediaPath::TurnUdp)], None);
        let advice = relayed["advice"][0].as_str().unwrap();
        assert!(advice.contains("announced address"), "{advice}");
    }
}
