//! Media paths: each client reports how its media reaches the server
//! (`connection`); the hub keeps the latest report for the administrator and
//! passes it on to the room's moderators (`connection_stats`).

use parley_sfu::ParticipantId;

use super::{ConnId, Hub};
use parley_protocol::{ConnectionReport, Role, ServerMessage};
use parley_protocol::{ErrorCode, ProtocolError};

impl Hub {
    /// A member's report of its media path: kept for the administrator,
    /// passed on to the room's moderators.
    pub(crate) fn report_path(
        &mut self,
        id: ParticipantId,
        report: ConnectionReport,
    ) -> Result<(), ProtocolError> {
        if report.rtt_ms > 60_000 || report.loss_permille > 1000 {
            return Err(ProtocolError::new(
                ErrorCode::BadField,
                "connection: rtt_ms is at most 60000 and loss_permille at most 1000",
            ));
        }
        let Some(m) = self.members.get_mut(&id) else {
            return Ok(());
        };
        m.path = Some(report);
        let room = m.room.clone();
        let moderators: Vec<ConnId> = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|other| self.role_of(*other) == Role::Moderator)
            .filter_map(|other| self.conn_of(other))
            .collect();
        for conn in moderators {
            self.send(
                conn,
                ServerMessage::ConnectionStats {
                    participant: id.to_string(),
                    path: report.path,
                    rtt_ms: report.rtt_ms,
                    loss_permille: report.loss_permille,
                },
            );
        }
        Ok(())
    }
}
