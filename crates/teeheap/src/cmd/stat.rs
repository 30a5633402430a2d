//! `teeheap stat`: per heap capacity, usage, peak, fragmentation,
//! allocation rate and failures; the secure world's lending; the daemon's
//! descriptors against its limit; per client
//! process the buffers and bytes it holds against the caps. `--watch`
//! refreshes in place, rates over the interval.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use teeheap_daemon::report::{Cap, Stat, Usage};

use super::client::connect;
use super::{Doc, Source, count, human};

/// The JSON schema of `stat --json` (docs/observability.md).
const SCHEMA: &str = "teeheap-stat/1";

/// What `--json` prints: the daemon's answer plus the rates.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    stat: &'a Stat,
    /// Allocations per second by heap: over the watch interval, else since
    /// the daemon started.
    allocations_per_s: BTreeMap<String, f64>,
}

fn rates(now: &Stat, before: Option<(&Stat, Duration)>) -> BTreeMap<String, f64> {
    now.heaps
        .iter()
        .map(|h| {
            let rate = match before {
                Some((b, dt)) => {
                    let old = b.heaps.iter().find(|o| o.name == h.name).map_or(0, |o| o.allocations);
                    h.allocations.saturating_sub(old) as f64 / dt.as_secs_f64().max(1e-3)
                }
                None => h.allocations as f64 / (now.uptime_ms as f64 / 1000.0).max(1e-3),
            };
            (h.name.clone(), (rate * 10.0).round() / 10.0)
        })
        .collect()
}

fn vs(used: Usage, cap: Option<&Cap>) -> String {
    let b = cap.and_then(|c| c.buffers).map_or_else(String::new, |c| format!("/{c}"));
    let s = cap.and_then(|c| c.bytes).map_or_else(String::new, |c| format!("/{}", human(c)));
    let bufs = if used.buffers == 1 && b.is_empty() { "buffer" } else { "buffers" };
    format!("{}{b} {bufs}, {}{s}", used.buffers, human(used.bytes))
}

fn print(source: &Source, s: &Stat, rates: &BTreeMap<String, f64>) {
    println!("{}", source.line());
    let name_w = s.heaps.iter().map(|h| h.name.len()).max().unwrap_or(0).max(4);
    let state_w = s.heaps.iter().map(|h| h.state.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<name_w$}  {:<state_w$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}  FAILURES",
        "HEAP", "STATE", "CAPACITY", "USED", "FREE", "PEAK", "LARGEST", "BUFFERS", "ALLOCS", "ALLOC/S"
    );
    for h in &s.heaps {
        let failures = if h.failures.is_empty() {
            "-".to_owned()
        } else {
            h.failures.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        println!(
            "{:<name_w$}  {:<state_w$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7.1}  {failures}",
            h.name,
            h.state,
            human(h.capacity),
            human(h.used),
            human(h.free),
            human(h.peak),
            human(h.largest_free),
            h.buffers,
            h.allocations,
            rates.get(&h.name).copied().unwrap_or(0.0),
        );
    }
    let w = &s.secure_world;
    println!(
        "\nsecure world: {} lent ({}), {} reclaimed, {} scrubbed; now {} ({}) lent; {} refused, {} busy",
        count(w.chunks_lent, "region", "regions"),
        human(w.bytes_lent),
        w.chunks_reclaimed,
        human(w.bytes_scrubbed),
        count(w.chunks_outstanding, "region", "regions"),
        human(w.bytes_outstanding),
        count(w.lend_refused, "lend", "lends"),
        count(w.reclaim_busy, "reclaim", "reclaims")
    );
    let d = &s.descriptors;
    let limit = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    println!(
        "daemon descriptors: {} open of {} (inherited {}); {} (ALLOCs answered ENOMEM)",
        d.open,
        limit(d.limit),
        limit(d.limit_inherited),
        count(d.shortages, "shortage", "shortages"),
    );
    let r = &s.resources;
    println!(
        "daemon per-buffer resources: {} inotify watches of {} (fs.inotify.max_user_watches, per user); {} mappings of {} (vm.max_map_count)",
        r.watches,
        limit(r.watches_limit),
        r.mappings,
        limit(r.mappings_limit),
    );
    let rows: Vec<(String, String)> = s
        .clients
        .iter()
        .map(|c| {
            let total = vs(Usage { buffers: c.buffers, bytes: c.bytes }, s.caps.process.as_ref());
            let heaps: Vec<String> =
                c.heaps.iter().map(|(h, u)| format!("{h}: {}", vs(*u, s.caps.heap.get(h)))).collect();
            (total, heaps.join("; "))
        })
        .collect();
    let total_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(14);
    let held_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(24);
    println!(
        "\n{:>7} {:<total_w$} {:>8}  {:<held_w$}  COMMAND",
        "PID", "TOTAL (vs cap)", "REFUSED", "HELD (per heap, vs caps)"
    );
    for (c, (total, held)) in s.clients.iter().zip(&rows) {
        println!("{:>7} {:<total_w$} {:>8}  {:<held_w$}  {}", c.pid, total, c.limit_refusals, held, c.cmdline);
    }
    if s.clients.is_empty() {
        println!("{:>7} (no process holds a buffer)", "-");
    }
}

/// Runs `teeheap stat`, once or every `watch` seconds.
pub(crate) fn run(socket: Option<&Path>, json: bool, watch: Option<f64>) -> anyhow::Result<()> {
    let (mut c, source) = connect(socket)?;
    let Some(every) = watch else {
        let s = c.stat()?;
        let r = rates(&s, None);
        if json {
            Doc::print(SCHEMA, &source, &Out { stat: &s, allocations_per_s: r }, true)?;
        } else {
            print(&source, &s, &r);
        }
        return Ok(());
    };
    let every = Duration::from_secs_f64(every.max(0.1));
    let tty = std::io::stdout().is_terminal();
    let mut last: Option<(Stat, Instant)> = None;
    loop {
        let s = c.stat()?;
        let now = Instant::now();
        let r = rates(&s, last.as_ref().map(|(b, t)| (b, now - *t)));
        if json {
            Doc::print(SCHEMA, &source, &Out { stat: &s, allocations_per_s: r }, false)?;
        } else {
            if tty {
                print!("\x1b[H\x1b[2J");
            }
            print(&source, &s, &r);
            if !tty {
                println!();
            }
        }
        last = Some((s, now));
        std::thread::sleep(every);
    }
}
