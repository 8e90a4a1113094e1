//! Ctrl-C (SIGINT) and SIGTERM. Before the run writes anything, a signal ends it at once,
//! saying so. Once it writes, the signal is only noted: the run stops between two batches,
//! after the batch in flight is committed and reported, so that every copy in `cur/` is
//! complete, the report ends on a whole line, and rerunning the same command finishes the
//! job. A second signal kills the process at once (the handler is reset when it runs).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set once the run starts writing: from then on a signal is noted instead of ending it.
static WRITING: AtomicBool = AtomicBool::new(false);
/// The signal that asked the run to stop, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

const BEFORE_WRITING_INT: &[u8] = b"\npopsplit: stopped by Ctrl-C (SIGINT) before anything was written; rerun the same command to do the job\n";
const BEFORE_WRITING_TERM: &[u8] = b"\npopsplit: stopped by SIGTERM before anything was written; rerun the same command to do the job\n";

extern "C" fn on_signal(signal: libc::c_int) {
    if !WRITING.load(Ordering::SeqCst) {
        let text = if signal == libc::SIGTERM {
            BEFORE_WRITING_TERM
        } else {
            BEFORE_WRITING_INT
        };
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a static.
        unsafe {
            libc::write(2, text.as_ptr().cast(), text.len());
            libc::_exit(128 + signal);
        }
    }
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Handles SIGINT and SIGTERM as the module says, for the rest of the process.
pub fn install() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the action is zeroed, then given a handler that only touches atomics
        // and async-signal-safe calls. SA_RESTART keeps system calls in flight from failing
        // with EINTR; SA_RESETHAND makes a second signal kill as if none were handled.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Marks the point from which the run writes, and so must stop cleanly.
pub fn writing() {
    WRITING.store(true, Ordering::SeqCst);
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// How the admin would name the signal.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "Ctrl-C (SIGINT)",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
