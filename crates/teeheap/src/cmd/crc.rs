//! `teeheap crc`: the CRCs of the frames the display (`/dev/dri/card0`,
//! vkms) scanned out, oldest first, one `0x<frame> 0x<crc>` line each —
//! what `/sys/kernel/debug/dri/0/crtc-0/crc/data` shows inside a run.

use std::path::Path;

use serde::Serialize;
use teeheap_daemon::protocol::FrameCrcRow;

use super::Doc;
use super::client::connect;

/// The JSON document's body.
#[derive(Serialize)]
struct Crcs<'a> {
    crcs: &'a [FrameCrcRow],
}

/// Runs `teeheap crc`.
pub(crate) fn run(socket: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let (mut c, source) = connect(socket)?;
    let crcs = c.crc()?;
    if json {
        return Doc::print("teeheap-crc/1", &source, &Crcs { crcs: &crcs }, true);
    }
    println!("{}", source.line());
    for r in &crcs {
        println!("0x{:08x} 0x{:08x}", r.frame as u32, r.crc);
    }
    Ok(())
}
