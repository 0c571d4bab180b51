//! The process's panic message: the standard one, with anything that looks like a phone number
//! removed, because a panic's message can quote the text it choked on.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write as _;

/// Replaces the standard panic hook (see the module documentation). A panic still ends only
/// the task or thread it happens in; this changes what reaches standard error.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        // Frames name code, never data: the backtrace goes out as it is, when asked for
        // (RUST_BACKTRACE).
        let backtrace = Backtrace::capture();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "thread '{name}' panicked at {location}:\n{}",
            store::scrub_numbers(message)
        );
        if backtrace.status() == BacktraceStatus::Captured {
            let _ = writeln!(err, "stack backtrace:\n{backtrace}");
        }
    }));
}
