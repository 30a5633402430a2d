//! `teeheap ls`: the heaps with their pools and usage, from the running
//! daemon, else (no daemon at the default socket, or `--fresh`) from a
//! platform booted for this command alone. The output says which.

use std::path::Path;

use teeheap_daemon::protocol::{HeapRow, Listing};

use super::client::{Target, Via};
use super::{Doc, Source, boot, human};

/// The listing of a fresh platform, in the daemon's shape.
fn fresh(config: Option<&Path>) -> anyhow::Result<Listing> {
    let sys = boot(config)?;
    let heaps = sys.kernel.dma_heaps().list().iter().map(|h| HeapRow::from(h.info())).collect();
    Ok(Listing { platform: sys.kernel.platform().config().name.clone(), heaps })
}

/// Where `ls` looks: `--fresh` boots a platform; otherwise the daemon of
/// `--socket`/`$TEEHEAP_SOCKET` must answer, and the default socket is
/// asked if it answers. A platform description never silently replaces
/// a daemon that answers: that is an error naming both.
fn listing(socket: Option<&Path>, fresh_platform: bool, config: Option<&Path>) -> anyhow::Result<(Listing, Source)> {
    let source = Source::Fresh { config: config.map(Path::to_owned) };
    if fresh_platform {
        return Ok((fresh(config)?, source));
    }
    let target = Target::resolve(socket);
    match target.connect() {
        Ok(_) if let Some(file) = config => anyhow::bail!(
            "a daemon answers at {}, and its platform is not read from {} (--config or TEEHEAP_CONFIG): \
             `teeheap ls --fresh` lists that description without the daemon; leave --config and \
             TEEHEAP_CONFIG out to list the daemon's heaps",
            target.describe(),
            file.display()
        ),
        Ok((mut c, daemon)) => Ok((c.ls()?, daemon)),
        Err(e) if target.via != Via::Default => Err(e),
        Err(_) => Ok((fresh(config)?, source)),
    }
}

/// Prints the heaps.
pub(crate) fn run(
    socket: Option<&Path>,
    fresh_platform: bool,
    config: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let (listing, source) = listing(socket, fresh_platform, config)?;
    if json {
        return Doc::print("teeheap-ls/1", &source, &listing, true);
    }
    println!("{}", source.line());
    println!("platform {}", listing.platform);
    let name_w = listing.heaps.iter().map(|h| h.name.len()).max().unwrap_or(0).max(4);
    let state_w = listing.heaps.iter().map(|h| h.state.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<name_w$}  {:<state_w$}  {:>10}  {:>10}  {:>10}  {:>7}  POOL",
        "HEAP", "STATE", "SIZE", "USED", "FREE", "BUFFERS"
    );
    for h in &listing.heaps {
        println!(
            "{:<name_w$}  {:<state_w$}  {:>10}  {:>10}  {:>10}  {:>7}  {}",
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
