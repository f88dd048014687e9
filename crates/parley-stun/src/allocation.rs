//! One TURN allocation (RFC 8656 §2.2): a relayed transport address bound to
//! a client's 5-tuple, with its permissions and channel bindings, each with
//! its own lifetime.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use stun_types::message::{IntegrityKey, TransactionId};

/// Permissions last 300 s unless refreshed (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel bindings last 600 s unless refreshed (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a binding expires its number and peer stay unusable for others this
/// long, so stale data on the wire cannot reach the wrong peer (RFC 8656 §12).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// Most permissions one allocation may hold.
pub const MAX_PERMISSIONS: usize = 64;
/// Most channels one allocation may hold.
pub const MAX_CHANNELS: usize = 64;

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Whether messages travel on a byte stream (and ChannelData is padded).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// The client side of an allocation: client address, server address, transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The client's address as the server sees it.
    pub client: SocketAddr,
    /// The server address the client talks to.
    pub server: SocketAddr,
    /// The transport between them.
    pub transport: Transport,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub(crate) number: u16,
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
}

/// Bytes per second, with a one-second burst.
#[derive(Debug, Clone)]
pub(crate) struct ByteBudget {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl ByteBudget {
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        ByteBudget {
            rate,
            tokens: rate,
            last: now,
        }
    }

    pub(crate) fn spend(&mut self, now: Instant, bytes: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        if !elapsed.is_zero() {
            let refill = (elapsed.as_micros() as u64).saturating_mul(self.rate) / 1_000_000;
            self.tokens = (self.tokens + refill).min(self.rate);
            self.last = now;
        }
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

/// An allocation.
#[derive(Debug)]
pub struct Allocation {
    pub(crate) relay: SocketAddr,
    pub(crate) username: String,
    /// The key that authenticated the Allocate; later requests must use it.
    pub(crate) key: IntegrityKey,
    /// The Allocate's transaction, so a retransmission gets the same answer.
    pub(crate) transaction: TransactionId,
    pub(crate) expires: Instant,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<Channel>,
    /// Expired bindings in their cooldown.
    cooling: Vec<Channel>,
    pub(crate) budget: Option<ByteBudget>,
}

impl Allocation {
    pub(crate) fn new(
        relay: SocketAddr,
        username: String,
        key: IntegrityKey,
        transaction: TransactionId,
        expires: Instant,
        budget: Option<ByteBudget>,
    ) -> Self {
        Allocation {
            relay,
            username,
            key,
            transaction,
            expires,
            permissions: Vec::new(),
            channels: Vec::new(),
            cooling: Vec::new(),
            budget,
        }
    }

    /// The relayed transport address.
    pub fn relay(&self) -> SocketAddr {
        self.relay
    }

    /// Whether a permission for `ip` is installed and unexpired.
    pub(crate) fn permits(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .iter()
            .any(|(p, expires)| *p == ip && *expires > now)
    }

    /// Installs or refreshes a permission; false when the table is full.
    pub(crate) fn permit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let expires = now + PERMISSION_LIFETIME;
        if let Some(p) = self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            p.1 = expires;
            return true;
        }
        self.permissions.retain(|(_, e)| *e > now);
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push((ip, expires));
        true
    }

    /// The peer bound to `number`, if the binding is live.
    pub(crate) fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
    }

    /// The channel bound to `peer`, if the binding is live.
    pub(crate) fn peer_channel(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number)
    }

    /// Binds or refreshes `number` ↔ `peer` (RFC 8656 §11.2). Refused (400)
    /// when either side is bound, or cooling down, with something else.
    pub(crate) fn bind(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), BindError> {
        self.expire(now);
        let clash = self
            .channels
            .iter()
            .chain(self.cooling.iter())
            .any(|c| (c.number == number) != (c.peer == peer));
        if clash {
            return Err(BindError::InUse);
        }
        let expires = now + CHANNEL_LIFETIME;
        if let Some(c) = self.channels.iter_mut().find(|c| c.number == number) {
            c.expires = expires;
            return Ok(());
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(BindError::Full);
        }
        self.cooling
            .retain(|c| !(c.number == number && c.peer == peer));
        self.channels.push(Channel {
            number,
            peer,
            expires,
        });
        Ok(())
    }

    /// Drops expired permissions and moves expired channels into cooldown.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.permissions.retain(|(_, e)| *e > now);
        let (live, dead): (Vec<Channel>, Vec<Channel>) =
            self.channels.iter().partition(|c| c.expires > now);
        if !dead.is_empty() {
            self.channels = live;
            self.cooling.extend(dead.into_iter().map(|c| Channel {
                expires: c.expires + CHANNEL_COOLDOWN,
                ..c
            }));
        }
        self.cooling.retain(|c| c.expires > now);
    }

    /// Checks (and spends) the bandwidth budget for `bytes`.
    pub(crate) fn spend(&mut self, now: Instant, bytes: usize) -> bool {
        self.budget.as_mut().is_none_or(|b| b.spend(now, bytes))
    }
}

/// Why a ChannelBind is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindError {
    /// The number or the peer is bound to something else (400).
    InUse,
    /// Too many channels (508).
    Full,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocation(now: Instant) -> Allocation {
        let key = LongTermKey::key();
        Allocation::new(
            "203.0.113.1:50000".parse().unwrap(),
            "u".into(),
            key,
            TransactionId::from(1u128),
            now + Duration::from_secs(600),
            None,
        )
    }

    struct LongTermKey;
    impl LongTermKey {
        fn key() -> IntegrityKey {
            stun_types::message::LongTermKeyCredentials::new("u".into(), "p".into(), "r".into())
                .make_key(stun_types::message::IntegrityAlgorithm::Sha1)
        }
    }

    #[test]
    fn permissions_expire_after_five_minutes() {
        let now = Instant::now();
        let mut a = allocation(now);
        let peer: IpAddr = "8.8.8.8".parse().unwrap();
        assert!(!a.permits(peer, now));
        assert!(a.permit(peer, now));
        assert!(a.permits(peer, now + Duration::from_secs(299)));
        assert!(!a.permits(peer, now + PERMISSION_LIFETIME));
        // A refresh extends it.
        assert!(a.permit(peer, now + Duration::from_secs(200)));
        assert!(a.permits(peer, now + Duration::from_secs(450)));
    }

    #[test]
    fn channels_bind_one_to_one_and_cool_down_after_expiry() {
        let now = Instant::now();
        let mut a = allocation(now);
        let p1: SocketAddr = "8.8.8.8:1000".parse().unwrap();
        let p2: SocketAddr = "8.8.4.4:1000".parse().unwrap();
        assert_eq!(a.bind(0x4000, p1, now), Ok(()));
        assert_eq!(a.bind(0x4000, p1, now), Ok(()), "a refresh");
        assert_eq!(
            a.bind(0x4000, p2, now),
            Err(BindError::InUse),
            "number taken"
        );
        assert_eq!(a.bind(0x4001, p1, now), Err(BindError::InUse), "peer taken");
        assert_eq!(a.channel_peer(0x4000, now), Some(p1));
        assert_eq!(a.peer_channel(p1, now), Some(0x4000));

        let expired = now + CHANNEL_LIFETIME;
        assert_eq!(a.channel_peer(0x4000, expired), None);
        assert_eq!(
            a.bind(0x4000, p2, expired),
            Err(BindError::InUse),
            "cooling down"
        );
        assert_eq!(
            a.bind(0x4000, p1, expired),
            Ok(()),
            "the same pair may bind again"
        );
        let later = expired + CHANNEL_LIFETIME + CHANNEL_COOLDOWN;
        assert_eq!(a.bind(0x4000, p2, later), Ok(()));
    }

    #[test]
    fn the_byte_budget_refills_at_its_rate() {
        let now = Instant::now();
        let mut b = ByteBudget::new(1000, now);
        assert!(b.spend(now, 800));
        assert!(!b.spend(now, 300));
        assert!(b.spend(now + Duration::from_millis(100), 300));
        assert!(!b.spend(now + Duration::from_millis(100), 1));
    }
}
