//! The connectivity check's I/O: runs a [`Probe`] against one STUN or TURN
//! URL over UDP, TCP or TLS, as a browser would reach it, and reports each
//! step. A TURN check relays a test packet to a peer and waits for it there.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_ice::probe::{Next, Probe, Reason, Step};
use parley_settings::url::{IceUrl, Scheme};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::arrivals::{Arrivals, Waiting};

/// How long each request may wait for its response.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the relayed test packet may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(2);

/// One URL to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured.
    pub url: String,
    /// Where it comes from: `builtin`, `stun`, `turn` or `provider`.
    pub source: &'static str,
    /// Username and password clients get (TURN).
    pub credentials: Option<(String, String)>,
    /// The TURN REST secret the credentials were minted with, if any: on an
    /// authentication failure a long-lived credential is tried, to tell
    /// clock skew from a wrong secret.
    pub secret: Option<String>,
}

/// One step of a check, for the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepReport {
    /// `connect`, `binding`, `allocate`, `permission`, `relay` or `release`.
    pub name: &'static str,
    /// Whether it worked.
    pub ok: bool,
    /// Why not, for programs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// What happened, for people.
    pub detail: String,
}

impl From<&Step> for StepReport {
    fn from(s: &Step) -> Self {
        StepReport {
            name: s.name,
            ok: s.ok,
            reason: s.reason.map(Reason::as_str),
            detail: s.detail.clone(),
        }
    }
}

/// The outcome for one URL.
#[derive(Debug, Clone, Serialize)]
pub struct UrlReport {
    /// The URL.
    pub url: String,
    /// Where it comes from.
    pub source: &'static str,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// Whether every step worked.
    pub ok: bool,
    /// The first failure's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// One line for people.
    pub summary: String,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// How long the check took.
    pub millis: u64,
}

/// Where a TURN check relays its test packet.
#[derive(Clone)]
pub enum Peer {
    /// Parley's own media port; the media loop reports arrivals.
    Parley {
        /// The media address (as advertised to participants).
        address: SocketAddr,
        /// Where arrivals are reported.
        arrivals: Arrivals,
    },
    /// A local UDP socket (the command line's stand-alone check).
    Socket {
        /// The socket.
        socket: Arc<UdpSocket>,
        /// Its address as the TURN server should see it.
        address: SocketAddr,
    },
}

enum PeerWait {
    Arrivals(Waiting),
    Socket(Arc<UdpSocket>, Vec<u8>),
}

impl Peer {
    fn address(&self) -> SocketAddr {
        match self {
            Peer::Parley { address, .. } | Peer::Socket { address, .. } => *address,
        }
    }

    fn expect(&self) -> (Vec<u8>, PeerWait) {
        match self {
            Peer::Parley { arrivals, .. } => {
                let (payload, waiting) = arrivals.expect();
                (payload, PeerWait::Arrivals(waiting))
            }
            Peer::Socket { socket, .. } => {
                let token: u128 = rand::random();
                let payload = format!("{}{token:032x}", "PARLEY-ICE-CHECK:").into_bytes();
                (payload.clone(), PeerWait::Socket(socket.clone(), payload))
            }
        }
    }
}

impl PeerWait {
    async fn arrived(self) -> bool {
        match self {
            PeerWait::Arrivals(w) => w.arrival(RELAY_TIMEOUT).await.is_some(),
            PeerWait::Socket(socket, payload) => {
                let mut buf = vec![0u8; 2048];
                let wait = async {
                    loop {
                        match socket.recv_from(&mut buf).await {
                            Ok((n, _)) if buf[..n] == payload[..] => return true,
                            Ok(_) => {}
                            Err(_) => return false,
                        }
                    }
                };
                tokio::time::timeout(RELAY_TIMEOUT, wait)
                    .await
                    .unwrap_or(false)
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    fn of(url: &IceUrl) -> Transport {
        match url.scheme {
            Scheme::Stuns | Scheme::Turns => Transport::Tls,
            Scheme::Stun => Transport::Udp,
            Scheme::Turn if url.transport.as_deref() == Some("tcp") => Transport::Tcp,
            Scheme::Turn => Transport::Udp,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Conn {
    Udp(UdpSocket, SocketAddr),
    Stream(Box<dyn Stream>, Vec<u8>),
}

fn failed(name: &'static str, reason: Reason, detail: String) -> StepReport {
    StepReport {
        name,
        ok: false,
        reason: Some(reason.as_str()),
        detail,
    }
}

impl Conn {
    async fn open(
        transport: Transport,
        server: SocketAddr,
        host: &str,
    ) -> Result<Conn, StepReport> {
        match transport {
            Transport::Udp => {
                // Unconnected, as ICE agents are: ICMP errors are not
                // reported, so a closed port shows as a timeout.
                let bind: SocketAddr = if server.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let socket = UdpSocket::bind(bind).await.map_err(|e| {
                    failed(
                        "connect",
                        Reason::Unreachable,
                        format!("cannot open a UDP socket: {e}"),
                    )
                })?;
                Ok(Conn::Udp(socket, server))
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(server)).await
                {
                    Err(_) => {
                        return Err(failed(
                            "connect",
                            Reason::Timeout,
                            format!(
                                "no TCP connection to {server} within {} s: a firewall drops the packets, or the host is down",
                                STEP_TIMEOUT.as_secs()
                            ),
                        ));
                    }
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return Err(failed(
                            "connect",
                            Reason::Refused,
                            format!(
                                "connection to {server} refused: nothing listens on that TCP port"
                            ),
                        ));
                    }
                    Ok(Err(e)) => {
                        return Err(failed(
                            "connect",
                            Reason::Unreachable,
                            format!("cannot connect to {server}: {e}"),
                        ));
                    }
                    Ok(Ok(tcp)) => tcp,
                };
                let _ = tcp.set_nodelay(true);
                if transport == Transport::Tcp {
                    return Ok(Conn::Stream(Box::new(tcp), Vec::new()));
                }
                let tls = tls_connect(tcp, host).await?;
                Ok(Conn::Stream(Box::new(tls), Vec::new()))
            }
        }
    }

    /// Sends `bytes`; then feeds what arrives to the probe until it has its
    /// response. `None` on timeout (UDP requests are retransmitted meanwhile).
    async fn transact(&mut self, bytes: &[u8], probe: &mut Probe) -> Option<Next> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        match self {
            Conn::Udp(socket, server) => {
                let mut buf = vec![0u8; 2048];
                let mut rto = Duration::from_millis(500);
                loop {
                    let _ = socket.send_to(bytes, *server).await;
                    let resend = (tokio::time::Instant::now() + rto).min(deadline);
                    rto *= 2;
                    loop {
                        match tokio::time::timeout_at(resend, socket.recv_from(&mut buf)).await {
                            Err(_) => break,
                            Ok(Err(_)) => {}
                            Ok(Ok((n, from))) => {
                                if from == *server
                                    && let Some(next) = probe.handle(&buf[..n])
                                {
                                    return Some(next);
                                }
                            }
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                }
            }
            Conn::Stream(stream, pending) => {
                if stream.write_all(bytes).await.is_err() {
                    return None;
                }
                let mut buf = vec![0u8; 4096];
                loop {
                    while let Some(frame) = take_frame(pending) {
                        if let Some(next) = probe.handle(&frame) {
                            return Some(next);
                        }
                    }
                    match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                        Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return None,
                        Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        match self {
            Conn::Udp(socket, server) => {
                let _ = socket.send_to(bytes, *server).await;
            }
            Conn::Stream(stream, _) => {
                let _ = stream.write_all(bytes).await;
            }
        }
    }
}

/// One STUN message or ChannelData frame off a stream (RFC 8656 §11.5:
/// ChannelData is padded to 4 bytes on streams). ChannelData is dropped.
fn take_frame(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if pending.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([pending[2], pending[3]]));
        let (total, stun) = if pending[0] & 0xC0 == 0 {
            (20 + len, true)
        } else {
            (4 + len.div_ceil(4) * 4, false)
        };
        if pending.len() < total {
            return None;
        }
        let frame: Vec<u8> = pending.drain(..total).collect();
        if stun {
            return Some(frame);
        }
    }
}

async fn tls_connect(
    tcp: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, StepReport> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let config = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| failed("connect", Reason::Tls, format!("cannot set up TLS: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        failed(
            "connect",
            Reason::Tls,
            format!("{host:?} is not a valid TLS server name"),
        )
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(STEP_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err(failed(
            "connect",
            Reason::Timeout,
            format!("no TLS handshake within {} s", STEP_TIMEOUT.as_secs()),
        )),
        Ok(Err(e)) => Err(failed(
            "connect",
            Reason::Tls,
            format!("TLS handshake failed: {e} (browsers refuse this server too)"),
        )),
        Ok(Ok(tls)) => Ok(tls),
    }
}

/// Resolves a URL's host, IPv4 first (as most TURN deployments are).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, StepReport> {
    let found: Vec<SocketAddr> =
        tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| {
                failed(
                    "connect",
                    Reason::Unreachable,
                    format!("resolving {host} took too long"),
                )
            })?
            .map_err(|e| {
                failed(
                    "connect",
                    Reason::Unreachable,
                    format!("cannot resolve {host}: {e}"),
                )
            })?
            .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| {
            failed(
                "connect",
                Reason::Unreachable,
                format!("{host} has no address"),
            )
        })
}

/// Checks one URL.
pub async fn check(target: &Target, peer: &Peer) -> UrlReport {
    let first = run(target, target.credentials.clone(), peer).await;
    if first.reason != Some(Reason::Auth.as_str()) {
        return first;
    }
    // A REST credential was refused: is the secret wrong, or the clock?
    let Some(secret) = &target.secret else {
        return first;
    };
    let far = crate::clock::unix_now() + 30 * 86_400;
    let (user, password) =
        parley_stun::mint_rest_credential(secret.as_bytes(), "parley-check", far);
    let again = run(target, Some((user, password)), peer).await;
    if again.steps.iter().any(|s| s.name == "allocate" && s.ok) {
        let mut report = first;
        report.reason = Some(Reason::ClockSkew.as_str());
        report.summary = "REST credentials are refused, but one valid for 30 days works: the TURN server's clock is ahead of this server's by more than the credential lifetime; synchronise both clocks (NTP)".into();
        for s in &mut report.steps {
            if s.reason == Some(Reason::Auth.as_str()) {
                s.reason = Some(Reason::ClockSkew.as_str());
            }
        }
        report
    } else {
        first
    }
}

async fn run(target: &Target, credentials: Option<(String, String)>, peer: &Peer) -> UrlReport {
    let started = Instant::now();
    let parsed = IceUrl::parse(&target.url);
    let transport = parsed.as_ref().map(Transport::of).unwrap_or(Transport::Udp);
    let finish = |steps: Vec<StepReport>| {
        let failure = steps.iter().find(|s| !s.ok);
        UrlReport {
            url: target.url.clone(),
            source: target.source,
            transport: transport.name(),
            ok: !steps.is_empty() && failure.is_none(),
            reason: failure.and_then(|s| s.reason),
            summary: match failure {
                Some(s) => format!("{} failed: {}", s.name, s.detail),
                None => steps
                    .iter()
                    .filter(|s| matches!(s.name, "binding" | "allocate" | "relay"))
                    .map(|s| s.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            steps,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    };
    let url = match parsed {
        Ok(u) => u,
        Err(e) => return finish(vec![failed("connect", Reason::Protocol, e)]),
    };
    let server = match resolve(&url.host, url.port).await {
        Ok(a) => a,
        Err(step) => return finish(vec![step]),
    };
    let mut conn = match Conn::open(transport, server, &url.host).await {
        Ok(c) => c,
        Err(step) => return finish(vec![step]),
    };
    let (mut probe, mut wait) = if url.scheme.is_turn() {
        let (user, password) = credentials.unwrap_or_default();
        let (payload, wait) = peer.expect();
        (
            Probe::turn(&user, &password, peer.address(), payload),
            Some(wait),
        )
    } else {
        (Probe::stun(), None)
    };
    let mut next = probe.start();
    loop {
        next = match next {
            Next::Done => break,
            Next::Request(bytes) => match conn.transact(&bytes, &mut probe).await {
                Some(n) => n,
                None => probe.timed_out(&format!("{} s", STEP_TIMEOUT.as_secs())),
            },
            Next::Indication(bytes) => {
                conn.send(&bytes).await;
                let arrived = match wait.take() {
                    Some(w) => w.arrived().await,
                    None => false,
                };
                probe.delivered(arrived)
            }
        };
    }
    let mut steps = vec![StepReport {
        name: "connect",
        ok: true,
        reason: None,
        detail: format!("{} {server}", transport.name()),
    }];
    steps.extend(probe.steps().iter().map(StepReport::from));
    finish(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_are_cut_and_channel_data_skipped() {
        let mut pending = vec![0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0];
        pending.extend_from_slice(&[0x01, 0x01, 0x00, 0x04]);
        pending.extend_from_slice(&[0u8; 16]);
        pending.extend_from_slice(&[9, 9, 9, 9]);
        // The start of the next message waits for the rest of it.
        pending.extend_from_slice(&[0x01, 0x01, 0x00]);
        let frame = take_frame(&mut pending).unwrap();
        assert_eq!(frame.len(), 24);
        assert_eq!(frame[0], 0x01);
        assert!(take_frame(&mut pending).is_none());
        assert_eq!(pending.len(), 3);
    }

    #[tokio::test]
    async fn a_udp_port_where_nothing_listens_times_out() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let target = Target {
            url: format!("stun:127.0.0.1:{port}"),
            source: "stun",
            credentials: None,
            secret: None,
        };
        let peer = Peer::Parley {
            address: "127.0.0.1:9".parse().unwrap(),
            arrivals: Arrivals::default(),
        };
        let report = check(&target, &peer).await;
        assert!(!report.ok);
        assert_eq!(report.reason, Some("timeout"), "{report:?}");
        assert_eq!(report.transport, "udp");
    }

    #[tokio::test]
    async fn a_closed_tcp_port_is_refused() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let target = Target {
            url: format!("turn:127.0.0.1:{port}?transport=tcp"),
            source: "turn",
            credentials: Some(("u".into(), "p".into())),
            secret: None,
        };
        let peer = Peer::Parley {
            address: "127.0.0.1:9".parse().unwrap(),
            arrivals: Arrivals::default(),
        };
        let report = check(&target, &peer).await;
        assert_eq!(report.reason, Some("refused"), "{report:?}");
        assert!(
            report.summary.contains("nothing listens"),
            "{}",
            report.summary
        );
    }
}
