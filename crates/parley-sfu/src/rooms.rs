//! Who is in which room, and who speaks there. A room exists while it has
//! members; media only ever goes between members of one room.

use std::collections::HashMap;
use std::time::Instant;

use crate::ids::{ParticipantId, RoomId};
use crate::speaker::SpeakerDetector;

/// The rooms of one SFU.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    /// Members in the order they joined.
    members: HashMap<RoomId, Vec<ParticipantId>>,
    /// Who speaks, per room (from the first audio level heard there).
    speakers: HashMap<RoomId, SpeakerDetector>,
}

impl Rooms {
    /// The members of `room`, in the order they joined; none for a room
    /// nobody is in.
    pub(crate) fn members(&self, room: RoomId) -> &[ParticipantId] {
        self.members.get(&room).map_or(&[], Vec::as_slice)
    }

    /// Adds `id` to `room`, opening it if need be.
    pub(crate) fn join(&mut self, room: RoomId, id: ParticipantId) {
        self.members.entry(room).or_default().push(id);
    }

    /// Removes `id` from `room`. Returns the members left, or none when the
    /// room closed with it (or never was).
    pub(crate) fn leave(&mut self, room: RoomId, id: ParticipantId) -> Option<&[ParticipantId]> {
        if let Some(speakers) = self.speakers.get_mut(&room) {
            speakers.remove(id);
        }
        let members = self.members.get_mut(&room)?;
        members.retain(|m| *m != id);
        if members.is_empty() {
            self.members.remove(&room);
            self.speakers.remove(&room);
            return None;
        }
        self.members.get(&room).map(Vec::as_slice)
    }

    /// Who speaks in `room`, once anyone was heard there.
    pub(crate) fn speakers(&self, room: RoomId) -> Option<&SpeakerDetector> {
        self.speakers.get(&room)
    }

    /// Notes the audio level of a packet `id` sent to `room`; returns the
    /// room's new active speaker when it changes.
    pub(crate) fn hear(
        &mut self,
        now: Instant,
        room: RoomId,
        id: ParticipantId,
        level: i8,
    ) -> Option<ParticipantId> {
        self.speakers
            .entry(room)
            .or_default()
            .observe(now, id, level)
    }
}
