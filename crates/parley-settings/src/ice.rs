//! Which STUN and TURN servers browsers are given.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};
use crate::url::{IceUrl, Scheme};

/// The most STUN servers, and the most TURN servers: more only slows
/// connection set-up (every server is tried).
pub const MAX_SERVERS: usize = 5;

/// STUN servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StunSettings {
    /// Whether Parley's own STUN server (on its TURN port) is offered.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// Other STUN servers, `stun:` or `stuns:` URLs.
    #[serde(default)]
    pub servers: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for StunSettings {
    /// The built-in server only: nothing leaves the server.
    fn default() -> Self {
        StunSettings {
            builtin: true,
            servers: Vec::new(),
        }
    }
}

impl StunSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if self.servers.len() > MAX_SERVERS {
            e.add(
                format!("servers[{MAX_SERVERS}]"),
                "max_items",
                format!("at most {MAX_SERVERS} STUN servers; more only slow down connecting"),
            );
        }
        if !self.builtin && self.servers.is_empty() {
            e.add(
                "servers",
                "min_items",
                "at least one STUN server is needed when the built-in one is off",
            );
        }
        for (i, raw) in self.servers.iter().enumerate() {
            match IceUrl::parse(raw) {
                Ok(u) if u.scheme.is_turn() => e.add(
                    format!("servers[{i}]"),
                    "scheme",
                    format!("{raw:?} is a TURN URL; put it in the TURN servers"),
                ),
                Ok(_) => {}
                Err(why) => e.add(format!("servers[{i}]"), "url", why),
            }
        }
        e.finish()
    }
}

/// Whether browsers may connect directly or only through TURN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransportPolicy {
    /// Any candidate (the default).
    #[default]
    All,
    /// Relayed candidates only (`iceTransportPolicy: "relay"`), to hide
    /// participants' addresses or force a path through the relay.
    Relay,
}

/// One TURN server: URLs and either fixed credentials or a TURN REST
/// secret Parley mints short-lived credentials with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnServer {
    /// `turn:` or `turns:` URLs of this server.
    pub urls: Vec<String>,
    /// Fixed username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Fixed password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// TURN REST API shared secret (instead of username and password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// TURN servers besides a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TurnSettings {
    /// Up to five servers.
    #[serde(default)]
    pub servers: Vec<TurnServer>,
    /// Transport policy browsers are told to use.
    #[serde(default)]
    pub transport_policy: TransportPolicy,
}

impl TurnSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if self.servers.len() > MAX_SERVERS {
            e.add(
                format!("servers[{MAX_SERVERS}]"),
                "max_items",
                format!("at most {MAX_SERVERS} TURN servers; more only slow down connecting"),
            );
        }
        for (i, server) in self.servers.iter().enumerate() {
            let at = |f: &str| format!("servers[{i}].{f}");
            if server.urls.is_empty() {
                e.add(
                    at("urls"),
                    "min_items",
                    "give at least one turn: or turns: URL",
                );
            }
            for (j, raw) in server.urls.iter().enumerate() {
                match IceUrl::parse(raw) {
                    Ok(u) if !u.scheme.is_turn() => e.add(
                        format!("servers[{i}].urls[{j}]"),
                        "scheme",
                        format!("{raw:?} is not a TURN URL (turn: or turns:); STUN servers have their own list"),
                    ),
                    Ok(u) if u.scheme == Scheme::Turns && u.transport.as_deref() == Some("udp") => {
                        e.add(format!("servers[{i}].urls[{j}]"), "transport", "turns: is TCP only")
                    }
                    Ok(_) => {}
                    Err(why) => e.add(format!("servers[{i}].urls[{j}]"), "url", why),
                }
            }
            let fixed = server.username.is_some() || server.credential.is_some();
            match (&server.secret, fixed) {
                (Some(_), true) => e.add(
                    at("secret"),
                    "exclusive",
                    "give either a username and password or a REST secret, not both",
                ),
                (Some(s), false) if s.is_empty() => {
                    e.add(at("secret"), "min_length", "the secret must not be empty")
                }
                (None, _) => {
                    if server.username.as_deref().is_none_or(str::is_empty) {
                        e.add(
                            at("username"),
                            "required",
                            "a TURN server needs a username (or a REST secret)",
                        );
                    }
                    if server.credential.as_deref().is_none_or(str::is_empty) {
                        e.add(
                            at("credential"),
                            "required",
                            "a TURN server needs a password (or a REST secret)",
                        );
                    }
                }
                _ => {}
            }
        }
        e.finish()
    }
}
