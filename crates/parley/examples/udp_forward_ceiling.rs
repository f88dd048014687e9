//! The physical floor under a UDP relay: what one core pays to receive a
//! datagram (batched, recvmmsg/GRO through quinn-udp, as Parley's TURN
//! workers do) and send it on (one sendmsg), with no protocol at all.
//! `bench/turn/run` prints it next to coturn and Parley.
//!
//! With `batched`, datagrams also go out in batches (sendmmsg); with
//! `sealed`, batched and each sealed with AES-128-GCM first, as SRTP does:
//! the floor under an SFU, which `bench/sfu/run` prints.
//!
//! Usage: udp_forward_ceiling [PACKETS] [SIZE] [batched|sealed]
//! Prints: `ceiling_ns_per_packet <ns> packets <n>`.

use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSocketState};

/// CPU time of the calling thread, from /proc (no unsafe needed).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let packets: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let mode = args.next().unwrap_or_default();
    let sealed = mode == "sealed";
    let batched = sealed || mode == "batched";
    let key = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &[7u8; 16])
            .map_err(|_| std::io::Error::other("AES key"))?,
    );
    let mut counter = 0u64;
    let mut sealed_out: Vec<u8> = Vec::with_capacity(64 * 1024 * BATCH_SIZE);

    let relay = UdpSocket::bind("127.0.0.1:0")?;
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let source = UdpSocket::bind("127.0.0.1:0")?;
    relay.set_read_timeout(Some(Duration::from_millis(500)))?;
    sink.set_read_timeout(Some(Duration::from_millis(200)))?;
    let relay_addr = relay.local_addr()?;
    let sink_addr = sink.local_addr()?;
    let state = UdpSocketState::new((&relay).into())?;
    let _ = state.set_recv_buffer_size((&relay).into(), 8 << 20);
    // quinn-udp makes the socket non-blocking; block (with the timeout) so
    // waiting costs no CPU and only forwarding is measured.
    relay.set_nonblocking(false)?;

    // The sink drains so the kernel never blocks the forwarder.
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while sink.recv(&mut buf).is_ok() {}
    });
    // The source paces itself so the relay's buffer never overflows.
    std::thread::spawn(move || {
        let payload = vec![0x42u8; size];
        let start = Instant::now();
        for i in 0..packets {
            let _ = source.send_to(&payload, relay_addr);
            if i % 64 == 0 {
                let due = start + Duration::from_micros(i * 4);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    });

    let mut buffer = vec![0u8; 64 * 1024 * BATCH_SIZE];
    let mut meta = vec![RecvMeta::default(); BATCH_SIZE];
    let mut forwarded = 0u64;
    let mut cpu_start = None;
    while forwarded < packets {
        let mut slices: Vec<IoSliceMut<'_>> =
            buffer.chunks_mut(64 * 1024).map(IoSliceMut::new).collect();
        let n = match state.recv((&relay).into(), &mut slices, &mut meta) {
            Ok(n) => n,
            Err(_) => break, // the source is done and nothing more comes
        };
        cpu_start.get_or_insert_with(thread_cpu_ns);
        if batched {
            use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
            use std::os::fd::AsRawFd;
            let dest = match sink_addr {
                std::net::SocketAddr::V4(v4) => SockaddrIn::from(v4),
                std::net::SocketAddr::V6(_) => unreachable!("loopback IPv4"),
            };
            // Sealed: each datagram is copied out and sealed with its
            // first 12 bytes (an RTP header) as associated data, as an SFU
            // encrypts each forwarded packet for its receiver.
            sealed_out.clear();
            let mut ranges = Vec::with_capacity(BATCH_SIZE * 4);
            for (m, slot) in meta.iter().zip(buffer.chunks(64 * 1024)).take(n) {
                for datagram in slot[..m.len].chunks(m.stride.max(1)) {
                    let at = sealed_out.len();
                    sealed_out.extend_from_slice(datagram);
                    if sealed && datagram.len() > 12 {
                        counter += 1;
                        let mut nonce = [0u8; 12];
                        nonce[4..].copy_from_slice(&counter.to_be_bytes());
                        let (header, body) = sealed_out[at..].split_at_mut(12);
                        let tag = key
                            .seal_in_place_separate_tag(
                                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                                aws_lc_rs::aead::Aad::from(&*header),
                                body,
                            )
                            .map_err(|_| std::io::Error::other("seal"))?;
                        sealed_out.extend_from_slice(tag.as_ref());
                    }
                    ranges.push(at..sealed_out.len());
                }
            }
            let iovs: Vec<[std::io::IoSlice<'_>; 1]> = ranges
                .iter()
                .map(|r| [std::io::IoSlice::new(&sealed_out[r.clone()])])
                .collect();
            let addrs = vec![Some(dest); iovs.len()];
            let mut headers = MultiHeaders::<SockaddrIn>::preallocate(iovs.len(), None);
            let _ = sendmmsg(
                relay.as_raw_fd(),
                &mut headers,
                &iovs,
                &addrs,
                [],
                MsgFlags::empty(),
            );
            forwarded += iovs.len() as u64;
            continue;
        }
        for (m, slot) in meta.iter().zip(buffer.chunks(64 * 1024)).take(n) {
            for datagram in slot[..m.len].chunks(m.stride.max(1)) {
                let t = Transmit {
                    destination: sink_addr,
                    ecn: None,
                    contents: datagram,
                    segment_size: None,
                    src_ip: None,
                };
                let _ = state.try_send((&relay).into(), &t);
                forwarded += 1;
            }
        }
    }
    let cpu = thread_cpu_ns() - cpu_start.unwrap_or(0);
    println!(
        "ceiling_ns_per_packet {:.0} packets {forwarded}",
        cpu as f64 / forwarded.max(1) as f64
    );
    Ok(())
}
