//! `teeheap serve`: a standalone daemon on a control socket, until SIGTERM
//! or SIGINT.

use std::path::Path;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use teeheap_daemon::paths::socket_path;
use teeheap_daemon::{Daemon, DaemonConfig};

/// Runs the daemon on `socket` (default: see `teeheap_daemon::paths`).
pub(crate) fn run(config: Option<&Path>, socket: Option<&Path>) -> anyhow::Result<()> {
    let path = socket.map(Path::to_owned).unwrap_or_else(socket_path);
    // Signals first, so that a SIGTERM right after the socket appears is
    // a clean shutdown.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let mut daemon = Daemon::start(&DaemonConfig { platform: config.map(Path::to_owned) })?;
    daemon.listen(&path).with_context(|| format!("cannot serve on {}", path.display()))?;
    eprintln!("teeheap: serving on {}", path.display());
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down");
    }
    daemon.shutdown();
    Ok(())
}
