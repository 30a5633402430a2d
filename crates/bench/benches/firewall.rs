//! Issue 7 item 5: a device copy through the firewall (`Platform::copy`,
//! both ends checked) against a plain memcpy of the same size, and the
//! cost of one access check with 1, 16 and 256 regions programmed.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use teeheap_platform::{
    AccessKind, Firewall, Master, MasterSet, PAGE_SIZE, PhysAddr, PhysRange, Platform, PlatformConfig, Rights, UseCase,
};

const CARVEOUT: u64 = 0x4300_0000;
/// A bitstream in normal memory.
const SRC: u64 = 0x4000_0000;
const SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];

fn copies(c: &mut Criterion) {
    // 64 MiB of DRAM with a 16 MiB secure-video carveout at the top.
    let cfg =
        PlatformConfig::small("bench-firewall", 64 << 20).with_carveout("sv", UseCase::SecureVideo, CARVEOUT, 16 << 20);
    let p = Platform::new(cfg).expect("platform");
    let mut g = c.benchmark_group("device copy");
    for len in SIZES {
        // Touch both ends once so no page fault lands in the measurement.
        p.fill(Master::NsCpu, PhysRange::new(PhysAddr(SRC), len).expect("range"), 0x5a).expect("fill src");
        p.copy(Master::VideoDecoder, PhysAddr(SRC), PhysAddr(CARVEOUT), len).expect("decoder writes protected");
        assert!(p.copy(Master::NsCpu, PhysAddr(SRC), PhysAddr(CARVEOUT), len).is_err(), "the CPU may not");
        g.throughput(Throughput::Bytes(len));
        g.bench_with_input(BenchmarkId::new("through firewall", len), &len, |b, &len| {
            b.iter(|| p.copy(Master::VideoDecoder, PhysAddr(SRC), PhysAddr(CARVEOUT), black_box(len)).expect("copy"));
        });
        // The floor copies between page-aligned buffers, as the platform's
        // are (malloc'd buffers at arbitrary offsets measured slower here).
        let n = len as usize;
        let mut backing = vec![0x5au8; 2 * n + PAGE_SIZE as usize];
        let skip = backing.as_ptr().align_offset(PAGE_SIZE as usize);
        let (src, dst) = backing[skip..skip + 2 * n].split_at_mut(n);
        g.bench_with_input(BenchmarkId::new("plain memcpy", len), &len, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&*src)));
        });
    }
    g.finish();
}

fn checks(c: &mut Criterion) {
    let mut g = c.benchmark_group("firewall check");
    let rights = Rights { read: MasterSet::of(&[Master::Display]), write: MasterSet::of(&[Master::VideoDecoder]) };
    for n in [1u64, 16, 256] {
        let fw = Firewall::default();
        // One-page regions with a page of open memory between them.
        for i in 0..n {
            let r = PhysRange::new(PhysAddr(0x8000_0000 + 2 * i * PAGE_SIZE), PAGE_SIZE).expect("range");
            fw.add_region(r, rights, format!("region {i}")).expect("add region");
        }
        let target = PhysRange::new(PhysAddr(0x8000_0000 + 2 * (n / 2) * PAGE_SIZE), PAGE_SIZE).expect("range");
        fw.check(Master::VideoDecoder, target, AccessKind::Write).expect("allowed");
        g.bench_with_input(BenchmarkId::new("regions", n), &n, |b, _| {
            b.iter(|| fw.check(black_box(Master::VideoDecoder), black_box(target), AccessKind::Write));
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    copies(&mut c);
    checks(&mut c);
    c.final_summary();
}
