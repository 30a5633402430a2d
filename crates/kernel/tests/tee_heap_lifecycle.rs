//! The TEE protected heaps' lifecycle with the built-in backend: protection
//! of buffers, release exactly once, unbind with live buffers, EBUSY.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use teeheap_kernel::backend::builtin::BuiltinBackend;
use teeheap_kernel::dma_buf::SgTable;
use teeheap_kernel::pool::carveout::CarveoutPool;
use teeheap_kernel::pool::{PoolAlloc, PoolStats, ProtMemPool, ProtMemRef};
use teeheap_kernel::tee::heap::ProtectedBuffer;
use teeheap_kernel::tee::{TeeDesc, TeeDevice};
use teeheap_kernel::{Errno, Kernel};
use teeheap_platform::config::Rebind;
use teeheap_platform::{AccessError, AccessKind, Len, Master, PAGE_SIZE, UseCase};

fn boot() -> (Arc<Kernel>, BuiltinBackend) {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let backend = BuiltinBackend::probe(&kernel).unwrap();
    (kernel, backend)
}

#[test]
fn ns_cpu_is_refused_on_protected_buffers_and_logged() {
    let (kernel, _b) = boot();
    let p = kernel.platform();
    for uc in UseCase::ALL {
        let buf = kernel.dma_heaps().open(uc.heap_name()).unwrap().allocate(3 * PAGE_SIZE, 0, 0).unwrap();
        let start = buf.sg_table().ranges()[0].start();
        let before = p.firewall().violation_count();
        let mut bytes = [0u8; 64];
        match p.read(Master::NsCpu, start, &mut bytes) {
            Err(AccessError::Denied(v)) => {
                assert_eq!((v.master, v.kind, v.range.start()), (Master::NsCpu, AccessKind::Read, start));
            }
            other => panic!("{uc}: NS read not refused: {other:?}"),
        }
        assert!(matches!(p.write(Master::NsCpu, start, b"leak"), Err(AccessError::Denied(_))));
        assert_eq!(p.firewall().violation_count(), before + 2);
        let log = p.firewall().violations();
        assert_eq!(log.last().unwrap().kind, AccessKind::Write);
        // No CPU mapping either: the tee heap has no mmap.
        assert_eq!(buf.mmap(p).unwrap_err().errno(), Errno::EINVAL);
        // The secure world may touch it.
        p.write(Master::SecureCpu, start, b"secret").unwrap();
    }
}

#[test]
fn system_buffers_are_cpu_accessible() {
    let (kernel, _b) = boot();
    let p = kernel.platform();
    let buf = kernel.dma_heaps().open("system").unwrap().allocate(10_000, 0, 0).unwrap();
    let map = buf.mmap(p).unwrap();
    let mut bytes = [0xffu8; 16];
    map.read(0, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 16], "fresh pages are zeroed");
    map.write(8190, b"across pages").unwrap();
    map.read(8190, &mut bytes[..12]).unwrap();
    assert_eq!(&bytes[..12], b"across pages");
    assert_eq!(map.read(3 * PAGE_SIZE - 1, &mut bytes[..2]).unwrap_err().errno(), Errno::EFAULT);
    assert_eq!(p.firewall().violation_count(), 0);
}

/// A pool that counts frees and destroys, wrapping a carveout pool.
struct Counting {
    inner: CarveoutPool,
    frees: Arc<AtomicUsize>,
    destroys: Arc<AtomicUsize>,
}

impl ProtMemPool for Counting {
    fn alloc(&self, size: Len) -> teeheap_kernel::Result<PoolAlloc> {
        self.inner.alloc(size)
    }
    fn free(&self, alloc: &PoolAlloc) {
        self.frees.fetch_add(1, Ordering::SeqCst);
        self.inner.free(alloc)
    }
    fn update_shm(&self, alloc: &PoolAlloc) -> teeheap_kernel::Result<ProtMemRef> {
        self.inner.update_shm(alloc)
    }
    fn destroy(&mut self) {
        assert_eq!(self.inner.stats().used, 0, "destroyed with live buffers");
        self.destroys.fetch_add(1, Ordering::SeqCst);
        self.inner.destroy();
    }
    fn stats(&self) -> PoolStats {
        self.inner.stats()
    }
}

struct Counters {
    frees: Arc<AtomicUsize>,
    destroys: Arc<AtomicUsize>,
}

fn counting_pool(kernel: &Kernel, uc: UseCase) -> (Box<Counting>, Counters) {
    counting_pool_on(kernel.platform().carveout(uc).unwrap().range)
}

fn counting_pool_on(range: teeheap_platform::PhysRange) -> (Box<Counting>, Counters) {
    let frees = Arc::new(AtomicUsize::new(0));
    let destroys = Arc::new(AtomicUsize::new(0));
    let pool = Counting {
        inner: CarveoutPool::new("test", range).unwrap(),
        frees: Arc::clone(&frees),
        destroys: Arc::clone(&destroys),
    };
    (Box::new(pool), Counters { frees, destroys })
}

fn device() -> Arc<TeeDevice> {
    TeeDevice::new("tee0", TeeDesc { impl_id: 1, impl_caps: 0, gen_caps: 1 })
}

#[test]
fn release_of_last_reference_frees_exactly_once() {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let dev = device();
    let (pool, n) = counting_pool(&kernel, UseCase::SecureVideo);
    kernel.tee_register_dma_heap(&dev, UseCase::SecureVideo, pool).unwrap();
    let heap = kernel.dma_heaps().open("protected,secure-video").unwrap();
    let buf = heap.allocate(PAGE_SIZE, 0, 0).unwrap();
    let fd_dup = Arc::clone(&buf);
    let att = buf.attach(Master::VideoDecoder).unwrap();
    assert_eq!(att.map().unwrap(), *buf.sg_table());
    drop(buf);
    drop(fd_dup);
    assert_eq!(n.frees.load(Ordering::SeqCst), 0, "the attachment still holds the buffer");
    assert_eq!(heap.info().buffers, 1);
    drop(att);
    assert_eq!(n.frees.load(Ordering::SeqCst), 1);
    assert_eq!(heap.info().used, 0);
    assert_eq!(heap.info().buffers, 0);
    assert_eq!(kernel.dma_bufs().len(), 0);
    kernel.tee_unregister_dma_heaps(&dev);
    assert_eq!(n.destroys.load(Ordering::SeqCst), 1);
    assert_eq!(n.frees.load(Ordering::SeqCst), 1);
}

fn upstream() -> Arc<Kernel> {
    Kernel::boot(Arc::new(common::three_carveouts_with(|c| c.tee.rebind = Rebind::Upstream)))
}

#[test]
fn unbind_with_live_buffer_then_drain_destroys_the_pool() {
    let kernel = upstream();
    let dev = device();
    let (pool, n) = counting_pool(&kernel, UseCase::TrustedUi);
    kernel.tee_register_dma_heap(&dev, UseCase::TrustedUi, pool).unwrap();
    let heap = kernel.dma_heaps().open("protected,trusted-ui").unwrap();
    let old = heap.allocate(2 * PAGE_SIZE, 0, 0).unwrap();
    let display = old.attach(Master::Display).unwrap();

    kernel.tee_unregister_dma_heaps(&dev);
    // No new allocation once the backend went away.
    assert_eq!(heap.allocate(PAGE_SIZE, 0, 0).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(heap.info().state, "draining generation 1 with 1 buffer");
    // The node is still listed (upstream cannot remove heaps).
    assert!(kernel.dma_heaps().open("protected,trusted-ui").is_ok());
    // The old buffer still works for its devices and the secure world.
    let sg = display.map().unwrap();
    let p = kernel.platform();
    p.write(Master::SecureCpu, sg.ranges()[0].start(), b"pin pad").unwrap();
    let mut px = [0u8; 7];
    p.read(Master::Display, sg.ranges()[0].start(), &mut px).unwrap();
    assert_eq!(&px, b"pin pad");
    let pb = old.ops().as_any().downcast_ref::<ProtectedBuffer>().unwrap();
    assert!(matches!(pb.protmem_ref().unwrap(), ProtMemRef::Phys(_)));
    assert_eq!(n.destroys.load(Ordering::SeqCst), 0, "pool lives while a buffer does");

    // Upstream: re-registering the use case while the old buffer holds it is EBUSY.
    let (pool2, n2) = counting_pool(&kernel, UseCase::TrustedUi);
    assert_eq!(kernel.tee_register_dma_heap(&dev, UseCase::TrustedUi, pool2).unwrap_err().errno(), Errno::EBUSY);
    assert_eq!(n2.destroys.load(Ordering::SeqCst), 0);

    drop(old);
    assert_eq!(n.destroys.load(Ordering::SeqCst), 0, "the attachment still holds it");
    drop(display);
    assert_eq!(n.frees.load(Ordering::SeqCst), 1);
    assert_eq!(n.destroys.load(Ordering::SeqCst), 1);
    assert_eq!(heap.info().state, "unbound");

    // Once drained, the heap object is reused by a new registration.
    let (pool3, n3) = counting_pool(&kernel, UseCase::TrustedUi);
    kernel.tee_register_dma_heap(&dev, UseCase::TrustedUi, pool3).unwrap();
    let fresh = heap.allocate(PAGE_SIZE, 0, 0).unwrap();
    drop(fresh);
    assert_eq!(n3.frees.load(Ordering::SeqCst), 1);
}

#[test]
fn second_registration_of_a_bound_use_case_is_ebusy() {
    let (kernel, backend) = boot();
    let (pool, n) = counting_pool(&kernel, UseCase::SecureVideo);
    let err = kernel.tee_register_dma_heap(backend.device(), UseCase::SecureVideo, pool).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY);
    let other = device();
    let (pool, _) = counting_pool(&kernel, UseCase::SecureVideo);
    assert_eq!(kernel.tee_register_dma_heap(&other, UseCase::SecureVideo, pool).unwrap_err().errno(), Errno::EBUSY);
    assert_eq!(n.destroys.load(Ordering::SeqCst), 0, "a refused pool is dropped, never destroyed");
    // A second built-in backend cannot probe either.
    assert_eq!(BuiltinBackend::probe(&kernel).unwrap_err().errno(), Errno::EEXIST);
    // The first one still works.
    kernel.dma_heaps().open("protected,secure-video").unwrap().allocate(1, 0, 0).unwrap();
}

#[test]
fn backend_removal_unregisters_devices_and_rebind_works_after_drain() {
    let (kernel, backend) = boot();
    assert_eq!(kernel.tee().list().len(), 2);
    let v = kernel.tee().open("tee0").unwrap().version();
    assert_eq!(v.impl_id, 1);
    backend.remove();
    assert_eq!(kernel.tee().open("tee0").unwrap_err().errno(), Errno::ENOENT);
    let again = BuiltinBackend::probe(&kernel).unwrap();
    let heap = kernel.dma_heaps().open("protected,secure-video-record").unwrap();
    assert!(heap.allocate(PAGE_SIZE, 0, 0).is_ok());
    drop(again);
    assert_eq!(kernel.dma_heaps().list().len(), 4, "system + three protected heaps, never removed");
}

#[test]
fn pool_exhaustion_and_reuse() {
    let (kernel, _b) = boot();
    let heap = kernel.dma_heaps().open("protected,trusted-ui").unwrap();
    let cap = heap.info().capacity;
    assert_eq!(cap, 64 << 20);
    let all = heap.allocate(cap, 0, 0).unwrap();
    assert_eq!(heap.allocate(1, 0, 0).unwrap_err().errno(), Errno::ENOMEM);
    drop(all);
    let again = heap.allocate(cap, 0, 0).unwrap();
    assert_eq!(again.sg_table(), &SgTable::new(vec![kernel.platform().carveout(UseCase::TrustedUi).unwrap().range]));
}

#[test]
fn generations_rebind_while_old_buffers_drain() {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let dev = device();
    let uc = UseCase::SecureVideoRecord;
    let c = kernel.platform().carveout(uc).unwrap().range;
    // Two pools on the two halves of the carveout, so each generation's
    // memory is recognisable.
    let half = c.len() / 2;
    let (lo, hi) = (c.subrange(0, half).unwrap(), c.subrange(half, half).unwrap());
    let (pool1, n1) = counting_pool_on(lo);
    kernel.tee_register_dma_heap(&dev, uc, pool1).unwrap();
    let heap = kernel.dma_heaps().open(uc.heap_name()).unwrap();
    let old = heap.allocate(PAGE_SIZE, 0, 0).unwrap();
    kernel.tee_unregister_dma_heaps(&dev);
    assert_eq!(heap.info().state, "draining generation 1 with 1 buffer");

    // A new generation binds at once, with a fresh pool.
    let (pool2, n2) = counting_pool_on(hi);
    kernel.tee_register_dma_heap(&dev, uc, pool2).unwrap();
    assert_eq!(heap.info().state, "ready; draining generation 1 with 1 buffer");
    let new = heap.allocate(PAGE_SIZE, 0, 0).unwrap();
    assert!(lo.contains_range(&old.sg_table().ranges()[0]));
    assert!(hi.contains_range(&new.sg_table().ranges()[0]));
    let gen_of =
        |b: &teeheap_kernel::dma_buf::DmaBuf| b.ops().as_any().downcast_ref::<ProtectedBuffer>().unwrap().generation();
    assert_eq!((gen_of(&old), gen_of(&new)), (1, 2));
    // Still EBUSY while bound.
    let (pool3, _) = counting_pool_on(hi);
    assert_eq!(kernel.tee_register_dma_heap(&dev, uc, pool3).unwrap_err().errno(), Errno::EBUSY);

    // The old generation drains into its own pool; the new one is untouched.
    drop(old);
    assert_eq!(n1.frees.load(Ordering::SeqCst), 1);
    assert_eq!(n1.destroys.load(Ordering::SeqCst), 1);
    assert_eq!(n2.destroys.load(Ordering::SeqCst), 0);
    assert_eq!(heap.info().state, "ready");
    drop(new);
    kernel.tee_unregister_dma_heaps(&dev);
    assert_eq!(n2.destroys.load(Ordering::SeqCst), 1);
    assert_eq!(heap.info().state, "unbound");
}

#[test]
fn heap_removal_and_readd() {
    let (kernel, backend) = boot();
    let name = "protected,secure-video";
    let open_fd = kernel.dma_heaps().open(name).unwrap();
    let live = open_fd.allocate(PAGE_SIZE, 0, 0).unwrap();
    let listed = kernel.dma_heaps().list().len();

    kernel.dma_heap_remove(name).unwrap();
    assert_eq!(kernel.dma_heaps().list().len(), listed - 1, "the node disappears");
    assert_eq!(kernel.dma_heaps().open(name).unwrap_err().errno(), Errno::ENOENT);
    assert_eq!(open_fd.allocate(PAGE_SIZE, 0, 0).unwrap_err().errno(), Errno::ENODEV);
    assert_eq!(open_fd.info().state, "removed");
    assert_eq!(kernel.dma_heap_remove(name).unwrap_err().errno(), Errno::ENOENT);
    // The live buffer still works for the secure world and devices.
    let at = live.sg_table().ranges()[0].start();
    kernel.platform().write(Master::SecureCpu, at, b"still here").unwrap();
    let att = live.attach(Master::Display).unwrap();
    assert_eq!(att.map().unwrap(), *live.sg_table());
    drop(att);

    // Added back: the same heap, still bound, with the live buffer counted.
    kernel.dma_heap_readd(name).unwrap();
    let again = kernel.dma_heaps().open(name).unwrap();
    assert_eq!(again.info().buffers, 1);
    let fresh = again.allocate(PAGE_SIZE, 0, 0).unwrap();
    assert_eq!(kernel.dma_heap_readd(name).unwrap_err().errno(), Errno::ENOENT);
    // The old fd stays dead: it refers to the removed node.
    assert_eq!(open_fd.allocate(PAGE_SIZE, 0, 0).unwrap_err().errno(), Errno::ENODEV);
    drop((live, fresh, backend));
    assert!(kernel.dma_bufs().is_empty());
}

#[test]
fn heap_counters_allocations_failures_peak() {
    let (kernel, _b) = boot();
    let heap = kernel.dma_heaps().open("protected,trusted-ui").unwrap();
    let a = heap.allocate(3 * PAGE_SIZE, 0, 0).unwrap();
    let b = heap.allocate(PAGE_SIZE, 0, 0).unwrap();
    drop(a);
    assert_eq!(heap.allocate(0, 0, 0).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(heap.allocate(1 << 40, 0, 0).unwrap_err().errno(), Errno::ENOMEM);
    let i = heap.info();
    assert_eq!((i.allocations, i.used, i.peak), (2, PAGE_SIZE, 4 * PAGE_SIZE));
    assert_eq!(i.failures.get("EINVAL"), Some(&1));
    assert_eq!(i.failures.get("ENOMEM"), Some(&1));
    assert_eq!(
        i.largest_free,
        64 * 1024 * 1024 - 4 * PAGE_SIZE,
        "the freed hole below b is not contiguous with the rest"
    );
    assert_eq!(kernel.dma_bufs().snapshot()[0].heap, Some("protected,trusted-ui"));
    drop(b);
}

/// Issue 19: a backend that binds a static carveout again while an old
/// generation still holds part of it allocates around that part; the old
/// generation's drain does not touch the new buffer.
#[test]
fn rebind_over_a_static_carveout_never_overlaps_live_buffers() {
    let (kernel, backend) = boot();
    let p = Arc::clone(kernel.platform());
    let heap = kernel.dma_heaps().open("protected,secure-video").unwrap();
    let old = heap.allocate(16 << 20, 0, 0).unwrap();
    let old_range = old.sg_table().ranges()[0];
    p.write(Master::SecureCpu, old_range.start(), &[0xa1; 4096]).unwrap();
    backend.remove();
    let backend = BuiltinBackend::probe(&kernel).unwrap();
    assert_eq!(heap.info().state, "ready; draining generation 1 with 1 buffer");
    let new = heap.allocate(8 << 20, 0, 0).unwrap();
    let new_range = new.sg_table().ranges()[0];
    assert!(!new_range.overlaps(&old_range), "{new_range} overlaps the old generation's {old_range}");
    assert_eq!(kernel.overlapping_buffers(), None);
    p.write(Master::SecureCpu, new_range.start(), &[0xb2; 4096]).unwrap();
    let read = |at| {
        let mut b = [0u8; 4096];
        p.read(Master::SecureCpu, at, &mut b).unwrap();
        b
    };
    assert_eq!(read(old_range.start()), [0xa1; 4096], "the new buffer's writes did not reach the old one");
    // The old generation drains and is torn down; the new buffer keeps its bytes.
    drop(old);
    assert_eq!(heap.info().state, "ready");
    assert_eq!(read(new_range.start()), [0xb2; 4096]);
    // The drained range is free again for the bound generation (best fit
    // picks the hole it left).
    let again = heap.allocate(16 << 20, 0, 0).unwrap();
    assert_eq!(again.sg_table().ranges()[0], old_range);
    assert_eq!(kernel.overlapping_buffers(), None);
    drop((new, again));
    backend.remove();
    assert_eq!(heap.info().state, "unbound");
}

/// One space per carveout: the same range gives the same space while a pool
/// holds it, an overlapping other range is refused, and a space no pool
/// holds any more is made anew.
#[test]
fn carveout_spaces_are_shared_per_range() {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let c = kernel.platform().carveout(UseCase::SecureVideo).unwrap().range;
    let a = kernel.carveout_space("sv", c).unwrap();
    let b = kernel.carveout_space("sv again", c).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let half = c.subrange(0, c.len() / 2).unwrap();
    assert_eq!(kernel.carveout_space("half", half).unwrap_err().errno(), Errno::EBUSY);
    let unaligned = teeheap_platform::PhysRange::new(teeheap_platform::PhysAddr(0x1000), 100).unwrap();
    assert_eq!(kernel.carveout_space("odd", unaligned).unwrap_err().errno(), Errno::EINVAL);
    let weak = Arc::downgrade(&a);
    drop((a, b));
    assert!(weak.upgrade().is_none(), "the kernel does not keep a space alive");
    let fresh = kernel.carveout_space("half", half).unwrap();
    assert_eq!(fresh.range(), half);
}
