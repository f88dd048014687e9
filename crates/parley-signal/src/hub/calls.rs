//! The hub's side of presence and calls: which account a connection is,
//! and the messages the [`Switchboard`] has to send.

use std::time::Instant;

use parley_protocol::{ClientMessage, ErrorCode, PresenceStatus, ProtocolError};

use super::switchboard::Switchboard;
use super::{ConnId, Hub, HubOutput, not_for};

impl Hub {
    /// Runs `f` on the switchboard and queues what it has to say, in order.
    pub(crate) fn switchboard<R>(&mut self, f: impl FnOnce(&mut Switchboard) -> R) -> R {
        let r = f(&mut self.switchboard);
        for (conn, message) in self.switchboard.drain() {
            self.outputs.push_back(HubOutput::Send { conn, message });
        }
        r
    }

    /// A user's status now.
    pub fn presence_of(&self, account: i64) -> PresenceStatus {
        self.switchboard.presence_of(account)
    }

    /// Every online user's status (for the buddy list).
    pub fn presence(&self) -> Vec<(i64, PresenceStatus)> {
        self.switchboard.presence()
    }

    /// A signed-in connection opened.
    pub(crate) fn presence_connect(&mut self, conn: ConnId) {
        if let Some(account) = self.conns.get(&conn).and_then(|c| c.meta.account.clone()) {
            self.switchboard(|s| s.connect(conn, &account));
        }
    }

    fn account_of(&self, conn: ConnId) -> Result<i64, ProtocolError> {
        self.conns
            .get(&conn)
            .and_then(|c| c.meta.account.as_ref().map(|a| a.id))
            .ok_or_else(|| ProtocolError::new(ErrorCode::Forbidden, "sign in first"))
    }

    /// `presence` and the call messages, from a signed-in connection.
    pub(crate) fn handle_call_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: ClientMessage,
    ) -> Result<(), ProtocolError> {
        let account = self.account_of(conn)?;
        self.switchboard(|s| match message {
            ClientMessage::Presence { status } => {
                s.set_presence(conn, account, status);
                Ok(())
            }
            ClientMessage::Call { to, video } => s.place_call(now, conn, account, to, video),
            ClientMessage::CallAnswer { call_id } => s.answer(conn, account, call_id),
            ClientMessage::CallDecline { call_id } => s.decline(account, call_id),
            ClientMessage::CallHangup { call_id } => s.hang_up(account, call_id),
            other => Err(not_for(&other, "presence or call")),
        })
    }
}
