//! Which connection a datagram belongs to. Every connection shares the one
//! media socket, so a datagram is matched by its source: first against the
//! connection last seen at that address, then by asking every connection
//! (`Rtc::accepts`: ICE credentials for STUN, the nominated pair for the rest).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::net::{DatagramRecv, Protocol, Receive};

use crate::ids::{ParticipantId, Pc};
use crate::participant::Participant;

/// The last connection seen for each remote address (UDP or ICE-TCP).
#[derive(Debug, Default)]
pub(crate) struct Routes(HashMap<(Protocol, SocketAddr), (ParticipantId, Pc)>);

impl Routes {
    /// The connection that takes `input`, which came from `source`;
    /// remembered for the next datagram from there.
    pub(crate) fn find(
        &mut self,
        participants: &mut HashMap<ParticipantId, Participant>,
        source: (Protocol, SocketAddr),
        input: &Input,
    ) -> Option<(ParticipantId, Pc)> {
        if let Some(&(id, pc)) = self.0.get(&source)
            && let Some(p) = participants.get_mut(&id)
            && p.transport_mut(pc).accepts(input)
        {
            return Some((id, pc));
        }
        let found = participants.iter_mut().find_map(|(id, p)| {
            [Pc::Publish, Pc::Subscribe]
                .into_iter()
                .find(|pc| p.transport_mut(*pc).accepts(input))
                .map(|pc| (*id, pc))
        })?;
        self.0.insert(source, found);
        Some(found)
    }

    /// Forgets the routes to a participant that left.
    pub(crate) fn forget(&mut self, id: ParticipantId) {
        self.0.retain(|_, (p, _)| *p != id);
    }

    /// Forgets the routes to a connection that was replaced.
    pub(crate) fn forget_connection(&mut self, id: ParticipantId, pc: Pc) {
        self.0.retain(|_, route| *route != (id, pc));
    }
}

/// A received datagram as str0m input; none if it is not STUN, DTLS, RTP or RTCP.
pub(crate) fn receive_input<'a>(
    now: Instant,
    proto: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    data: &'a [u8],
) -> Option<Input<'a>> {
    let contents = DatagramRecv::try_from(data).ok()?;
    Some(Input::Receive(
        now,
        Receive {
            proto,
            source,
            destination,
            contents,
        },
    ))
}
