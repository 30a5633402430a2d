//! Issue 7 item 2: the cost of one alloc+free through the kernel model's
//! protected heap with 1k, 10k and 100k buffers alive, and the heap bytes
//! of metadata each live buffer holds, measured with a counting allocator.
//!
//! The live buffers are one page each, every other one freed, so the
//! carveout allocator holds one hole per live buffer (its worst shape for
//! a given count); the timed allocation takes a one-page hole and gives it
//! back.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion};
use teeheap_bench::counting::{self, CountingAlloc};
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_kernel::dma_buf::{DmaBuf, SgTable};
use teeheap_kernel::dma_heap::DmaHeap;
use teeheap_kernel::tee::heap::ProtectedBuffer;
use teeheap_platform::config::ByteSize;
use teeheap_platform::{PAGE_SIZE, Platform, PlatformConfig};
use teeheap_secure_world::SecureWorld;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const HEAP: &str = "protected,secure-video";
const COUNTS: [usize; 3] = [1_000, 10_000, 100_000];

/// The default platform with a 1 GiB secure-video carveout, room for 200k
/// one-page buffers.
fn boot() -> (Arc<Kernel>, OpteeBackend<SecureWorld>, Arc<DmaHeap>) {
    let mut config = PlatformConfig::embedded_default();
    let top = config.dram.base + config.dram.size.0;
    config.carveout[0].size = ByteSize(1 << 30);
    config.carveout[0].base = top - (1 << 30);
    let kernel = Kernel::boot(Arc::new(Platform::new(config).expect("platform")));
    let world = SecureWorld::boot(kernel.platform()).expect("secure world");
    let backend =
        OpteeBackend::probe(&kernel, world, OpteeConfig::for_platform(kernel.platform())).expect("OP-TEE backend");
    let heap = kernel.dma_heaps().open(HEAP).expect("secure-video heap");
    (kernel, backend, heap)
}

/// `n` live one-page buffers with a one-page hole after each.
fn fragmented(heap: &DmaHeap, n: usize) -> Vec<Arc<DmaBuf>> {
    let all: Vec<Arc<DmaBuf>> = (0..2 * n).map(|_| heap.allocate(PAGE_SIZE, 0, 0).expect("allocate")).collect();
    all.into_iter().step_by(2).collect()
}

/// Heap bytes per live buffer, contiguous and fragmented, and which block
/// sizes one buffer allocates.
fn metadata(heap: &DmaHeap) {
    println!("\n## metadata per live buffer (counting global allocator)\n");
    println!("| live buffers | layout | heap bytes / buffer | heap blocks / buffer |");
    println!("|---|---|---|---|");
    for n in COUNTS {
        let (b0, k0) = (counting::live_bytes(), counting::live_blocks());
        let bufs: Vec<Arc<DmaBuf>> = (0..n).map(|_| heap.allocate(PAGE_SIZE, 0, 0).expect("allocate")).collect();
        // The Vec holding the handles is the caller's, not the kernel's.
        let own = (bufs.capacity() * size_of::<Arc<DmaBuf>>()) as isize;
        let (b1, k1) = (counting::live_bytes() - own, counting::live_blocks() - 1);
        println!("| {n} | contiguous | {:.1} | {:.2} |", (b1 - b0) as f64 / n as f64, (k1 - k0) as f64 / n as f64);
        drop(bufs);
        let (b0, k0) = (counting::live_bytes(), counting::live_blocks());
        let bufs = fragmented(heap, n);
        let own = (bufs.capacity() * size_of::<Arc<DmaBuf>>()) as isize;
        let (b1, k1) = (counting::live_bytes() - own, counting::live_blocks() - 1);
        println!(
            "| {n} | one hole per buffer | {:.1} | {:.2} |",
            (b1 - b0) as f64 / n as f64,
            (k1 - k0) as f64 / n as f64
        );
    }
    let sample = 1000;
    let mut keep = Vec::with_capacity(sample);
    counting::record_sizes(true);
    for _ in 0..sample {
        keep.push(heap.allocate(PAGE_SIZE, 0, 0).expect("allocate"));
    }
    counting::record_sizes(false);
    println!("\nblocks requested per allocated buffer (sizes in bytes, averaged over {sample}):");
    for (size, count) in counting::recorded_sizes() {
        println!("  {size:>6} B x {:.3}", count as f64 / sample as f64);
    }
    println!(
        "size_of: DmaBuf {} (+16 Arc counts), ProtectedBuffer {} (boxed as dyn DmaBufOps), SgTable {} (+16 per range)\n",
        size_of::<DmaBuf>(),
        size_of::<ProtectedBuffer>(),
        size_of::<SgTable>()
    );
}

fn main() {
    let (_kernel, _backend, heap) = boot();
    metadata(&heap);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("heap alloc+free");
    for n in COUNTS {
        let live = fragmented(&heap, n);
        g.bench_with_input(BenchmarkId::new("live buffers", n), &n, |b, _| {
            b.iter(|| drop(heap.allocate(PAGE_SIZE, 0, 0).expect("allocate")));
        });
        drop(live);
    }
    g.finish();
    c.final_summary();
}
