//! Logging to stderr at a level the administrator can change while the
//! server runs.

use std::sync::OnceLock;

use parley_settings::LogLevel;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();
/// Set when `RUST_LOG` chose the filter: a developer's choice wins.
static PINNED: OnceLock<bool> = OnceLock::new();

/// Starts logging at `level`; `RUST_LOG` overrides it for developers. Safe
/// to call more than once (later calls only change the level).
pub fn init(level: LogLevel) {
    if RELOAD.get().is_some() {
        set_level(level);
        return;
    }
    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level.filter()));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = RELOAD.set(handle);
        let _ = PINNED.set(pinned);
    }
}

/// Switches the level at once, for every thread.
pub fn set_level(level: LogLevel) {
    if PINNED.get().copied().unwrap_or(false) {
        tracing::info!(
            ?level,
            "log level saved; RUST_LOG still decides while it is set"
        );
        return;
    }
    if let Some(handle) = RELOAD.get() {
        match handle.reload(EnvFilter::new(level.filter())) {
            // Said at the new level, so an administrator raising it sees the change.
            Ok(()) => tracing::warn!(?level, "log level changed"),
            Err(e) => tracing::error!("cannot change the log level: {e}"),
        }
    }
}
