//! Model checking of a session's worker pool with loom: the same source as
//! the daemon (`src/workers/pool.rs`), compiled against `loom::sync`, run
//! under every interleaving up to a preemption bound.
//!
//! Invariants, in every execution: each submitted job is served exactly
//! once; never more workers than the bound; after close every worker has
//! left and nothing is queued. (loom's timed waits never time out, so
//! workers leave only on close here; the idle timeout path is the same
//! exit with the queue empty.)

#![allow(dead_code, unreachable_pub, missing_docs)]

mod sync {
    pub use loom::sync::{Condvar, Mutex, MutexGuard};
    pub use teeheap_sync::Recover;
}

#[path = "../src/workers/pool.rs"]
mod pool;

use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use pool::{Next, Pool};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// Submits `jobs` jobs to a pool of `max` workers, spawning as told, then
/// closes it; checks every job ran once.
fn submit_and_close(max: usize, jobs: usize) {
    model(move || {
        let pool = Arc::new(Pool::<usize>::new(max, 16));
        let served: Arc<Vec<AtomicUsize>> = Arc::new((0..jobs).map(|_| AtomicUsize::new(0)).collect());
        let live = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for j in 0..jobs {
            if pool.submit(j) == Next::Spawn {
                let (p, s, l) = (Arc::clone(&pool), Arc::clone(&served), Arc::clone(&live));
                handles.push(thread::spawn(move || {
                    assert!(l.fetch_add(1, Ordering::SeqCst) < max, "more workers than the bound");
                    while let Some(job) = p.next(Duration::from_secs(1)) {
                        s[job].fetch_add(1, Ordering::SeqCst);
                    }
                    l.fetch_sub(1, Ordering::SeqCst);
                }));
            }
        }
        assert!(handles.len() <= max);
        pool.close();
        pool.wait_gone();
        for h in handles {
            h.join().unwrap();
        }
        for s in served.iter() {
            assert_eq!(s.load(Ordering::SeqCst), 1, "a job was not served exactly once");
        }
        assert_eq!(pool.counts(), (0, 0, 0));
    });
}

#[test]
fn two_jobs_one_worker() {
    submit_and_close(1, 2);
}

#[test]
fn three_jobs_two_workers() {
    submit_and_close(2, 3);
}

/// A worker that failed to start gives its place back; the submitter runs
/// the job when no worker is left.
#[test]
fn failed_spawn_hands_the_job_back() {
    model(|| {
        let pool = Pool::<u8>::new(1, 4);
        assert_eq!(pool.submit(7), Next::Spawn);
        assert_eq!(pool.spawn_failed(), Some(7));
        assert_eq!(pool.counts(), (0, 0, 0));
    });
}
