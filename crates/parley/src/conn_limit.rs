//! How many connections a listener serves at once: in all, and from one IP
//! address (a NAT may hide a whole office, so the second is generous). An
//! [`Admission`] holds both places until it is dropped. Also the accept
//! step every TCP listener shares.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The next connection on `listener`, with the peer's address in its
/// canonical form (a dual-stack listener sees IPv4 peers as
/// `::ffff:a.b.c.d`). A failed accept (out of file descriptors and the
/// like) is logged and waited out, not spun on; `what` names the listener.
pub async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                return (
                    stream,
                    SocketAddr::new(remote.ip().to_canonical(), remote.port()),
                );
            }
            Err(e) => {
                tracing::warn!("{what} accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The limits of one listener. Clones share them.
#[derive(Debug, Clone)]
pub struct ConnLimit {
    total: Arc<Semaphore>,
    max_total: usize,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// Why a connection was refused, in words for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener serves its most connections.
    #[error("{0} connections already open")]
    Full(usize),
    /// The address has its most connections.
    #[error("{0} connections already open from that address")]
    Address(usize),
}

/// A connection's place; freed when dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnLimit {
    /// At most `total` connections, `per_address` from one address.
    pub fn new(total: usize, per_address: usize) -> Self {
        ConnLimit {
            total: Arc::new(Semaphore::new(total)),
            max_total: total,
            per_address: Arc::default(),
            max_per_address: per_address,
        }
    }

    /// A place for a connection from `ip`, if there is one.
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, Refused> {
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full(self.max_total))?;
        let mut map = self
            .per_address
            .lock()
            .map_err(|_| Refused::Full(self.max_total))?;
        let n = map.entry(ip).or_default();
        if *n >= self.max_per_address {
            return Err(Refused::Address(self.max_per_address));
        }
        *n += 1;
        Ok(Admission {
            _permit: permit,
            ip,
            per_address: self.per_address.clone(),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut map) = self.per_address.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_limited_in_all_and_per_address_and_freed_on_drop() {
        let limit = ConnLimit::new(3, 2);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let first = limit.admit(a).unwrap();
        let _second = limit.admit(a).unwrap();
        assert_eq!(limit.admit(a).unwrap_err(), Refused::Address(2));
        let _third = limit.admit(b).unwrap();
        assert_eq!(limit.admit(b).unwrap_err(), Refused::Full(3));
        drop(first);
        assert!(limit.admit(a).is_ok(), "a freed place is taken again");
    }
}
