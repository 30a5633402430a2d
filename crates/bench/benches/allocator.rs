//! Issue 7 item 1: teeheap's carveout allocator against `offset-allocator`,
//! `range-alloc` and a genalloc-style bitmap first fit, on the same traces.
//!
//! Prints the quality table (failed allocations at 90 % fill, largest free
//! run / total free after the churn) first, then times one full replay of
//! each trace per iteration; criterion's element throughput is
//! allocations (each with its free) per second.

use criterion::{BenchmarkId, Criterion, Throughput};
use teeheap_bench::bitmap::BitmapFirstFit;
use teeheap_bench::replay::{OffsetAlloc, PageAllocator, RangeAllocCrate, Replayer};
use teeheap_bench::trace::{self, Trace};
use teeheap_kernel::pool::range_alloc::RangeAllocator;

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

fn time<A: PageAllocator>(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, t: &Trace) {
    let mut r = Replayer::<A>::new(t);
    g.bench_function(BenchmarkId::from_parameter(A::NAME), |b| b.iter(|| r.run(t)));
}

fn main() {
    let traces = trace::allocator_traces();
    quality(&traces);
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
