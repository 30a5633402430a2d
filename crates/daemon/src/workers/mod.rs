//! A session's serving threads: a bounded pool that answers a program
//! tree's intercepted calls concurrently (docs/concurrency.md).
//!
//! The session thread receives notifications and queues them; a worker
//! takes one, serves it and answers it. Workers are started on demand up
//! to [`MAX_WORKERS`] per tree and leave after [`LINGER`] without work;
//! past the bound calls wait in the queue (and past [`MAX_QUEUED`] in the
//! kernel's notification queue): they are delayed, never refused. A
//! thread of the program has at most one call in flight, so its calls
//! are still answered in order.

mod sync {
    pub(super) use std::sync::{Condvar, Mutex, MutexGuard};
    pub(super) use teeheap_sync::Recover;
}

pub mod pool;

use std::sync::Arc;
use std::time::Duration;
use teeheap_sync::Recover;

pub use pool::{Next, Pool};

/// Most threads serving one program tree at once.
pub const MAX_WORKERS: usize = 32;

/// Most calls queued in the daemon per tree; more stay in the kernel's
/// notification queue until a worker frees up.
pub const MAX_QUEUED: usize = 1024;

/// Most calls at once on their own threads past the pool
/// ([`Workers::submit_urgent`]).
pub const MAX_URGENT: usize = 8;

/// How long an idle worker waits for work before it leaves.
pub const LINGER: Duration = Duration::from_secs(2);

/// A pool whose workers run `serve` on each job, named `name-N`.
pub struct Workers<J: Send + 'static> {
    pool: Arc<Pool<J>>,
    urgent: Arc<std::sync::atomic::AtomicUsize>,
    serve: Arc<dyn Fn(J) + Send + Sync>,
    name: String,
}

impl<J: Send + 'static> std::fmt::Debug for Workers<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("name", &self.name).field("counts", &self.pool.counts()).finish()
    }
}

impl<J: Send + 'static> Workers<J> {
    /// A pool of up to `max_workers` threads, queueing up to `max_queued`.
    pub fn new(name: String, max_workers: usize, max_queued: usize, serve: Arc<dyn Fn(J) + Send + Sync>) -> Self {
        Workers { pool: Arc::new(Pool::new(max_workers, max_queued)), urgent: Arc::default(), serve, name }
    }

    /// Hands `job` to a worker, starting one if needed. If no thread can
    /// be started and none is left, the job is served on this thread.
    pub fn submit(&self, job: J) {
        if self.pool.submit(job) == Next::Queued {
            return;
        }
        let (pool, serve) = (Arc::clone(&self.pool), Arc::clone(&self.serve));
        let started = std::thread::Builder::new().name(self.name.clone()).spawn(move || {
            while let Some(job) = pool.next(LINGER) {
                serve(job);
            }
        });
        if let Err(e) = started {
            tracing::warn!(pool = %self.name, error = %e, "cannot start a serving thread");
            if let Some(job) = self.pool.spawn_failed() {
                (self.serve)(job);
            }
        }
    }

    /// Serves `job` on a thread of its own, outside the pool's bound (up to
    /// [`MAX_URGENT`] at once, else as [`Workers::submit`]): for calls that
    /// others' calls wait for (a supplicant's answer), which must not wait
    /// behind them for a worker.
    pub fn submit_urgent(&self, job: J) {
        use std::sync::atomic::Ordering;
        if self.urgent.fetch_add(1, Ordering::SeqCst) >= MAX_URGENT {
            self.urgent.fetch_sub(1, Ordering::SeqCst);
            return self.submit(job);
        }
        let (urgent, serve) = (Arc::clone(&self.urgent), Arc::clone(&self.serve));
        let job = Arc::new(std::sync::Mutex::new(Some(job)));
        let mine = Arc::clone(&job);
        let started = std::thread::Builder::new().name(format!("{}-urgent", self.name)).spawn(move || {
            if let Some(job) = mine.lock().recover().take() {
                serve(job);
            }
            urgent.fetch_sub(1, Ordering::SeqCst);
        });
        if started.is_err() {
            self.urgent.fetch_sub(1, Ordering::SeqCst);
            if let Some(job) = job.lock().recover().take() {
                self.submit(job);
            }
        }
    }

    /// Waits up to `timeout` for room in the queue; whether there is.
    pub fn wait_room(&self, timeout: Duration) -> bool {
        self.pool.wait_room(timeout)
    }

    /// Lets the workers finish what is queued and waits until they left.
    pub fn finish(&self) {
        self.pool.close();
        self.pool.wait_gone();
    }

    /// `(live workers, idle workers, queued jobs)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.pool.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[test]
    fn calls_run_at_once_up_to_the_bound_then_queue() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let running = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (r, d) = (Arc::clone(&running), Arc::clone(&done));
        let serve: Arc<dyn Fn(u32) + Send + Sync> = Arc::new(move |blocking| {
            r.fetch_add(1, Ordering::SeqCst);
            if blocking == 1 {
                release_rx.lock().unwrap().recv().unwrap();
            }
            d.fetch_add(1, Ordering::SeqCst);
        });
        let w = Workers::new("test-worker".into(), 3, 100, serve);
        for _ in 0..3 {
            w.submit(1);
        }
        // Three blocked calls, three threads; a fourth call waits its turn.
        wait_for(|| running.load(Ordering::SeqCst) == 3);
        w.submit(0);
        assert_eq!(w.counts().0, 3, "never more workers than the bound");
        assert_eq!(done.load(Ordering::SeqCst), 0);
        release_tx.send(()).unwrap();
        wait_for(|| done.load(Ordering::SeqCst) == 2);
        for _ in 0..2 {
            release_tx.send(()).unwrap();
        }
        w.finish();
        assert_eq!(done.load(Ordering::SeqCst), 4);
        assert_eq!(w.counts(), (0, 0, 0));
    }

    #[test]
    fn idle_workers_are_reused() {
        let serve: Arc<dyn Fn(u32) + Send + Sync> = Arc::new(|_| {});
        let w = Workers::new("test-worker".into(), 8, 100, serve);
        for _ in 0..50 {
            w.submit(0);
            wait_for(|| w.counts().2 == 0 && w.counts().1 == w.counts().0);
        }
        assert_eq!(w.counts().0, 1, "one call at a time needs one worker");
        w.finish();
    }

    fn wait_for(cond: impl Fn() -> bool) {
        let t0 = std::time::Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(10), "condition not reached");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
