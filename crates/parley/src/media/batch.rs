//! Sending many datagrams from one socket in one system call (sendmmsg),
//! each to its own destination. On a busy relay or SFU this saves most of
//! the per-datagram system call cost, which is the larger part of what they
//! spend beyond the network stack itself. Used by the TURN workers and the
//! SFU's media socket.
//!
//! The SFU's socket also uses UDP generic segmentation offload (GSO,
//! `UDP_SEGMENT`): consecutive datagrams to one destination that have the
//! same size (a video frame's packets: str0m cuts frames into equal parts,
//! the last one shorter) go down the network stack as one message that the
//! kernel, or the network card, cuts back into datagrams at the end. The
//! stack's cost per datagram (route, socket buffer, queueing) is then paid
//! once per frame and subscriber instead of once per packet.

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

/// A message of a GSO batch: `count` datagrams from `first` on, all to one
/// destination, every one but the last exactly `segment` bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsoMessage {
    /// Index of its first datagram.
    pub first: usize,
    /// How many datagrams it carries.
    pub count: usize,
    /// The size the kernel cuts it at (the first datagram's size).
    pub segment: usize,
}

/// Segments per GSO message at most (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Bytes per GSO message at most (an IP packet's limit, with room for headers).
const MAX_GSO_BYTES: usize = 60_000;

/// Groups `packets` into GSO messages, keeping their order: a message
/// takes the next datagrams to the same destination while they have the
/// first one's size, and one shorter datagram to end it.
pub fn plan_gso(packets: &[(SocketAddr, &[u8])], max_segments: usize, out: &mut Vec<GsoMessage>) {
    out.clear();
    let mut i = 0;
    while i < packets.len() {
        let (destination, data) = packets[i];
        let segment = data.len();
        let mut count = 1;
        let mut bytes = segment;
        while count < max_segments && segment > 0 {
            let Some((next_destination, next)) = packets.get(i + count) else {
                break;
            };
            if *next_destination != destination
                || next.is_empty()
                || next.len() > segment
                || bytes + next.len() > MAX_GSO_BYTES
            {
                break;
            }
            count += 1;
            bytes += next.len();
            if next.len() < segment {
                break;
            }
        }
        out.push(GsoMessage {
            first: i,
            count,
            segment,
        });
        i += count;
    }
}

/// How many of `messages` one system call can carry: they share one
/// `UDP_SEGMENT` size, and a message of one datagram must not be longer
/// than it (the kernel would cut it). Returns the count and the size
/// (`None`: no message needs cutting).
fn gso_call(messages: &[GsoMessage], packets: &[(SocketAddr, &[u8])]) -> (usize, Option<usize>) {
    let mut segment: Option<usize> = None;
    let mut longest_single = 0;
    let mut taken = 0;
    for m in messages.iter().take(MAX_BATCH) {
        if m.count == 1 {
            let len = packets[m.first].1.len();
            if segment.is_some_and(|s| len > s) {
                break;
            }
            longest_single = longest_single.max(len);
        } else {
            match segment {
                None if m.segment >= longest_single => segment = Some(m.segment),
                Some(s) if s == m.segment => {}
                _ => break,
            }
        }
        taken += 1;
    }
    (taken.max(1), segment)
}

/// One system call for the first messages of `messages` (see [`plan_gso`]):
/// how many messages went out (at least one), or why the first could not.
/// An error for a message that needed cutting may mean the path cannot
/// segment at all (`EIO`); the caller then sends without GSO.
pub fn send_gso_once(
    socket: &impl AsRawFd,
    packets: &[(SocketAddr, &[u8])],
    messages: &[GsoMessage],
) -> Result<usize, nix::Error> {
    let (taken, segment) = gso_call(messages, packets);
    let messages = &messages[..taken];
    let slices: Vec<IoSlice<'_>> = packets[messages[0].first..]
        .iter()
        .take(messages.iter().map(|m| m.count).sum())
        .map(|(_, b)| IoSlice::new(b))
        .collect();
    let mut iovs: Vec<&[IoSlice<'_>]> = Vec::with_capacity(taken);
    let mut offset = 0;
    for m in messages {
        iovs.push(&slices[offset..offset + m.count]);
        offset += m.count;
    }
    let addrs: Vec<Option<SockaddrStorage>> = messages
        .iter()
        .map(|m| Some(SockaddrStorage::from(packets[m.first].0)))
        .collect();
    let fd = socket.as_raw_fd();
    match segment {
        None => {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(taken, None);
            sendmmsg(fd, &mut headers, &iovs, &addrs, [], MsgFlags::MSG_DONTWAIT)
                .map(Iterator::count)
        }
        Some(size) => {
            let size = u16::try_from(size).unwrap_or(u16::MAX);
            let mut headers =
                MultiHeaders::<SockaddrStorage>::preallocate(taken, Some(nix::cmsg_space!(u16)));
            sendmmsg(
                fd,
                &mut headers,
                &iovs,
                &addrs,
                [ControlMessage::UdpGsoSegments(&size)],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_frame_to_one_destination_is_one_message_and_order_is_kept() {
        let full = [1u8; 1200];
        let last = [2u8; 300];
        let audio = [3u8; 90];
        let packets: Vec<(SocketAddr, &[u8])> = vec![
            (addr(1), &audio),
            (addr(1), &full),
            (addr(1), &full),
            (addr(1), &last),
            (addr(2), &full),
            (addr(2), &full),
            (addr(2), &full),
            (addr(1), &full),
        ];
        let mut plan = Vec::new();
        plan_gso(&packets, MAX_SEGMENTS, &mut plan);
        let shape: Vec<(usize, usize, usize)> =
            plan.iter().map(|m| (m.first, m.count, m.segment)).collect();
        // The audio packet stays alone (the next one is larger); the frame
        // ends with its shorter packet; a new destination starts a message.
        assert_eq!(
            shape,
            vec![(0, 1, 90), (1, 3, 1200), (4, 3, 1200), (7, 1, 1200)]
        );
        // One call carries them all: every single fits the shared size.
        assert_eq!(gso_call(&plan, &packets), (4, Some(1200)));
    }

    #[test]
    fn a_single_longer_than_the_shared_size_waits_for_the_next_call() {
        let small = [1u8; 500];
        let big = [2u8; 1200];
        let packets: Vec<(SocketAddr, &[u8])> =
            vec![(addr(1), &small), (addr(1), &small), (addr(2), &big)];
        let mut plan = Vec::new();
        plan_gso(&packets, MAX_SEGMENTS, &mut plan);
        assert_eq!(plan.len(), 2);
        // Cut at 500, the 1200-byte datagram would be split in three.
        assert_eq!(gso_call(&plan, &packets), (1, Some(500)));
        assert_eq!(gso_call(&plan[1..], &packets), (1, None));
    }

    #[test]
    fn messages_respect_the_segment_limit() {
        let full = [1u8; 1000];
        let packets: Vec<(SocketAddr, &[u8])> = vec![(addr(1), &full); 70];
        let mut plan = Vec::new();
        plan_gso(&packets, MAX_SEGMENTS, &mut plan);
        assert_eq!(plan.iter().map(|m| m.count).collect::<Vec<_>>(), [60, 10]);
        plan_gso(&packets, 1, &mut plan);
        assert_eq!(plan.len(), 70);
    }

    #[test]
    fn segmented_datagrams_arrive_as_they_were_sent() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = receiver.local_addr().expect("addr");
        let frames: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 333 } else { 1100 }])
            .collect();
        let packets: Vec<(SocketAddr, &[u8])> = frames.iter().map(|f| (to, f.as_slice())).collect();
        let mut plan = Vec::new();
        plan_gso(&packets, MAX_SEGMENTS, &mut plan);
        assert_eq!(plan.len(), 1);
        match send_gso_once(&sender, &packets, &plan) {
            Ok(n) => assert_eq!(n, 1),
            // No GSO on this kernel: nothing to check.
            Err(nix::Error::EIO | nix::Error::EINVAL | nix::Error::ENOPROTOOPT) => return,
            Err(e) => panic!("send: {e}"),
        }
        let mut buf = [0u8; 2000];
        for frame in &frames {
            let n = receiver.recv(&mut buf).expect("datagram");
            assert_eq!(&buf[..n], frame.as_slice());
        }
    }
}
