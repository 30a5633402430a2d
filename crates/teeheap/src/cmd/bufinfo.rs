//! `teeheap bufinfo`: every live dma-buf, like debugfs `dma_buf/bufinfo`,
//! with the processes holding it (from the daemon's served-file table and
//! `/proc`), then totals per heap.

use std::path::Path;

use teeheap_daemon::report::{Bufinfo, Holder, Range};

use super::client::connect;
use super::{Doc, human, range};

/// `[a..b)` in the address format of every report, comma-separated.
pub(crate) fn ranges(r: &[Range]) -> String {
    if r.is_empty() {
        return "-".into();
    }
    r.iter().map(|r| range(r.start, r.end())).collect::<Vec<_>>().join(",")
}

/// `pid 12 (prog args) fd 3,4 mmap 1 tee-shm 5`.
pub(crate) fn holder(h: &Holder) -> String {
    let mut s = format!("pid {} ({})", h.pid, h.cmdline);
    let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    if !h.fds.is_empty() {
        s += &format!(" fd {}", list(&h.fds));
    }
    if h.mmaps > 0 {
        s += &format!(" mmap {}", h.mmaps);
    }
    if !h.tee_shm_fds.is_empty() {
        s += &format!(" tee-shm-fd {}", list(&h.tee_shm_fds));
    }
    s
}

/// Prints `b` as a table.
fn print(b: &Bufinfo) {
    println!(
        "{:>5} {:>10} {:<30} {:<9} {:<4} {:>8} {:<14} {:>3}  {:<40} HOLDERS",
        "ID", "SIZE", "HEAP", "EXPORTER", "PROT", "AGE", "ATTACHED", "TEE", "RANGES"
    );
    for r in &b.buffers {
        let holders = if r.holders.is_empty() {
            "-".to_owned()
        } else {
            r.holders.iter().map(holder).collect::<Vec<_>>().join("; ")
        };
        println!(
            "{:>5} {:>10} {:<30} {:<9} {:<4} {:>7}s {:<14} {:>3}  {:<40} {}",
            r.id,
            human(r.size),
            r.heap.as_deref().unwrap_or("-"),
            r.exporter,
            if r.protected { "yes" } else { "no" },
            r.age_ms / 1000,
            if r.attachments.is_empty() { "-".to_owned() } else { r.attachments.join(",") },
            r.tee_registrations,
            ranges(&r.ranges),
            holders
        );
        // DMA_BUF_SET_NAME's bytes, escaped by the daemon (`\xNN` for bytes
        // that are not UTF-8).
        if let Some(name) = &r.name {
            println!("{:>5} name {name}", "");
        }
    }
    println!();
    println!("{:<30} {:>8} {:>10}", "HEAP", "BUFFERS", "BYTES");
    for (heap, t) in &b.totals {
        println!("{heap:<30} {:>8} {:>10}", t.buffers, human(t.bytes));
    }
    let (n, bytes) = b.totals.values().fold((0, 0), |(n, s), t| (n + t.buffers, s + t.bytes));
    println!("{:<30} {n:>8} {:>10}", "total", human(bytes));
}

/// Runs `teeheap bufinfo`.
pub(crate) fn run(socket: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let (mut c, source) = connect(socket)?;
    let b = c.bufinfo()?;
    if json {
        Doc::print("teeheap-bufinfo/1", &source, &b, true)?;
    } else {
        println!("{}", source.line());
        print(&b);
    }
    Ok(())
}
