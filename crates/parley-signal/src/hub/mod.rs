//! The signaling server's state machine: connections, rooms and their
//! members, wired to the [`Sfu`]. Sans-IO like the SFU: the driver feeds
//! WebSocket frames, datagrams and time, and drains [`HubOutput`]s,
//! [`Transmit`]s and the next timeout.

mod access;
mod calls;
mod conversation;
mod dispatch;
mod media;
mod moderation;
mod paths;
mod resume;
mod room;
mod switchboard;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_sfu::{ParticipantId, Shards, TransportConfig};

use crate::ratelimit::TokenBucket;
use parley_protocol::{
    ChatMessage, ClientMessage, ConnectionReport, IceConfig, LeaveReason, ParticipantInfo, Role,
    ServerMessage,
};
use parley_protocol::{DisplayName, RoomName};
use parley_protocol::{ErrorCode, ProtocolError};

use room::Room;
pub use room::RoomConfig;
pub use switchboard::DEFAULT_RING_TIMEOUT;

/// A WebSocket connection, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a joining participant's ICE servers come from: TURN credentials
/// are minted per participant and settings change live, so this is asked
/// at every join.
pub trait IceServerSource: Send + Sync {
    /// The ICE servers and transport policy for `participant` (its public id).
    fn ice_config(&self, participant: &str) -> IceConfig;
}

impl<F: Fn(&str) -> IceConfig + Send + Sync> IceServerSource for F {
    fn ice_config(&self, participant: &str) -> IceConfig {
        self(participant)
    }
}

/// What the administrator decides about rooms; changes apply to the next
/// join or reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPolicy {
    /// Whether anyone may join at all.
    pub enabled: bool,
    /// Most participants in one room.
    pub max_members: usize,
    /// The reactions participants may send.
    pub reactions: Vec<String>,
    /// How long a call rings before it ends unanswered (calls placed from now on).
    pub ring_timeout: Duration,
    /// Presence and calls reach users of every domain (else only their own).
    pub buddies_all_domains: bool,
    /// Last-N: each participant gets the video of only this many most
    /// recent speakers (0: everyone's).
    pub last_n: usize,
    /// A participant whose connection dropped keeps its place this long,
    /// waiting for `resume` on a new connection (0: it leaves at once).
    pub reconnect_grace: Duration,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        RoomPolicy {
            enabled: true,
            max_members: 20,
            reactions: ["👍", "👏", "😂", "❤️", "🎉", "😮"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            ring_timeout: DEFAULT_RING_TIMEOUT,
            buddies_all_domains: false,
            last_n: 0,
            reconnect_grace: DEFAULT_RECONNECT_GRACE,
        }
    }
}

/// A room's members, each with its last media path report.
pub type MembersWithPaths = Vec<(ParticipantInfo, Option<ConnectionReport>)>;

/// How long a participant whose connection dropped keeps its place.
pub const DEFAULT_RECONNECT_GRACE: Duration = Duration::from_secs(30);

/// Settings of the hub.
#[derive(Clone)]
pub struct HubConfig {
    /// Who may join, how many, and which reactions exist.
    pub rooms: RoomPolicy,
    /// ICE servers handed to clients in `joined`.
    pub ice_servers: Arc<dyn IceServerSource>,
    /// A connection silent for this long is closed and its participant leaves.
    pub idle_timeout: Duration,
    /// Makes a secret resume token (random in production; a parameter so
    /// tests can fix it).
    pub tokens: TokenSource,
    /// Messages per second per connection, on average.
    pub message_rate: f64,
    /// Messages a connection may send in a burst.
    pub message_burst: f64,
    /// Media connection settings for the SFU.
    pub transport: TransportConfig,
    /// SFU shards rooms are spread over, one per media worker (at least one).
    pub media_shards: usize,
    /// Secret mixed into participant ids so they cannot be guessed.
    pub id_key: u64,
    /// Wall-clock time in milliseconds since the Unix epoch, for chat
    /// timestamps (a parameter so tests can fix it).
    pub wall_clock: WallClock,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("rooms", &self.rooms)
            .field("idle_timeout", &self.idle_timeout)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// Makes a secret, unguessable token (random in production).
pub type TokenSource = Arc<dyn Fn() -> String + Send + Sync>;
/// Milliseconds since the Unix epoch.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl HubConfig {
    /// Defaults from `docs/protocol.md`, with the given SFU host candidates.
    /// The id key, the token source and the wall clock come from the driver,
    /// so the hub never reads the machine's randomness or clock itself.
    pub fn new(
        host_candidates: Vec<SocketAddr>,
        id_key: u64,
        tokens: TokenSource,
        wall_clock: WallClock,
    ) -> Self {
        HubConfig {
            rooms: RoomPolicy::default(),
            ice_servers: Arc::new(|_: &str| IceConfig::default()),
            idle_timeout: Duration::from_secs(30),
            tokens,
            message_rate: 50.0,
            message_burst: 100.0,
            transport: TransportConfig {
                host_candidates,
                tcp_candidates: Vec::new(),
            },
            media_shards: 1,
            id_key,
            wall_clock,
        }
    }
}

/// What the hub asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubOutput {
    /// Send a message on a connection.
    Send {
        /// Where.
        conn: ConnId,
        /// What.
        message: ServerMessage,
    },
    /// Close a connection (it already left its room).
    Close {
        /// Which.
        conn: ConnId,
        /// Why, for the close frame.
        reason: &'static str,
    },
    /// A room got its first member (for the store's "rooms seen").
    RoomOpened {
        /// Which room.
        room: RoomName,
    },
    /// A room's last member left.
    RoomClosed {
        /// Which room.
        room: RoomName,
    },
    /// Someone entered a room (for the history).
    MemberJoined {
        /// Which room.
        room: RoomName,
        /// The participant's id.
        participant: String,
        /// Their account, if signed in.
        account: Option<i64>,
        /// Their display name.
        name: String,
        /// The room is a one-to-one call's.
        call: bool,
    },
    /// Someone left a room (for the history).
    MemberLeft {
        /// Which room.
        room: RoomName,
        /// The participant's id.
        participant: String,
    },
    /// Store this room's configuration (it changed).
    StoreRoom {
        /// Which room.
        room: RoomName,
        /// Its configuration now.
        config: RoomConfig,
    },
    /// Store this chat message with the room's history.
    StoreChat {
        /// Which room.
        room: RoomName,
        /// The message.
        message: ChatMessage,
    },
    /// Check `password` against the hash `phc`, off the media path, and
    /// report with [`Hub::handle_password_checked`].
    CheckPassword {
        /// Whose join waits for it.
        conn: ConnId,
        /// Passed back with the result.
        ticket: u64,
        /// The stored hash.
        phc: String,
        /// What the client sent.
        password: String,
    },
    /// Hash a new room password, off the media path, and report with
    /// [`Hub::handle_password_hashed`].
    HashPassword {
        /// Which room.
        room: RoomName,
        /// Passed back with the result.
        ticket: u64,
        /// The new password.
        password: String,
    },
}

/// A signed-in user behind a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's id in the store.
    pub id: i64,
    /// Its display name, shown to people it calls.
    pub name: String,
    /// Its domain: buddy lists and presence stay within it unless the
    /// administrator allows all domains.
    pub domain: String,
}

/// What the driver knows about a connection when it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnMeta {
    /// The client's address (for password attempt limits and blocks).
    pub ip: Option<IpAddr>,
    /// The signed-in user, if any; guests have none.
    pub account: Option<Account>,
}

/// A `join` that is not done yet: its password is being checked, or it
/// waits in the lobby.
#[derive(Debug, Clone)]
pub(crate) struct PendingJoin {
    /// The participant id it will have; also its id in the lobby.
    id: ParticipantId,
    room: RoomName,
    name: DisplayName,
    mic: bool,
    camera: bool,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    CheckingPassword { ticket: u64 },
    Lobby,
}

struct Connection {
    last_activity: Instant,
    limiter: TokenBucket,
    meta: ConnMeta,
    participant: Option<ParticipantId>,
    pending: Option<PendingJoin>,
}

struct Member {
    conn: ConnId,
    room: RoomName,
    name: DisplayName,
    account: Option<i64>,
    ip: Option<IpAddr>,
    mic: bool,
    camera: bool,
    hand: Option<u64>,
    screen: Option<String>,
    /// A moderator muted this member: its audio is not forwarded until it unmutes.
    mic_forced: bool,
    /// ... and it may not unmute until a moderator allows it.
    mic_locked: bool,
    /// Screen tracks a moderator stopped.
    stopped_tracks: Vec<String>,
    /// The secret that lets a new connection take this place (`resume`).
    token: String,
    /// Since when its connection is gone (it keeps its place for the grace period).
    away_since: Option<Instant>,
    /// How its media reaches the server, as its client last reported.
    path: Option<ConnectionReport>,
}

/// Wrong room passwords one address may send in a burst ...
const PASSWORD_BURST: f64 = 5.0;
/// ... and per second after that.
const PASSWORD_RATE: f64 = 1.0 / 12.0;

/// The signaling state machine. See the module documentation.
pub struct Hub {
    config: HubConfig,
    sfu: Shards,
    conns: HashMap<ConnId, Connection>,
    members: HashMap<ParticipantId, Member>,
    rooms: HashMap<RoomName, Room>,
    /// Stored room configurations (loaded by the driver, kept up to date here).
    room_configs: HashMap<RoomName, RoomConfig>,
    /// Wrong-password allowance per client address.
    password_limits: HashMap<IpAddr, TokenBucket>,
    /// Passwords set by moderators and being hashed, per room.
    new_passwords: HashMap<RoomName, room::NewPassword>,
    outputs: VecDeque<HubOutput>,
    /// Presence of signed-in users and their calls.
    switchboard: switchboard::Switchboard,
    /// Members removed or whose meeting ended, for a while: a client that
    /// was away then and tries to `resume` hears why instead of rejoining.
    farewells: HashMap<ParticipantId, resume::Farewell>,
    next_id: u64,
    next_ticket: u64,
}

impl Hub {
    /// A hub with no connections.
    pub fn new(config: HubConfig) -> Self {
        let mut sfu = Shards::new(config.media_shards, config.transport.clone());
        sfu.set_last_n(config.rooms.last_n);
        let switchboard = switchboard::Switchboard::new(
            config.rooms.buddies_all_domains,
            config.rooms.ring_timeout,
            config.id_key,
        );
        Hub {
            config,
            sfu,
            conns: HashMap::new(),
            members: HashMap::new(),
            rooms: HashMap::new(),
            room_configs: HashMap::new(),
            password_limits: HashMap::new(),
            new_passwords: HashMap::new(),
            outputs: VecDeque::new(),
            switchboard,
            farewells: HashMap::new(),
            next_id: 0,
            next_ticket: 0,
        }
    }

    /// Loads a stored room configuration (at start).
    pub fn load_room(&mut self, room: RoomName, config: RoomConfig) {
        self.room_configs.insert(room, config);
    }

    /// The SFU's shards: for inspection, and for the media workers that
    /// drive them.
    pub fn sfu(&self) -> &Shards {
        &self.sfu
    }

    /// How many people are in rooms.
    pub fn participant_count(&self) -> usize {
        self.members.len()
    }

    /// Names of the rooms with people in them.
    pub fn room_names(&self) -> Vec<RoomName> {
        self.rooms.keys().cloned().collect()
    }

    /// Every room with people in it, who is there (in order of arrival) and
    /// how each one's media reaches the server, as last reported.
    pub fn rooms(&self) -> Vec<(RoomName, MembersWithPaths)> {
        let mut rooms: Vec<_> = self
            .rooms
            .iter()
            .map(|(name, room)| {
                let members: MembersWithPaths = room
                    .members
                    .iter()
                    .filter_map(|id| Some((self.info(*id)?, self.members.get(id)?.path)))
                    .collect();
                (name.clone(), members)
            })
            .collect();
        rooms.retain(|(_, members)| !members.is_empty());
        rooms.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        rooms
    }

    /// The ids of everyone in a room.
    pub fn participant_ids(&self) -> Vec<ParticipantId> {
        self.members.keys().copied().collect()
    }

    /// Changes where the ICE servers for clients that join from now on come from.
    pub fn set_ice_servers(&mut self, source: Arc<dyn IceServerSource>) {
        self.config.ice_servers = source;
    }

    /// Applies the administrator's room settings. Nobody already in a room
    /// is removed: a lowered member limit applies to the next join. A new
    /// reactions list is sent to everyone in a room.
    pub fn set_room_policy(&mut self, rooms: RoomPolicy) {
        let reactions_changed = rooms.reactions != self.config.rooms.reactions;
        self.sfu.set_last_n(rooms.last_n);
        self.switchboard
            .configure(rooms.buddies_all_domains, rooms.ring_timeout);
        self.config.rooms = rooms;
        if reactions_changed {
            // Pickers in meetings follow at once, not at the next join.
            let conns: Vec<ConnId> = self.members.values().map(|m| m.conn).collect();
            for conn in conns {
                self.send(
                    conn,
                    ServerMessage::RoomSettings {
                        reactions: self.config.rooms.reactions.clone(),
                    },
                );
            }
        }
    }

    /// The room settings in force.
    pub fn room_policy(&self) -> &RoomPolicy {
        &self.config.rooms
    }

    /// A new WebSocket connection from a guest.
    pub fn handle_connect(&mut self, now: Instant, conn: ConnId) {
        self.handle_connect_as(now, conn, ConnMeta::default());
    }

    /// A new WebSocket connection, with what the driver knows of its client.
    pub fn handle_connect_as(&mut self, now: Instant, conn: ConnId, meta: ConnMeta) {
        self.conns.insert(
            conn,
            Connection {
                last_activity: now,
                limiter: TokenBucket::new(now, self.config.message_rate, self.config.message_burst),
                meta,
                participant: None,
                pending: None,
            },
        );
        self.presence_connect(conn);
    }

    /// Any sign of life on a connection (a pong, a frame).
    pub fn handle_activity(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_activity = c.last_activity.max(now);
        }
    }

    /// The connection closed.
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        self.forget(now, conn, LeaveReason::Disconnected);
        self.pump_sfu();
    }

    /// Drops a connection: its participant leaves (or, when the connection
    /// just dropped, waits for `resume` during the grace period), its wait
    /// in a lobby ends, its user's pages and calls are updated. False if unknown.
    fn forget(&mut self, now: Instant, conn: ConnId, reason: LeaveReason) -> bool {
        let Some(c) = self.conns.remove(&conn) else {
            return false;
        };
        if let Some(id) = c.participant {
            // A connection that closed or went silent (a network that
            // dropped) keeps its place; `leave` was not sent.
            let dropped = matches!(reason, LeaveReason::Disconnected | LeaveReason::Timeout);
            if dropped && !self.config.rooms.reconnect_grace.is_zero() {
                self.go_away(now, id);
            } else {
                self.leave(now, id, reason);
            }
        }
        if let Some(pending) = c.pending {
            self.drop_pending(conn, &pending);
        }
        let account = c.meta.account.map(|a| a.id);
        self.switchboard(|s| s.disconnect(conn, account));
        true
    }

    /// Advances time: media timers, and closing silent connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sfu.handle_timeout(now);
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                now.saturating_duration_since(c.last_activity) >= self.config.idle_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            if self.forget(now, conn, LeaveReason::Timeout) {
                self.outputs.push_back(HubOutput::Close {
                    conn,
                    reason: "idle timeout",
                });
            }
        }
        let gone: Vec<ParticipantId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.away_since.is_some_and(|t| {
                    now.saturating_duration_since(t) >= self.config.rooms.reconnect_grace
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            tracing::info!(participant = %id, "did not reconnect within the grace period");
            self.leave(now, id, LeaveReason::Disconnected);
        }
        self.forget_farewells(now);
        self.switchboard(|s| s.handle_timeout(now));
        if self.password_limits.len() > 1024 {
            self.password_limits.retain(|_, b| !b.is_full(now));
        }
        self.pump_sfu();
    }

    /// The next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.outputs.pop_front()
    }

    /// When [`Hub::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self
            .conns
            .values()
            .map(|c| c.last_activity + self.config.idle_timeout)
            .min();
        let away = self
            .members
            .values()
            .filter_map(|m| m.away_since)
            .min()
            .map(|t| t + self.config.rooms.reconnect_grace);
        [
            idle,
            away,
            self.sfu.poll_timeout(),
            self.switchboard.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn send(&mut self, conn: ConnId, message: ServerMessage) {
        self.outputs.push_back(HubOutput::Send { conn, message });
    }

    fn reply_error(&mut self, conn: ConnId, e: ProtocolError) {
        tracing::debug!(conn = conn.0, code = ?e.code, "refused: {}", e.message);
        self.send(conn, e.into());
    }

    /// Sends `message` to every member of `room` except `except`.
    fn broadcast(
        &mut self,
        room: &RoomName,
        except: Option<ParticipantId>,
        message: ServerMessage,
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let targets: Vec<ConnId> = r
            .members
            .iter()
            .filter(|id| Some(**id) != except)
            .filter_map(|id| self.members.get(id).map(|m| m.conn))
            .collect();
        for conn in targets {
            self.send(conn, message.clone());
        }
    }

    fn leave(&mut self, now: Instant, id: ParticipantId, reason: LeaveReason) {
        let was_moderator = self.role_of(id) == Role::Moderator;
        let Some(member) = self.members.remove(&id) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&member.conn) {
            c.participant = None;
        }
        self.sfu.remove_participant(now, id);
        tracing::info!(room = %member.room, participant = %id, ?reason, "left");
        self.outputs.push_back(HubOutput::MemberLeft {
            room: member.room.clone(),
            participant: id.to_string(),
        });
        let Some(r) = self.rooms.get_mut(&member.room) else {
            return;
        };
        r.members.retain(|m| *m != id);
        r.granted.remove(&room::Grantee::Guest(id));
        if r.members.is_empty() {
            self.outputs.push_back(HubOutput::RoomClosed {
                room: member.room.clone(),
            });
        } else {
            self.broadcast(
                &member.room,
                None,
                ServerMessage::ParticipantLeft {
                    id: id.to_string(),
                    reason,
                },
            );
        }
        if was_moderator {
            self.hand_over(now, &member.room);
        }
        let remaining: Vec<ConnId> = self
            .rooms
            .get(&member.room)
            .map(|r| {
                r.members
                    .iter()
                    .filter_map(|id| self.members.get(id).map(|m| m.conn))
                    .collect()
            })
            .unwrap_or_default();
        self.switchboard(|s| s.room_left(&member.room, &remaining));
        if let Some(account) = member.account {
            self.switchboard(|s| s.left_room(account));
        }
        if self.rooms.get(&member.room).is_some_and(Room::is_empty) {
            self.rooms.remove(&member.room);
        }
    }

    /// The connection of member `id`, if it is one.
    fn conn_of(&self, id: ParticipantId) -> Option<ConnId> {
        self.members.get(&id).map(|m| m.conn)
    }

    /// A member as others see it, with its role in its room.
    fn info(&self, id: ParticipantId) -> Option<ParticipantInfo> {
        let m = self.members.get(&id)?;
        let config = self.room_config(&m.room);
        let role = self.role_of(id);
        Some(ParticipantInfo {
            id: id.to_string(),
            name: m.name.as_str().to_owned(),
            mic: m.mic,
            camera: m.camera,
            role,
            owner: m.account.is_some() && config.owner == m.account,
            account: m.account.is_some(),
            hand: m.hand,
            screen: m.screen.clone(),
            mic_locked: m.mic_locked,
            reconnecting: m.away_since.is_some(),
        })
    }

    /// Tells everyone in the member's room (it too) how it looks now.
    fn announce(&mut self, id: ParticipantId) {
        let Some(info) = self.info(id) else {
            return;
        };
        let Some(room) = self.members.get(&id).map(|m| m.room.clone()) else {
            return;
        };
        self.broadcast(
            &room,
            None,
            ServerMessage::ParticipantUpdated { participant: info },
        );
    }

    /// The room's stored configuration (a room nobody configured has none).
    fn room_config(&self, room: &RoomName) -> &RoomConfig {
        self.room_configs.get(room).unwrap_or(&room::UNCONFIGURED)
    }

    fn role_of(&self, id: ParticipantId) -> Role {
        let Some(m) = self.members.get(&id) else {
            return Role::Participant;
        };
        self.rooms.get(&m.room).map_or(Role::Participant, |r| {
            r.role(self.room_config(&m.room), m.account, id)
        })
    }

    fn next_ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Participant ids: a counter through a keyed bijective mix, so ids are
    /// unique for the server's life and cannot be guessed from one another.
    fn new_participant_id(&mut self) -> ParticipantId {
        loop {
            self.next_id += 1;
            let id = ParticipantId::new(mix(self.next_id ^ self.config.id_key));
            if !self.members.contains_key(&id) {
                return id;
            }
        }
    }
}

/// splitmix64's finaliser: a bijection on u64 that scatters consecutive inputs.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A message routed to a part that does not own it: a dispatch mistake,
/// answered as an unknown type rather than a panic.
pub(crate) fn not_for(message: &ClientMessage, part: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownType,
        format!("{} is not a {part} message", message.kind()),
    )
}
