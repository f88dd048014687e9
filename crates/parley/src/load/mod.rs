//! `parley load`: a load generator for a Parley server, in the product (as
//! LiveKit's `lk load-test`). N publishers and M subscribers join one room
//! from one thread; each publisher sends Opus and simulcast VP8-shaped
//! frames that carry a stamp (track, layer, index, send time), so each
//! receiver measures frames, skips, freezes, layer switches, added latency
//! and time to first frame without decoding anything. Progress goes to
//! standard error each second; a table (and optionally JSON) at the end.

pub mod churn;
pub mod client;
pub mod media;
pub mod report;
pub mod signal;

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;

use client::{Progress, Target};
use report::{Collected, ServerCost, Summary};

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
    /// With one layer: its bitrate in kbit/s (50–5000) instead of 500.
    #[arg(long, value_name = "KBPS")]
    pub video_kbps: Option<u32>,
    /// Load a Janus videoroom through this HTTP API URL (e.g.
    /// http://10.0.0.1:8088/janus) instead of the Parley server at --url.
    #[arg(long, value_name = "URL")]
    pub janus: Option<String>,
    /// Also measure this process's CPU time (the server's, on this
    /// machine) per RTP packet received, over the steady part of the run.
    #[arg(long, value_name = "PID")]
    pub measure_pid: Option<u32>,
    /// Local address for the media sockets.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Also write the summary as JSON to this file (`-` for standard output).
    #[arg(long)]
    pub json: Option<String>,
    /// Churn: participants keep joining at this rate (per second) for
    /// --duration, each staying --stay seconds, chatting, reacting and
    /// changing its tile sizes (a soak). Publishers and subscribers come in
    /// the ratio of --publishers to --subscribers.
    #[arg(long, value_name = "JOINS_PER_SEC")]
    pub churn: Option<f64>,
    /// With --churn: how long each participant stays, in seconds.
    #[arg(long, default_value_t = 10)]
    pub stay: u64,
    /// With --churn: rooms to spread the participants over (ROOM-0, ROOM-1, …).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
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
    let longest = if args.churn.is_some() {
        7 * 24 * 3600
    } else {
        3600
    };
    if args.duration == 0 || args.duration > longest {
        anyhow::bail!("--duration is 1 to {longest} seconds");
    }
    if let Some(rate) = args.churn {
        if !(0.01..=50.0).contains(&rate) {
            anyhow::bail!("--churn is 0.01 to 50 joins per second");
        }
        if !(1..=3600).contains(&args.stay) || !(1..=1000).contains(&args.rooms) {
            anyhow::bail!("--stay is 1 to 3600 seconds and --rooms 1 to 1000");
        }
        if args.janus.is_some() {
            anyhow::bail!("--churn loads Parley only");
        }
    }
    if let Some(kbps) = args.video_kbps
        && (args.layers != 1 || !(50..=5000).contains(&kbps))
    {
        anyhow::bail!("--video-kbps is 50 to 5000, with --layers 1");
    }
    if let Some(pid) = args.measure_pid
        && report::process_cpu_ns(pid).is_none()
    {
        anyhow::bail!("--measure-pid {pid}: no such process to measure");
    }
    let target = match &args.janus {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            Target::Janus(url.clone())
        }
        Some(url) => anyhow::bail!("--janus must be an http:// URL, got {url:?}"),
        None => Target::Parley(ws_url(&args.url)?),
    };
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
    let summary = match args.churn {
        Some(rate) => local.block_on(&runtime, churn::generate(&args, target, room, rate))?,
        None => local.block_on(&runtime, generate(args, target, room))?,
    };
    Ok(summary)
}

/// Counters the participants bump and the progress line reads.
#[derive(Clone, Default)]
struct Counters {
    video: Rc<Cell<u64>>,
    audio: Rc<Cell<u64>>,
    rtp: Rc<Cell<u64>>,
}

impl Progress for Counters {
    fn frame(&self, video: bool) {
        let c = if video { &self.video } else { &self.audio };
        c.set(c.get() + 1);
    }
    fn rtp(&self) {
        self.rtp.set(self.rtp.get() + 1);
    }
}

/// The layers a publisher sends.
fn layers(args: &LoadArgs) -> Vec<media::Layer> {
    match (args.layers, args.video_kbps) {
        (1, Some(kbps)) => vec![media::Layer {
            bitrate: kbps * 1000,
            ..media::LAYERS[2]
        }],
        (1, None) => vec![media::LAYERS[1]],
        (n, _) => media::LAYERS[..n.min(3)].to_vec(),
    }
}

async fn generate(args: LoadArgs, target: Target, room: String) -> anyhow::Result<Summary> {
    let origin = Instant::now();
    let total = args.publishers + args.subscribers;
    // Joins are spread over up to 2 s; measuring runs `duration` after that.
    let stagger = Duration::from_millis((2000 / total.max(1) as u64).min(100));
    let until = origin + stagger * total as u32 + Duration::from_secs(args.duration);
    let counters = Counters::default();
    let layers = layers(&args);
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
