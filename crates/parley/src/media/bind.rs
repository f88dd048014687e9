//! Binding the media ports as the connection settings say (a fixed port, or
//! a free one of a range), with errors that name the setting at fault.

use std::io;
use std::net::{IpAddr, SocketAddr};

use parley_settings::ConnectionSettings;

use super::udp::MediaSocket;

/// Why the media port could not be (re)bound, in words for the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BindError {
    /// The setting at fault.
    pub field: &'static str,
    /// What happened.
    pub message: String,
}

/// Binds the media socket for `settings`: the fixed port, or the first free
/// port of the dynamic range (any port when it is open on both ends).
pub(super) fn bind_socket(
    ip: IpAddr,
    settings: &ConnectionSettings,
) -> Result<MediaSocket, BindError> {
    let (min, max) = settings.udp_range();
    if settings.mode == parley_settings::PortMode::Fixed {
        let addr = SocketAddr::new(ip, min);
        return MediaSocket::bind(addr).map_err(|e| bind_error("udp_port", "UDP", addr, &e));
    }
    bind_in_range(ip, (min, max), "UDP", MediaSocket::bind)
}

/// Binds the ICE-TCP listener for `settings`: `tcp_port` in fixed mode; in
/// dynamic mode the UDP socket's port number `udp_port` if it is free (one
/// number for a firewall to open), else any free port of the range.
pub(super) fn bind_tcp(
    ip: IpAddr,
    settings: &ConnectionSettings,
    udp_port: u16,
) -> Result<std::net::TcpListener, BindError> {
    if settings.mode == parley_settings::PortMode::Fixed {
        let addr = SocketAddr::new(ip, settings.tcp_port);
        return std::net::TcpListener::bind(addr)
            .map_err(|e| bind_error("tcp_port", "TCP", addr, &e));
    }
    if udp_port != 0
        && let Ok(listener) = std::net::TcpListener::bind(SocketAddr::new(ip, udp_port))
    {
        return Ok(listener);
    }
    bind_in_range(ip, settings.udp_range(), "TCP", std::net::TcpListener::bind)
}

/// Binds the first free port of `min`–`max` (0 leaves that end open; any
/// port when both are), starting at a random place.
fn bind_in_range<T>(
    ip: IpAddr,
    (min, max): (u16, u16),
    what: &str,
    bind: impl Fn(SocketAddr) -> io::Result<T>,
) -> Result<T, BindError> {
    if (min, max) == (0, 0) {
        let addr = SocketAddr::new(ip, 0);
        return bind(addr).map_err(|e| bind_error("min_udp_port", what, addr, &e));
    }
    let low = if min == 0 { 1024 } else { min };
    let high = if max == 0 { u16::MAX } else { max };
    let span = u32::from(high - low) + 1;
    let start = rand::random::<u32>() % span;
    let mut last = None;
    for i in 0..span {
        let port = low + u16::try_from((start + i) % span).unwrap_or(0);
        match bind(SocketAddr::new(ip, port)) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(BindError {
        field: "min_udp_port",
        message: format!(
            "no free {what} port between {low} and {high} on {ip}{}",
            last.map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ),
    })
}

fn bind_error(field: &'static str, what: &str, addr: SocketAddr, e: &io::Error) -> BindError {
    let message = match e.kind() {
        io::ErrorKind::AddrInUse => {
            format!(
                "{what} port {} is in use on {} by another program; choose another port",
                addr.port(),
                addr.ip()
            )
        }
        io::ErrorKind::PermissionDenied => format!(
            "not allowed to bind {what} port {} on {}: ports below 1024 need privileges",
            addr.port(),
            addr.ip()
        ),
        io::ErrorKind::AddrNotAvailable => {
            format!("{} is not an address of this machine", addr.ip())
        }
        _ => format!(
            "cannot bind the media port {} {addr}: {e}",
            what.to_lowercase()
        ),
    };
    BindError { field, message }
}
