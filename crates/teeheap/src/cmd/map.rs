//! `teeheap map`: the physical memory map — DRAM, carveouts, regions lent to
//! the secure world, allocated buffers by heap and holder, firewall regions
//! with their masters. Text by default; `--svg FILE` draws it (see
//! [`super::svg`]).

use std::path::Path;

use anyhow::Context;
use teeheap_daemon::report::{MemoryMap, Range};

use super::client::connect;
use super::{Doc, human, range};

fn span(r: &Range) -> String {
    format!("{} {:>9}", range(r.start, r.end()), human(r.len))
}

/// The map as text, one line per range, by address within each section.
pub(crate) fn text(m: &MemoryMap) -> String {
    let mut out = format!("platform {}\n", m.platform);
    if let Some(d) = &m.dram {
        out += &format!("DRAM      {}\n", span(d));
    }
    for c in &m.carveouts {
        out += &format!("carveout  {}  {} (use case {})\n", span(&c.range), c.label, c.use_case);
    }
    for l in &m.lent {
        out += &format!("lent      {}  {} to the secure world for {}\n", span(&l.range), l.label, l.use_case);
    }
    for f in &m.firewall {
        let set = |v: &[String]| if v.is_empty() { "nobody".to_owned() } else { v.join(",") };
        out += &format!("firewall  {}  {}: read {}; write {}\n", span(&f.range), f.label, set(&f.read), set(&f.write));
    }
    for p in &m.buffers {
        let holders: Vec<String> =
            p.holders.iter().map(|pid| format!("{pid} ({})", m.cmdline(*pid).unwrap_or("?"))).collect();
        let holders = if holders.is_empty() { "no process".to_owned() } else { holders.join(", ") };
        out += &format!("buffer    {}  #{} {} held by {holders}\n", span(&p.range), p.buffer, p.heap);
    }
    out
}

/// Runs `teeheap map`.
pub(crate) fn run(socket: Option<&Path>, json: bool, svg: Option<&Path>) -> anyhow::Result<()> {
    let (mut c, source) = connect(socket)?;
    let m = c.map()?;
    if let Some(path) = svg {
        let drawing = super::svg::render(&m);
        if path == Path::new("-") {
            return super::generate::write_stdout(drawing.as_bytes());
        }
        std::fs::write(path, drawing).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("teeheap: map of {} written to {}", source.line().trim_start_matches("source: "), path.display());
        return Ok(());
    }
    if json {
        Doc::print("teeheap-map/1", &source, &m, true)?;
    } else {
        println!("{}", source.line());
        print!("{}", text(&m));
    }
    Ok(())
}
