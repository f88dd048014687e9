//! `parley load`'s options, as the binary's command line takes them.

use std::net::IpAddr;

use clap::Args;

use crate::media::{LAYERS, Layer};

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

impl LoadArgs {
    /// The layers a publisher sends.
    pub(crate) fn video_layers(&self) -> Vec<Layer> {
        match (self.layers, self.video_kbps) {
            (1, Some(kbps)) => vec![Layer {
                bitrate: kbps * 1000,
                ..LAYERS[2]
            }],
            (1, None) => vec![LAYERS[1]],
            (n, _) => LAYERS[..n.min(3)].to_vec(),
        }
    }
}
