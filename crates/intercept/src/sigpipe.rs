//! `SIGPIPE` back to its default action, for commands that print and exit.
//!
//! The Rust runtime ignores `SIGPIPE`, so a write into a closed pipe fails
//! with `EPIPE`; a Unix filter (`teeheap ls | head -1`) should instead end
//! quietly. Processes that write to clients' sockets (the daemon) keep
//! ignoring it.

/// Sets `SIGPIPE` to `SIG_DFL` for the whole process.
pub fn restore_default() {
    // SAFETY: `SIG_DFL` installs no handler, so no code of ours can run in
    // signal context; the previous disposition was `SIG_IGN` or `SIG_DFL`
    // (no handler of ours is replaced).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
