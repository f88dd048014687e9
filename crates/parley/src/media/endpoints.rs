//! The SFU's media sockets as the administrator's connection settings say:
//! one current socket that new participants are given, and the sockets of
//! earlier settings kept open until the participants who were told about
//! them have left, so a port change never cuts a call. Next to them, the
//! ICE-TCP listener ([`IceTcp`]) for clients whose network blocks UDP: on
//! `tcp_port` in fixed mode, on the UDP port's number (or another free port
//! of the range) in dynamic mode.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parley_settings::ConnectionSettings;
use parley_sfu::ParticipantId;

use super::bind::{BindError, bind_socket, bind_tcp};
use super::candidates::{arrival_candidate, host_candidates, show_addrs};
use super::ice_tcp::IceTcp;
use super::senders::Senders;
use super::udp::{Datagram, MediaSocket};

/// A received datagram, with the candidate it counts as arriving on.
pub struct Arrival<'a> {
    /// The datagram.
    pub datagram: Datagram<'a>,
    /// The advertised address it was sent to.
    pub destination: SocketAddr,
}

/// The media addresses, for whoever needs to know (TURN's peer policy, the
/// connectivity check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaAddresses {
    /// What new participants are told.
    pub current: Vec<SocketAddr>,
    /// Every address media is received on, retiring sockets included.
    pub all: Vec<SocketAddr>,
}

struct Endpoint {
    socket: MediaSocket,
    candidates: Vec<SocketAddr>,
    /// For a retiring socket: the participants who may still use it.
    users: Option<HashSet<ParticipantId>>,
}

/// See the module documentation.
pub struct MediaEndpoints {
    bind_ip: IpAddr,
    interfaces: Vec<IpAddr>,
    settings: ConnectionSettings,
    /// `[0]` is current; the rest retire.
    endpoints: Vec<Endpoint>,
    /// The ICE-TCP listener and its connections.
    tcp: IceTcp,
    /// What new participants are told of ICE-TCP.
    tcp_candidates: Vec<SocketAddr>,
    /// One-port mode: the HTTPS listener's address, whose ICE-TCP
    /// connections are handed over, and what is advertised for it.
    one_port: Option<(SocketAddr, Vec<SocketAddr>)>,
}

impl MediaEndpoints {
    /// Binds the media socket on `bind_ip` as `settings` say.
    pub fn bind(
        bind_ip: IpAddr,
        settings: &ConnectionSettings,
        interfaces: Vec<IpAddr>,
    ) -> Result<MediaEndpoints, BindError> {
        let socket = bind_socket(bind_ip, settings)?;
        let candidates = host_candidates(socket.local_addr(), &settings.announce, &interfaces);
        if candidates.is_empty() {
            return Err(BindError {
                field: "announce",
                message: format!(
                    "no address to advertise for media on {}; pass --announce with the server's IP",
                    socket.local_addr()
                ),
            });
        }
        // ICE-TCP is a fallback: a TCP port held by another program leaves
        // it off (loudly) rather than keeping the server from starting.
        let listener = match bind_tcp(bind_ip, settings, socket.local_addr().port()) {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::error!(
                    "ICE-TCP is off: {e}; browsers whose network blocks UDP will need TURN"
                );
                None
            }
        };
        let mut media = MediaEndpoints {
            bind_ip,
            interfaces,
            settings: settings.clone(),
            endpoints: vec![Endpoint {
                socket,
                candidates,
                users: None,
            }],
            tcp: IceTcp::default(),
            tcp_candidates: Vec::new(),
            one_port: None,
        };
        if let Some(listener) = listener {
            media.listen_tcp(listener)?;
        }
        Ok(media)
    }

    /// Starts ICE-TCP on `listener` and works out its candidates.
    fn listen_tcp(&mut self, listener: std::net::TcpListener) -> Result<(), BindError> {
        let failed = |e: io::Error| BindError {
            field: "tcp_port",
            message: format!("cannot listen for ICE-TCP: {e}"),
        };
        let local = listener.local_addr().map_err(failed)?;
        self.set_tcp_candidates(host_candidates(
            local,
            &self.settings.announce,
            &self.interfaces,
        ));
        self.tcp.listen(listener).map_err(failed)?;
        Ok(())
    }

    fn set_tcp_candidates(&mut self, candidates: Vec<SocketAddr>) {
        self.tcp.set_candidates(candidates.clone());
        self.tcp_candidates = candidates;
    }

    /// The passive ICE-TCP candidates new participants are given: the
    /// ICE-TCP port's, and in one-port mode the HTTPS port's.
    pub fn tcp_candidates(&self) -> Vec<SocketAddr> {
        let mut all = self.tcp_candidates.clone();
        if let Some((_, one_port)) = &self.one_port {
            all.extend(one_port.iter().copied());
        }
        all
    }

    /// One-port mode: ICE-TCP connections accepted by the HTTPS listener
    /// bound at `bound` are sent to the returned sender; its addresses are
    /// advertised as ICE-TCP candidates too.
    pub fn enable_one_port(
        &mut self,
        bound: SocketAddr,
    ) -> tokio::sync::mpsc::Sender<tokio::net::TcpStream> {
        let candidates = host_candidates(bound, &self.settings.announce, &self.interfaces);
        self.one_port = Some((bound, candidates.clone()));
        self.tcp.adopt(candidates)
    }

    /// The bound address of the ICE-TCP listener.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The ICE-TCP listener and connections.
    pub fn tcp(&mut self) -> &mut IceTcp {
        &mut self.tcp
    }

    /// The addresses new participants are given.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.endpoints[0].candidates
    }

    /// The bound address of the current socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoints[0].socket.local_addr()
    }

    /// Current and retiring addresses.
    pub fn addresses(&self) -> MediaAddresses {
        let mut all = Vec::new();
        for e in &self.endpoints {
            all.extend(e.candidates.iter().copied());
            let local = e.socket.local_addr();
            if !local.ip().is_unspecified() {
                all.push(local);
            }
        }
        all.sort();
        all.dedup();
        MediaAddresses {
            current: self.candidates().to_vec(),
            all,
        }
    }

    /// Applies new connection settings. A new port is bound first; if that
    /// fails nothing changes. The old socket keeps serving `present` (the
    /// participants in rooms now) until they have all left.
    pub fn reconfigure(
        &mut self,
        settings: &ConnectionSettings,
        present: HashSet<ParticipantId>,
    ) -> Result<(), BindError> {
        // A fixed TCP port is known before the UDP one: bound first, so that
        // a taken port changes nothing.
        let tcp_fixed = match settings.mode {
            parley_settings::PortMode::Fixed
                if self.tcp_local_addr().map(|a| a.port()) != Some(settings.tcp_port) =>
            {
                Some(bind_tcp(self.bind_ip, settings, 0)?)
            }
            _ => None,
        };
        let fits = |port: u16| match settings.mode {
            parley_settings::PortMode::Fixed => port == settings.udp_port,
            parley_settings::PortMode::Dynamic => {
                let (min, max) = settings.udp_range();
                (min == 0 || port >= min) && (max == 0 || port <= max)
            }
        };
        if fits(self.local_addr().port()) {
            self.endpoints[0].candidates = self.advertised(self.local_addr(), settings)?;
        } else if let Some(i) =
            (1..self.endpoints.len()).find(|&i| fits(self.endpoints[i].socket.local_addr().port()))
        {
            // Back to a port still open for earlier calls: use it again.
            let candidates = self.advertised(self.endpoints[i].socket.local_addr(), settings)?;
            self.endpoints.swap(0, i);
            self.endpoints[0].candidates = candidates;
            self.endpoints[0].users = None;
            self.endpoints[i].users = Some(present);
            tracing::info!(
                "media moved back to udp {} (advertised as {})",
                self.local_addr(),
                show_addrs(self.candidates())
            );
        } else {
            let socket = bind_socket(self.bind_ip, settings)?;
            let candidates = self.advertised(socket.local_addr(), settings)?;
            tracing::info!(
                "media moved to udp {} (advertised as {}); the old port stays open for the calls in progress",
                socket.local_addr(),
                show_addrs(&candidates)
            );
            let mut old = std::mem::replace(
                &mut self.endpoints[0],
                Endpoint {
                    socket,
                    candidates,
                    users: None,
                },
            );
            old.users = Some(present);
            self.endpoints.push(old);
        }
        self.settings = settings.clone();
        self.retire(&HashSet::new(), false);
        let tcp_port = self.tcp_local_addr().map(|a| a.port());
        let listener = match settings.mode {
            parley_settings::PortMode::Fixed => tcp_fixed,
            parley_settings::PortMode::Dynamic if !tcp_port.is_some_and(fits) => {
                // The UDP port moved already; ICE-TCP follows as best it can.
                match bind_tcp(self.bind_ip, settings, self.local_addr().port()) {
                    Ok(listener) => Some(listener),
                    Err(e) => {
                        tracing::warn!("ICE-TCP stays on its old port: {e}");
                        None
                    }
                }
            }
            parley_settings::PortMode::Dynamic => None,
        };
        match listener {
            Some(listener) => self.listen_tcp(listener)?,
            None => {
                if let Some(local) = self.tcp_local_addr() {
                    self.set_tcp_candidates(host_candidates(
                        local,
                        &settings.announce,
                        &self.interfaces,
                    ));
                }
            }
        }
        if let Some((bound, candidates)) = &mut self.one_port {
            // Announced addresses apply to the HTTPS port too.
            *candidates = host_candidates(*bound, &settings.announce, &self.interfaces);
            self.tcp.set_one_port_candidates(candidates.clone());
        }
        Ok(())
    }

    /// What to advertise for a socket bound at `local`.
    fn advertised(
        &self,
        local: SocketAddr,
        settings: &ConnectionSettings,
    ) -> Result<Vec<SocketAddr>, BindError> {
        let candidates = host_candidates(local, &settings.announce, &self.interfaces);
        if candidates.is_empty() {
            return Err(BindError {
                field: "announce",
                message: "no address to advertise for media; give an announced address".into(),
            });
        }
        Ok(candidates)
    }

    /// Closes retiring sockets nobody in `present` can still be using.
    /// Returns whether one was closed. With `prune`, participants no longer
    /// present are forgotten first.
    pub fn retire(&mut self, present: &HashSet<ParticipantId>, prune: bool) -> bool {
        let before = self.endpoints.len();
        let mut i = 1;
        while i < self.endpoints.len() {
            let users = self.endpoints[i].users.get_or_insert_with(HashSet::new);
            if prune {
                users.retain(|p| present.contains(p));
            }
            if users.is_empty() {
                let gone = self.endpoints.remove(i);
                tracing::info!("closed the old media port udp {}", gone.socket.local_addr());
            } else {
                i += 1;
            }
        }
        self.endpoints.len() != before
    }

    /// Whether any retiring socket is still open.
    pub fn retiring(&self) -> bool {
        self.endpoints.len() > 1
    }

    /// Waits until one of the sockets may have datagrams; returns its index.
    pub async fn readable(&self) -> io::Result<usize> {
        if self.endpoints.len() == 1 {
            self.endpoints[0].socket.readable().await?;
            return Ok(0);
        }
        let waits = self.endpoints.iter().map(|e| Box::pin(e.socket.readable()));
        let (result, index, _) = futures_util::future::select_all(waits).await;
        result.map(|()| index)
    }

    /// Receives one batch from socket `index`, without waiting.
    pub fn try_recv(
        &mut self,
        index: usize,
        mut each: impl FnMut(Arrival<'_>),
    ) -> io::Result<usize> {
        let Some(endpoint) = self.endpoints.get_mut(index) else {
            return Ok(0);
        };
        let local = endpoint.socket.local_addr();
        let candidates = &endpoint.candidates;
        endpoint.socket.try_recv_batch(|datagram| {
            let destination = arrival_candidate(datagram.destination_ip, candidates, local);
            each(Arrival {
                datagram,
                destination,
            });
        })
    }

    /// The sending halves of the sockets, for the media workers: a
    /// snapshot, taken again whenever the sockets change.
    pub fn senders(&self) -> Arc<Senders> {
        Arc::new(Senders::new(
            self.endpoints
                .iter()
                .map(|e| (e.candidates.clone(), e.socket.sender()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use parley_settings::PortMode;

    use super::*;

    fn fixed(port: u16) -> ConnectionSettings {
        ConnectionSettings {
            udp_port: port,
            tcp_port: port,
            ..ConnectionSettings::default()
        }
    }

    fn dynamic(min: u16, max: u16) -> ConnectionSettings {
        ConnectionSettings {
            mode: PortMode::Dynamic,
            min_udp_port: min,
            max_udp_port: max,
            ..ConnectionSettings::default()
        }
    }

    fn lo() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_and_nothing_changes() {
        let mut media = MediaEndpoints::bind(lo(), &dynamic(0, 0), vec![]).unwrap();
        let before = media.addresses();
        // A UDP port taken whose TCP number is free: the fixed TCP port is
        // bound first, and an ephemeral port of another test's TCP
        // connection may have the same number.
        let (taken, port) = (0..100)
            .find_map(|_| {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = udp.local_addr().ok()?.port();
                drop(std::net::TcpListener::bind(("127.0.0.1", port)).ok()?);
                Some((udp, port))
            })
            .expect("a UDP port whose TCP number is free");
        let err = media.reconfigure(&fixed(port), HashSet::new()).unwrap_err();
        drop(taken);
        assert_eq!(err.field, "udp_port");
        assert!(err.message.contains("in use"), "{}", err.message);
        assert_eq!(media.addresses(), before);
    }

    #[tokio::test]
    async fn a_new_port_is_bound_and_the_old_one_serves_those_present() {
        let mut media = MediaEndpoints::bind(lo(), &dynamic(0, 0), vec![]).unwrap();
        let old = media.local_addr();
        let someone = ParticipantId::new(7);
        media
            .reconfigure(&dynamic(0, 0), HashSet::from([someone]))
            .unwrap();
        assert_eq!(media.local_addr(), old, "any port already satisfies (0, 0)");

        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        media
            .reconfigure(&fixed(port), HashSet::from([someone]))
            .unwrap();
        assert_eq!(media.local_addr().port(), port);
        assert_eq!(media.candidates(), &[SocketAddr::new(lo(), port)]);
        assert!(
            media.addresses().all.contains(&old),
            "still receiving on the old port"
        );
        assert!(media.retiring());

        // The replaced ICE-TCP listener closes once its task is dropped.
        tokio::task::yield_now().await;
        // Back to the old port while it still serves someone: it is reused.
        media
            .reconfigure(&fixed(old.port()), HashSet::from([someone]))
            .unwrap();
        assert_eq!(media.local_addr(), old);
        tokio::task::yield_now().await;
        media
            .reconfigure(&fixed(port), HashSet::from([someone]))
            .unwrap();
        assert_eq!(media.local_addr().port(), port);

        // Still present: kept. Gone: closed.
        assert!(!media.retire(&HashSet::from([someone]), true));
        assert!(media.retire(&HashSet::new(), true));
        assert!(!media.retiring());
        assert_eq!(media.addresses().all, vec![SocketAddr::new(lo(), port)]);
    }

    #[tokio::test]
    async fn ice_tcp_listens_on_the_udp_ports_number_or_the_fixed_tcp_port() {
        let mut media = MediaEndpoints::bind(lo(), &dynamic(0, 0), vec![]).unwrap();
        let udp = media.local_addr();
        assert_eq!(media.tcp_local_addr(), Some(udp), "same number as UDP");
        assert_eq!(media.tcp_candidates(), &[udp]);

        // A fixed TCP port that another program holds: refused, nothing changes.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = free.local_addr().unwrap().port();
        drop(free);
        let mut s = fixed(udp_port);
        s.tcp_port = busy;
        let err = media.reconfigure(&s, HashSet::new()).unwrap_err();
        assert_eq!(err.field, "tcp_port");
        assert!(err.message.contains("TCP port"), "{}", err.message);
        assert_eq!(media.local_addr(), udp, "the UDP port did not move either");
        assert_eq!(media.tcp_local_addr(), Some(udp));

        drop(taken);
        media.reconfigure(&s, HashSet::new()).unwrap();
        assert_eq!(media.tcp_local_addr(), Some(SocketAddr::new(lo(), busy)));
        assert_eq!(media.tcp_candidates(), &[SocketAddr::new(lo(), busy)]);
        assert_eq!(media.local_addr().port(), udp_port);
    }

    #[tokio::test]
    async fn a_dynamic_range_picks_a_port_inside_it() {
        let media = MediaEndpoints::bind(lo(), &dynamic(42000, 42100), vec![]).unwrap();
        let port = media.local_addr().port();
        assert!((42000..=42100).contains(&port), "{port}");
    }

    #[tokio::test]
    async fn announced_addresses_change_without_a_rebind() {
        let mut media = MediaEndpoints::bind(lo(), &dynamic(0, 0), vec![]).unwrap();
        let port = media.local_addr().port();
        let mut s = dynamic(0, 0);
        s.announce = vec!["203.0.113.5".parse().unwrap()];
        media.reconfigure(&s, HashSet::new()).unwrap();
        assert_eq!(media.local_addr().port(), port);
        assert_eq!(
            media.candidates(),
            &["203.0.113.5"
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, port))
                .unwrap()]
        );
    }
}
