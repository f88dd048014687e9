//! `parley load` against `parley serve`, small: two rooms at once on a
//! server with two media workers, one with 2 publishers (three simulcast
//! layers each) and 4 subscribers, one with 1 publisher and 2 subscribers,
//! for 10 s, with nothing lost and every receiver getting every track.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;

use support::Server;

/// Runs `parley load` against `http` with `args` (and `--json -`); the
/// JSON summary.
fn run_load(http: SocketAddr, args: &[&str]) -> Value {
    let url = format!("http://{http}");
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["load", "--url", &url])
        .args(args)
        .args(["--json", "-"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "parley load failed");
    serde_json::from_str(&stdout[stdout.find("{\n").unwrap()..]).unwrap()
}

/// Runs `parley load` with `publishers` and `subscribers` in a fresh room
/// for 10 s; the JSON summary.
fn load(http: SocketAddr, publishers: u32, subscribers: u32) -> Value {
    let (p, s) = (publishers.to_string(), subscribers.to_string());
    run_load(
        http,
        &["--publishers", &p, "--subscribers", &s, "--duration", "10"],
    )
}

/// Everyone joined, every receiver got every track, nothing was lost.
fn check(json: &Value, publishers: u64, subscribers: u64) {
    let everyone = publishers + subscribers;
    assert_eq!(json["joined"], everyone);
    // A lone publisher has nobody else's media to receive.
    let receivers = if publishers > 1 {
        everyone
    } else {
        subscribers
    };
    assert_eq!(json["receivers_expected"], receivers);
    assert_eq!(
        json["receivers_complete"], receivers,
        "every receiver got every track"
    );
    let tracks = json["tracks"].as_array().unwrap();
    assert_eq!(
        tracks.len() as u64,
        2 * publishers,
        "audio and video of every publisher"
    );
    for t in tracks {
        let name = format!("{} {}", t["publisher"], t["kind"]);
        assert_eq!(t["receivers"], everyone - 1, "{name}");
        assert_eq!(t["loss_max"].as_f64(), Some(0.0), "{name}: RTP loss");
        if t["kind"] == "audio" {
            // 50 frames/s for ~10 s; audio is never held back.
            assert!(t["frames_min"].as_u64().unwrap() > 400, "{name}: {t}");
            assert_eq!(t["skipped"], 0, "{name}: audio frames lost");
        } else {
            // 25 frames/s from the first keyframe on.
            assert!(t["frames_min"].as_u64().unwrap() > 180, "{name}: {t}");
            assert_eq!(t["freezes"], 0, "{name}: {t}");
        }
    }
}

#[test]
fn two_rooms_on_two_workers_see_every_track_arrive_without_loss() {
    let server = Server::start(&["--media-workers", "2"]);
    let http = server.http;
    let other = std::thread::spawn(move || load(http, 1, 2));
    let json = load(http, 2, 4);
    check(&json, 2, 4);
    check(&other.join().unwrap(), 1, 2);
    // The rooms went to different workers.
    let placed: Vec<String> = server
        .log
        .lines()
        .into_iter()
        .filter(|l| l.contains("room's media placed on a worker"))
        .collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert!(
        placed.iter().any(|l| l.contains("worker=0"))
            && placed.iter().any(|l| l.contains("worker=1")),
        "{placed:?}"
    );
}

/// `parley load --churn`: people keep coming and going in two rooms, chat,
/// react and change their tile sizes; every one gets in, connects, and
/// leaves as a leave. (Before, a `leave` sent just before closing the
/// socket was often taken for a dropped connection whenever the server had
/// something to send as the socket closed: the room showed a reconnecting
/// ghost for the grace period.)
#[test]
fn people_coming_and_going_all_get_in_connect_and_leave_cleanly() {
    let server = Server::start(&["--media-workers", "2"]);
    let json = run_load(
        server.http,
        &[
            "--churn",
            "2",
            "--stay",
            "4",
            "--rooms",
            "2",
            "--publishers",
            "1",
            "--subscribers",
            "1",
            "--duration",
            "8",
        ],
    );
    let churn = &json["churn"];
    let started = churn["started"].as_u64().unwrap();
    assert!(started >= 15, "{churn}");
    assert_eq!(churn["joined"], started, "{churn}");
    assert_eq!(churn["connected"], started, "{churn}");
    assert_eq!(churn["failures"], serde_json::json!([]), "{churn}");
    assert!(churn["received_video"].as_u64().unwrap() > 0, "{churn}");
    assert!(churn["activities"].as_u64().unwrap() > started, "{churn}");
    let ghosts: Vec<String> = server
        .log
        .lines()
        .into_iter()
        .filter(|l| l.contains("keeping the place") || l.contains("not reading"))
        .collect();
    assert!(
        ghosts.is_empty(),
        "leaves taken for dropped or stuck connections: {ghosts:#?}"
    );
}
