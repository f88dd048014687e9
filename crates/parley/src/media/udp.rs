//! The media socket: one UDP socket, batched receive (recvmmsg, GRO) and the
//! destination address of each datagram (IP_PKTINFO), through `quinn-udp`.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use quinn_udp::{BATCH_SIZE, RecvMeta, UdpSocketState};
use tokio::io::Interest;

/// Bytes reserved per receive slot; with GRO one slot may hold several datagrams.
const SLOT: usize = 64 * 1024;
/// Kernel buffer size asked for, so bursts from many senders are not dropped.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// One received datagram.
pub struct Datagram<'a> {
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it was sent to, when the kernel says.
    pub destination_ip: Option<IpAddr>,
    /// The payload.
    pub data: &'a [u8],
}

/// The SFU's UDP socket: received on by one task, sent on by any (see
/// [`MediaSocket::sender`]).
pub struct MediaSocket {
    io: Arc<SocketIo>,
    buffer: Vec<u8>,
    meta: Vec<RecvMeta>,
}

/// The shared half of a [`MediaSocket`]: sending, from whichever media
/// worker has datagrams for it.
pub struct SocketIo {
    socket: tokio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// Whether frames go out as one segmented message (UDP GSO); turned
    /// off for good when the kernel refuses it.
    gso: AtomicBool,
}

impl MediaSocket {
    /// Binds `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> io::Result<MediaSocket> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        std_socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&std_socket).into())?;
        for (what, result) in [
            (
                "receive",
                state.set_recv_buffer_size((&std_socket).into(), SOCKET_BUFFER),
            ),
            (
                "send",
                state.set_send_buffer_size((&std_socket).into(), SOCKET_BUFFER),
            ),
        ] {
            if let Err(e) = result {
                tracing::warn!("cannot enlarge the media socket's {what} buffer: {e}");
            }
        }
        let local = std_socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        let gso = state.max_gso_segments() > 1;
        Ok(MediaSocket {
            io: Arc::new(SocketIo {
                socket,
                state,
                local,
                gso: AtomicBool::new(gso),
            }),
            buffer: vec![0; SLOT * BATCH_SIZE],
            meta: vec![RecvMeta::default(); BATCH_SIZE],
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.io.local
    }

    /// The sending half, for the media workers.
    pub fn sender(&self) -> Arc<SocketIo> {
        self.io.clone()
    }

    /// Waits until datagrams may be waiting.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.socket.readable().await
    }

    /// Hands each datagram of the next batch to `each`, without waiting;
    /// returns how many slots were filled (0 when nothing was waiting).
    pub fn try_recv_batch(&mut self, mut each: impl FnMut(Datagram<'_>)) -> io::Result<usize> {
        let MediaSocket { io, buffer, meta } = self;
        let SocketIo { socket, state, .. } = &**io;
        let mut slices: Vec<IoSliceMut<'_>> =
            buffer.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        let result = socket.try_io(Interest::READABLE, || {
            state.recv((&*socket).into(), &mut slices, meta)
        });
        match result {
            Ok(count) => {
                for (m, slot) in meta.iter().zip(buffer.chunks(SLOT)).take(count) {
                    let stride = m.stride.max(1);
                    for data in slot[..m.len].chunks(stride) {
                        each(Datagram {
                            source: SocketAddr::new(m.addr.ip().to_canonical(), m.addr.port()),
                            destination_ip: m.dst_ip,
                            data,
                        });
                    }
                }
                Ok(count)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl SocketIo {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends `packets` a batch per system call (sendmmsg), waiting while the
    /// socket buffer is full; runs of equal-sized datagrams to one
    /// destination go as one segmented message where the kernel can (see
    /// [`super::batch::plan_gso`]). Errors about one destination are logged and
    /// that datagram skipped: one bad peer must not stop the media of others.
    pub async fn send_batch(&self, packets: &[(SocketAddr, &[u8])]) {
        if self.gso.load(Ordering::Relaxed) && packets.len() > 1 {
            let mut plan = Vec::new();
            super::batch::plan_gso(packets, super::batch::MAX_SEGMENTS, &mut plan);
            if plan.len() < packets.len() {
                return self.send_segmented(packets, &plan).await;
            }
        }
        self.send_plain(packets).await;
    }

    /// Waits while the socket buffer is full; false if the socket broke.
    async fn wait_writable(&self) -> bool {
        match self.socket.writable().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("media socket unusable: {e}");
                false
            }
        }
    }

    /// Sends `packets` one datagram per message.
    async fn send_plain(&self, packets: &[(SocketAddr, &[u8])]) {
        let mut rest = packets;
        while !rest.is_empty() {
            let result = self.socket.try_io(Interest::WRITABLE, || {
                super::batch::send_once(&self.socket, rest).map_err(io::Error::from)
            });
            match result {
                Ok(n) => rest = &rest[n.clamp(1, rest.len())..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait_writable().await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(destination = %rest[0].0, "media send failed: {e}");
                    rest = &rest[1..];
                }
            }
        }
    }

    /// Sends the messages of `plan`. A message the kernel refuses goes
    /// again one datagram at a time: the error may be about segmenting
    /// rather than its destination (`EMSGSIZE` on a route with a small MTU,
    /// `EIO` from a device that cannot segment, which turns GSO off).
    async fn send_segmented(
        &self,
        packets: &[(SocketAddr, &[u8])],
        plan: &[super::batch::GsoMessage],
    ) {
        let mut rest = plan;
        while let Some(first) = rest.first() {
            let result = self.socket.try_io(Interest::WRITABLE, || {
                super::batch::send_gso_once(&self.socket, packets, rest).map_err(io::Error::from)
            });
            match result {
                Ok(n) => rest = &rest[n.clamp(1, rest.len())..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait_writable().await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(destination = %packets[first.first].0, "segmented send failed: {e}");
                    if e.raw_os_error() == Some(libc::EIO)
                        && self.gso.swap(false, Ordering::Relaxed)
                    {
                        tracing::warn!(
                            "the kernel cannot segment on this path ({e}); sending datagrams one by one"
                        );
                    }
                    self.send_plain(&packets[first.first..first.first + first.count])
                        .await;
                    rest = &rest[1..];
                    if !self.gso.load(Ordering::Relaxed) {
                        if let Some(next) = rest.first() {
                            self.send_plain(&packets[next.first..]).await;
                        }
                        return;
                    }
                }
            }
        }
    }

    /// The address to send to from this socket: an IPv6 socket reaches IPv4
    /// peers at their mapped address.
    pub fn destination(&self, destination: SocketAddr) -> SocketAddr {
        match (self.local.is_ipv6(), destination.ip()) {
            (true, IpAddr::V4(v4)) => {
                SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), destination.port())
            }
            _ => destination,
        }
    }
}
