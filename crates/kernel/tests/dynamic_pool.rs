//! The dynamic pool against a fake lender: growth by chunks, reclaim of each
//! empty chunk exactly once, never while a buffer lives in it, the cap,
//! refused lends, EBUSY reclaims retried, and `update_shm` cookies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use teeheap_kernel::pool::dynamic::{ChunkStats, DynamicConfig, DynamicPool, ProtMemLender};
use teeheap_kernel::pool::{PoolAlloc, ProtMemPool, ProtMemRef};
use teeheap_kernel::tee::heap::ProtectedBuffer;
use teeheap_kernel::tee::{TeeDesc, TeeDevice};
use teeheap_kernel::{Errno, Error, Kernel, Result};
use teeheap_platform::{Len, PAGE_SIZE, PhysRange, Platform, PlatformConfig, UseCase};

const MIB: u64 = 1 << 20;

/// What the fake secure world saw and holds.
#[derive(Debug, Default)]
struct Seen {
    next_cookie: u64,
    /// Lent now: cookie -> range.
    live: BTreeMap<u64, PhysRange>,
    /// Every successful lend, in order.
    lends: Vec<(UseCase, PhysRange, u64)>,
    /// Every successful reclaim, in order.
    reclaims: Vec<u64>,
    /// Every reclaim attempt, in order.
    attempts: Vec<u64>,
    fail_lend: Option<Errno>,
    busy: bool,
}

/// A lender that records calls and can refuse lends or answer EBUSY.
#[derive(Debug, Default)]
struct FakeLender(Mutex<Seen>);

impl FakeLender {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap()
    }
}

impl ProtMemLender for FakeLender {
    fn lend(&self, use_case: UseCase, range: PhysRange) -> Result<u64> {
        let mut s = self.seen();
        if let Some(errno) = s.fail_lend {
            return Err(Error::new(errno, "fake lender refuses"));
        }
        assert!(s.live.values().all(|r| !r.overlaps(&range)), "lent {range} twice");
        s.next_cookie += 1;
        let cookie = 0xc0_0000 + s.next_cookie;
        s.live.insert(cookie, range);
        s.lends.push((use_case, range, cookie));
        Ok(cookie)
    }

    fn reclaim(&self, cookie: u64) -> Result<()> {
        let mut s = self.seen();
        s.attempts.push(cookie);
        if s.busy {
            return Err(Error::new(Errno::EBUSY, "fake secure world still uses it"));
        }
        s.live.remove(&cookie).ok_or(Error::new(Errno::EINVAL, "unknown cookie"))?;
        s.reclaims.push(cookie);
        Ok(())
    }
}

fn kernel() -> Arc<Kernel> {
    Kernel::boot(Arc::new(Platform::new(PlatformConfig::small("t", 64 << 20)).unwrap()))
}

fn pages(n: u64) -> Len {
    Len::from_pages(n).unwrap()
}

fn bytes(n: u64) -> Len {
    Len::page_align(n).unwrap()
}

/// 1 MiB chunks, 1 MiB aligned, capped at `max`.
fn pool(kernel: &Kernel, max: u64) -> (DynamicPool, Arc<FakeLender>) {
    let lender = Arc::new(FakeLender::default());
    let config = DynamicConfig { chunk: bytes(MIB), align: bytes(MIB), max };
    let pool = DynamicPool::new(UseCase::TrustedUi, config, lender.clone(), Arc::clone(kernel.normal_memory()));
    (pool, lender)
}

fn range(a: &PoolAlloc) -> PhysRange {
    assert_eq!(a.sg.ranges().len(), 1, "one contiguous range");
    a.sg.ranges()[0]
}

/// Every live allocation lies at its offset in a chunk the secure world
/// holds under the allocation's cookie.
fn check_inside_lent(lender: &FakeLender, live: &[&PoolAlloc]) {
    let s = lender.seen();
    for a in live {
        let chunk = s.live.get(&a.tag).unwrap_or_else(|| panic!("cookie {:#x} of a live buffer reclaimed", a.tag));
        assert!(chunk.contains_range(&range(a)));
        assert_eq!(range(a).start().checked_offset_from(chunk.start()), Some(a.offset));
    }
}

#[test]
fn grows_across_chunks_and_reclaims_each_exactly_once() {
    let k = kernel();
    let normal = k.normal_memory();
    let baseline = normal.pages_used();
    let (pool, lender) = pool(&k, 8 * MIB);

    // 600 KiB each: no two fit in one 1 MiB chunk.
    let big: Vec<PoolAlloc> = (0..4).map(|_| pool.alloc(bytes(600 << 10)).unwrap()).collect();
    assert_eq!(lender.seen().lends.len(), 4);
    assert!(lender.seen().lends.iter().all(|(uc, r, _)| *uc == UseCase::TrustedUi && r.len() == MIB));
    assert!(lender.seen().lends.iter().all(|(_, r, _)| r.start().raw() % MIB == 0), "chunks are aligned");
    assert_eq!(normal.pages_used(), baseline + 4 * MIB);
    assert_eq!(pool.stats().used, 4 * (600 << 10));
    // The largest allocation that would succeed: growth by the 4 MiB left
    // under the cap, more than any lent region's free run.
    assert_eq!(pool.stats().largest_free, 4 * MIB);

    // Best fit: a 400 KiB buffer leaves a 24 KiB hole in its chunk, which
    // the next 20 KiB buffer takes rather than a 424 KiB hole.
    let mid = pool.alloc(bytes(400 << 10)).unwrap();
    let small = pool.alloc(bytes(20 << 10)).unwrap();
    assert_eq!(small.tag, mid.tag, "best fit across chunks");
    assert_eq!(lender.seen().lends.len(), 4, "no growth while lent chunks fit");
    check_inside_lent(&lender, &big.iter().chain([&mid, &small]).collect::<Vec<_>>());

    let st = pool.stats();
    assert_eq!((st.kind, st.capacity), ("dynamic", 8 * MIB));
    assert_eq!(st.source, "normal memory lent in chunks of 1 MiB (4 MiB in 4 lent regions, cap 8 MiB)");

    for a in big.into_iter().chain([mid, small]) {
        pool.free(&a);
    }
    let s = lender.seen();
    assert!(s.live.is_empty());
    let lent: BTreeSet<u64> = s.lends.iter().map(|l| l.2).collect();
    let mut reclaimed = s.reclaims.clone();
    reclaimed.sort_unstable();
    assert_eq!(reclaimed, lent.into_iter().collect::<Vec<_>>(), "every chunk reclaimed exactly once");
    drop(s);
    assert_eq!(normal.pages_used(), baseline);
    assert_eq!(
        pool.chunk_stats(),
        ChunkStats { lent_total: 4, reclaimed_total: 4, ..ChunkStats::default() },
        "nothing lent, nothing pending"
    );
}

#[test]
fn a_chunk_is_never_reclaimed_while_a_buffer_lives_in_it() {
    let k = kernel();
    let (pool, lender) = pool(&k, 8 * MIB);
    // Two chunks, three buffers each (300 KiB: three fit in 1 MiB).
    let mut live: Vec<Option<PoolAlloc>> = (0..6).map(|_| Some(pool.alloc(bytes(300 << 10)).unwrap())).collect();
    assert_eq!(lender.seen().lends.len(), 2);
    let cookies: Vec<u64> = lender.seen().lends.iter().map(|l| l.2).collect();
    // Free alternately from the two chunks.
    for (step, i) in [0, 3, 1, 4, 2, 5].into_iter().enumerate() {
        let a = live[i].take().unwrap();
        let tag = a.tag;
        pool.free(&a);
        let still: Vec<&PoolAlloc> = live.iter().flatten().collect();
        check_inside_lent(&lender, &still);
        let chunk_empty = still.iter().all(|a| a.tag != tag);
        assert_eq!(lender.seen().reclaims.contains(&tag), chunk_empty, "step {step}");
    }
    assert_eq!(lender.seen().reclaims, [cookies[0], cookies[1]]);
    assert_eq!(lender.seen().attempts.len(), 2, "no reclaim attempt on a chunk in use");
}

#[test]
fn an_allocation_larger_than_one_chunk_gets_a_multiple_of_the_granularity() {
    let k = kernel();
    let (pool, lender) = pool(&k, 8 * MIB);
    let a = pool.alloc(bytes(2 * MIB + 1)).unwrap();
    assert_eq!(range(&a).len(), 2 * MIB + PAGE_SIZE);
    assert_eq!(lender.seen().lends[0].1.len(), 3 * MIB);
    // One page with a 3-page granularity takes a 3-page chunk.
    let lender3 = Arc::new(FakeLender::default());
    let config = DynamicConfig { chunk: pages(3), align: pages(1), max: MIB };
    let p3 = DynamicPool::new(UseCase::SecureVideo, config, lender3.clone(), Arc::clone(k.normal_memory()));
    let one = p3.alloc(pages(1)).unwrap();
    assert_eq!(lender3.seen().lends[0].1.len(), 3 * PAGE_SIZE);
    p3.free(&one);
    pool.free(&a);
    assert!(lender.seen().live.is_empty() && lender3.seen().live.is_empty());
}

#[test]
fn the_cap_gives_enomem() {
    let k = kernel();
    let (pool, lender) = pool(&k, 2 * MIB);
    assert_eq!(pool.alloc(bytes(2 * MIB + 1)).unwrap_err().errno(), Errno::ENOMEM, "bigger than the cap");
    let a = pool.alloc(bytes(MIB)).unwrap();
    let b = pool.alloc(bytes(MIB)).unwrap();
    assert_eq!(pool.alloc(pages(1)).unwrap_err().errno(), Errno::ENOMEM);
    assert_eq!(lender.seen().lends.len(), 2, "no lend over the cap");
    pool.free(&a);
    let c = pool.alloc(pages(1)).unwrap();
    assert_eq!(pool.chunk_stats().lent_now, 2);
    pool.free(&b);
    pool.free(&c);
    assert_eq!(pool.chunk_stats().lent_now, 0);
}

#[test]
fn largest_and_free_count_growth_and_normal_memory_counts_what_is_lent() {
    let k = kernel();
    let normal = k.normal_memory();
    let baseline = normal.pages_used();
    let system = || k.dma_heaps().list().into_iter().find(|h| h.name().as_str() == "system").unwrap().info();
    let capacity = system().capacity;
    assert_eq!(system().free, capacity - baseline);
    let (pool, _lender) = pool(&k, 8 * MIB);
    // Nothing lent yet: the largest allocation that would succeed is one
    // that grows the pool to its cap.
    let s = pool.stats();
    assert_eq!((s.largest_free, s.free), (8 * MIB, 8 * MIB));
    let a = pool.alloc(pages(1)).unwrap();
    let s = pool.stats();
    assert_eq!(s.largest_free, 7 * MIB, "growth by the 7 MiB left under the cap beats the lent region's free run");
    assert_eq!(s.free, (MIB - PAGE_SIZE) + 7 * MIB);
    // The lent region is not free normal memory, and says where it went.
    let sys = system();
    assert_eq!((sys.used, sys.free), (0, capacity - baseline - MIB));
    assert!(sys.pool.contains("1 MiB lent to the secure world"), "{}", sys.pool);
    assert_eq!(normal.free_bytes(), sys.free);
    // Normal memory running out bounds the growth too.
    let hog = normal.alloc_pages(bytes(normal.free_bytes() - 2 * MIB)).unwrap();
    let s = pool.stats();
    assert!(s.largest_free <= 2 * MIB && s.largest_free >= MIB - PAGE_SIZE, "{}", s.largest_free);
    assert_eq!(s.free, (MIB - PAGE_SIZE) + 2 * MIB);
    let big = pool.alloc(bytes(s.largest_free));
    assert!(big.is_ok(), "the reported largest allocation succeeds");
    pool.free(&big.unwrap());
    normal.free_pages(hog);
    pool.free(&a);
    assert_eq!(system().free, capacity - baseline);
}

#[test]
fn a_refused_lend_gives_enomem_and_leaks_no_normal_memory() {
    let k = kernel();
    let normal = k.normal_memory();
    let baseline = normal.pages_used();
    let (pool, lender) = pool(&k, 8 * MIB);
    lender.seen().fail_lend = Some(Errno::EACCES);
    assert_eq!(pool.alloc(pages(1)).unwrap_err().errno(), Errno::ENOMEM);
    assert_eq!(normal.pages_used(), baseline);
    assert_eq!(pool.chunk_stats(), ChunkStats { lend_failures: 1, ..ChunkStats::default() });
    lender.seen().fail_lend = None;
    let a = pool.alloc(pages(1)).unwrap();
    assert_eq!(normal.pages_used(), baseline + MIB);
    pool.free(&a);
    assert_eq!(normal.pages_used(), baseline);
}

#[test]
fn exhausted_normal_memory_gives_enomem() {
    let k = kernel();
    let normal = k.normal_memory();
    let (pool, lender) = pool(&k, 1 << 30);
    // Leave less than one aligned chunk of normal memory.
    let hog = normal.alloc_pages(bytes(63 * MIB + (512 << 10))).unwrap();
    assert_eq!(pool.alloc(pages(1)).unwrap_err().errno(), Errno::ENOMEM);
    assert!(lender.seen().lends.is_empty());
    normal.free_pages(hog);
    pool.free(&pool.alloc(pages(1)).unwrap());
}

#[test]
fn an_ebusy_reclaim_is_retried_and_pages_stay_out_of_normal_memory_until_it_succeeds() {
    let k = kernel();
    let normal = k.normal_memory();
    let baseline = normal.pages_used();
    let (mut pool, lender) = pool(&k, 8 * MIB);

    lender.seen().busy = true;
    let a = pool.alloc(bytes(MIB)).unwrap();
    let chunk_a = lender.seen().live[&a.tag];
    pool.free(&a);
    let st = pool.chunk_stats();
    assert_eq!((st.lent_now, st.reclaim_pending, st.reclaimed_total), (1, 1, 0));
    assert_eq!(normal.pages_used(), baseline + MIB, "still lent: not normal memory");
    // Normal memory cannot hand out any page of the busy chunk.
    let mut hogs = Vec::new();
    while let Some(r) = normal.alloc_pages(bytes(MIB)) {
        assert!(!r.overlaps(&chunk_a), "{r} handed out while the secure world holds {chunk_a}");
        hogs.push(r);
    }
    assert_eq!(hogs.len(), 63);
    hogs.into_iter().for_each(|r| normal.free_pages(r));

    // Still usable: a new buffer goes into the pending chunk, no new lend.
    let b = pool.alloc(bytes(512 << 10)).unwrap();
    assert_eq!(lender.seen().lends.len(), 1);
    assert_eq!(pool.chunk_stats().reclaim_pending, 0, "holds a buffer again");
    let c = pool.alloc(bytes(768 << 10)).unwrap();
    assert_eq!(lender.seen().lends.len(), 2);
    pool.free(&b); // chunk A empty, reclaim refused again
    assert_eq!(pool.chunk_stats().reclaim_pending, 1);

    // The secure world lets go: the next alloc retries and succeeds.
    lender.seen().busy = false;
    let d = pool.alloc(pages(1)).unwrap();
    assert_eq!(d.tag, c.tag, "best fit in chunk B, not the empty A");
    let cookie_a = chunk_cookie(&lender, chunk_a);
    assert_eq!(lender.seen().reclaims, [cookie_a]);
    assert_eq!(normal.pages_used(), baseline + MIB);
    let st = pool.chunk_stats();
    assert_eq!((st.lent_now, st.reclaim_pending, st.reclaimed_total), (1, 0, 1));
    assert!(st.reclaim_retries >= 1);

    // Busy again at the end: destroy retries the pending chunk.
    lender.seen().busy = true;
    pool.free(&c);
    pool.free(&d);
    assert_eq!(pool.chunk_stats().reclaim_pending, 1);
    assert_eq!(normal.pages_used(), baseline + MIB);
    lender.seen().busy = false;
    pool.destroy();
    assert!(lender.seen().live.is_empty());
    assert_eq!(normal.pages_used(), baseline);
    assert_eq!(pool.chunk_stats().reclaimed_total, 2);
}

fn chunk_cookie(lender: &FakeLender, r: PhysRange) -> u64 {
    lender.seen().lends.iter().find(|l| l.1 == r).unwrap().2
}

#[test]
fn update_shm_gives_cookie_and_offset() {
    let k = kernel();
    let (pool, lender) = pool(&k, 8 * MIB);
    let a = pool.alloc(pages(3)).unwrap();
    let b = pool.alloc(pages(5)).unwrap();
    let (_, chunk, cookie) = lender.seen().lends[0];
    assert_eq!(pool.update_shm(&a).unwrap(), ProtMemRef::Lent { cookie, offset: 0 });
    assert_eq!(pool.update_shm(&b).unwrap(), ProtMemRef::Lent { cookie, offset: 3 * PAGE_SIZE });
    assert_eq!(range(&b).start(), chunk.start().checked_add(3 * PAGE_SIZE).unwrap());
    let forged = PoolAlloc { sg: b.sg.clone(), offset: b.offset, tag: cookie + 1 };
    assert_eq!(pool.update_shm(&forged).unwrap_err().errno(), Errno::EINVAL);
    pool.free(&a);
    pool.free(&b);
}

#[test]
fn through_the_tee_heap_buffers_are_lent_and_reclaimed() {
    let k = kernel();
    let baseline = k.normal_memory().pages_used();
    let dev = TeeDevice::new("tee0", TeeDesc { impl_id: 1, impl_caps: 0, gen_caps: 1 });
    let (pool, lender) = pool(&k, 4 * MIB);
    k.tee_register_dma_heap(&dev, UseCase::TrustedUi, Box::new(pool)).unwrap();
    let heap = k.dma_heaps().open("protected,trusted-ui").unwrap();
    let info = heap.info();
    assert_eq!(info.capacity, 4 * MIB);
    assert_eq!(info.pool, "dynamic normal memory lent in chunks of 1 MiB (0 B in 0 lent regions, cap 4 MiB)");

    let fb: Vec<_> = (0..3).map(|_| heap.allocate(700 << 10, 0, 0).unwrap()).collect();
    assert_eq!(lender.seen().lends.len(), 3);
    assert!(heap.info().pool.contains("(3 MiB in 3 lent regions, cap 4 MiB)"), "{}", heap.info().pool);
    for buf in &fb {
        let pb = buf.ops().as_any().downcast_ref::<ProtectedBuffer>().unwrap();
        let ProtMemRef::Lent { cookie, offset } = pb.protmem_ref().unwrap() else { panic!("not lent") };
        let chunk = lender.seen().live[&cookie];
        assert_eq!(buf.sg_table().ranges()[0].start(), chunk.start().checked_add(offset).unwrap());
    }
    assert_eq!(heap.allocate(2 * MIB, 0, 0).unwrap_err().errno(), Errno::ENOMEM, "cap");
    assert_eq!(k.normal_memory().pages_used(), baseline + 3 * MIB);

    let kept = fb[1].attach(teeheap_platform::Master::Display).unwrap();
    drop(fb);
    assert_eq!(lender.seen().reclaims.len(), 2, "the attached buffer keeps its chunk");
    k.tee_unregister_dma_heaps(&dev);
    assert_eq!(lender.seen().reclaims.len(), 2);
    drop(kept);
    assert!(lender.seen().live.is_empty());
    assert_eq!(lender.seen().reclaims.len(), 3);
    assert_eq!(k.normal_memory().pages_used(), baseline);
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u64),
    Free(usize),
    Busy(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..=40).prop_map(Op::Alloc),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<bool>().prop_map(Op::Busy),
    ]
}

fn check_invariants(pool: &DynamicPool, lender: &FakeLender, live: &[PoolAlloc], normal_used: u64, baseline: u64) {
    let chunks = pool.chunks();
    let s = lender.seen();
    // The pool's chunks are exactly what the secure world holds.
    let ours: BTreeMap<u64, PhysRange> = chunks.iter().map(|c| (c.cookie, c.range)).collect();
    assert_eq!(ours, s.live);
    // Lent == chunks with live buffers + chunks whose reclaim is pending.
    let with_buffers: BTreeSet<u64> = live.iter().map(|a| a.tag).collect();
    for c in &chunks {
        assert_eq!(with_buffers.contains(&c.cookie), c.used > 0);
        assert!(c.used > 0 || c.reclaim_pending, "empty chunk {:#x} neither reclaimed nor pending", c.cookie);
    }
    let lent: u64 = chunks.iter().map(|c| c.range.len()).sum();
    assert_eq!(normal_used, baseline + lent);
    assert!(lent <= pool.config().max);
    assert_eq!(pool.chunk_stats().lent_bytes, lent);
    drop(s);
    check_inside_lent(lender, &live.iter().collect::<Vec<_>>());
    let mut rs: Vec<PhysRange> = live.iter().map(range).collect();
    rs.sort();
    assert!(rs.windows(2).all(|w| w[0].end() <= w[1].start()), "live allocations overlap");
    assert_eq!(pool.stats().used, rs.iter().map(PhysRange::len).sum::<u64>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_alloc_free_keeps_the_invariants(ops in prop::collection::vec(op(), 1..60)) {
        let k = kernel();
        let normal = Arc::clone(k.normal_memory());
        let baseline = normal.pages_used();
        let lender = Arc::new(FakeLender::default());
        // 16-page chunks, 4-page aligned, up to 12 chunks' worth.
        let config = DynamicConfig { chunk: pages(16), align: pages(4), max: 192 * PAGE_SIZE };
        let mut pool = DynamicPool::new(UseCase::SecureVideoRecord, config, lender.clone(), Arc::clone(&normal));
        let mut live: Vec<PoolAlloc> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(n) => match pool.alloc(pages(n)) {
                    Ok(a) => {
                        prop_assert_eq!(range(&a).len(), n * PAGE_SIZE);
                        live.push(a);
                    }
                    Err(e) => {
                        prop_assert_eq!(e.errno(), Errno::ENOMEM);
                        // Only when no lent chunk fits and a new one would pass the cap.
                        let need = config.chunk_for(pages(n)).unwrap().bytes();
                        prop_assert!(pool.chunk_stats().lent_bytes + need > config.max);
                        prop_assert!(pool.stats().largest_free < n * PAGE_SIZE);
                    }
                },
                Op::Free(i) if !live.is_empty() => {
                    let a = live.swap_remove(i % live.len());
                    pool.free(&a);
                }
                Op::Free(_) => {}
                Op::Busy(b) => lender.seen().busy = b,
            }
            check_invariants(&pool, &lender, &live, normal.pages_used(), baseline);
        }
        lender.seen().busy = false;
        for a in live.drain(..) {
            pool.free(&a);
        }
        pool.destroy();
        prop_assert!(lender.seen().live.is_empty());
        prop_assert_eq!(normal.pages_used(), baseline);
        let st = pool.chunk_stats();
        prop_assert_eq!(st.lent_total, st.reclaimed_total);
        prop_assert_eq!(st.lent_total as usize, lender.seen().lends.len());
    }
}
