//! Rooms spread over several [`Sfu`]s ("shards"), each behind its own lock,
//! so that media workers on different cores forward different rooms'
//! packets at the same time. A room's participants are all on one shard
//! (forwarding within a room never crosses shards); a new room goes to the
//! shard serving the fewest participants.
//!
//! A shard is either driven here, by whoever owns the [`Shards`] (the
//! sans-IO way: [`Shards::handle_receive`], [`Shards::handle_timeout`],
//! [`Shards::take_transmits`]), or by a worker that registered a waker with
//! [`Shard::set_waker`] and feeds it datagrams and time itself. Calls made
//! here on a worker's shard (signaling: offers, answers, candidates, joins
//! and leaves) wake its worker, which then sends what they produced.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use str0m::net::DatagramRecv;

use crate::{
    ParticipantId, Pc, Protocol, PublishGate, RoomId, Sfu, SfuError, SfuEvent, SfuStats, Transmit,
    TransportConfig, TransportState,
};

/// How long a remote address whose STUN no shard took is not looked for again.
const MISS_FOR: Duration = Duration::from_secs(1);
/// Addresses remembered as misses at most (then forgotten all at once).
const MAX_MISSES: usize = 4096;

/// One SFU and what its worker needs to hear.
pub struct Shard {
    sfu: Mutex<Sfu>,
    /// Set when events may wait in the SFU (by calls here, and by its
    /// worker after a batch), cleared by [`Shards::take_events`].
    events: AtomicBool,
    /// How to wake the shard's worker, if one drives it.
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Shard {
    fn new(config: TransportConfig) -> Self {
        Shard {
            sfu: Mutex::new(Sfu::new(config)),
            events: AtomicBool::new(false),
            waker: OnceLock::new(),
        }
    }

    /// The SFU, locked. (A panic while it was held poisons nothing that
    /// matters: str0m's panics are caught inside, per connection.)
    pub fn lock(&self) -> MutexGuard<'_, Sfu> {
        self.sfu.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the shard to a worker: `wake` is called whenever a call made
    /// through [`Shards`] may have left it datagrams to send, events or a
    /// sooner timeout. From then on [`Shards`] no longer drives it.
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.waker.set(Box::new(wake));
    }

    /// For the worker, after a batch: notes that events wait.
    pub fn note_events(&self, sfu: &Sfu) {
        if sfu.has_events() {
            self.events.store(true, Ordering::Release);
        }
    }

    fn driven_here(&self) -> bool {
        self.waker.get().is_none()
    }

    /// Runs `f` on the SFU, then tells the worker.
    fn with<T>(&self, f: impl FnOnce(&mut Sfu) -> T) -> T {
        let value = {
            let mut sfu = self.lock();
            let value = f(&mut sfu);
            self.note_events(&sfu);
            value
        };
        if let Some(wake) = self.waker.get() {
            wake();
        }
        value
    }
}

/// See the module documentation.
pub struct Shards {
    shards: Vec<Arc<Shard>>,
    /// Each room's shard and how many of its participants are there.
    rooms: HashMap<RoomId, (usize, usize)>,
    participants: HashMap<ParticipantId, (usize, RoomId)>,
    /// The shard (and participant) each remote address was routed to.
    routes: HashMap<(Protocol, SocketAddr), (usize, ParticipantId)>,
    /// Remote addresses whose STUN no shard took, and when: not looked
    /// for again for [`MISS_FOR`], so junk costs no shard's lock.
    misses: HashMap<(Protocol, SocketAddr), Instant>,
    /// Datagrams no shard took, and ones that were not STUN, DTLS, RTP or
    /// RTCP (counted here when there are several shards; a single shard
    /// counts its own).
    unrouted: u64,
    malformed: u64,
}

impl Shards {
    /// `count` shards (at least one) whose connections use `config`.
    pub fn new(count: usize, config: TransportConfig) -> Self {
        let count = count.max(1);
        Shards {
            shards: (0..count)
                .map(|_| Arc::new(Shard::new(config.clone())))
                .collect(),
            rooms: HashMap::new(),
            participants: HashMap::new(),
            routes: HashMap::new(),
            misses: HashMap::new(),
            unrouted: 0,
            malformed: 0,
        }
    }

    /// The shards, for their workers.
    pub fn shards(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    /// The shard a participant's media is on.
    pub fn shard_of(&self, id: ParticipantId) -> Option<usize> {
        self.participants.get(&id).map(|(shard, _)| *shard)
    }

    fn on<T>(&self, id: ParticipantId, f: impl FnOnce(&mut Sfu) -> T) -> Option<T> {
        let (shard, _) = self.participants.get(&id)?;
        Some(self.shards[*shard].with(f))
    }

    fn each(&self, mut f: impl FnMut(&mut Sfu)) {
        for shard in &self.shards {
            shard.with(&mut f);
        }
    }

    /// See [`Sfu::set_transport_config`]; applies to every shard.
    pub fn set_transport_config(&mut self, config: TransportConfig) {
        self.each(|sfu| sfu.set_transport_config(config.clone()));
    }

    /// See [`Sfu::set_last_n`]; applies to every shard.
    pub fn set_last_n(&mut self, n: usize) {
        self.each(|sfu| sfu.set_last_n(n));
    }

    /// Adds a participant to `room`, on the room's shard; a new room goes
    /// to the shard serving the fewest participants. Returns the shard when
    /// the room was placed just now.
    pub fn add_participant(
        &mut self,
        now: Instant,
        id: ParticipantId,
        room: RoomId,
    ) -> Option<usize> {
        if self.participants.contains_key(&id) {
            return None;
        }
        let (shard, placed) = match self.rooms.get_mut(&room) {
            Some((shard, members)) => {
                *members += 1;
                (*shard, false)
            }
            None => {
                let shard = self.least_loaded();
                self.rooms.insert(room, (shard, 1));
                (shard, true)
            }
        };
        self.participants.insert(id, (shard, room));
        self.shards[shard].with(|sfu| sfu.add_participant(now, id, room));
        placed.then_some(shard)
    }

    /// The shard serving the fewest participants (the first of equals).
    fn least_loaded(&self) -> usize {
        let mut load = vec![0; self.shards.len()];
        for (shard, members) in self.rooms.values() {
            load[*shard] += members;
        }
        (0..load.len()).min_by_key(|&i| (load[i], i)).unwrap_or(0)
    }

    /// See [`Sfu::remove_participant`].
    pub fn remove_participant(&mut self, now: Instant, id: ParticipantId) {
        let Some((shard, room)) = self.participants.remove(&id) else {
            return;
        };
        self.routes.retain(|_, (_, p)| *p != id);
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                self.rooms.remove(&room);
            }
        }
        self.shards[shard].with(|sfu| sfu.remove_participant(now, id));
    }

    /// See [`Sfu::set_video_sizes`].
    pub fn set_video_sizes(&mut self, now: Instant, id: ParticipantId, sizes: &[(&str, u32, u32)]) {
        self.on(id, |sfu| sfu.set_video_sizes(now, id, sizes));
    }

    /// See [`Sfu::set_publish_gate`].
    pub fn set_publish_gate(&mut self, now: Instant, id: ParticipantId, gate: PublishGate) {
        self.on(id, |sfu| sfu.set_publish_gate(now, id, gate));
    }

    /// See [`Sfu::handle_publish_offer`].
    pub fn handle_publish_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        self.on(id, |sfu| sfu.handle_publish_offer(now, id, sdp))
            .unwrap_or(Err(SfuError::UnknownParticipant))
    }

    /// See [`Sfu::handle_subscribe_answer`].
    pub fn handle_subscribe_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        offer_id: Option<u64>,
        sdp: &str,
    ) -> Result<(), SfuError> {
        self.on(id, |sfu| {
            sfu.handle_subscribe_answer(now, id, offer_id, sdp)
        })
        .unwrap_or(Err(SfuError::UnknownParticipant))
    }

    /// See [`Sfu::add_remote_candidate`].
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        id: ParticipantId,
        pc: Pc,
        candidate: &str,
    ) -> Result<(), SfuError> {
        self.on(id, |sfu| sfu.add_remote_candidate(now, id, pc, candidate))
            .unwrap_or(Err(SfuError::UnknownParticipant))
    }

    /// See [`Sfu::renew_subscribe`].
    pub fn renew_subscribe(&mut self, now: Instant, id: ParticipantId) {
        self.on(id, |sfu| sfu.renew_subscribe(now, id));
    }

    /// See [`Sfu::transport_state`].
    pub fn transport_state(&self, id: ParticipantId, pc: Pc) -> Option<TransportState> {
        self.on(id, |sfu| sfu.transport_state(id, pc)).flatten()
    }

    /// How many participants the shards serve.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Counters since start, summed over the shards.
    pub fn stats(&self) -> SfuStats {
        let mut total = SfuStats {
            unrouted_datagrams: self.unrouted,
            malformed_datagrams: self.malformed,
            ..SfuStats::default()
        };
        for shard in &self.shards {
            let s = shard.lock().stats();
            total.malformed_datagrams += s.malformed_datagrams;
            total.unrouted_datagrams += s.unrouted_datagrams;
            total.frames_forwarded += s.frames_forwarded;
        }
        total
    }

    /// The shard whose connection takes a datagram (see [`Sfu::takes`]),
    /// remembered per remote address; none when no connection does. A
    /// remembered address is not checked again (that would take the
    /// shard's lock for every datagram): a shard that turns out not to
    /// take it says so, and [`Shards::forget_route`] is called. Only STUN
    /// (ICE checks, which come first from any new address) is looked for
    /// on the shards, so media from unknown addresses costs no lock.
    pub fn route(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<usize> {
        if self.shards.len() == 1 {
            return Some(0);
        }
        let key = (proto, source);
        if let Some(&(shard, _)) = self.routes.get(&key) {
            return Some(shard);
        }
        if DatagramRecv::try_from(data).is_err() {
            self.malformed += 1;
            return None;
        }
        // RFC 7983: a first byte of 0–3 is STUN.
        let stun = data.first().is_some_and(|b| *b < 4);
        let missed = self
            .misses
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < MISS_FOR);
        if !stun || missed {
            self.unrouted += 1;
            return None;
        }
        let found = self.shards.iter().enumerate().find_map(|(i, shard)| {
            let taker = shard.lock().takes(now, proto, source, destination, data)?;
            Some((i, taker))
        });
        let Some((shard, taker)) = found else {
            if self.misses.len() >= MAX_MISSES {
                self.misses.clear();
            }
            self.misses.insert(key, now);
            self.unrouted += 1;
            return None;
        };
        self.misses.remove(&key);
        self.routes.insert(key, (shard, taker));
        Some(shard)
    }

    /// Forgets where datagrams from `source` went: the shard did not take one.
    pub fn forget_route(&mut self, proto: Protocol, source: SocketAddr) {
        self.routes.remove(&(proto, source));
    }

    /// Feeds one datagram to the shard it belongs to, here (see
    /// [`Sfu::handle_receive`]); whether a connection took it. A single
    /// shard gets every datagram, and counts those nobody takes.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(shard) = self.route(now, proto, source, destination, data) else {
            return false;
        };
        let taken = self.shards[shard]
            .with(|sfu| sfu.handle_receive(now, proto, source, destination, data));
        if !taken {
            self.forget_route(proto, source);
        }
        taken
    }

    /// Advances time on the shards driven here.
    pub fn handle_timeout(&mut self, now: Instant) {
        for shard in self.shards.iter().filter(|s| s.driven_here()) {
            shard.with(|sfu| sfu.handle_timeout(now));
        }
    }

    /// When [`Shards::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.shards
            .iter()
            .filter(|s| s.driven_here())
            .filter_map(|s| s.lock().poll_timeout())
            .min()
    }

    /// Moves what the shards driven here have to send into `out`, one
    /// lock per shard.
    pub fn take_transmits(&mut self, out: &mut Vec<Transmit>) {
        for shard in self.shards.iter().filter(|s| s.driven_here()) {
            let mut sfu = shard.lock();
            while let Some(t) = sfu.poll_transmit() {
                out.push(t);
            }
        }
    }

    /// How many datagrams wait in the shards driven here.
    pub fn transmits_waiting(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.driven_here())
            .map(|s| s.lock().transmits_waiting())
            .sum()
    }

    /// Moves every waiting event into `out`.
    pub fn take_events(&mut self, out: &mut Vec<SfuEvent>) {
        for shard in &self.shards {
            if shard.events.swap(false, Ordering::AcqRel) {
                let mut sfu = shard.lock();
                while let Some(event) = sfu.poll_event() {
                    out.push(event);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failed test
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> TransportConfig {
        TransportConfig {
            host_candidates: vec!["127.0.0.1:10000".parse().unwrap()],
            tcp_candidates: Vec::new(),
        }
    }

    #[test]
    fn rooms_spread_over_shards_and_stay_whole() {
        let now = Instant::now();
        let mut shards = Shards::new(2, config());
        let (r1, r2, r3) = (RoomId::new(1), RoomId::new(2), RoomId::new(3));
        let p = ParticipantId::new;
        shards.add_participant(now, p(1), r1);
        shards.add_participant(now, p(2), r2);
        shards.add_participant(now, p(3), r1);
        shards.add_participant(now, p(4), r1);
        assert_eq!(
            shards.shard_of(p(1)),
            shards.shard_of(p(3)),
            "a room stays whole"
        );
        assert_ne!(shards.shard_of(p(1)), shards.shard_of(p(2)));
        // The next room goes where fewer participants are.
        shards.add_participant(now, p(5), r3);
        assert_eq!(shards.shard_of(p(5)), shards.shard_of(p(2)));
        // Each shard's SFU has its own.
        let a = shards.shard_of(p(1)).unwrap();
        assert_eq!(shards.shards()[a].lock().participant_count(), 3);
        assert_eq!(shards.shards()[1 - a].lock().participant_count(), 2);

        // A room that empties is placed afresh next time.
        for id in [1, 3, 4] {
            shards.remove_participant(now, p(id));
        }
        assert_eq!(shards.shard_of(p(1)), None);
        shards.add_participant(now, p(6), r1);
        assert_eq!(shards.shard_of(p(6)), Some(a), "the emptier shard");
    }

    /// A STUN binding request as ICE sends it (RFC 8445 §7.1.2): USERNAME,
    /// PRIORITY and MESSAGE-INTEGRITY (not checked here), for credentials
    /// nobody has.
    fn binding_request() -> Vec<u8> {
        let mut m = vec![0, 1, 0, 44, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&[0, 6, 0, 5, b'a', b'b', b':', b'c', b'd', 0, 0, 0]);
        m.extend_from_slice(&[0, 0x24, 0, 4, 0x6e, 0, 0x1e, 0xff]);
        m.extend_from_slice(&[0, 8, 0, 20]);
        m.extend_from_slice(&[9; 20]);
        m
    }

    #[test]
    fn only_stun_from_a_new_address_is_looked_for_on_the_shards() {
        let now = Instant::now();
        let mut shards = Shards::new(2, config());
        let id = ParticipantId::new(3);
        shards.add_participant(now, id, RoomId::new(1));
        let server: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let key = (Protocol::Udp, peer);

        // Neither STUN, DTLS, RTP nor RTCP.
        assert_eq!(
            shards.route(now, Protocol::Udp, peer, server, &[0xff; 20]),
            None
        );
        assert_eq!(shards.stats().malformed_datagrams, 1);
        // RTP from an address no ICE check came from: no shard is asked.
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        assert_eq!(shards.route(now, Protocol::Udp, peer, server, &rtp), None);
        assert!(!shards.misses.contains_key(&key));
        // A binding request nobody's credentials match: asked, then not
        // asked again for a while.
        let stun = binding_request();
        assert_eq!(shards.route(now, Protocol::Udp, peer, server, &stun), None);
        assert_eq!(shards.misses.get(&key), Some(&now));
        let soon = now + Duration::from_millis(100);
        assert_eq!(shards.route(soon, Protocol::Udp, peer, server, &stun), None);
        assert_eq!(shards.misses.get(&key), Some(&now), "not looked for again");
        assert_eq!(shards.stats().unrouted_datagrams, 3);

        // A remembered route is taken as it is, until forgotten; and it
        // goes with its participant.
        shards.routes.insert(key, (1, id));
        assert_eq!(
            shards.route(now, Protocol::Udp, peer, server, &rtp),
            Some(1)
        );
        shards.forget_route(Protocol::Udp, peer);
        assert_eq!(shards.route(now, Protocol::Udp, peer, server, &rtp), None);
        shards.routes.insert(key, (1, id));
        shards.remove_participant(now, id);
        assert!(shards.routes.is_empty());
    }

    #[test]
    fn calls_reach_the_participants_shard_and_wake_its_worker() {
        let now = Instant::now();
        let mut shards = Shards::new(2, config());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for shard in shards.shards() {
            let woken = woken.clone();
            shard.set_waker(move || {
                woken.fetch_add(1, Ordering::Relaxed);
            });
        }
        let id = ParticipantId::new(9);
        shards.add_participant(now, id, RoomId::new(1));
        assert!(woken.load(Ordering::Relaxed) >= 1);
        // Workers drive their shards: nothing is sent or timed from here.
        assert_eq!(shards.poll_timeout(), None);
        let mut sent = Vec::new();
        shards.take_transmits(&mut sent);
        assert!(sent.is_empty());
        // A subscribe offer was made; its event is waiting.
        let mut events = Vec::new();
        shards.take_events(&mut events);
        assert!(
            events.iter().any(
                |e| matches!(e, SfuEvent::SubscribeOffer { participant, .. } if *participant == id)
            ),
            "{events:?}"
        );
        assert_eq!(
            shards.handle_publish_offer(now, ParticipantId::new(77), "v=0"),
            Err(SfuError::UnknownParticipant)
        );
    }
}
