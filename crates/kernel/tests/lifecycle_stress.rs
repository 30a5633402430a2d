//! Stress: worker threads allocate, pass buffers to each other and free
//! them while a controller unbinds and rebinds the backend and removes and
//! re-adds heap nodes, for a bounded time. Afterwards nothing is left:
//! no buffer, no used byte, every lent chunk reclaimed, no firewall region
//! but the boot carveouts, normal memory back to its baseline. Throughout,
//! live buffers are pairwise disjoint (checked after every controller step)
//! and each keeps the bytes the secure world wrote into it (checked when it
//! is freed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::{Errno, Kernel};
use teeheap_platform::{Master, PAGE_SIZE, Platform, UseCase};
use teeheap_secure_world::{SecureConfig, SecureWorld};

/// Bounded: a few seconds even on 2 busy cores.
const RUN_FOR: Duration = Duration::from_millis(2500);
const WORKERS: usize = 3;

/// Writes the buffer's identity into its first and last 16 bytes, as a
/// TA or device would.
fn tag(kernel: &Kernel, b: &DmaBuf) {
    let tag = [b.id().0.to_le_bytes(), b.id().0.to_le_bytes()].concat();
    let (first, last) = (b.sg_table().ranges()[0], *b.sg_table().ranges().last().unwrap());
    kernel.platform().write(Master::SecureCpu, first.start(), &tag).unwrap();
    kernel.platform().write(Master::SecureCpu, last.start().checked_add(last.len() - 16).unwrap(), &tag).unwrap();
}

/// Checks the tag of [`tag`] is intact (nothing else wrote into the
/// buffer), then drops it.
fn check_and_drop(kernel: &Kernel, b: Arc<DmaBuf>) {
    let tag = [b.id().0.to_le_bytes(), b.id().0.to_le_bytes()].concat();
    let (first, last) = (b.sg_table().ranges()[0], *b.sg_table().ranges().last().unwrap());
    for at in [first.start(), last.start().checked_add(last.len() - 16).unwrap()] {
        let mut got = [0u8; 16];
        kernel.platform().read(Master::SecureCpu, at, &mut got).unwrap();
        assert_eq!(got[..], tag[..], "buffer {:?} at {at}: its bytes were overwritten", b.id());
    }
}

#[test]
fn unbind_rebind_and_heap_removal_under_load() {
    let platform = Arc::new(Platform::embedded_default().unwrap());
    let kernel = Kernel::boot(Arc::clone(&platform));
    let world = Arc::new(SecureWorld::new(Arc::clone(&platform), SecureConfig::for_platform(&platform)).unwrap());
    let probe = || OpteeBackend::probe(&kernel, Arc::clone(&world), OpteeConfig { dynamic_max: 64 << 20 }).unwrap();
    let backend = Arc::new(Mutex::new(Some(probe())));
    let baseline = kernel.normal_memory().pages_used();
    let regions_at_boot = platform.firewall().regions().len();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([(); 6].map(|_| AtomicU64::new(0))); // ok, einval, enodev, enoent, enomem, passed

    let (txs, rxs): (Vec<_>, Vec<_>) = (0..WORKERS).map(|_| mpsc::channel::<Arc<DmaBuf>>()).unzip();
    let mut workers = Vec::new();
    for (i, rx) in rxs.into_iter().enumerate() {
        let (kernel, stop, counts, txs) = (Arc::clone(&kernel), Arc::clone(&stop), Arc::clone(&counts), txs.clone());
        workers.push(thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
            let mut held: Vec<Arc<DmaBuf>> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.extend(rx.try_iter());
                let uc = UseCase::ALL[rng.usize(..3)];
                let len = rng.u64(1..=64) * PAGE_SIZE;
                let r = kernel.dma_heaps().open(uc.heap_name()).and_then(|h| h.allocate(len, 0, 0));
                let slot = match &r {
                    Ok(_) => 0,
                    Err(e) if e.errno() == Errno::EINVAL => 1,
                    Err(e) if e.errno() == Errno::ENODEV => 2,
                    Err(e) if e.errno() == Errno::ENOENT => 3,
                    Err(e) if e.errno() == Errno::ENOMEM => 4,
                    Err(e) => panic!("unexpected {e}"),
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
                if let Ok(b) = r {
                    // The secure world can always use a live buffer, bound or draining.
                    tag(&kernel, &b);
                    held.push(b);
                }
                match rng.u32(..4) {
                    0 if !held.is_empty() => {
                        let b = held.swap_remove(rng.usize(..held.len()));
                        let _ = txs[(i + 1) % WORKERS].send(b);
                        counts[5].fetch_add(1, Ordering::Relaxed);
                    }
                    1 | 2 if !held.is_empty() => check_and_drop(&kernel, held.swap_remove(rng.usize(..held.len()))),
                    _ => {}
                }
                if held.len() > 24 {
                    for b in held.drain(..12) {
                        check_and_drop(&kernel, b);
                    }
                }
            }
            held
        }));
    }
    drop(txs);

    let start = Instant::now();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut actions = [0u32; 4];
    while start.elapsed() < RUN_FOR {
        thread::sleep(Duration::from_millis(5));
        assert_eq!(kernel.overlapping_buffers(), None, "live buffers share memory");
        let uc = UseCase::ALL[rng.usize(..3)];
        let action = rng.usize(..4);
        actions[action] += 1;
        match action {
            0 => drop(backend.lock().unwrap().take()), // unbind
            1 => {
                let mut b = backend.lock().unwrap();
                if b.is_none() {
                    *b = Some(probe()); // rebind: never EBUSY while old buffers drain
                }
            }
            2 => {
                let _ = kernel.dma_heap_remove(uc.heap_name());
            }
            _ => {
                let _ = kernel.dma_heap_readd(uc.heap_name());
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let leftovers: Vec<Vec<Arc<DmaBuf>>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(kernel.overlapping_buffers(), None, "live buffers share memory");
    for b in leftovers.into_iter().flatten() {
        check_and_drop(&kernel, b);
    }
    drop(backend.lock().unwrap().take());

    let c: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!(
        "controller: {} unbinds, {} rebinds, {} heap removals, {} re-adds",
        actions[0], actions[1], actions[2], actions[3]
    );
    println!(
        "allocations ok {} / EINVAL {} / ENODEV {} / ENOENT {} / ENOMEM {}; passed {}",
        c[0], c[1], c[2], c[3], c[4], c[5]
    );
    assert!(c[0] > 100, "the workers allocated: {c:?}");
    assert!(c[1] + c[2] + c[3] > 0, "the controller got in the way: {c:?}");
    assert!(kernel.dma_bufs().is_empty());
    for uc in UseCase::ALL {
        if let Some(h) = kernel.tee_heap(uc) {
            assert!(h.generations().is_empty(), "{uc}: a generation survived: {:?}", h.generations());
        }
    }
    let s = world.stats();
    assert_eq!(s.lent, s.reclaimed, "{s:?}");
    assert!(s.lent > 0, "dynamic pools were used: {s:?}");
    assert!(world.lent_objects().is_empty());
    assert_eq!(platform.firewall().regions().len(), regions_at_boot, "no firewall region left behind");
    assert_eq!(kernel.normal_memory().pages_used(), baseline, "normal memory back to its baseline");
}
