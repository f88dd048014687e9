//! `parley`: see `parley --help`.

fn main() -> std::process::ExitCode {
    match parley::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parley: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
