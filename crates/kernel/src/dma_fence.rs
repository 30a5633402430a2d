//! A fence (the kernel's `dma_fence`): the one-shot "this work is done"
//! signal of a job on a buffer, shared by everyone who waits for it.
//!
//! A [`Fence`] lives in an `Arc`; it signals at most once, and callbacks
//! registered before that run exactly once, outside its lock, when it does
//! (or at once if it already has), unless their waiter takes them back. Devices that do work on buffers create
//! fences; until one does, every fence the model hands out is signalled
//! when it is made ([`Fence::stub`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use teeheap_sync::Recover;

/// A callback run once when a fence signals.
type Callback = Box<dyn FnOnce() + Send>;

/// What [`Fence::driver_name`] reports once a fence has signalled (Linux
/// 6.17+ no longer asks the driver then).
pub const SIGNALLED_DRIVER_NAME: &str = "detached-driver";
/// What [`Fence::timeline_name`] reports once a fence has signalled.
pub const SIGNALLED_TIMELINE_NAME: &str = "signaled-timeline";

/// Fence contexts (timelines); 0 is the stub's, as in the kernel.
static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

/// `CLOCK_MONOTONIC` now, in ns (what `ktime_get` gives the kernel and
/// `clock_gettime(CLOCK_MONOTONIC)` gives programs).
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

#[derive(Default)]
struct State {
    /// `CLOCK_MONOTONIC` ns of the signal, once signalled.
    signalled_at: Option<u64>,
    /// Negative errno the work ended with (0: none).
    error: i32,
    callbacks: Vec<(CallbackId, Callback)>,
    next_callback: u64,
}

/// Names a callback waiting on a fence ([`Fence::add_callback`]), to take
/// it back with [`Fence::remove_callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackId(u64);

/// A fence. See the module documentation.
///
/// # Invariants
/// `state.signalled_at` goes from `None` to `Some` once and never back;
/// `state.callbacks` is empty once it is `Some`.
pub struct Fence {
    context: u64,
    seqno: u64,
    driver: &'static str,
    timeline: &'static str,
    state: Mutex<State>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("context", &self.context)
            .field("seqno", &self.seqno)
            .field("signalled_at", &self.timestamp_ns())
            .finish_non_exhaustive()
    }
}

impl Fence {
    /// An unsignalled fence on a new timeline of `driver`, seqno 1.
    pub fn new(driver: &'static str, timeline: &'static str) -> Arc<Fence> {
        Arc::new(Fence {
            context: NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed),
            seqno: 1,
            driver,
            timeline,
            state: Mutex::new(State::default()),
        })
    }

    /// A fence that signalled at `timestamp_ns` (`dma_fence_allocate_private_stub`):
    /// context and seqno 0, driver and timeline `stub`.
    pub fn signalled_at(timestamp_ns: u64) -> Arc<Fence> {
        Arc::new(Fence {
            context: 0,
            seqno: 0,
            driver: "stub",
            timeline: "stub",
            state: Mutex::new(State { signalled_at: Some(timestamp_ns), ..State::default() }),
        })
    }

    /// The shared always-signalled stub (`dma_fence_get_stub`), signalled
    /// when first asked for: what a buffer without pending work exports.
    pub fn stub() -> Arc<Fence> {
        static STUB: OnceLock<Arc<Fence>> = OnceLock::new();
        Arc::clone(STUB.get_or_init(|| Fence::signalled_at(monotonic_ns())))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    /// The timeline it belongs to.
    pub fn context(&self) -> u64 {
        self.context
    }

    /// Its position on the timeline.
    pub fn seqno(&self) -> u64 {
        self.seqno
    }

    /// Whether it has signalled.
    pub fn is_signalled(&self) -> bool {
        self.state().signalled_at.is_some()
    }

    /// `dma_fence_get_status`: 1 signalled, 0 pending, a negative errno if
    /// the work failed.
    pub fn status(&self) -> i32 {
        let s = self.state();
        match s.signalled_at {
            None => 0,
            Some(_) if s.error < 0 => s.error,
            Some(_) => 1,
        }
    }

    /// When it signalled (`CLOCK_MONOTONIC` ns), if it has.
    pub fn timestamp_ns(&self) -> Option<u64> {
        self.state().signalled_at
    }

    /// `dma_fence_driver_name`: the driver's name while pending,
    /// [`SIGNALLED_DRIVER_NAME`] afterwards.
    pub fn driver_name(&self) -> &'static str {
        if self.is_signalled() { SIGNALLED_DRIVER_NAME } else { self.driver }
    }

    /// `dma_fence_timeline_name`: the timeline's name while pending,
    /// [`SIGNALLED_TIMELINE_NAME`] afterwards.
    pub fn timeline_name(&self) -> &'static str {
        if self.is_signalled() { SIGNALLED_TIMELINE_NAME } else { self.timeline }
    }

    /// Signals the fence (the work is done) and runs the waiting callbacks.
    /// Returns `false` if it had signalled already.
    pub fn signal(&self) -> bool {
        self.signal_with(0)
    }

    /// Signals the fence with the work's error (a negative errno), as
    /// `dma_fence_set_error` + `dma_fence_signal`.
    pub fn signal_with(&self, error: i32) -> bool {
        let callbacks = {
            let mut s = self.state();
            if s.signalled_at.is_some() {
                return false;
            }
            s.signalled_at = Some(monotonic_ns());
            s.error = error.min(0);
            std::mem::take(&mut s.callbacks)
        };
        for (_, cb) in callbacks {
            cb();
        }
        true
    }

    /// `dma_fence_add_callback`: runs `cb` once when the fence signals and
    /// returns its id; if the fence has signalled already, runs it now, in
    /// this thread, and returns `None`.
    pub fn add_callback(&self, cb: impl FnOnce() + Send + 'static) -> Option<CallbackId> {
        {
            let mut s = self.state();
            if s.signalled_at.is_none() {
                let id = CallbackId(s.next_callback);
                s.next_callback += 1;
                s.callbacks.push((id, Box::new(cb)));
                return Some(id);
            }
        }
        cb();
        None
    }

    /// `dma_fence_remove_callback`: takes back a callback that has not run
    /// yet (a waiter that is gone). Returns whether it was still waiting.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        let mut s = self.state();
        let before = s.callbacks.len();
        s.callbacks.retain(|(c, _)| *c != id);
        s.callbacks.len() != before
    }

    /// How many callbacks wait for the signal.
    pub fn waiters(&self) -> usize {
        self.state().callbacks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn signals_once_and_runs_callbacks_once() {
        let f = Fence::new("test", "ring0");
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        assert!(
            f.add_callback(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .is_some()
        );
        // A waiter that goes away takes its callback back.
        let gone = f.add_callback(|| panic!("removed callbacks never run")).unwrap();
        assert_eq!(f.waiters(), 2);
        assert!(f.remove_callback(gone));
        assert!(!f.remove_callback(gone));
        assert_eq!((f.status(), f.driver_name(), f.timeline_name()), (0, "test", "ring0"));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let before = monotonic_ns();
        assert!(f.signal());
        assert!(!f.signal());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(f.timestamp_ns().unwrap() >= before);
        assert_eq!(
            (f.status(), f.driver_name(), f.timeline_name()),
            (1, SIGNALLED_DRIVER_NAME, SIGNALLED_TIMELINE_NAME)
        );
        // Registered after the signal: runs at once.
        let r = Arc::clone(&runs);
        assert!(
            f.add_callback(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .is_none()
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(f.waiters(), 0);
    }

    #[test]
    fn errors_and_stubs() {
        let f = Fence::new("test", "ring0");
        f.signal_with(-5);
        assert_eq!(f.status(), -5);
        let s = Fence::stub();
        assert!(Arc::ptr_eq(&s, &Fence::stub()));
        assert_eq!((s.context(), s.seqno(), s.status()), (0, 0, 1));
        assert_ne!(Fence::new("a", "b").context(), Fence::new("a", "b").context());
    }
}
