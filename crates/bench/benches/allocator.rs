//! Issue 7 item 1: teeheap's carveout allocator against `offset-allocator`,
//! `range-alloc` and a genalloc-style bitmap first fit, on the same traces.
//!
//! Prints the quality table (failed allocations at 90 % fill, largest free
//! run / total free after the churn) and our allocator's memory per hole
//! first, then times one full replay of
//! each trace per iteration; criterion's element throughput is
//! allocations (each with its free) per second.

use criterion::{BenchmarkId, Criterion, Throughput};
use teeheap_bench::bitmap::BitmapFirstFit;
use teeheap_bench::counting::{self, CountingAlloc};
use teeheap_bench::replay::{OffsetAlloc, PageAllocator, RangeAllocCrate, Replayer};
use teeheap_bench::trace::{self, Trace};
use teeheap_kernel::pool::range_alloc::{PageRun, RangeAllocator};

// Counts the heap bytes of our allocator for the memory table (one atomic
// add per heap allocation; the timed replays allocate next to nothing).
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn quality_row<A: PageAllocator>(t: &Trace) {
    let s = Replayer::<A>::new(t).run_with_stats(t);
    println!(
        "| {} | {} | {} / {} | {:.3} | {:.1} |",
        t.name,
        A::NAME,
        s.failed,
        s.allocs,
        s.largest_over_free,
        s.holes
    );
}

fn quality(traces: &[Trace]) {
    println!("\n## allocator quality at {:.0} % fill (deterministic)\n", trace::FILL * 100.0);
    println!("| trace | allocator | failed / allocs | largest free / total free (mean) | holes (mean) |");
    println!("|---|---|---|---|---|");
    for t in traces {
        quality_row::<RangeAllocator>(t);
        quality_row::<OffsetAlloc>(t);
        quality_row::<RangeAllocCrate>(t);
        quality_row::<BitmapFirstFit>(t);
    }
    println!();
    for t in traces {
        println!(
            "{}: {} pages, {} ops, {} allocs, ideal peak {:.1} % of the pool",
            t.name,
            t.capacity,
            t.ops.len(),
            t.allocs(),
            t.peak_pages() as f64 * 100.0 / t.capacity as f64
        );
    }
    println!();
}

/// Our allocator over a 1 GiB pool (2^18 pages) with `holes` holes of
/// `len(i)` pages, each followed by one allocated page; heap bytes it holds.
fn bytes_with_holes(holes: u64, len: fn(u64) -> u64) -> (RangeAllocator, isize) {
    let before = counting::live_bytes();
    let mut ra = RangeAllocator::new(trace::GIB_PAGES);
    ra.alloc(trace::GIB_PAGES).expect("an empty pool holds itself");
    let mut at = 0;
    for i in 0..holes {
        ra.free(PageRun { start: at, len: len(i) }).expect("allocated");
        at += len(i) + 1;
    }
    assert_eq!(ra.hole_count() as u64, holes);
    let bytes = counting::live_bytes() - before;
    (ra, bytes)
}

/// Heap bytes per hole of our allocator, measured with the counting global
/// allocator: a fixed part for the pool (the address bitsets, the class
/// table) and a part per hole (its entry in its size class).
fn memory() {
    println!("\n## teeheap allocator memory, 1 GiB pool (counting global allocator)\n");
    println!("| holes | hole sizes | heap bytes | bytes per hole beyond the pool's fixed part |");
    println!("|---|---|---|---|");
    let (_, fixed) = bytes_with_holes(0, |_| 1);
    println!("| 0 | (pool fully allocated) | {fixed} | — |");
    /// Name, length of hole `i`, hole counts.
    type Shape = (&'static str, fn(u64) -> u64, &'static [u64]);
    let shapes: [Shape; 2] = [
        ("1 page (one crowded class)", |_| 1, &[1_000, 10_000, 100_000]),
        ("1–16 pages (16 classes)", |i| 1 + i * 7 % 16, &[100, 1_000, 10_000]),
    ];
    for (name, len, counts) in shapes {
        for &h in counts {
            let (_, bytes) = bytes_with_holes(h, len);
            println!("| {h} | {name} | {bytes} | {:.1} |", (bytes - fixed) as f64 / h as f64);
        }
    }
    println!();
}

fn time<A: PageAllocator>(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, t: &Trace) {
    let mut r = Replayer::<A>::new(t);
    g.bench_function(BenchmarkId::from_parameter(A::NAME), |b| b.iter(|| r.run(t)));
}

fn main() {
    let traces = trace::allocator_traces();
    quality(&traces);
    memory();
    let mut c = Criterion::default().configure_from_args();
    for t in &traces {
        let mut g = c.benchmark_group(format!("alloc+free/{}", t.name));
        g.throughput(Throughput::Elements(t.allocs() as u64));
        g.sample_size(10);
        time::<RangeAllocator>(&mut g, t);
        time::<OffsetAlloc>(&mut g, t);
        time::<RangeAllocCrate>(&mut g, t);
        time::<BitmapFirstFit>(&mut g, t);
        g.finish();
    }
    c.final_summary();
}
