//! Replies held until the writes before them are committed.
//!
//! The hub answers at once (a chat message's echo, `joined`, `security`
//! after a new password), while what the answer acknowledges is written by
//! the journal's task a moment later. A `kill -9` in between would lose
//! what people were told had happened. So every message the conference
//! sends after handing the journal a record waits until that record is
//! committed; messages keep their order (one queue for all connections, as
//! a later message to anyone may follow from the write). If the writer
//! stalls, they go after [`MAX_HOLD`] anyway: a late reply is better than
//! none.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parley_signal::ConnId;

use crate::conference::Outbound;

/// The longest a reply waits for its write.
pub const MAX_HOLD: Duration = Duration::from_secs(2);

/// See the module documentation.
#[derive(Default)]
pub struct Held {
    /// (record it waits for, connection, message, since).
    queue: VecDeque<(u64, ConnId, Outbound, Instant)>,
}

impl Held {
    /// Whether `message` to `conn` must wait: a record it may acknowledge
    /// (`gate`) is not committed yet, or messages before it wait. If so it
    /// is kept; otherwise it is handed back to be sent now.
    pub fn hold(
        &mut self,
        gate: u64,
        committed: u64,
        conn: ConnId,
        message: Outbound,
        now: Instant,
    ) -> Option<(ConnId, Outbound)> {
        if gate <= committed && self.queue.is_empty() {
            return Some((conn, message));
        }
        self.queue.push_back((gate, conn, message, now));
        None
    }

    /// The messages that may go now, in order: those whose record is
    /// committed, and any that waited too long.
    pub fn release(&mut self, committed: u64, now: Instant) -> Vec<(ConnId, Outbound)> {
        let mut out = Vec::new();
        while let Some((gate, _, _, since)) = self.queue.front() {
            let overdue = now.saturating_duration_since(*since) >= MAX_HOLD;
            if *gate > committed && !overdue {
                break;
            }
            if overdue && *gate > committed {
                tracing::warn!("the database is slow: a reply goes before its write is committed");
            }
            if let Some((_, conn, message, _)) = self.queue.pop_front() {
                out.push((conn, message));
            }
        }
        out
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// When the oldest waiting message goes regardless.
    pub fn deadline(&self) -> Option<Instant> {
        self.queue.front().map(|(_, _, _, since)| *since + MAX_HOLD)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn text(s: &str) -> Outbound {
        Outbound::Text(s.to_owned())
    }

    fn texts(out: Vec<(ConnId, Outbound)>) -> Vec<String> {
        out.into_iter()
            .map(|(_, m)| match m {
                Outbound::Text(t) => t,
                Outbound::Close(r) => format!("close {r}"),
            })
            .collect()
    }

    #[test]
    fn replies_wait_for_their_write_and_keep_their_order() {
        let now = Instant::now();
        let mut held = Held::default();
        assert!(
            held.hold(0, 0, ConnId(1), text("before"), now).is_some(),
            "nothing to wait for"
        );
        assert!(held.hold(1, 0, ConnId(1), text("echo"), now).is_none());
        // Nothing new was written for this one, but it must not overtake.
        assert!(held.hold(0, 0, ConnId(2), text("after"), now).is_none());
        assert!(held.release(0, now).is_empty());
        assert_eq!(texts(held.release(1, now)), ["echo", "after"]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_stalled_writer_holds_replies_two_seconds_at_most() {
        let now = Instant::now();
        let mut held = Held::default();
        assert!(held.hold(5, 0, ConnId(1), text("echo"), now).is_none());
        assert_eq!(held.deadline(), Some(now + MAX_HOLD));
        assert!(held.release(0, now + Duration::from_secs(1)).is_empty());
        assert_eq!(texts(held.release(0, now + MAX_HOLD)), ["echo"]);
        assert_eq!(held.deadline(), None);
    }
}
