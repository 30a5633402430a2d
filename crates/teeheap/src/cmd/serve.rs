//! `teeheap serve`: a standalone daemon on a control socket, until SIGTERM,
//! SIGINT, SIGHUP or SIGQUIT. The socket is removed on every exit path that
//! runs code (those signals, an error, a panic unwinding `main`); a socket
//! left by a daemon that could not (SIGKILL) is found stale by the next
//! `serve` (nobody answers a connect) and replaced.

use std::path::Path;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use teeheap_daemon::paths::socket_path;
use teeheap_daemon::{Daemon, DaemonConfig};
use teeheap_platform::fault::spec::Spec;

/// Runs the daemon on `socket` (default: see `teeheap_daemon::paths`).
/// It injects the faults `inject` with `seed` (docs/fault-injection.md).
pub(crate) fn run(
    config: Option<&Path>,
    socket: Option<&Path>,
    inject: &[Spec],
    seed: Option<u64>,
) -> anyhow::Result<()> {
    let path = socket.map(Path::to_owned).unwrap_or_else(socket_path);
    // Signals first, so that a SIGTERM right after the socket appears is
    // a clean shutdown.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT]).context("cannot install signal handlers")?;
    let mut daemon = match config {
        Some(file) => Daemon::injecting(super::platform(file)?, inject, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
        None => Daemon::start(&DaemonConfig { platform: None, inject: inject.to_vec(), seed })?,
    };
    daemon.listen(&path).with_context(|| format!("cannot serve on {}", path.display()))?;
    eprintln!("teeheap: serving on {}", path.display());
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down");
    }
    daemon.shutdown();
    Ok(())
}
