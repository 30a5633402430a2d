//! The memory map as an SVG picture: an overview bar of all DRAM to scale,
//! then one detail row per carveout, per use case's lent chunks and for
//! normal-memory buffers, each to its own scale, with buffers coloured by
//! heap and striped by holder, firewall rights in each row's caption, a
//! legend and a buffer table with addresses and sizes.

use std::collections::BTreeMap;
use std::fmt::Write;

use teeheap_daemon::report::{MemoryMap, Piece, Range};

use super::human;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 40.0;
const BAR: f64 = WIDTH - 2.0 * LEFT;
const HEAP_COLOURS: [&str; 6] = ["#4e79a7", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"];
const HOLDER_COLOURS: [&str; 6] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A piece of physical memory drawn side by side with others in a row.
struct Segment {
    range: Range,
    label: String,
}

/// Colours by heap name and by holder pid, in order of first appearance.
struct Palette {
    heaps: BTreeMap<String, &'static str>,
    holders: BTreeMap<i32, &'static str>,
}

impl Palette {
    fn new(m: &MemoryMap) -> Palette {
        let mut heaps = BTreeMap::new();
        let mut holders = BTreeMap::new();
        for p in &m.buffers {
            let n = heaps.len();
            heaps.entry(p.heap.clone()).or_insert(HEAP_COLOURS[n % HEAP_COLOURS.len()]);
            for pid in &p.holders {
                let n = holders.len();
                holders.entry(*pid).or_insert(HOLDER_COLOURS[n % HOLDER_COLOURS.len()]);
            }
        }
        Palette { heaps, holders }
    }
}

/// Cuts `segs` at the edges of `pieces`, so that every buffer piece is a
/// segment of its own (drawn at least [`MIN_SEGMENT`] wide) and each free run
/// between them another, labelled with its size.
fn split(segs: Vec<Segment>, pieces: &[Piece]) -> Vec<Segment> {
    let mut out = Vec::new();
    for s in segs {
        let mut cuts: Vec<u64> = vec![s.range.start, s.range.end()];
        for p in pieces.iter().filter(|p| p.range.start >= s.range.start && p.range.end() <= s.range.end()) {
            cuts.push(p.range.start);
            cuts.push(p.range.end());
        }
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let range = Range { start: w[0], len: w[1] - w[0] };
            let used = pieces.iter().any(|p| p.range.start <= range.start && range.end() <= p.range.end());
            let label = if used { String::new() } else { format!("free {}", human(range.len)) };
            out.push(Segment { range, label });
        }
    }
    out
}

/// Narrowest segment drawn, in px.
const MIN_SEGMENT: f64 = 64.0;

/// Draws `pieces` into a bar at `y` spanning `segments` laid side by side,
/// each at least [`MIN_SEGMENT`] wide, the rest shared in proportion.
fn row(svg: &mut String, y: f64, segments: &[Segment], pieces: &[&Piece], pal: &Palette) {
    let total: u64 = segments.iter().map(|s| s.range.len).sum();
    let min = MIN_SEGMENT.min(BAR / segments.len().max(1) as f64);
    let flexible = BAR - min * segments.len() as f64;
    let mut x = LEFT;
    let mut labelled_to = f64::MIN;
    for (i, s) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let w = min + flexible * s.range.len as f64 / total.max(1) as f64;
        let _ = writeln!(
            svg,
            r##"<rect class="segment" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="34" fill="#eeeeee" stroke="#555" stroke-width="1"/>"##
        );
        if x >= labelled_to {
            labelled_to = x + 62.0;
            let _ = writeln!(
                svg,
                r##"<text x="{x:.1}" y="{:.1}" font-size="9" fill="#333">{:#011x}</text>"##,
                y + 46.0,
                s.range.start
            );
        }
        if last {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="#333" text-anchor="end">{:#011x}</text>"##,
                x + w,
                y + 46.0,
                s.range.end()
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#777" text-anchor="middle">{}</text>"##,
            x + w / 2.0,
            y + 58.0,
            esc(&s.label)
        );
        let scale = w / s.range.len.max(1) as f64;
        for p in pieces.iter().filter(|p| p.range.start >= s.range.start && p.range.end() <= s.range.end()) {
            let px = x + (p.range.start - s.range.start) as f64 * scale;
            let pw = (p.range.len as f64 * scale).max(3.0);
            let fill = pal.heaps.get(&p.heap).copied().unwrap_or("#999");
            let _ = writeln!(
                svg,
                r##"<rect class="buffer" data-buffer="{}" data-heap="{}" data-start="{}" data-len="{}" x="{px:.1}" y="{:.1}" width="{pw:.1}" height="26" fill="{fill}" stroke="#222" stroke-width="0.5"><title>buffer #{} {} {} at {:#011x}</title></rect>"##,
                p.buffer,
                esc(&p.heap),
                p.range.start,
                p.range.len,
                y + 1.0,
                p.buffer,
                esc(&p.heap),
                human(p.range.len),
                p.range.start
            );
            let n = p.holders.len().max(1) as f64;
            for (i, pid) in p.holders.iter().enumerate() {
                let c = pal.holders.get(pid).copied().unwrap_or("#000");
                let _ = writeln!(
                    svg,
                    r##"<rect class="holder" data-pid="{pid}" x="{:.1}" y="{:.1}" width="{:.1}" height="6" fill="{c}"/>"##,
                    px + pw * i as f64 / n,
                    y + 27.0,
                    pw / n
                );
            }
            if pw >= 50.0 {
                let _ = writeln!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="white">#{} {}</text>"##,
                    px + 3.0,
                    y + 17.0,
                    p.buffer,
                    human(p.range.len)
                );
            }
        }
        x += w;
    }
}

/// Renders `m` as an SVG document.
pub(crate) fn render(m: &MemoryMap) -> String {
    let pal = Palette::new(m);
    let mut body = String::new();
    let mut y = 30.0;
    let _ = writeln!(
        body,
        r##"<text x="{LEFT}" y="{y}" font-size="18" font-weight="bold">teeheap physical memory map — platform {}</text>"##,
        esc(&m.platform)
    );
    y += 30.0;
    // Overview: all DRAM to scale.
    if let Some(d) = m.dram {
        let _ = writeln!(
            body,
            r##"<text x="{LEFT}" y="{y}" font-size="13" font-weight="bold">DRAM {} ({}), to scale</text>"##,
            super::range(d.start, d.end()),
            human(d.len)
        );
        y += 8.0;
        let sx = |a: u64| LEFT + (a.saturating_sub(d.start)) as f64 * BAR / d.len.max(1) as f64;
        let sw = |l: u64| (l as f64 * BAR / d.len.max(1) as f64).max(2.0);
        let _ = writeln!(
            body,
            r##"<rect class="dram" x="{LEFT}" y="{y}" width="{BAR}" height="30" fill="#f4f4f4" stroke="#555"/>"##
        );
        for c in &m.carveouts {
            let _ = writeln!(
                body,
                r##"<rect class="carveout" x="{:.1}" y="{y}" width="{:.1}" height="30" fill="url(#hatch)" stroke="#1f3b73" stroke-width="1.5"><title>carveout {}</title></rect>"##,
                sx(c.range.start),
                sw(c.range.len),
                esc(&c.label)
            );
        }
        for l in &m.lent {
            let _ = writeln!(
                body,
                r##"<rect class="lent" x="{:.1}" y="{y}" width="{:.1}" height="30" fill="#f28e2b" opacity="0.7"><title>{} lent for {}</title></rect>"##,
                sx(l.range.start),
                sw(l.range.len),
                esc(&l.label),
                esc(&l.use_case)
            );
        }
        for p in &m.buffers {
            let fill = pal.heaps.get(&p.heap).copied().unwrap_or("#999");
            let _ = writeln!(
                body,
                r##"<rect class="overview-buffer" x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="{fill}"/>"##,
                sx(p.range.start),
                y + 6.0,
                sw(p.range.len)
            );
        }
        for f in &m.firewall {
            let _ = writeln!(
                body,
                r##"<rect class="firewall" x="{:.1}" y="{:.1}" width="{:.1}" height="38" fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="4 2"><title>firewall {}</title></rect>"##,
                sx(f.range.start),
                y - 4.0,
                sw(f.range.len),
                esc(&f.label)
            );
        }
        let _ = writeln!(body, r##"<text x="{LEFT}" y="{:.1}" font-size="10">{:#011x}</text>"##, y + 44.0, d.start);
        let _ = writeln!(
            body,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{:#011x}</text>"##,
            LEFT + BAR,
            y + 44.0,
            d.end()
        );
        for c in &m.carveouts {
            let _ = writeln!(
                body,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#1f3b73">{:#011x} {}</text>"##,
                sx(c.range.start),
                y + 56.0,
                c.range.start,
                esc(&c.label)
            );
        }
        y += 80.0;
    }
    // Detail rows.
    let firewall_of = |r: &Range| -> String {
        let Some(f) = m.firewall.iter().find(|f| f.range.start <= r.start && r.end() <= f.range.end()) else {
            return "firewall: open to every master".to_owned();
        };
        let set = |v: &[String]| if v.is_empty() { "nobody".to_owned() } else { v.join(", ") };
        format!("firewall “{}”: read {}; write {}", f.label, set(&f.read), set(&f.write))
    };
    let mut rows: Vec<(String, String, Vec<Segment>)> = Vec::new();
    for c in &m.carveouts {
        rows.push((
            format!("carveout {} ({}) for {}", c.label, human(c.range.len), c.use_case),
            firewall_of(&c.range),
            vec![Segment { range: c.range, label: human(c.range.len) }],
        ));
    }
    let mut by_use: BTreeMap<&str, Vec<Segment>> = BTreeMap::new();
    for l in &m.lent {
        by_use
            .entry(&l.use_case)
            .or_default()
            .push(Segment { range: l.range, label: format!("{} {}", l.label, human(l.range.len)) });
    }
    for (uc, segs) in by_use {
        let bytes: u64 = segs.iter().map(|s| s.range.len).sum();
        let fw = firewall_of(&segs[0].range);
        rows.push((
            format!(
                "{} lent for {uc}, {} (side by side)",
                super::count(segs.len() as u64, "region", "regions"),
                human(bytes)
            ),
            fw,
            segs,
        ));
    }
    let covered = |p: &Piece| {
        rows.iter().flat_map(|r| &r.2).any(|s| s.range.start <= p.range.start && p.range.end() <= s.range.end())
    };
    let mut loose: Vec<Segment> = Vec::new();
    for p in m.buffers.iter().filter(|p| !covered(p)) {
        match loose.last_mut() {
            Some(s) if s.range.end() == p.range.start => s.range.len += p.range.len,
            _ => loose.push(Segment { range: p.range, label: String::new() }),
        }
    }
    if !loose.is_empty() {
        for s in &mut loose {
            s.label = human(s.range.len);
        }
        rows.push(("normal memory holding buffers (pieces side by side)".into(), firewall_of(&loose[0].range), loose));
    }
    let pieces: Vec<&Piece> = m.buffers.iter().collect();
    let rows: Vec<(String, String, Vec<Segment>)> =
        rows.into_iter().map(|(t, f, segs)| (t, f, split(segs, &m.buffers))).collect();
    if !rows.is_empty() {
        let _ = writeln!(
            body,
            r##"<text x="{LEFT}" y="{y}" font-size="11" fill="#555">Rows below: each buffer and each free run drawn at least {MIN_SEGMENT} px wide, the rest in proportion; exact addresses and sizes in the table.</text>"##
        );
        y += 24.0;
    }
    for (title, fw, segs) in &rows {
        let _ = writeln!(body, r##"<text x="{LEFT}" y="{y}" font-size="13" font-weight="bold">{}</text>"##, esc(title));
        let _ = writeln!(
            body,
            r##"<text x="{LEFT}" y="{:.1}" font-size="11" fill="#d62728">{}</text>"##,
            y + 14.0,
            esc(fw)
        );
        row(&mut body, y + 22.0, segs, &pieces, &pal);
        y += 106.0;
    }
    // Legend.
    let _ = writeln!(body, r##"<text x="{LEFT}" y="{y}" font-size="13" font-weight="bold">Legend</text>"##);
    y += 10.0;
    let mut x = LEFT;
    let item = |body: &mut String, x: &mut f64, y: f64, style: &str, label: &str| {
        let _ = writeln!(
            body,
            r##"<g class="legend"><rect x="{:.1}" y="{y:.1}" width="14" height="14" {style}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text></g>"##,
            *x,
            *x + 20.0,
            y + 11.0,
            esc(label)
        );
        *x += 30.0 + 6.5 * label.chars().count() as f64;
    };
    item(&mut body, &mut x, y, r##"fill="#f4f4f4" stroke="#555""##, "DRAM");
    item(&mut body, &mut x, y, r##"fill="url(#hatch)" stroke="#1f3b73""##, "carveout");
    item(&mut body, &mut x, y, r##"fill="#f28e2b" opacity="0.7""##, "chunk lent to the secure world");
    item(
        &mut body,
        &mut x,
        y,
        r##"fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="4 2""##,
        "firewall region",
    );
    y += 22.0;
    x = LEFT;
    for (heap, c) in &pal.heaps {
        item(&mut body, &mut x, y, &format!(r##"fill="{c}""##), &format!("heap {heap}"));
    }
    y += 22.0;
    x = LEFT;
    for (pid, c) in &pal.holders {
        let cmd = m.cmdline(*pid).unwrap_or("?");
        let cmd: String = cmd.chars().take(48).collect();
        item(&mut body, &mut x, y, &format!(r##"fill="{c}""##), &format!("holder (stripe) pid {pid} {cmd}"));
    }
    y += 40.0;
    // Buffer table.
    if !m.buffers.is_empty() {
        let _ = writeln!(body, r##"<text x="{LEFT}" y="{y}" font-size="13" font-weight="bold">Buffers</text>"##);
        y += 18.0;
        let _ = writeln!(
            body,
            r##"<text x="{LEFT}" y="{y}" font-size="11" font-family="monospace" font-weight="bold" xml:space="preserve">{}</text>"##,
            esc(&format!("{:<6} {:<30} {:<27} {:>9}  holders", "id", "heap", "physical range", "size"))
        );
        for p in &m.buffers {
            y += 15.0;
            let holders: Vec<String> = p.holders.iter().map(|pid| format!("pid {pid}")).collect();
            let line = format!(
                "#{:<5} {:<30} {} {:>9}  {}",
                p.buffer,
                p.heap,
                super::range(p.range.start, p.range.end()),
                human(p.range.len),
                if holders.is_empty() { "-".to_owned() } else { holders.join(", ") }
            );
            let _ = writeln!(
                body,
                r##"<text class="buffer-row" x="{LEFT}" y="{y}" font-size="11" font-family="monospace" xml:space="preserve">{}</text>"##,
                esc(&line)
            );
        }
        y += 20.0;
    }
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" font-family="sans-serif">
<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#c6d4ee"/><line x1="0" y1="0" x2="0" y2="8" stroke="#1f3b73" stroke-width="2"/></pattern></defs>
<rect width="100%" height="100%" fill="white"/>
{body}</svg>
"##,
        y + 10.0,
        y + 10.0
    )
}
