//! Fuzzes what a TCP peer sends to Parley's media and one port: the
//! one-port classifier of a connection's first bytes, and the RFC 4571
//! framing an ICE-TCP connection is read with (frames of the bytes given,
//! read through the same code the listener uses).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parley::tls::one_port::classify(data);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut reader = data;
        let mut frame = Vec::new();
        let mut first = true;
        loop {
            let max = if first { parley::media::ice_tcp::MAX_FIRST_FRAME } else { usize::from(u16::MAX) };
            match parley::media::ice_tcp::read_frame(&mut reader, &mut frame, max).await {
                Ok(()) => {
                    assert!(!frame.is_empty() && frame.len() <= max, "a frame within its limits");
                    first = false;
                }
                Err(_) => break,
            }
        }
    });
});
