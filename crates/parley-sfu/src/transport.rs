//! One peer connection: a str0m [`Rtc`] plus the bookkeeping to drive it.
//!
//! The SFU never lets a panic inside one `Rtc` escape: every call into str0m
//! goes through [`Transport::guard`], and a transport that panicked is marked
//! failed so only its participant is removed, not the room.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::net::{TcpType, Transmit};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::ids::Pc;

/// Connection state as the rest of the system sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransportState {
    /// Created; no ICE/DTLS yet.
    New,
    /// ICE and DTLS are up, media can flow.
    Connected,
    /// ICE lost the peer; it may come back.
    Disconnected,
    /// The transport is dead (DTLS failure, remote close, or internal error).
    Failed,
}

/// Settings every new `Rtc` is built with.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Host candidates advertised in every SDP, all served by the one media socket.
    pub host_candidates: Vec<SocketAddr>,
    /// Passive ICE-TCP host candidates (RFC 6544), served by the ICE-TCP
    /// listener; empty when it is off.
    pub tcp_candidates: Vec<SocketAddr>,
}

pub(crate) struct Transport {
    pub(crate) rtc: Rtc,
    pub(crate) pc: Pc,
    /// When the `Rtc` next wants [`Input::Timeout`]; valid after every drain.
    pub(crate) next_timeout: Instant,
    pub(crate) state: TransportState,
    /// Set when new input was handed to the `Rtc` and its output has not been drained.
    pub(crate) dirty: bool,
}

/// The bandwidth a subscribe connection is assumed to have until feedback
/// says otherwise: enough for a middle simulcast layer and audio, so video
/// starts at once and goes up as probing finds room.
pub(crate) const INITIAL_ESTIMATE_BPS: u64 = 1_000_000;

/// A timeout this close counts as due now: str0m's pacer asks for one
/// microsecond after its last tick between packets, even unpaced ones.
pub const DUE_NOW: Duration = Duration::from_micros(20);

/// Timeouts due at once that one drain answers itself (a bound, so a
/// connection that always wants one more cannot hold the SFU).
pub const MAX_DUE_NOW: u32 = 256;

/// How far in the future to park a transport that reports no timeout.
const IDLE: Duration = Duration::from_secs(3600);

impl Transport {
    pub(crate) fn new(pc: Pc, now: Instant, config: &TransportConfig) -> Self {
        let mut rtc_config = rtc_config();
        if pc == Pc::Subscribe {
            // What the SFU sends each subscriber is chosen from this estimate.
            rtc_config = rtc_config.enable_bwe(Some(Bitrate::bps(INITIAL_ESTIMATE_BPS)));
        }
        let mut rtc = rtc_config.build(now);
        for addr in &config.host_candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, "host candidate refused: {e}"),
            }
        }
        for addr in &config.tcp_candidates {
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build();
            match candidate {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, "ICE-TCP candidate refused: {e}"),
            }
        }
        Transport {
            rtc,
            pc,
            next_timeout: now,
            state: TransportState::New,
            dirty: true,
        }
    }

    /// Runs `f` on the `Rtc`, turning a panic inside str0m into a failed transport.
    pub(crate) fn guard<T>(&mut self, f: impl FnOnce(&mut Rtc) -> T) -> Option<T> {
        if self.state == TransportState::Failed {
            return None;
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.rtc))) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::error!(pc = ?self.pc, "peer connection panicked; closing it");
                self.fail();
                None
            }
        }
    }

    pub(crate) fn fail(&mut self) {
        self.state = TransportState::Failed;
        self.rtc.disconnect();
    }

    pub(crate) fn accepts(&self, input: &Input) -> bool {
        self.state != TransportState::Failed && self.rtc.accepts(input)
    }

    pub(crate) fn handle_input(&mut self, input: Input) {
        self.dirty = true;
        if let Some(Err(e)) = self.guard(|rtc| rtc.handle_input(input)) {
            tracing::debug!(pc = ?self.pc, "input refused: {e}");
            self.fail();
        }
    }

    /// Polls the `Rtc` until it reports a timeout, queueing transmits and
    /// collecting events. Returns the state change, if any happened.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        transmits: &mut VecDeque<Transmit>,
        events: &mut Vec<Event>,
    ) -> Option<TransportState> {
        self.dirty = false;
        let before = self.state;
        // str0m asks for a timeout at `now` after each packet its pacer
        // releases; answering at once sends a whole frame in one drain
        // instead of one packet per trip through the caller's timer.
        let mut due_now = MAX_DUE_NOW;
        // The time last handed to str0m: its pacer asks for the next tick
        // 1 µs after the last, so the window moves with it (from a fixed
        // `now`, a keyframe's 21st packet would wait for a timer again).
        let mut clock = now;
        loop {
            if self.state != TransportState::Failed && !self.rtc.is_alive() {
                // str0m closed it itself (e.g. an SDP without a DTLS fingerprint).
                self.fail();
            }
            if self.state == TransportState::Failed {
                self.next_timeout = now + IDLE;
                break;
            }
            match self.guard(|rtc| rtc.poll_output()) {
                Some(Ok(Output::Timeout(t))) => {
                    if t <= clock + DUE_NOW && due_now > 0 {
                        due_now -= 1;
                        let at = t.max(clock);
                        clock = at;
                        if let Some(Err(e)) = self.guard(|rtc| rtc.handle_input(Input::Timeout(at)))
                        {
                            tracing::debug!(pc = ?self.pc, "timeout refused: {e}");
                            self.fail();
                        }
                        continue;
                    }
                    self.next_timeout = t.min(now + IDLE);
                    break;
                }
                Some(Ok(Output::Transmit(t))) => transmits.push_back(t),
                Some(Ok(Output::Event(e))) => {
                    match &e {
                        Event::Connected => self.state = TransportState::Connected,
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                            if self.state == TransportState::Connected =>
                        {
                            self.state = TransportState::Disconnected;
                        }
                        Event::IceConnectionStateChange(
                            IceConnectionState::Connected | IceConnectionState::Completed,
                        ) if self.state == TransportState::Disconnected => {
                            self.state = TransportState::Connected;
                        }
                        Event::Closed => self.fail(),
                        _ => {}
                    }
                    events.push(e);
                }
                Some(Err(e)) => {
                    tracing::debug!(pc = ?self.pc, "peer connection failed: {e}");
                    self.fail();
                }
                None => {}
            }
        }
        (self.state != before).then_some(self.state)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state == TransportState::Connected
    }
}

/// The codecs and options every SFU-side `Rtc` uses.
///
/// RTP mode: publishers' packets come out as they arrive and go to
/// subscribers as they are, with sequence numbers, timestamps and VP8
/// picture ids rewritten (see `forward.rs`), instead of being assembled
/// into frames and cut into packets again for every subscriber.
///
/// ICE-lite: the SFU has public (or announced) host candidates and only answers
/// connectivity checks, so browsers do the checking and nominating.
/// Codecs: Opus for audio; VP8, VP9 and H264 for video. AV1 and H265 stay off
/// until subscribers can be matched to what each publisher sends.
fn rtc_config() -> RtcConfig {
    RtcConfig::new()
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_h264(true)
}
