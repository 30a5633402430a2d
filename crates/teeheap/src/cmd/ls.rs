//! `teeheap ls`: the heaps with their pools and usage.

use std::path::Path;

use serde::Serialize;
use teeheap_kernel::dma_heap::HeapInfo;

use super::{boot, human};

#[derive(Serialize)]
struct Listing {
    platform: String,
    heaps: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    info: HeapInfo,
    free: u64,
}

/// Prints every heap of the booted platform.
pub(crate) fn run(config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let sys = boot(config)?;
    let heaps: Vec<Row> = sys
        .kernel
        .dma_heaps()
        .list()
        .iter()
        .map(|h| {
            let info = h.info();
            Row { free: info.capacity.saturating_sub(info.used), info }
        })
        .collect();
    let listing = Listing { platform: sys.kernel.platform().config().name.clone(), heaps };
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    println!("{:<32} {:<10} {:>10} {:>10} {:>10} {:>8}  POOL", "HEAP", "STATE", "SIZE", "USED", "FREE", "BUFFERS");
    for r in &listing.heaps {
        let i = &r.info;
        println!(
            "{:<32} {:<10} {:>10} {:>10} {:>10} {:>8}  {}",
            i.name.as_str(),
            i.state,
            human(i.capacity),
            human(i.used),
            human(r.free),
            i.buffers,
            i.pool
        );
    }
    Ok(())
}
