//! Commands that talk to a running daemon over its control socket.

use std::path::{Path, PathBuf};

use anyhow::Context;
use teeheap_daemon::paths::{SOCKET_ENV, default_socket};
use teeheap_daemon::protocol::Client;

use super::human;

/// The daemon `ls` should ask, if any: `$TEEHEAP_SOCKET` when set (it must
/// answer), else the default socket when it exists.
pub(crate) fn daemon_socket() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let p = default_socket();
    p.exists().then_some(p)
}

/// A connection to the daemon of [`daemon_socket`], for commands that need one.
pub(crate) fn connect() -> anyhow::Result<Client> {
    let socket = daemon_socket().ok_or_else(|| {
        anyhow::anyhow!("no daemon: start one with `teeheap serve`, or set {SOCKET_ENV} (as `teeheap run` does)")
    })?;
    Client::connect(&socket).with_context(|| format!("cannot reach the daemon at {}", socket.display()))
}

/// `teeheap ls` answered by the daemon at `socket`.
pub(crate) fn ls(socket: &Path, json: bool) -> anyhow::Result<()> {
    let mut c = Client::connect(socket).with_context(|| format!("cannot reach the daemon at {}", socket.display()))?;
    let listing = c.ls()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    let w = listing.heaps.iter().map(|h| h.state.len()).max().unwrap_or(0).max(10);
    println!("{:<32} {:<w$} {:>10} {:>10} {:>10} {:>8}  POOL", "HEAP", "STATE", "SIZE", "USED", "FREE", "BUFFERS");
    for h in &listing.heaps {
        println!(
            "{:<32} {:<w$} {:>10} {:>10} {:>10} {:>8}  {}",
            h.name,
            h.state,
            human(h.capacity),
            human(h.used),
            human(h.free),
            h.buffers,
            h.pool
        );
    }
    Ok(())
}
