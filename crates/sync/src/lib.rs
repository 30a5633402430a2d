//! Taking a lock whose previous holder panicked.
//!
//! teeheap serves each call under `catch_unwind` (see the daemon's
//! `guard.rs`): a panic answers that one call with an errno and the daemon
//! keeps serving. A panic while a `Mutex`/`RwLock` guard is held poisons
//! the lock; refusing every later call on it would turn one bug into a
//! dead daemon. So every lock in the workspace is taken through
//! [`Recover::recover`], which keeps the guard of a poisoned lock and lets
//! the next call proceed on the state as the panicking call left it (the
//! kernel's answer to a BUG in a syscall: the task dies, the system goes
//! on). Unwinding has already released guards and dropped the objects the
//! failed call made, as on an error return.
//!
//! The trait is implemented for [`std::sync::LockResult`], which is also
//! what `loom::sync` locks return, so code model-checked with loom (the
//! kernel's lifecycle core) uses the same call from the same source.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use teeheap_sync::Recover;
//!
//! let m = Arc::new(Mutex::new(1));
//! let m2 = Arc::clone(&m);
//! let _ = std::thread::spawn(move || {
//!     let _g = m2.lock().recover();
//!     panic!("a bug while holding the lock");
//! })
//! .join();
//! assert!(m.is_poisoned());
//! *m.lock().recover() += 1; // the next caller still gets the state
//! assert_eq!(*m.lock().recover(), 2);
//! ```

#![forbid(unsafe_code)]

use std::sync::{LockResult, PoisonError};

/// Recovers the guard of a poisoned lock (see the crate doc for why).
pub trait Recover<T> {
    /// The guard (or value) whether or not a holder panicked.
    fn recover(self) -> T;
}

impl<T> Recover<T> for LockResult<T> {
    #[inline]
    fn recover(self) -> T {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Recover;
    use std::sync::{Condvar, Mutex, RwLock};
    use std::time::Duration;

    fn poison(f: impl FnOnce() + Send) {
        std::thread::scope(|s| {
            assert!(s.spawn(f).join().is_err());
        });
    }

    #[test]
    fn rwlock_read_and_write_recover_after_panic() {
        let l = RwLock::new(vec![1]);
        poison(|| {
            let mut g = l.write().recover();
            g.push(2);
            panic!("bug");
        });
        assert!(l.is_poisoned());
        assert_eq!(*l.read().recover(), vec![1, 2]);
        l.write().recover().push(3);
        assert_eq!(l.read().recover().len(), 3);
    }

    #[test]
    fn condvar_wait_timeout_recovers() {
        let m = Mutex::new(0u8);
        let cv = Condvar::new();
        poison(|| {
            let _g = m.lock().recover();
            panic!("bug");
        });
        let g = m.lock().recover();
        let (g, t) = cv.wait_timeout(g, Duration::from_millis(1)).recover();
        assert!(t.timed_out());
        assert_eq!(*g, 0);
    }
}
