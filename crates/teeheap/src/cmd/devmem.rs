//! `teeheap devmem`: one bus access through the platform firewall, like
//! `devmem` on a board: a way to check what a master may touch, and to see
//! a refusal land in `teeheap log`.

use std::path::Path;

use teeheap_daemon::protocol::{Reply, Request};

use super::client::connect;

/// Runs `teeheap devmem`; fails if the firewall refused the access.
pub(crate) fn run(socket: Option<&Path>, master: &str, addr: u64, len: u64, write: bool) -> anyhow::Result<()> {
    let req = Request::Devmem { master: master.to_owned(), addr, len, write };
    match connect(socket)?.0.request(&req, None)? {
        Reply::Devmem { allowed: true, data, .. } => {
            for (i, chunk) in data.chunks(16).enumerate() {
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                println!("{}: {}", super::addr(addr + 16 * i as u64), hex.join(" "));
            }
            if write {
                println!("wrote {} at {} as {master}", super::count(len, "zero byte", "zero bytes"), super::addr(addr));
            }
            Ok(())
        }
        Reply::Devmem { message, .. } => anyhow::bail!("refused: {message}"),
        other => Err(teeheap_daemon::protocol::unexpected(&other).into()),
    }
}
