//! Sending many datagrams from one socket in one system call (sendmmsg),
//! each to its own destination. On a busy relay or SFU this saves most of
//! the per-datagram system call cost, which is the larger part of what they
//! spend beyond the network stack itself. Used by the TURN workers and the
//! SFU's media socket.

use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

/// Datagrams per system call.
pub const MAX_BATCH: usize = 64;

/// Preallocated message headers, reused for every batch.
pub struct BatchSender {
    plain: MultiHeaders<SockaddrStorage>,
    with_v4_source: MultiHeaders<SockaddrStorage>,
    with_v6_source: MultiHeaders<SockaddrStorage>,
}

impl Default for BatchSender {
    fn default() -> Self {
        BatchSender {
            plain: MultiHeaders::preallocate(MAX_BATCH, None),
            with_v4_source: MultiHeaders::preallocate(
                MAX_BATCH,
                Some(nix::cmsg_space!(libc::in_pktinfo)),
            ),
            with_v6_source: MultiHeaders::preallocate(
                MAX_BATCH,
                Some(nix::cmsg_space!(libc::in6_pktinfo)),
            ),
        }
    }
}

impl BatchSender {
    /// Sends `packets` from `socket`, from source address `src` when the
    /// socket is bound to a wildcard address. Returns how many went out; the
    /// rest were dropped (the socket buffer is full), as UDP may.
    pub fn send(
        &mut self,
        socket: &impl AsRawFd,
        packets: &[(SocketAddr, &[u8])],
        src: Option<IpAddr>,
    ) -> usize {
        let mut sent = 0;
        for chunk in packets.chunks(MAX_BATCH) {
            match self.send_chunk(socket, chunk, src) {
                Ok(n) => {
                    sent += n;
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::trace!("sendmmsg failed: {e}");
                    break;
                }
            }
        }
        sent
    }

    fn send_chunk(
        &mut self,
        socket: &impl AsRawFd,
        packets: &[(SocketAddr, &[u8])],
        src: Option<IpAddr>,
    ) -> Result<usize, nix::Error> {
        let fd = socket.as_raw_fd();
        let (iovs, addrs) = messages(packets);
        match src {
            None => send_plain(fd, &mut self.plain, &iovs, &addrs),
            Some(IpAddr::V4(ip)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                sendmmsg(
                    fd,
                    &mut self.with_v4_source,
                    &iovs,
                    &addrs,
                    [ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(Iterator::count)
            }
            Some(IpAddr::V6(ip)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                sendmmsg(
                    fd,
                    &mut self.with_v6_source,
                    &iovs,
                    &addrs,
                    [ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(Iterator::count)
            }
        }
    }
}

/// One system call for up to [`MAX_BATCH`] of `packets`, from a socket the
/// caller owns across awaits (the headers are built for this call, as they
/// cannot move between threads): how many went out (at least one), or why
/// the first could not (`EAGAIN` when the socket buffer is full, or an error
/// about its destination).
pub fn send_once(
    socket: &impl AsRawFd,
    packets: &[(SocketAddr, &[u8])],
) -> Result<usize, nix::Error> {
    let (iovs, addrs) = messages(packets);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(iovs.len(), None);
    send_plain(socket.as_raw_fd(), &mut headers, &iovs, &addrs)
}

/// The buffers and destinations of up to [`MAX_BATCH`] of `packets`.
fn messages<'a>(
    packets: &[(SocketAddr, &'a [u8])],
) -> (Vec<[IoSlice<'a>; 1]>, Vec<Option<SockaddrStorage>>) {
    let chunk = &packets[..packets.len().min(MAX_BATCH)];
    (
        chunk.iter().map(|(_, b)| [IoSlice::new(b)]).collect(),
        chunk
            .iter()
            .map(|(a, _)| Some(SockaddrStorage::from(*a)))
            .collect(),
    )
}

/// sendmmsg without control messages (the kernel picks the source).
fn send_plain(
    fd: std::os::fd::RawFd,
    headers: &mut MultiHeaders<SockaddrStorage>,
    iovs: &[[IoSlice<'_>; 1]],
    addrs: &[Option<SockaddrStorage>],
) -> Result<usize, nix::Error> {
    sendmmsg(fd, headers, iovs, addrs, [], MsgFlags::MSG_DONTWAIT).map(Iterator::count)
}
