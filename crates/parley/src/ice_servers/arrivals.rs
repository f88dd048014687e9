//! Test packets relayed to Parley's own media port by the connectivity
//! check: the media receive loop hands them here instead of to the SFU.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Every test packet starts with this. Its first byte (`P`, 0x50) is none
/// of STUN, DTLS, RTP or RTCP (RFC 7983), so media never looks like it.
pub const MAGIC: &[u8] = b"PARLEY-ICE-CHECK:";

/// Checks waiting for their test packet.
#[derive(Clone, Default)]
pub struct Arrivals {
    waiting: Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<SocketAddr>>>>,
}

impl Arrivals {
    /// A fresh test packet and the receiver told (with the relay's address)
    /// when it arrives. Dropping the receiver forgets the packet.
    pub fn expect(&self) -> (Vec<u8>, Waiting) {
        let token: [u8; 16] = rand::random();
        let mut payload = MAGIC.to_vec();
        for b in token {
            payload.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.retain(|_, tx| !tx.is_closed());
            w.insert(payload.clone(), tx);
        }
        (payload, Waiting { rx })
    }

    /// Whether `data` is a test packet (then it is consumed here).
    pub fn arrived(&self, data: &[u8], from: SocketAddr) -> bool {
        if !data.starts_with(MAGIC) {
            return false;
        }
        if let Ok(mut w) = self.waiting.lock()
            && let Some(tx) = w.remove(data)
        {
            let _ = tx.send(from);
        }
        true
    }
}

/// A test packet not yet arrived.
pub struct Waiting {
    rx: oneshot::Receiver<SocketAddr>,
}

impl Waiting {
    /// Where it came from, if it arrives within `limit`.
    pub async fn arrival(self, limit: std::time::Duration) -> Option<SocketAddr> {
        tokio::time::timeout(limit, self.rx).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_expected_packet_is_recognised_once() {
        let arrivals = Arrivals::default();
        let (payload, waiting) = arrivals.expect();
        let from: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        assert!(!arrivals.arrived(b"\x80\x00rtp", from));
        assert!(arrivals.arrived(&payload, from));
        assert_eq!(waiting.arrival(Duration::from_secs(1)).await, Some(from));
        // A replay is still swallowed, but wakes nobody.
        assert!(arrivals.arrived(&payload, from));
        let (_, never) = arrivals.expect();
        assert_eq!(never.arrival(Duration::from_millis(10)).await, None);
    }
}
