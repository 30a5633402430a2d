//! Model checking of the lifecycle core with loom: the same source as the
//! kernel model (`src/lifecycle/core.rs`), compiled here against
//! `loom::sync`, run under every interleaving up to a preemption bound.
//!
//! Invariants, checked in every execution: each range is freed exactly
//! once; no allocation succeeds on a revoked registration; a pool is
//! destroyed exactly once and only after its last buffer; memory is
//! scrubbed before it is unprotected; live buffers are pairwise disjoint,
//! across generations (every generation's pool allocates from one shared
//! space, as the pools over a static carveout do), and a teardown never
//! scrubs a range another generation holds.

#![allow(dead_code, unreachable_pub)]

mod sync {
    pub use loom::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
    pub use teeheap_sync::Recover;
}

#[path = "../src/lifecycle/core.rs"]
mod core;

use core::{AllocError, Lifecycle, RebindPolicy, Revocable, Teardown};
use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::sync::Mutex;
use loom::thread;

/// What happened, in order. A range is a slot of the shared space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Alloc {
        pool: u8,
        range: u32,
    },
    Free {
        pool: u8,
        range: u32,
    },
    Scrub {
        pool: u8,
        /// The slots scrubbed, as a bit mask.
        ranges: u32,
    },
    Unprotect {
        pool: u8,
    },
    /// The registration of this pool's generation was revoked.
    Revoked {
        pool: u8,
    },
    /// The heap node was removed.
    NodeRemoved,
}

type Log = Arc<Mutex<Vec<Ev>>>;

/// The memory every generation allocates from (a static carveout's
/// `CarveoutSpace`): which pool holds each slot.
type Space = Arc<Mutex<[Option<u8>; SLOTS]>>;

const SLOTS: usize = 4;

fn space() -> Space {
    Arc::new(Mutex::new([None; SLOTS]))
}

struct FakePool {
    id: u8,
    space: Space,
    /// Slots this pool ever handed out (what its teardown may scrub).
    used: Mutex<u32>,
    log: Log,
}

impl FakePool {
    fn new(id: u8, space: &Space, log: &Log) -> FakePool {
        FakePool { id, space: space.clone(), used: Mutex::new(0), log: log.clone() }
    }

    fn alloc(&self) -> Result<u32, ()> {
        let mut space = self.space.lock().unwrap();
        let slot = space.iter().position(Option::is_none).expect("the models never exhaust the space");
        space[slot] = Some(self.id);
        *self.used.lock().unwrap() |= 1 << slot;
        self.log.lock().unwrap().push(Ev::Alloc { pool: self.id, range: slot as u32 });
        Ok(slot as u32)
    }

    fn free(&self, range: u32) {
        let mut space = self.space.lock().unwrap();
        assert_eq!(space[range as usize].take(), Some(self.id), "freed by the pool that allocated it");
        self.log.lock().unwrap().push(Ev::Free { pool: self.id, range });
    }
}

impl Teardown for FakePool {
    /// Scrubs the slots it used that nobody holds now, under the space's
    /// lock (a slot a newer generation took over is left alone).
    fn teardown(&mut self) {
        let space = self.space.lock().unwrap();
        let held = space.iter().enumerate().filter(|(_, s)| s.is_some()).fold(0u32, |m, (i, _)| m | 1 << i);
        let ranges = *self.used.lock().unwrap() & !held;
        let mut log = self.log.lock().unwrap();
        log.push(Ev::Scrub { pool: self.id, ranges });
        log.push(Ev::Unprotect { pool: self.id });
    }
}

/// A buffer: its generation and range; releases on drop.
struct Buf {
    generation: Arc<core::Generation<FakePool>>,
    range: u32,
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.generation.get().free(self.range);
        self.generation.buffer_released(1);
    }
}

fn alloc(l: &Lifecycle<FakePool>) -> Option<Buf> {
    match l.alloc(1, FakePool::alloc) {
        Ok((generation, range)) => Some(Buf { generation, range }),
        Err(AllocError::Unbound) => None,
        Err(AllocError::Pool(())) => unreachable!(),
    }
}

/// Whether `pool` was torn down.
fn scrubbed(log: &Log, pool: u8) -> bool {
    log.lock().unwrap().iter().any(|e| matches!(e, Ev::Scrub { pool: p, .. } if *p == pool))
}

/// Checks the invariants on the final log.
fn check(log: &[Ev]) {
    use std::collections::BTreeMap;
    let mut allocated: BTreeMap<(u8, u32), usize> = BTreeMap::new();
    let mut freed: BTreeMap<(u8, u32), usize> = BTreeMap::new();
    let mut destroyed: BTreeMap<u8, usize> = BTreeMap::new();
    let mut revoked: Vec<u8> = Vec::new();
    let mut node_removed = false;
    // Live buffers: slot -> pool.
    let mut live: BTreeMap<u32, u8> = BTreeMap::new();
    for (i, ev) in log.iter().enumerate() {
        match *ev {
            Ev::Alloc { pool, range } => {
                if let Some(other) = live.insert(range, pool) {
                    panic!("live buffers overlap: slot {range} of pool {other} handed to pool {pool}: {log:?}");
                }
                *allocated.entry((pool, range)).or_default() += 1;
                assert!(!destroyed.contains_key(&pool), "alloc from destroyed pool {pool}: {log:?}");
                assert!(!revoked.contains(&pool), "alloc on a revoked registration: {log:?}");
                assert!(!node_removed, "alloc through a removed heap node: {log:?}");
            }
            Ev::Free { pool, range } => {
                assert_eq!(live.remove(&range), Some(pool), "freed a slot it did not hold: {log:?}");
                *freed.entry((pool, range)).or_default() += 1;
                assert!(!destroyed.contains_key(&pool), "free after destroy of pool {pool}: {log:?}");
            }
            Ev::Scrub { pool, ranges } => {
                *destroyed.entry(pool).or_default() += 1;
                assert_eq!(log.get(i + 1), Some(&Ev::Unprotect { pool }), "scrub must precede unprotect: {log:?}");
                for (slot, holder) in &live {
                    assert!(ranges & 1 << slot == 0, "pool {pool} scrubbed slot {slot} live in pool {holder}: {log:?}");
                }
            }
            Ev::Unprotect { pool } => {
                assert!(
                    i > 0 && matches!(log[i - 1], Ev::Scrub { pool: p, .. } if p == pool),
                    "unprotect without scrub: {log:?}"
                );
            }
            Ev::Revoked { pool } => revoked.push(pool),
            Ev::NodeRemoved => node_removed = true,
        }
    }
    assert_eq!(allocated, freed, "every range freed exactly once: {log:?}");
    assert!(destroyed.values().all(|&n| n == 1), "each pool destroyed exactly once: {log:?}");
}

static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    EXECUTIONS.store(0, Ordering::SeqCst);
    let mut b = loom::model::Builder::new();
    // Keep CI within minutes on 2 cores (LOOM_MAX_PREEMPTIONS overrides).
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(move || {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!("loom {name}: {} interleavings explored", EXECUTIONS.load(Ordering::SeqCst));
}

#[test]
fn alloc_races_unbind() {
    model("alloc || unbind", || {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let sp = space();
        let l = Arc::new(Lifecycle::new(RebindPolicy::Generations));
        l.bind(FakePool::new(1, &sp, &log)).unwrap();
        let (l2, log2) = (l.clone(), log.clone());
        let t = thread::spawn(move || {
            let _ = &log2;
            alloc(&l2)
        });
        assert_eq!(l.unbind_if(|_| true), Some(1));
        log.lock().unwrap().push(Ev::Revoked { pool: 1 });
        assert!(alloc(&l).is_none(), "no allocation after unbind");
        let b = t.join().unwrap();
        // The pool outlives the unbind while the buffer lives.
        let destroyed = scrubbed(&log, 1);
        assert_eq!(destroyed, b.is_none());
        drop(b);
        check(&log.lock().unwrap());
        assert!(scrubbed(&log, 1));
    });
}

#[test]
fn release_last_races_rebind() {
    model("release-last || rebind", || {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let sp = space();
        let l = Arc::new(Lifecycle::new(RebindPolicy::Generations));
        l.bind(FakePool::new(1, &sp, &log)).unwrap();
        let old = alloc(&l).unwrap();
        l.unbind_if(|_| true).unwrap();
        log.lock().unwrap().push(Ev::Revoked { pool: 1 });
        let t = thread::spawn(move || drop(old));
        let (l2, log2, sp2) = (l.clone(), log.clone(), sp.clone());
        let r = thread::spawn(move || {
            let generation = l2.bind(FakePool::new(2, &sp2, &log2)).expect("generations never wait for the drain");
            let b = alloc(&l2).unwrap();
            assert_eq!(b.generation.id(), generation);
            b
        });
        t.join().unwrap();
        let b = r.join().unwrap();
        assert!(scrubbed(&log, 1), "old generation destroyed once drained");
        drop(b);
        assert!(!scrubbed(&log, 2), "bound generation survives its buffers");
        l.unbind_if(|_| true).unwrap();
        check(&log.lock().unwrap());
    });
}

#[test]
fn upstream_rebind_is_busy_until_drained() {
    model("upstream release-last || rebind", || {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let sp = space();
        let l = Arc::new(Lifecycle::new(RebindPolicy::Upstream));
        l.bind(FakePool::new(1, &sp, &log)).unwrap();
        let old = alloc(&l).unwrap();
        l.unbind_if(|_| true).unwrap();
        let t = thread::spawn(move || drop(old));
        let bound = l.bind(FakePool::new(2, &sp, &log)).is_ok();
        t.join().unwrap();
        if bound {
            // Only possible once generation 1 was gone.
            assert!(scrubbed(&log, 1));
            l.unbind_if(|_| true).unwrap();
        }
        check(&log.lock().unwrap());
    });
}

#[test]
fn heap_removal_races_alloc_and_release() {
    model("heap rm || alloc || release", || {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let sp = space();
        let l = Arc::new(Lifecycle::new(RebindPolicy::Generations));
        l.bind(FakePool::new(1, &sp, &log)).unwrap();
        // The heap node: open fds reach the lifecycle through it.
        let node = Arc::new(Revocable::new(l.clone()));
        let existing = alloc(&l).unwrap();

        let (n1, log1) = (node.clone(), log.clone());
        let remover = thread::spawn(move || {
            drop(n1.revoke());
            log1.lock().unwrap().push(Ev::NodeRemoved);
        });
        let n2 = node.clone();
        let allocator = thread::spawn(move || {
            let lifecycle = n2.try_access()?;
            alloc(&lifecycle)
        });
        let releaser = thread::spawn(move || drop(existing));
        remover.join().unwrap();
        let b = allocator.join().unwrap();
        releaser.join().unwrap();
        assert!(node.try_access().is_none());
        drop(b);
        // Removing the node unbinds nothing: the registration stays until the backend goes.
        assert!(!scrubbed(&log, 1));
        l.unbind_if(|_| true).unwrap();
        check(&log.lock().unwrap());
    });
}

/// The disjointness check itself, on logs the shared space forbids: pools
/// with spaces of their own (the bug of issue 19) hand out one slot twice,
/// and a teardown that scrubs a slot a newer generation holds.
#[test]
fn the_checker_catches_overlaps() {
    let overlap = [Ev::Alloc { pool: 1, range: 0 }, Ev::Alloc { pool: 2, range: 0 }];
    assert!(std::panic::catch_unwind(|| check(&overlap)).is_err());
    let scrub_live = [
        Ev::Alloc { pool: 1, range: 0 },
        Ev::Free { pool: 1, range: 0 },
        Ev::Alloc { pool: 2, range: 0 },
        Ev::Scrub { pool: 1, ranges: 1 },
        Ev::Unprotect { pool: 1 },
        Ev::Free { pool: 2, range: 0 },
    ];
    assert!(std::panic::catch_unwind(|| check(&scrub_live)).is_err());
    let fine = [
        Ev::Alloc { pool: 1, range: 0 },
        Ev::Alloc { pool: 2, range: 1 },
        Ev::Free { pool: 1, range: 0 },
        Ev::Scrub { pool: 1, ranges: 1 },
        Ev::Unprotect { pool: 1 },
        Ev::Free { pool: 2, range: 1 },
    ];
    check(&fine);
}
