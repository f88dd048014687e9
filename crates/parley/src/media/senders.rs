//! Sending what the SFU forwards from the media sockets, current and
//! retiring, batched per socket so a frame's packets to one subscriber can
//! leave as one segmented message.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;

use parley_sfu::Transmit;

use super::udp::SocketIo;

/// Where datagrams leave from: each socket's sending half with the
/// candidates it serves, current first.
pub struct Senders {
    endpoints: Vec<(Vec<SocketAddr>, Arc<SocketIo>)>,
}

impl Senders {
    /// The sending halves of `endpoints`, each with the candidates it serves.
    pub(super) fn new(endpoints: Vec<(Vec<SocketAddr>, Arc<SocketIo>)>) -> Senders {
        Senders { endpoints }
    }

    /// The socket `source` (the candidate the SFU used) belongs to.
    fn endpoint_of(&self, source: SocketAddr) -> usize {
        self.endpoints
            .iter()
            .position(|(candidates, _)| candidates.contains(&source))
            .or_else(|| {
                self.endpoints
                    .iter()
                    .position(|(_, io)| io.local_addr().port() == source.port())
            })
            .unwrap_or(0)
    }

    /// Sends `transmits` (all UDP), a batch per system call, and empties
    /// it. Each subscriber's datagrams go next to each other, in their
    /// order, so a frame's packets can leave as one segmented message;
    /// which subscriber comes first changes from call to call, so nobody
    /// is always last.
    pub async fn send_transmits(&self, transmits: &mut Vec<Transmit>) {
        if transmits.is_empty() {
            return;
        }
        let order = std::hash::RandomState::new();
        transmits.sort_by_cached_key(|t| (t.source, order.hash_one(t.destination)));
        let mut run: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut current: Option<usize> = None;
        for t in transmits.iter() {
            let index = self.endpoint_of(t.source);
            if let Some(c) = current.filter(|&c| c != index) {
                self.endpoints[c].1.send_batch(&run).await;
                run.clear();
            }
            current = Some(index);
            let io = &self.endpoints[index].1;
            run.push((io.destination(t.destination), &t.contents));
        }
        if let Some(c) = current {
            self.endpoints[c].1.send_batch(&run).await;
        }
        transmits.clear();
    }
}
