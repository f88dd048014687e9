//! Panics the SFU contains. str0m asserts on some inputs it cannot make
//! sense of; the SFU runs every call into it under `catch_unwind` and gives
//! up that one peer connection, refusing what the client sent. libFuzzer's
//! panic hook would abort on such a contained panic, so this hook counts
//! them instead, and the target checks that each one ended in a refusal.
//! A panic that escapes the SFU still aborts: libfuzzer-sys catches the
//! unwinding target and aborts, after [`run`] printed its message.
//!
//! `PARLEY_FUZZ_CONTAINED=abort` makes contained panics abort too, to
//! collect the inputs that make str0m panic (for a regression test, or a
//! report upstream).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::Once;

thread_local! {
    static PANICS: Cell<u64> = const { Cell::new(0) };
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

fn hook(info: &PanicHookInfo<'_>) {
    PANICS.with(|p| p.set(p.get() + 1));
    LAST.with(|l| *l.borrow_mut() = info.to_string());
}

/// How many panics this thread has had so far.
pub fn panics() -> u64 {
    PANICS.with(Cell::get)
}

/// Runs `body` with contained panics counted; a panic escaping `body`
/// prints its message and aborts.
pub fn run(body: impl FnOnce()) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if std::env::var("PARLEY_FUZZ_CONTAINED").as_deref() != Ok("abort") {
            std::panic::set_hook(Box::new(hook));
        }
    });
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        LAST.with(|l| eprintln!("panicked outside the SFU's guard: {}", l.borrow()));
        std::process::abort();
    }
}
