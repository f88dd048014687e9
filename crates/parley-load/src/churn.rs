//! `parley load --churn RATE`: participants keep coming and going, as in a
//! building full of meetings, for a soak (`bench/soak`). Every 1/RATE
//! seconds a participant joins one of `--rooms` rooms (round robin),
//! publishes or only receives (in the ratio of `--publishers` to
//! `--subscribers`), chats, reacts, raises its hand and changes the tile
//! sizes it reports once a second (so the SFU switches layers), and leaves
//! after `--stay` seconds. What counts is that every one of them gets in and
//! connects; the summary says how many did not, and why.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::args::LoadArgs;
use crate::client::{self, Outcome, Target};
use crate::counters::Counters;
use crate::report::{ChurnSummary, Summary};

/// Adds what one participant did to `summary`.
fn count(summary: &mut ChurnSummary, o: Outcome, name: &str) {
    summary.joined += usize::from(o.id.is_some());
    summary.connected += usize::from(o.connected);
    summary.activities += o.activities;
    let video = o
        .tracks
        .iter()
        .any(|((_, kind), t)| *kind == "video" && t.frames > 0);
    summary.received_video += usize::from(video);
    if let Some(e) = o.error {
        summary.failures.push(e);
    } else if o.id.is_none() {
        summary.failures.push(format!("{name}: never joined"));
    } else if !o.connected {
        summary
            .failures
            .push(format!("{name}: its media connections never came up"));
    }
}

/// Runs the churn of `args` at `rate` joins per second.
pub(crate) async fn generate(
    args: &LoadArgs,
    target: Target,
    room: String,
    rate: f64,
) -> anyhow::Result<Summary> {
    let origin = Instant::now();
    let end = origin + Duration::from_secs(args.duration);
    let stay = Duration::from_secs(args.stay);
    let every = Duration::from_secs_f64(1.0 / rate);
    let mix = args.publishers + args.subscribers;
    let layers = args.video_layers();
    let counters = Counters::default();
    let mut summary = ChurnSummary {
        rooms: args.rooms,
        rate_per_sec: rate,
        stay_secs: args.stay,
        ..Default::default()
    };
    eprintln!(
        "parley load --churn: {rate} joins/s for {} s, {} s each, over {} room(s) named {room}-N, {} of every {mix} publishing",
        args.duration, args.stay, args.rooms, args.publishers
    );
    let mut running: JoinSet<(String, Outcome)> = JoinSet::new();
    let mut next = origin;
    let mut report = origin + Duration::from_secs(10);
    let mut i = 0usize;
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        // Each room gets publishers and subscribers in the asked ratio.
        let publish = (i / args.rooms) % mix < args.publishers;
        let name = format!("churn-{}-{i}", if publish { "pub" } else { "sub" });
        let plan = client::Plan {
            target: target.clone(),
            room: format!("{room}-{}", i % args.rooms),
            name: name.clone(),
            publish,
            layers: layers.clone(),
            bind: args.bind,
            until: Instant::now() + stay,
            origin,
            activity: true,
        };
        let progress = counters.clone();
        running.spawn_local(async move { (name, client::run(plan, progress).await) });
        summary.started += 1;
        i += 1;
        while let Some(done) = running.try_join_next() {
            let (name, outcome) = done?;
            count(&mut summary, outcome, &name);
        }
        if Instant::now() >= report {
            report += Duration::from_secs(10);
            eprintln!(
                "  t={:>5.0}s  started {:>6}  in rooms {:>4}  joined {:>6}  connected {:>6}  failed {:>4}  video {:>8} frames",
                origin.elapsed().as_secs_f64(),
                summary.started,
                running.len(),
                summary.joined,
                summary.connected,
                summary.failures.len(),
                counters.video.get()
            );
        }
    }
    while let Some(done) = running.join_next().await {
        let (name, outcome) = done?;
        count(&mut summary, outcome, &name);
    }
    let mut out = crate::report::summarize(
        Default::default(),
        Duration::from_secs(args.duration),
        args.publishers,
        args.subscribers,
        summary.joined,
        0,
    );
    out.churn = Some(summary);
    Ok(out)
}
