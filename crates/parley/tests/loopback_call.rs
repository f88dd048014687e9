//! Two str0m clients in this process exchange real RTP through a real
//! `parley` process on loopback: WebSocket signaling, ICE, DTLS-SRTP, the
//! SFU. The clients are `parley load`'s participants.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use std::time::{Duration, Instant};

use parley_load::client::{self, Outcome, Plan, Progress, Target};
use parley_load::media::LAYERS;

use support::Server;

/// No progress lines in a test.
struct Quiet;

impl Progress for Quiet {
    fn frame(&self, _video: bool) {}
    fn rtp(&self) {}
}

/// Joins `room` as a publisher of audio and one video stream until `until`.
async fn run_client(
    url: String,
    room: &'static str,
    name: &'static str,
    until: Instant,
) -> Outcome {
    let plan = Plan {
        target: Target::Parley(url),
        room: room.into(),
        name: name.into(),
        publish: true,
        layers: vec![LAYERS[1]],
        bind: "127.0.0.1".parse().unwrap(),
        until,
        origin: Instant::now(),
        activity: false,
    };
    let outcome = client::run(plan, Quiet).await;
    assert!(outcome.error.is_none(), "{name}: {:?}", outcome.error);
    outcome
}

#[test]
fn two_str0m_clients_exchange_media_through_parley() {
    // One media worker: the conference forwards itself (the load test
    // covers several workers).
    let server = Server::start(&["--media-workers", "1"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (a_got, b_got) = local.block_on(&runtime, async {
        let until = Instant::now() + Duration::from_secs(5);
        let a = tokio::task::spawn_local(run_client(server.ws_url(), "loopback", "Ada", until));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let b = tokio::task::spawn_local(run_client(server.ws_url(), "loopback", "Grace", until));
        (a.await.unwrap(), b.await.unwrap())
    });
    let (a_id, b_id) = (a_got.id.clone().unwrap(), b_got.id.clone().unwrap());
    let count = |r: &Outcome, from: &str, kind: &'static str| {
        r.tracks
            .get(&(from.to_owned(), kind))
            .map_or(0, |t| t.frames)
    };
    eprintln!(
        "A received audio {} video {}; B received audio {} video {}",
        count(&a_got, &b_id, "audio"),
        count(&a_got, &b_id, "video"),
        count(&b_got, &a_id, "audio"),
        count(&b_got, &a_id, "video")
    );
    // Several seconds at 50 audio and 25 video frames per second; allow for setup time.
    assert!(
        count(&b_got, &a_id, "audio") > 50,
        "B heard too little of A"
    );
    assert!(count(&b_got, &a_id, "video") > 20, "B saw too little of A");
    assert!(
        count(&a_got, &b_id, "audio") > 50,
        "A heard too little of B"
    );
    assert!(count(&a_got, &b_id, "video") > 20, "A saw too little of B");
}
