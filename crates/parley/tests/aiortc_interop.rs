//! A WebRTC client that is not a browser, written from docs/protocol.md
//! alone (tests/interop/aiortc_client.py, on Python's aiortc), against a real
//! `parley serve`: it joins, publishes and receives. The venv with aiortc is
//! made by scripts/install-test-deps.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::{Process, Server};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the client with `args`; its JSON report comes on stdout.
fn client(server: &Server, args: &[&str]) -> Child {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/install-test-deps makes it (aiortc in a venv)",
        python.display()
    );
    Command::new(python)
        .arg(root().join("tests/interop/aiortc_client.py"))
        .args(["--url", &server.ws_url()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for the client (stopped by PID if the test fails first) and reads
/// its report: one object per participant.
fn report(child: Child) -> Vec<Value> {
    let mut process = Process(child);
    let mut out = String::new();
    std::io::Read::read_to_string(process.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let status = process.0.wait().unwrap();
    assert!(
        status.success(),
        "the aiortc client failed ({status}):\n{out}"
    );
    let report: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    report["participants"].as_array().unwrap().clone()
}

fn count(p: &Value, what: &str, from: &Value) -> u64 {
    p[what][from["id"].as_str().unwrap()].as_u64().unwrap_or(0)
}

#[test]
fn a_client_written_from_the_protocol_document_joins_publishes_and_receives() {
    let server = Server::start(&[]);
    let people = report(client(
        &server,
        &["--room", "aiortc", "--participants", "2", "--seconds", "10"],
    ));
    assert_eq!(people.len(), 2);
    for (i, p) in people.iter().enumerate() {
        let other = &people[1 - i];
        assert_eq!(p["states"]["publish"], "connected", "{p}");
        assert_eq!(p["states"]["subscribe"], "connected", "{p}");
        // 10 s of 30 frames per second, less the start.
        assert!(count(p, "video_frames", other) > 100, "{p}");
        assert!(count(p, "audio_frames", other) > 100, "{p}");
        assert_eq!(p["errors"], serde_json::json!([]), "{p}");
    }
}

/// aiortc cannot change a sender's codec after it started, so it cannot
/// follow `publish_codec`: the H264-only subscriber is told after the
/// server's patience (5 s), and still hears the publisher.
#[test]
fn an_h264_only_client_is_told_when_a_publisher_cannot_switch_from_vp8() {
    let server = Server::start(&[]);
    let vp8 = client(
        &server,
        &[
            "--room",
            "codecs",
            "--name",
            "vp8",
            "--participants",
            "1",
            "--seconds",
            "12",
        ],
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let h264 = client(
        &server,
        &[
            "--room",
            "codecs",
            "--name",
            "h264",
            "--participants",
            "1",
            "--seconds",
            "9",
            "--only-video-codec",
            "H264",
        ],
    );
    let h264 = report(h264).remove(0);
    let vp8 = report(vp8).remove(0);
    assert_eq!(
        vp8["publish_codec_requests"],
        serde_json::json!(["h264"]),
        "{vp8}"
    );
    let errors = h264["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{h264}");
    assert!(
        errors[0].as_str().unwrap().starts_with("no_common_codec:"),
        "{h264}"
    );
    assert_eq!(count(&h264, "video_frames", &vp8), 0, "{h264}");
    assert!(count(&h264, "audio_frames", &vp8) > 100, "{h264}");
    // The other way round H264 is what both can do.
    assert!(count(&vp8, "video_frames", &h264) > 100, "{vp8}");
    assert!(
        server
            .log
            .lines()
            .iter()
            .any(|l| l.contains("can decode none of a publisher's video codecs")),
        "the server logs it"
    );
}
