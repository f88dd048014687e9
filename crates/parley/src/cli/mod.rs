//! The command line: one subcommand per way to run the binary, each with its
//! options and their resolution (command line, `PARLEY_*` environment
//! variables, a TOML file, defaults).

pub mod admin;
pub mod check_ice;
pub mod serve;
pub mod turn;
pub mod turn_common;

use clap::{Parser, Subcommand};
use parley_settings::LogLevel;

use serve::ServeArgs;
use turn::TurnArgs;

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
    Admin(admin::AdminArgs),
    /// Test STUN/TURN servers: a Parley server's own settings (--server),
    /// or the URLs given.
    CheckIce(check_ice::CheckIceArgs),
    /// Load a Parley server with publishers and subscribers and measure
    /// what they receive (frames, skips, freezes, latency).
    Load(parley_load::LoadArgs),
}

/// Parses the command line and runs the chosen command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Commands::Serve(args)) => args,
        Some(Commands::Turn(args)) => return turn(args),
        Some(Commands::Admin(args)) => return admin::run(args),
        Some(Commands::CheckIce(args)) => {
            crate::logging::init(LogLevel::Warning);
            return runtime()?.block_on(check_ice::run(args));
        }
        Some(Commands::Load(args)) => {
            crate::logging::init(LogLevel::Warning);
            return load(args);
        }
        None => cli.serve,
    };
    let config = args.resolve()?;
    crate::logging::init(config.log);
    runtime()?.block_on(crate::serve::serve(config))
}

fn turn(args: TurnArgs) -> anyhow::Result<()> {
    let command = args.resolve()?;
    crate::logging::init(LogLevel::parse(&command.log).map_err(anyhow::Error::msg)?);
    runtime()?.block_on(crate::turn::run(command.settings, command.metrics))
}

/// `parley load`: runs the load, prints the table, and writes the JSON if asked.
fn load(args: parley_load::LoadArgs) -> anyhow::Result<()> {
    let json = args.json.clone();
    let summary = parley_load::run(args)?;
    print!("{}", summary.table());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&summary)?;
        if path == "-" {
            println!("{text}");
        } else {
            std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("cannot write {path}: {e}"))?;
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("parley")
        .build()?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_and_turn_spell_the_shared_turn_options_their_own_way() {
        let turn = ["--relay-ip", "192.0.2.1", "--relay-ports", "50000-50100"];
        let turn = turn
            .iter()
            .chain(&["--allow-peer", "10.0.0.0/8", "--secret", "s"]);
        let serve = [
            "--turn-relay-ip",
            "192.0.2.1",
            "--turn-relay-ports",
            "50000-50100",
            "--turn-allow-peer",
            "10.0.0.0/8",
            "--turn-secret",
            "s",
        ];
        for cli in [
            Cli::try_parse_from(["parley"].iter().chain(&serve)).unwrap(),
            Cli::try_parse_from(["parley", "serve"].iter().chain(&serve)).unwrap(),
        ] {
            let args = match cli.command {
                Some(Commands::Serve(args)) => args,
                None => cli.serve,
                Some(other) => panic!("{other:?}"),
            };
            assert_eq!(args.turn.secrets, ["s"]);
            assert_eq!(
                args.turn.relay_ips,
                ["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
            );
        }
        let cli = Cli::try_parse_from(["parley", "turn"].iter().chain(turn)).unwrap();
        let Some(Commands::Turn(args)) = cli.command else {
            panic!("not turn: {cli:?}");
        };
        assert_eq!(args.common.secrets, ["s"]);
        assert_eq!(args.common.relay_ports.as_deref(), Some("50000-50100"));
        // Each command knows only its own spelling.
        assert!(Cli::try_parse_from(["parley", "--secret", "s"]).is_err());
        assert!(Cli::try_parse_from(["parley", "turn", "--turn-secret", "s"]).is_err());
    }
}
