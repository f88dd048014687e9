//! The hub's side of the media plane: what signaling asks of the SFU
//! (offers, answers, candidates, publish gates) and the SFU's events turned
//! into messages for the participants they concern.

use std::net::SocketAddr;
use std::time::Instant;

use parley_protocol::{ErrorCode, PcName, ProtocolError, Role, ServerMessage};
use parley_sfu::{
    ParticipantId, Pc, Protocol, PublishGate, SfuError, SfuEvent, Transmit, TransportState,
};

use super::{Hub, not_for};

impl Hub {
    /// `offer`, `answer` and `candidate` from joined participant `id`.
    pub(crate) fn handle_media_message(
        &mut self,
        now: Instant,
        conn: super::ConnId,
        id: ParticipantId,
        message: parley_protocol::ClientMessage,
    ) -> Result<(), ProtocolError> {
        use parley_protocol::ClientMessage;
        match message {
            ClientMessage::Offer { pc, sdp } => {
                if pc != PcName::Publish {
                    return Err(ProtocolError::new(
                        ErrorCode::BadField,
                        "offer: pc must be \"publish\"; the server makes the subscribe offers",
                    ));
                }
                let answer = self
                    .sfu
                    .handle_publish_offer(now, id, &sdp)
                    .map_err(sfu_error)?;
                self.send(
                    conn,
                    ServerMessage::Answer {
                        pc: PcName::Publish,
                        sdp: answer,
                    },
                );
                Ok(())
            }
            ClientMessage::Answer { pc, offer_id, sdp } => {
                if pc != PcName::Subscribe {
                    return Err(ProtocolError::new(
                        ErrorCode::BadField,
                        "answer: pc must be \"subscribe\"; the client makes the publish offers",
                    ));
                }
                self.sfu
                    .handle_subscribe_answer(now, id, offer_id, &sdp)
                    .map_err(sfu_error)
            }
            ClientMessage::Candidate { pc, candidate } => self
                .sfu
                .add_remote_candidate(now, id, sfu_pc(pc), &candidate)
                .map_err(sfu_error),
            other => Err(not_for(&other, "media")),
        }
    }

    /// Which shard a datagram belongs to (see [`Shards::route`]).
    pub fn route_datagram(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<usize> {
        self.sfu.route(now, proto, source, destination, data)
    }

    /// A media worker's shard did not take a datagram from `source`: route
    /// the next one afresh.
    pub fn forget_route(&mut self, proto: Protocol, source: SocketAddr) {
        self.sfu.forget_route(proto, source);
    }

    /// Turns what the media workers' shards have to say into messages.
    pub fn handle_media_events(&mut self) {
        self.pump_sfu();
    }

    /// Changes the media addresses offered to connections made from now on
    /// (existing connections keep theirs): UDP host candidates and passive
    /// ICE-TCP candidates (empty when ICE-TCP is off).
    pub fn set_host_candidates(
        &mut self,
        host_candidates: Vec<SocketAddr>,
        tcp_candidates: Vec<SocketAddr>,
    ) {
        self.config.transport.host_candidates = host_candidates;
        self.config.transport.tcp_candidates = tcp_candidates;
        self.sfu.set_transport_config(self.config.transport.clone());
    }

    /// A datagram on the media socket, or an ICE-TCP frame (`Protocol::Tcp`).
    /// Returns whether a participant's connection took it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let taken = self
            .sfu
            .handle_receive(now, proto, source, destination, data);
        self.pump_sfu();
        taken
    }

    /// Moves the datagrams to send on the media socket (of the shards no
    /// media worker drives) into `out`.
    pub fn take_transmits(&mut self, out: &mut Vec<Transmit>) {
        self.sfu.take_transmits(out);
    }

    /// How many datagrams wait for [`Hub::take_transmits`].
    pub fn transmits_waiting(&self) -> usize {
        self.sfu.transmits_waiting()
    }

    /// Opens or closes what the SFU forwards of a member's media, from its
    /// mute state, role and stopped tracks.
    pub(crate) fn update_gate(&mut self, now: Instant, id: ParticipantId) {
        let role = self.role_of(id);
        let Some(m) = self.members.get(&id) else {
            return;
        };
        let presenter_mode = self.rooms.get(&m.room).is_some_and(|r| r.presenter_mode);
        let gate = PublishGate {
            audio: !m.mic_forced,
            video: !presenter_mode || role >= Role::Presenter,
            blocked: m.stopped_tracks.clone(),
        };
        self.sfu.set_publish_gate(now, id, gate);
    }

    /// Turns SFU events into messages.
    pub(crate) fn pump_sfu(&mut self) {
        let mut events = Vec::new();
        self.sfu.take_events(&mut events);
        for event in events {
            match event {
                SfuEvent::SubscribeOffer {
                    participant,
                    offer_id,
                    renew,
                    sdp,
                } => {
                    if let Some(conn) = self.conn_of(participant) {
                        self.send(
                            conn,
                            ServerMessage::Offer {
                                pc: PcName::Subscribe,
                                offer_id,
                                renew,
                                sdp,
                            },
                        );
                    }
                }
                SfuEvent::ActiveSpeaker { room, participant } => {
                    let name = self
                        .rooms
                        .iter()
                        .find(|(_, r)| r.id == room)
                        .map(|(name, _)| name.clone());
                    if let Some(name) = name {
                        self.broadcast(
                            &name,
                            None,
                            ServerMessage::ActiveSpeaker {
                                id: participant.to_string(),
                            },
                        );
                    }
                }
                SfuEvent::PublishCodec {
                    participant,
                    mid,
                    codec,
                } => {
                    if let Some(conn) = self.conn_of(participant) {
                        self.send(
                            conn,
                            ServerMessage::PublishCodec {
                                mid,
                                codec: codec.to_owned(),
                            },
                        );
                    }
                }
                SfuEvent::NoCommonCodec {
                    participant,
                    publisher,
                    codec,
                    accepted,
                } => {
                    let who = self
                        .members
                        .get(&publisher)
                        .map_or_else(|| publisher.to_string(), |m| m.name.as_str().to_owned());
                    if let Some(conn) = self.conn_of(participant) {
                        let accepted = if accepted.is_empty() {
                            "none".to_owned()
                        } else {
                            accepted.join(", ")
                        };
                        self.reply_error(
                            conn,
                            ProtocolError::new(
                                ErrorCode::NoCommonCodec,
                                format!(
                                    "{who}'s video ({publisher}) is sent as {codec}, and this client's answer accepted only {accepted}: only their audio reaches you"
                                ),
                            ),
                        );
                    }
                }
                SfuEvent::TransportState {
                    participant,
                    pc,
                    state,
                } => {
                    tracing::debug!(%participant, ?pc, ?state, "media connection");
                    if state == TransportState::Failed
                        && let Some(conn) = self.conn_of(participant)
                    {
                        let which = match pc {
                            Pc::Publish => "publish",
                            Pc::Subscribe => "subscribe",
                        };
                        self.reply_error(
                            conn,
                            ProtocolError::new(
                                ErrorCode::MediaFailed,
                                format!(
                                    "the {which} media connection failed; leave and join again"
                                ),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The SFU's name for the peer connection a message is about.
fn sfu_pc(pc: PcName) -> parley_sfu::Pc {
    match pc {
        PcName::Publish => parley_sfu::Pc::Publish,
        PcName::Subscribe => parley_sfu::Pc::Subscribe,
    }
}

fn sfu_error(e: SfuError) -> ProtocolError {
    let code = match &e {
        SfuError::BadSdp { .. } => ErrorCode::SdpRejected,
        SfuError::NoPendingOffer => ErrorCode::NoPendingOffer,
        SfuError::StaleAnswer { .. } => ErrorCode::StaleAnswer,
        SfuError::BadCandidate(_) => ErrorCode::BadCandidate,
        SfuError::UnknownParticipant => ErrorCode::NotJoined,
    };
    ProtocolError::new(code, e.to_string())
}
