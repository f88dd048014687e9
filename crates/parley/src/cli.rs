//! The command line.

use clap::{Parser, Subcommand};
use parley_settings::LogLevel;

use crate::config::{ServeArgs, ServeConfig};
use crate::turn::cli::TurnArgs;

/// Parley: self-hosted video conferencing in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "parley",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Commands>,
    /// Settings for the default `serve` command.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the conferencing server (the default).
    Serve(ServeArgs),
    /// Run only the STUN/TURN server, for other servers to use.
    Turn(TurnArgs),
    /// Manage accounts in the database (first administrator, passwords).
    Admin(crate::admin_cli::AdminArgs),
    /// Test STUN/TURN servers: a Parley server's own settings (--server),
    /// or the URLs given.
    CheckIce(crate::ice::cli::CheckIceArgs),
    /// Load a Parley server with publishers and subscribers and measure
    /// what they receive (frames, skips, freezes, latency).
    Load(crate::load::LoadArgs),
}

/// Parses the command line and runs the chosen command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Commands::Serve(args)) => args,
        Some(Commands::Turn(args)) => return turn(args),
        Some(Commands::Admin(args)) => return crate::admin_cli::run(args),
        Some(Commands::CheckIce(args)) => {
            crate::logging::init(LogLevel::Warning);
            return runtime()?.block_on(crate::ice::cli::run(args));
        }
        Some(Commands::Load(args)) => {
            crate::logging::init(LogLevel::Warning);
            let json = args.json.clone();
            let summary = crate::load::run(args)?;
            print!("{}", summary.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&summary)?;
                if path == "-" {
                    println!("{text}");
                } else {
                    std::fs::write(&path, text)
                        .map_err(|e| anyhow::anyhow!("cannot write {path}: {e}"))?;
                }
            }
            return Ok(());
        }
        None => cli.serve,
    };
    let config = ServeConfig::resolve(&args)?;
    crate::logging::init(config.log);
    runtime()?.block_on(crate::serve::serve(config))
}

fn turn(args: TurnArgs) -> anyhow::Result<()> {
    let command = args.resolve()?;
    crate::logging::init(LogLevel::parse(&command.log).map_err(anyhow::Error::msg)?);
    runtime()?.block_on(crate::turn::run(command))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("parley")
        .build()?)
}
