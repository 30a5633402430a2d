//! The carveout allocator and its peers timed in thread CPU time, for a
//! shared machine where wall time (criterion's) swings with the load.
//!
//! Same traces and replay as `benches/allocator.rs`. For each trace, the
//! allocators take turns (the order rotates every round), each sample
//! replaying the whole trace enough times to last ~20 ms of CPU; the table
//! shows the best sample per allocator in ns per alloc+free, and
//! offset-allocator's time over ours (≥ 1.0: ours is faster).
//!
//! `cargo run --release -p teeheap-bench --example allocator_cpu [rounds]`

use rustix::time::{ClockId, clock_gettime};
use teeheap_bench::bitmap::BitmapFirstFit;
use teeheap_bench::replay::{OffsetAlloc, PageAllocator, RangeAllocCrate, Replayer};
use teeheap_bench::trace::{self, Trace};
use teeheap_kernel::pool::range_alloc::RangeAllocator;

/// CPU time of this thread, in ns.
fn cpu_ns() -> u128 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// One timed allocator: replays a trace `reps` times per sample.
struct Timed {
    name: &'static str,
    sample: Box<dyn FnMut(u32) -> u128>,
    best: f64,
}

fn timed<A: PageAllocator + 'static>(t: &Trace) -> Timed {
    let t = t.clone();
    let mut r = Replayer::<A>::new(&t);
    Timed {
        name: A::NAME,
        sample: Box::new(move |reps| {
            let start = cpu_ns();
            for _ in 0..reps {
                std::hint::black_box(r.run(&t));
            }
            cpu_ns() - start
        }),
        best: f64::INFINITY,
    }
}

fn main() {
    let rounds: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    println!(
        "| trace | {} | offset-allocator / teeheap |",
        ["teeheap", "offset-allocator", "range-alloc", "bitmap first-fit"].join(" | ")
    );
    println!("|---|---|---|---|---|---|");
    for t in trace::allocator_traces() {
        let mut all = vec![
            timed::<RangeAllocator>(&t),
            timed::<OffsetAlloc>(&t),
            timed::<RangeAllocCrate>(&t),
            timed::<BitmapFirstFit>(&t),
        ];
        let allocs = t.allocs() as f64;
        // Calibrate: repetitions for ~20 ms of CPU each.
        let reps: Vec<u32> = all
            .iter_mut()
            .map(|a| {
                let once = (a.sample)(1).max(1);
                u32::try_from(20_000_000 / once).unwrap_or(u32::MAX).max(1)
            })
            .collect();
        for round in 0..rounds as usize {
            for i in 0..all.len() {
                let k = (i + round) % all.len();
                let a = &mut all[k];
                let ns = (a.sample)(reps[k]) as f64 / f64::from(reps[k]) / allocs;
                a.best = a.best.min(ns);
            }
        }
        let cells: Vec<String> = all.iter().map(|a| format!("{:.0}", a.best)).collect();
        println!("| {} | {} | **{:.2}** |", t.name, cells.join(" | "), all[1].best / all[0].best);
        for a in &all {
            debug_assert!(!a.name.is_empty());
        }
    }
}
