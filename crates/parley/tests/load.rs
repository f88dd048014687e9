//! `parley load` against `parley serve`, small: 2 publishers with three
//! simulcast layers and 4 subscribers for 10 s, with nothing lost and every
//! receiver getting every track.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::process::Command;

use serde_json::Value;

use support::Server;

#[test]
fn the_load_generator_sees_every_track_arrive_without_loss() {
    let server = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "load",
            "--url",
            &format!("http://{}", server.http),
            "--publishers",
            "2",
            "--subscribers",
            "4",
            "--duration",
            "10",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "parley load failed");
    let json: Value = serde_json::from_str(&stdout[stdout.find("{\n").unwrap()..]).unwrap();
    assert_eq!(json["joined"], 6);
    assert_eq!(
        json["receivers_expected"], 6,
        "4 subscribers and 2 publishers receive"
    );
    assert_eq!(
        json["receivers_complete"], 6,
        "every receiver got every track"
    );
    let tracks = json["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 4, "audio and video of both publishers");
    for t in tracks {
        let name = format!("{} {}", t["publisher"], t["kind"]);
        assert_eq!(t["receivers"], 5, "{name}");
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
