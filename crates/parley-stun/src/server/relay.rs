//! Relaying: ChannelData and Send indications from clients to peers, and
//! peer datagrams back to clients (RFC 8656 §10–12).

use super::*;

impl TurnServer {
    pub(super) fn client_channel_data(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        out: &mut Outbox,
    ) {
        let Ok(cd) = ChannelData::parse(data) else {
            return;
        };
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let Some(peer) = a.channel_peer(cd.channel, now) else {
            self.metrics.dropped += 1;
            return;
        };
        if !a.permits(peer.ip(), now) || !a.spend(now, cd.data.len()) {
            self.metrics.dropped += 1;
            return;
        }
        let relay = a.relay;
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += cd.data.len() as u64;
        out.push_parts(Destination::Peer { relay, peer }, &[], cd.data, 0);
    }

    /// A datagram from `peer` arrived on the relay socket at `relay`.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    ) {
        let Some(tuple) = self.by_relay.get(&relay).copied() else {
            return;
        };
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        if !a.permits(peer.ip(), now) || !a.spend(now, data.len()) {
            self.metrics.dropped += 1;
            return;
        }
        self.metrics.packets_to_clients += 1;
        self.metrics.bytes_to_clients += data.len() as u64;
        let to = Destination::Client(tuple);
        if let Some(channel) = a.peer_channel(peer, now) {
            // Streams need ChannelData padded to a multiple of four (RFC 8656 §12.5).
            let pad_to = if tuple.transport.is_stream() {
                (channel_data::HEADER + data.len()).next_multiple_of(4)
            } else {
                0
            };
            out.push_parts(to, &ChannelData::header(channel, data.len()), data, pad_to);
            return;
        }
        let software = self.config.software.clone();
        out.push_with(to, data.len() + 64, |buf| {
            let mut w = Message::builder(
                stun_types::message::MessageType::from_class_method(MessageClass::Indication, DATA),
                TransactionId::generate(),
                MessageWriteMutSlice::new(buf),
            );
            let tid = w.transaction_id();
            let written = (|| -> Result<(), StunWriteError> {
                w.add_attribute(&XorPeerAddress::new(peer, tid))?;
                w.add_attribute(&Data(data))?;
                if let Some(s) = &software {
                    add_software(&mut w, s)?;
                }
                Ok(())
            })();
            if written.is_err() { 0 } else { w.finish() }
        });
    }

    pub(super) fn send_indication(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message,
        out: &mut Outbox,
    ) {
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        let peer = msg
            .raw_attribute(XorPeerAddress::TYPE_)
            .and_then(|raw| peer_from_raw(&raw, msg.transaction_id()));
        let data = msg.raw_attribute(Data::TYPE_);
        let (Some(peer), Some(data)) = (peer, data) else {
            self.metrics.dropped += 1;
            return;
        };
        if data.value.len() > MAX_PAYLOAD {
            self.metrics.dropped += 1;
            return;
        }
        if self.config.policy.check(peer).is_err() {
            self.metrics.denied_peers += 1;
            return;
        }
        if !a.permits(peer.ip(), now) || !a.spend(now, data.value.len()) {
            self.metrics.dropped += 1;
            return;
        }
        let relay = a.relay;
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += data.value.len() as u64;
        out.push_parts(Destination::Peer { relay, peer }, &[], &data.value, 0);
    }
}
