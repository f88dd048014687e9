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

/// The longest a reply waits for its write.
pub const MAX_HOLD: Duration = Duration::from_secs(2);

/// See the module documentation. `M` is a message with its addressee.
pub struct Held<M> {
    /// (record it waits for, message, since).
    queue: VecDeque<(u64, M, Instant)>,
}

impl<M> Default for Held<M> {
    fn default() -> Self {
        Held {
            queue: VecDeque::new(),
        }
    }
}

impl<M> Held<M> {
    /// Whether `message` must wait: a record it may acknowledge (`gate`) is
    /// not committed yet, or messages before it wait. If so it is kept;
    /// otherwise it is handed back to be sent now.
    pub fn hold(&mut self, gate: u64, committed: u64, message: M, now: Instant) -> Option<M> {
        if gate <= committed && self.queue.is_empty() {
            return Some(message);
        }
        self.queue.push_back((gate, message, now));
        None
    }

    /// The messages that may go now, in order: those whose record is
    /// committed, and any that waited too long.
    pub fn release(&mut self, committed: u64, now: Instant) -> Vec<M> {
        let mut out = Vec::new();
        while let Some((gate, _, since)) = self.queue.front() {
            let overdue = now.saturating_duration_since(*since) >= MAX_HOLD;
            if *gate > committed && !overdue {
                break;
            }
            if overdue && *gate > committed {
                tracing::warn!("the database is slow: a reply goes before its write is committed");
            }
            if let Some((_, message, _)) = self.queue.pop_front() {
                out.push(message);
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
        self.queue.front().map(|(_, _, since)| *since + MAX_HOLD)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A message to connection `conn`.
    fn text(conn: u64, s: &str) -> (u64, String) {
        (conn, s.to_owned())
    }

    fn texts(out: Vec<(u64, String)>) -> Vec<String> {
        out.into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn replies_wait_for_their_write_and_keep_their_order() {
        let now = Instant::now();
        let mut held = Held::default();
        assert!(
            held.hold(0, 0, text(1, "before"), now).is_some(),
            "nothing to wait for"
        );
        assert!(held.hold(1, 0, text(1, "echo"), now).is_none());
        // Nothing new was written for this one, but it must not overtake.
        assert!(held.hold(0, 0, text(2, "after"), now).is_none());
        assert!(held.release(0, now).is_empty());
        assert_eq!(texts(held.release(1, now)), ["echo", "after"]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_stalled_writer_holds_replies_two_seconds_at_most() {
        let now = Instant::now();
        let mut held = Held::default();
        assert!(held.hold(5, 0, text(1, "echo"), now).is_none());
        assert_eq!(held.deadline(), Some(now + MAX_HOLD));
        assert!(held.release(0, now + Duration::from_secs(1)).is_empty());
        assert_eq!(texts(held.release(0, now + MAX_HOLD)), ["echo"]);
        assert_eq!(held.deadline(), None);
    }
}
