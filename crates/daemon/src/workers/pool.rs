//! The bookkeeping of a bounded worker pool: a queue of jobs, how many
//! workers live and how many of them wait for work. It starts no threads
//! itself: [`Pool::submit`] says when the caller must start one, so that
//! the same source is model-checked by `tests/loom_workers.rs`.
//!
//! # Invariants
//! `idle <= live <= max_workers`; a job is taken by exactly one worker;
//! `jobs.len() <= max_queued` except for jobs pushed while no worker could
//! be started (then the submitter runs them itself). A worker leaves only
//! when the queue is empty, so no queued job is left without a worker
//! while `live > 0`.

use std::collections::VecDeque;
use std::time::Duration;

use super::sync::{Condvar, Mutex, MutexGuard, Recover};

/// Job queue and worker counts. See the module docs.
#[derive(Debug)]
pub struct Pool<J> {
    state: Mutex<State<J>>,
    /// A job was queued, or the pool is closing.
    ready: Condvar,
    /// The queue has room again, or a worker left.
    room: Condvar,
    max_workers: usize,
    max_queued: usize,
}

#[derive(Debug)]
struct State<J> {
    jobs: VecDeque<J>,
    live: usize,
    idle: usize,
    closing: bool,
}

/// What the submitter of a job must do next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Next {
    /// Nothing: a worker will take the job.
    Queued,
    /// Start one more worker (counted live already); if that fails, call
    /// [`Pool::spawn_failed`].
    Spawn,
}

impl<J> Pool<J> {
    /// A pool of at most `max_workers` (at least 1) workers and
    /// `max_queued` jobs waiting.
    pub fn new(max_workers: usize, max_queued: usize) -> Pool<J> {
        Pool {
            state: Mutex::new(State { jobs: VecDeque::new(), live: 0, idle: 0, closing: false }),
            ready: Condvar::new(),
            room: Condvar::new(),
            max_workers: max_workers.max(1),
            max_queued,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().recover()
    }

    /// Queues `job`. A waiting worker takes it; else, below the worker
    /// bound, the caller is told to start one; else it waits its turn.
    pub fn submit(&self, job: J) -> Next {
        let mut s = self.lock();
        s.jobs.push_back(job);
        // Idle workers not yet woken for earlier jobs take this one.
        if s.idle >= s.jobs.len() {
            self.ready.notify_one();
            return Next::Queued;
        }
        if s.live < self.max_workers {
            s.live += 1;
            return Next::Spawn;
        }
        Next::Queued
    }

    /// A worker the pool asked for could not be started: gives its place
    /// back. Returns a job the caller must run itself if no worker is left
    /// to take it.
    pub fn spawn_failed(&self) -> Option<J> {
        let mut s = self.lock();
        s.live -= 1;
        if s.live == 0 { s.jobs.pop_front() } else { None }
    }

    /// Waits until fewer than the queue bound wait, up to `timeout`.
    /// Returns whether there is room.
    pub fn wait_room(&self, timeout: Duration) -> bool {
        let s = self.lock();
        if s.jobs.len() < self.max_queued {
            return true;
        }
        let (s, _) = self.room.wait_timeout(s, timeout).recover();
        s.jobs.len() < self.max_queued
    }

    /// A worker's next job: waits up to `linger` for one. `None` means the
    /// worker must leave (idle past `linger`, or the pool is closing and
    /// its queue empty); it is no longer counted then.
    pub fn next(&self, linger: Duration) -> Option<J> {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.jobs.pop_front() {
                self.room.notify_one();
                return Some(job);
            }
            if s.closing {
                break;
            }
            s.idle += 1;
            let (g, timeout) = self.ready.wait_timeout(s, linger).recover();
            s = g;
            s.idle -= 1;
            if timeout.timed_out() && s.jobs.is_empty() {
                break;
            }
        }
        s.live -= 1;
        self.room.notify_all();
        None
    }

    /// No more jobs will come: workers finish the queue and leave.
    pub fn close(&self) {
        self.lock().closing = true;
        self.ready.notify_all();
    }

    /// Waits until every worker has left (after [`Pool::close`]).
    pub fn wait_gone(&self) {
        let mut s = self.lock();
        while s.live > 0 {
            s = self.room.wait(s).recover();
        }
    }

    /// `(live workers, idle workers, queued jobs)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let s = self.lock();
        (s.live, s.idle, s.jobs.len())
    }
}
