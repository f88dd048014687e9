//! `parley load`: a load generator for a Parley server, in the product (as
//! LiveKit's `lk load-test`). N publishers and M subscribers join one room
//! from one thread; each publisher sends Opus and simulcast VP8-shaped
//! frames that carry a stamp (track, layer, index, send time), so each
//! receiver measures frames, skips, freezes, layer switches, added latency
//! and time to first frame without decoding anything. Progress goes to
//! standard error each second; a table (and optionally JSON) at the end.

pub mod client;
pub mod media;
pub mod report;

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;

use report::{Collected, Summary};

/// `parley load` options.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The server's address, as a browser would open it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The room to load (default: a fresh one).
    #[arg(long)]
    pub room: Option<String>,
    /// Participants that publish audio and video (and receive everyone).
    #[arg(long, default_value_t = 2)]
    pub publishers: usize,
    /// Participants that only receive.
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// Seconds to run, after everyone started joining.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Simulcast layers per publisher: 1 (500 kbps) to 3 (150/500/1500 kbps).
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    /// Local address for the media sockets.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Also write the summary as JSON to this file (`-` for standard output).
    #[arg(long)]
    pub json: Option<String>,
}

fn ws_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("http://") {
        Ok(format!("ws://{rest}/ws"))
    } else if let Some(rest) = url.strip_prefix("https://") {
        Ok(format!("wss://{rest}/ws"))
    } else {
        anyhow::bail!("--url must start with http:// or https://, got {url:?}")
    }
}

/// Runs the load and prints the summary; an error for bad options.
pub fn run(args: LoadArgs) -> anyhow::Result<Summary> {
    if args.publishers + args.subscribers == 0 || args.publishers + args.subscribers > 500 {
        anyhow::bail!("between 1 and 500 participants in all, please");
    }
    if !(1..=3).contains(&args.layers) {
        anyhow::bail!("--layers is 1, 2 or 3");
    }
    if args.duration == 0 || args.duration > 3600 {
        anyhow::bail!("--duration is 1 to 3600 seconds");
    }
    let ws = ws_url(&args.url)?;
    let room = args
        .room
        .clone()
        .unwrap_or_else(|| format!("load-{:08x}", rand::random::<u32>()));
    // One thread for every participant, as the issue of a load generator is
    // to measure the server, not to compete with it for cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let summary = local.block_on(&runtime, generate(args, ws, room))?;
    Ok(summary)
}

async fn generate(args: LoadArgs, ws: String, room: String) -> anyhow::Result<Summary> {
    let origin = Instant::now();
    let total = args.publishers + args.subscribers;
    // Joins are spread over up to 2 s; measuring runs `duration` after that.
    let stagger = Duration::from_millis((2000 / total.max(1) as u64).min(100));
    let until = origin + stagger * total as u32 + Duration::from_secs(args.duration);
    let video_frames = Rc::new(Cell::new(0u64));
    let audio_frames = Rc::new(Cell::new(0u64));
    eprintln!(
        "parley load: {} publishers ({} layers), {} subscribers, room {room}, {} s",
        args.publishers, args.layers, args.subscribers, args.duration
    );
    let mut tasks = Vec::new();
    for i in 0..total {
        let publish = i < args.publishers;
        let plan = client::Plan {
            ws_url: ws.clone(),
            room: room.clone(),
            name: if publish {
                format!("load-pub-{i}")
            } else {
                format!("load-sub-{}", i - args.publishers)
            },
            publish,
            layers: args.layers,
            bind: args.bind,
            until,
            origin,
        };
        let (v, a) = (video_frames.clone(), audio_frames.clone());
        tasks.push(tokio::task::spawn_local(async move {
            client::run(plan, move |video| {
                let c = if video { &v } else { &a };
                c.set(c.get() + 1);
            })
            .await
        }));
        tokio::time::sleep(stagger).await;
    }
    // Progress each second until the end.
    let progress = {
        let (v, a) = (video_frames.clone(), audio_frames.clone());
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last_v, mut last_a) = (0, 0);
            while Instant::now() < until {
                tick.tick().await;
                let (nv, na) = (v.get(), a.get());
                eprintln!(
                    "  t={:>4.0}s  video {:>6} frames/s  audio {:>6} frames/s received",
                    origin.elapsed().as_secs_f64(),
                    nv - last_v,
                    na - last_a
                );
                (last_v, last_a) = (nv, na);
            }
        })
    };
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    progress.abort();
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
    Ok(report::summarize(
        collected,
        Duration::from_secs(args.duration),
        args.publishers,
        args.subscribers,
        joined,
        complete,
    ))
}
