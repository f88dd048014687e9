//! How media reaches the server: the ports and the advertised addresses.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};

/// The most announced addresses (as in the seed products).
pub const MAX_ANNOUNCE: usize = 4;

/// Fixed or dynamic media ports (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PortMode {
    /// The media port is `udp_port` (the default; needed behind port forwarding and in containers).
    #[default]
    Fixed,
    /// The media port is picked from `min_udp_port`..=`max_udp_port` (any free
    /// port when both are 0).
    Dynamic,
}

/// The connection section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Fixed or dynamic.
    #[serde(default)]
    pub mode: PortMode,
    /// The media UDP port in fixed mode.
    #[serde(default = "default_port")]
    pub udp_port: u16,
    /// The ICE-TCP port in fixed mode (passive candidates for browsers whose
    /// network blocks UDP).
    #[serde(default = "default_port")]
    pub tcp_port: u16,
    /// Lowest UDP port in dynamic mode; 0 disables the bound.
    #[serde(default)]
    pub min_udp_port: u16,
    /// Highest UDP port in dynamic mode; 0 disables the bound.
    #[serde(default)]
    pub max_udp_port: u16,
    /// Addresses clients reach the media port at (at most 4).
    #[serde(default)]
    pub announce: Vec<IpAddr>,
}

fn default_port() -> u16 {
    10000
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            mode: PortMode::Fixed,
            udp_port: 10000,
            tcp_port: 10000,
            min_udp_port: 0,
            max_udp_port: 0,
            announce: Vec::new(),
        }
    }
}

impl ConnectionSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if self.mode == PortMode::Fixed {
            if self.udp_port == 0 {
                e.add("udp_port", "range", "a fixed UDP port must be 1-65535");
            }
            if self.tcp_port == 0 {
                e.add("tcp_port", "range", "a fixed TCP port must be 1-65535");
            }
        }
        if self.min_udp_port != 0 && self.max_udp_port != 0 && self.min_udp_port > self.max_udp_port
        {
            e.add(
                "min_udp_port",
                "order",
                "the lowest UDP port must not be above the highest",
            );
        }
        if self.announce.len() > MAX_ANNOUNCE {
            e.add(
                format!("announce[{MAX_ANNOUNCE}]"),
                "max_items",
                format!("at most {MAX_ANNOUNCE} announced addresses"),
            );
        }
        for (i, ip) in self.announce.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() {
                e.add(
                    format!("announce[{i}]"),
                    "unicast",
                    format!("{ip} cannot receive media; give a unicast address"),
                );
            }
        }
        e.finish()
    }

    /// The UDP port range to bind in, `(0, 0)` for any.
    pub fn udp_range(&self) -> (u16, u16) {
        match self.mode {
            PortMode::Fixed => (self.udp_port, self.udp_port),
            PortMode::Dynamic => (self.min_udp_port, self.max_udp_port),
        }
    }
}
