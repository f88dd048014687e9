//! One room of `--publishers` and `--subscribers` for `--duration`: every
//! receiver's stats, and the server's cost per packet if asked.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::args::LoadArgs;
use crate::client::{self, Target};
use crate::counters::Counters;
use crate::report::{self, Collected, ServerCost, Summary};

pub(crate) async fn generate(
    args: LoadArgs,
    target: Target,
    room: String,
) -> anyhow::Result<Summary> {
    let origin = Instant::now();
    let total = args.publishers + args.subscribers;
    // Joins are spread over up to 2 s; measuring runs `duration` after that.
    let stagger = Duration::from_millis((2000 / total.max(1) as u64).min(100));
    let until = origin + stagger * total as u32 + Duration::from_secs(args.duration);
    let counters = Counters::default();
    let layers = args.video_layers();
    eprintln!(
        "parley load: {} publishers ({} kbit/s video in {} layer(s)), {} subscribers, room {room}, {} s{}",
        args.publishers,
        layers.iter().map(|l| l.bitrate / 1000).sum::<u32>(),
        layers.len(),
        args.subscribers,
        args.duration,
        if args.janus.is_some() { " (janus)" } else { "" }
    );
    let mut tasks = Vec::new();
    for i in 0..total {
        let publish = i < args.publishers;
        let plan = client::Plan {
            target: target.clone(),
            room: room.clone(),
            name: if publish {
                format!("load-pub-{i}")
            } else {
                format!("load-sub-{}", i - args.publishers)
            },
            publish,
            layers: layers.clone(),
            bind: args.bind,
            until,
            origin,
            activity: false,
        };
        tasks.push(tokio::task::spawn_local(client::run(
            plan,
            counters.clone(),
        )));
        tokio::time::sleep(stagger).await;
    }
    // The server's cost is measured once everyone is in and settled: from
    // 2 s after the last join to 0.5 s before the end.
    let steady = (
        origin + stagger * total as u32 + Duration::from_secs(2),
        until - Duration::from_millis(500),
    );
    let cost = tokio::task::spawn_local(measure(args.measure_pid, steady, counters.rtp.clone()));
    // Progress each second until the end.
    let progress = {
        let c = counters.clone();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last_v, mut last_a, mut last_r) = (0, 0, 0);
            while Instant::now() < until {
                tick.tick().await;
                let (nv, na, nr) = (c.video.get(), c.audio.get(), c.rtp.get());
                eprintln!(
                    "  t={:>4.0}s  video {:>6} frames/s  audio {:>6} frames/s  {:>7} RTP packets/s received",
                    origin.elapsed().as_secs_f64(),
                    nv - last_v,
                    na - last_a,
                    nr - last_r
                );
                (last_v, last_a, last_r) = (nv, na, nr);
            }
        })
    };
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    progress.abort();
    let server = cost.await?;
    let errors: Vec<&String> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    for e in &errors {
        eprintln!("  participant failed: {e}");
    }
    // Publishers are labelled p0, p1… in the order they were started.
    let labels: HashMap<String, String> = outcomes[..args.publishers]
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.id.clone().map(|id| (id, format!("p{i}"))))
        .collect();
    let joined = outcomes.iter().filter(|o| o.id.is_some()).count();
    let mut complete = 0;
    let mut collected: Collected = Default::default();
    for (i, o) in outcomes.into_iter().enumerate() {
        let expected: Vec<&String> = labels
            .iter()
            .filter(|(id, _)| o.id.as_ref() != Some(*id))
            .map(|(_, l)| l)
            .collect();
        let mut got = 0;
        for ((publisher, kind), stats) in o.tracks {
            let Some(label) = labels.get(&publisher) else {
                continue;
            };
            if stats.frames > 0 {
                got += 1;
            }
            collected
                .entry((label.clone(), kind))
                .or_default()
                .push(stats);
        }
        let receives = i >= args.publishers || args.publishers > 1;
        if receives && got == expected.len() * 2 {
            complete += 1;
        }
    }
    let mut summary = report::summarize(
        collected,
        Duration::from_secs(args.duration),
        args.publishers,
        args.subscribers,
        joined,
        complete,
    );
    summary.server = server;
    Ok(summary)
}

/// The server's CPU time and the RTP packets received between `window`'s
/// two instants (nothing without a PID, or when the window is too short).
async fn measure(
    pid: Option<u32>,
    window: (Instant, Instant),
    rtp: Rc<Cell<u64>>,
) -> Option<ServerCost> {
    let pid = pid?;
    if window.1 <= window.0 + Duration::from_secs(1) {
        eprintln!(
            "  (the run is too short to measure the server's cost; give a longer --duration)"
        );
        return None;
    }
    let me = std::process::id();
    tokio::time::sleep_until(window.0.into()).await;
    let (cpu0, own0) = (report::process_cpu_ns(pid)?, report::process_cpu_ns(me)?);
    let (rtp0, t0) = (rtp.get(), Instant::now());
    tokio::time::sleep_until(window.1.into()).await;
    let (cpu1, own1) = (report::process_cpu_ns(pid)?, report::process_cpu_ns(me)?);
    let (rtp1, t1) = (rtp.get(), Instant::now());
    let mut cost = ServerCost::new(
        cpu1.saturating_sub(cpu0),
        rtp1.saturating_sub(rtp0),
        t1 - t0,
    );
    cost.generator_cores = own1.saturating_sub(own0) as f64 / 1e9 / (t1 - t0).as_secs_f64();
    Some(cost)
}
