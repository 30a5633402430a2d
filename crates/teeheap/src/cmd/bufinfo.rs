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
    let rows: Vec<[String; 10]> = b
        .buffers
        .iter()
        .map(|r| {
            let holders = if r.holders.is_empty() {
                "-".to_owned()
            } else {
                r.holders.iter().map(holder).collect::<Vec<_>>().join("; ")
            };
            [
                r.id.to_string(),
                human(r.size),
                r.heap.as_deref().unwrap_or("-").to_owned(),
                r.exporter.to_string(),
                if r.protected { "yes" } else { "no" }.to_owned(),
                format!("{}s", r.age_ms / 1000),
                if r.attachments.is_empty() { "-".to_owned() } else { r.attachments.join(",") },
                r.tee_registrations.to_string(),
                ranges(&r.ranges),
                holders,
            ]
        })
        .collect();
    let head = ["ID", "SIZE", "HEAP", "EXPORTER", "PROT", "AGE", "ATTACHED", "TEE", "RANGES", "HOLDERS"];
    let w: Vec<usize> =
        (0..head.len()).map(|i| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    // Numbers right-aligned, text left-aligned; the last column unpadded.
    let right = [true, true, false, false, false, true, false, true, false, false];
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out += c;
            } else if right[i] {
                out += &format!("{c:>0$}  ", w[i]);
            } else {
                out += &format!("{c:<0$}  ", w[i]);
            }
        }
        out
    };
    println!("{}", line(&head.map(str::to_owned)));
    for (r, buf) in rows.iter().zip(&b.buffers) {
        println!("{}", line(r));
        // DMA_BUF_SET_NAME's bytes, escaped by the daemon (`\xNN` for bytes
        // that are not UTF-8).
        if let Some(name) = &buf.name {
            println!("{:>w0$}  name {name}", "", w0 = w[0]);
        }
    }
    println!();
    let heap_w = b.totals.keys().map(String::len).max().unwrap_or(0).max(5);
    println!("{:<heap_w$}  {:>8}  {:>10}", "HEAP", "BUFFERS", "BYTES");
    for (heap, t) in &b.totals {
        println!("{heap:<heap_w$}  {:>8}  {:>10}", t.buffers, human(t.bytes));
    }
    let (n, bytes) = b.totals.values().fold((0, 0), |(n, s), t| (n + t.buffers, s + t.bytes));
    println!("{:<heap_w$}  {n:>8}  {:>10}", "total", human(bytes));
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
