//! What the participants count as they go, for the progress line.

use std::cell::Cell;
use std::rc::Rc;

use crate::client::Progress;

/// Counters the participants bump and the progress line reads.
#[derive(Clone, Default)]
pub(crate) struct Counters {
    pub(crate) video: Rc<Cell<u64>>,
    pub(crate) audio: Rc<Cell<u64>>,
    pub(crate) rtp: Rc<Cell<u64>>,
}

impl Progress for Counters {
    fn frame(&self, video: bool) {
        let c = if video { &self.video } else { &self.audio };
        c.set(c.get() + 1);
    }
    fn rtp(&self) {
        self.rtp.set(self.rtp.get() + 1);
    }
}
