//! Shared by the benches: worker threads timed from inside (`iter_custom`),
//! optionally under teeheap's seccomp filter, and an interleaved A/B ratio
//! measurement that prints a Markdown row for BENCHMARKS.md.

#![allow(dead_code)] // each bench uses a part

use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use teeheap_daemon::Daemon;
use teeheap_daemon::protocol::NodeId;
use teeheap_intercept::filter::Filter;

/// A thread that runs `n` iterations of its loop on request and answers
/// with the time they took.
pub(crate) struct Worker {
    ask: mpsc::Sender<u64>,
    took: mpsc::Receiver<Duration>,
}

impl Worker {
    /// Starts a thread that calls `setup` once (after installing teeheap's
    /// filter on itself and handing the listener to `daemon`, if given),
    /// then times `n` calls of the closure `setup` returned per request.
    pub(crate) fn spawn<S, F>(daemon: Option<(&Daemon, Vec<NodeId>)>, setup: S) -> Worker
    where
        S: FnOnce() -> F + Send + 'static,
        F: FnMut(),
    {
        Worker::spawn_settled(daemon, setup, || {})
    }

    /// As [`Worker::spawn`], with `settle` run at the end of each timed
    /// batch (inside the timing): to count work the batch left behind.
    pub(crate) fn spawn_settled<S, F>(
        daemon: Option<(&Daemon, Vec<NodeId>)>,
        setup: S,
        settle: impl Fn() + Send + 'static,
    ) -> Worker
    where
        S: FnOnce() -> F + Send + 'static,
        F: FnMut(),
    {
        let (ask, asks) = mpsc::channel::<u64>();
        let (tell, took) = mpsc::channel();
        let (lfd_tx, lfd_rx) = mpsc::channel::<(OwnedFd, i32)>();
        let filtered = daemon.is_some();
        std::thread::spawn(move || {
            if filtered {
                let listener = Filter::teeheap().install().expect("seccomp user notification");
                lfd_tx.send((listener, rustix::thread::gettid().as_raw_nonzero().get())).unwrap();
            }
            drop(lfd_tx);
            let mut op = setup();
            for n in asks {
                let t0 = Instant::now();
                for _ in 0..n {
                    op();
                }
                settle();
                if tell.send(t0.elapsed()).is_err() {
                    return;
                }
            }
        });
        if let Some((d, nodes)) = daemon {
            let (listener, tid) = lfd_rx.recv().unwrap();
            d.shared().supervise(listener, tid, &nodes).unwrap();
        }
        Worker { ask, took }
    }

    /// As [`Worker::spawn`] but under `filter` alone, unsupervised: for a
    /// filter that never notifies (e.g. [`Filter::empty`]), to see what
    /// merely having a seccomp filter costs.
    pub(crate) fn spawn_under<S, F>(filter: Filter, setup: S) -> Worker
    where
        S: FnOnce() -> F + Send + 'static,
        F: FnMut(),
    {
        Worker::spawn(None, move || {
            // Kept open: a filter that would notify without a listener fails.
            let listener = filter.install().expect("seccomp filter");
            let mut op = setup();
            move || {
                let _ = &listener;
                op();
            }
        })
    }

    /// Time of `n` iterations.
    pub(crate) fn time(&self, n: u64) -> Duration {
        self.ask.send(n).unwrap();
        self.took.recv().unwrap()
    }
}

/// Whether criterion runs in `--test` mode (each bench once, quickly).
pub(crate) fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Measures `a` and `b` in alternating rounds of `n` iterations and prints
/// the best per-call time of each and their ratio, as a Markdown row:
/// `| what | a | b | ratio | goal |`. The minimum over rounds is what the
/// machine can do; alternating keeps background load from favouring one.
pub(crate) fn ratio(what: &str, a: (&str, &Worker), b: (&str, &Worker), n: u64, goal: f64) {
    let (rounds, n) = if test_mode() { (1, n.min(50)) } else { (15, n) };
    a.1.time(n / 4 + 1);
    b.1.time(n / 4 + 1);
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        best_a = best_a.min(a.1.time(n).as_nanos() as f64 / n as f64);
        best_b = best_b.min(b.1.time(n).as_nanos() as f64 / n as f64);
    }
    let r = best_a / best_b;
    let verdict = if test_mode() {
        "--test mode: one short round, not a measurement"
    } else if r <= goal {
        "met"
    } else {
        "not met"
    };
    println!(
        "| {what} | {}: {} | {}: {} | {r:.2}× | ≤ {goal}× ({verdict}) |",
        a.0,
        fmt_ns(best_a),
        b.0,
        fmt_ns(best_b)
    );
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 { format!("{:.1} µs", ns / 1000.0) } else { format!("{ns:.0} ns") }
}
