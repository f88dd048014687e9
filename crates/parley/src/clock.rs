//! Time: the wall clock, for what is stored or shown (expiry times,
//! records), and the sleep that drives the sans-IO cores' timers (the
//! conference's hub, the media workers' shards).

use std::time::{Duration, Instant};

/// How late a timer of the SFU or the hub may fire: timers due within this
/// much of each other share a wakeup, and most ride on one for arriving
/// datagrams. (The runtime's timer wheel has a 1 ms resolution anyway;
/// what needs exact timing, such as str0m's pacer between packets, is
/// answered inside a drain.)
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Sleeps until `deadline` (plus [`TIMER_SLACK`]), or for ever without one.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => {
            let at = tokio::time::Instant::from_std(t + TIMER_SLACK);
            tokio::time::sleep_until(at).await;
        }
        None => std::future::pending().await,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch, as SQLite stores it.
pub fn unix_now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}
