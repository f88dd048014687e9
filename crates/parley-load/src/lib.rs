//! `parley load`: a load generator for a Parley server, in the product (as
//! LiveKit's `lk load-test`). N publishers and M subscribers join one room
//! from one thread; each publisher sends Opus and simulcast VP8-shaped
//! frames that carry a stamp (track, layer, index, send time), so each
//! receiver measures frames, skips, freezes, layer switches, added latency
//! and time to first frame without decoding anything. Progress goes to
//! standard error each second; a table (and optionally JSON) at the end.

mod args;
mod churn;
pub mod client;
mod counters;
pub mod media;
mod meeting;
pub mod report;
pub mod signaling;

use client::Target;
use report::Summary;

pub use args::LoadArgs;

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
        None => local.block_on(&runtime, meeting::generate(args, target, room))?,
    };
    Ok(summary)
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
