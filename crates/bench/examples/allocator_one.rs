//! Replays one trace through one allocator a fixed number of times, for an
//! instruction-counting profiler on a shared machine (instruction counts do
//! not swing with the load, unlike wall or CPU time):
//!
//! `valgrind --tool=callgrind target/release/examples/allocator_one ours 2 10`
//!
//! Arguments: allocator (`ours`, `offset`, `range`, `bitmap`), trace index
//! in `trace::allocator_traces()` (0 video churn, 1 trusted UI, 2 random
//! sizes, 3 random small sizes, 4 exact hole reuse) or `all`, and replays.

use teeheap_bench::bitmap::BitmapFirstFit;
use teeheap_bench::replay::{OffsetAlloc, PageAllocator, RangeAllocCrate, Replayer};
use teeheap_bench::trace::{self, Trace};
use teeheap_kernel::pool::range_alloc::RangeAllocator;

/// Replays `t` `reps` times; failed allocations of the last replay.
fn replay<A: PageAllocator>(t: &Trace, reps: u32) -> u64 {
    let mut r = Replayer::<A>::new(t);
    let mut failed = 0;
    for _ in 0..reps {
        failed = std::hint::black_box(r.run(t));
    }
    failed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("ours", String::as_str);
    let traces = trace::allocator_traces();
    let pick: Vec<&Trace> = match args.get(2).map(String::as_str) {
        None | Some("all") => traces.iter().collect(),
        Some(i) => vec![&traces[i.parse::<usize>().expect("a trace index")]],
    };
    let reps: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    for t in pick {
        let failed = match which {
            "ours" => replay::<RangeAllocator>(t, reps),
            "offset" => replay::<OffsetAlloc>(t, reps),
            "range" => replay::<RangeAllocCrate>(t, reps),
            "bitmap" => replay::<BitmapFirstFit>(t, reps),
            other => panic!("unknown allocator {other}"),
        };
        println!("{}: {which}, {reps} replays of {} allocations, {failed} failed", t.name, t.allocs());
    }
}
