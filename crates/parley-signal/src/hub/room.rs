//! A room's state: what is stored about it between meetings
//! ([`RoomConfig`]), and what lives only while people are in it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use parley_sfu::{ParticipantId, RoomId};

use parley_protocol::{ChatMessage, Handover, Role, Security};

use super::ConnId;

/// Room chat messages kept for late joiners of a meeting.
pub(crate) const CHAT_REPLAY: usize = 200;

/// What is remembered about a room between meetings (the driver stores it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomConfig {
    /// The account that created the room: always its moderator.
    pub owner: Option<i64>,
    /// Accounts made moderators of the room; they are moderators whenever
    /// they come back.
    pub moderators: Vec<i64>,
    /// The password's hash (PHC string), when the room has one.
    pub password: Option<String>,
    /// Newcomers wait in the lobby.
    pub lobby: bool,
    /// What happens when the last moderator leaves.
    pub on_moderator_leave: Handover,
}

/// The configuration of a room nobody has configured.
pub(crate) static UNCONFIGURED: RoomConfig = RoomConfig {
    owner: None,
    moderators: Vec::new(),
    password: None,
    lobby: false,
    on_moderator_leave: Handover::NextAccount,
};

impl RoomConfig {
    /// Whether `account` moderates the room whatever happens in a meeting.
    pub(crate) fn is_standing_moderator(&self, account: Option<i64>) -> bool {
        account.is_some_and(|a| self.owner == Some(a) || self.moderators.contains(&a))
    }
}

/// A password a moderator set whose hash is not done yet. It is in force
/// from the moment it was asked for: joins meanwhile are checked against it
/// here, so there is no window in which the room has no password.
pub(crate) struct NewPassword {
    /// The `HashPassword` ticket whose answer makes it the stored hash; an
    /// answer with another ticket is for a password changed since.
    pub(crate) ticket: u64,
    pub(crate) password: String,
}

impl NewPassword {
    /// Whether `given` is the password, in time independent of where they differ.
    pub(crate) fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.password.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

/// Whom a role given during a meeting belongs to: an account keeps it across
/// reloads; a guest only for as long as its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Grantee {
    Account(i64),
    Guest(ParticipantId),
}

/// A room with people in it or waiting at its door.
pub(crate) struct Room {
    /// The SFU's room, once someone is in.
    pub(crate) id: RoomId,
    /// In order of arrival.
    pub(crate) members: Vec<ParticipantId>,
    /// Connections waiting in the lobby, in order of arrival.
    pub(crate) lobby: Vec<ConnId>,
    /// Lock: nobody new gets in, moderators' accounts excepted.
    pub(crate) locked: bool,
    pub(crate) presenter_mode: bool,
    pub(crate) multiple_shares: bool,
    /// The last moderator left and nobody could take over: the lobby admits
    /// everyone until a moderator is back.
    pub(crate) open: bool,
    /// Roles given during this meeting.
    pub(crate) granted: HashMap<Grantee, Role>,
    pub(crate) banned_accounts: HashSet<i64>,
    pub(crate) banned_addresses: HashSet<IpAddr>,
    /// The latest room chat messages, for late joiners.
    pub(crate) chat: VecDeque<ChatMessage>,
    /// Numbers raised hands in order.
    pub(crate) next_hand: u64,
}

impl Room {
    pub(crate) fn new(id: RoomId) -> Self {
        Room {
            id,
            members: Vec::new(),
            lobby: Vec::new(),
            locked: false,
            presenter_mode: false,
            multiple_shares: false,
            open: false,
            granted: HashMap::new(),
            banned_accounts: HashSet::new(),
            banned_addresses: HashSet::new(),
            chat: VecDeque::new(),
            next_hand: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.lobby.is_empty()
    }

    /// The room's security; `hashing` says a new password is being hashed
    /// (it is in force already).
    pub(crate) fn security(&self, config: &RoomConfig, hashing: bool) -> Security {
        Security {
            password: config.password.is_some() || hashing,
            lobby: config.lobby,
            locked: self.locked,
            presenter_mode: self.presenter_mode,
            multiple_shares: self.multiple_shares,
            on_moderator_leave: config.on_moderator_leave,
        }
    }

    /// The role of a member with `account` (if signed in) and id `id`.
    pub(crate) fn role(
        &self,
        config: &RoomConfig,
        account: Option<i64>,
        id: ParticipantId,
    ) -> Role {
        if config.is_standing_moderator(account) {
            return Role::Moderator;
        }
        let by_account = account.and_then(|a| self.granted.get(&Grantee::Account(a)));
        let by_id = self.granted.get(&Grantee::Guest(id));
        by_account
            .into_iter()
            .chain(by_id)
            .copied()
            .max()
            .unwrap_or(Role::Participant)
    }

    pub(crate) fn push_chat(&mut self, message: ChatMessage) {
        if self.chat.len() == CHAT_REPLAY {
            self.chat.pop_front();
        }
        self.chat.push_back(message);
    }
}
