//! The log level (seed 001's five levels).

use serde::{Deserialize, Serialize};

/// Log levels, from most to least said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Everything, for diagnosing problems.
    Debug,
    /// General operations (the default).
    #[default]
    Informational,
    /// Warnings and worse.
    Warning,
    /// Errors and worse.
    Error,
    /// Only critical errors.
    Critical,
}

impl LogLevel {
    /// Parses the names administrators use, case-insensitively.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" | "informational" => LogLevel::Informational,
            "warn" | "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            other => {
                return Err(format!(
                    "unknown log level {other:?}: use debug, informational, warning, error or critical"
                ));
            }
        })
    }

    /// The `tracing` filter for this level. Critical maps to errors only, as
    /// `tracing` has no level above error. The STUN codec warns about every
    /// malformed datagram it is handed, which a TURN server on the internet
    /// receives all day: those stay quiet below debug.
    pub fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug,str0m=info,is=info,dimpl=info,hyper=info,stun_types=info",
            LogLevel::Informational => "info,str0m=warn,is=warn,dimpl=warn,stun_types=error",
            LogLevel::Warning => "warn,stun_types=error",
            LogLevel::Error | LogLevel::Critical => "error",
        }
    }
}

/// The logging section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    /// The level, applied at once.
    pub level: LogLevel,
}
