//! Revocable access to a shared object, in the spirit of Rust-for-Linux's
//! `Revocable`.
//!
//! [`Revocable::try_access`] hands out a guard while the object is
//! available, `None` after [`Revocable::revoke`]. `revoke` waits for the
//! guards in flight, so once it returns no new work can start on the old
//! object; holders that cloned the `Arc` (live buffers) keep it alive until
//! they are done, and it is dropped with the last of them.
//!
//! ```
//! use std::sync::Arc;
//! use teeheap_kernel::revocable::Revocable;
//!
//! let r = Revocable::new(Arc::new(5));
//! let held = Arc::clone(&*r.try_access().unwrap()); // e.g. a buffer keeps its pool
//! assert!(r.revoke().is_some());
//! assert!(r.try_access().is_none()); // no new allocation after unbind
//! assert_eq!(*held, 5); // the buffer still works until released
//! ```

use std::sync::{Arc, RwLock, RwLockReadGuard};

/// An object that can be revoked. See the module documentation.
#[derive(Debug)]
pub struct Revocable<T> {
    slot: RwLock<Option<Arc<T>>>,
}

impl<T> Default for Revocable<T> {
    fn default() -> Self {
        Revocable { slot: RwLock::new(None) }
    }
}

/// Access to a revocable object; while it exists, `revoke` waits.
#[derive(Debug)]
pub struct RevocableGuard<'a, T>(RwLockReadGuard<'a, Option<Arc<T>>>);

impl<T> std::ops::Deref for RevocableGuard<'_, T> {
    type Target = Arc<T>;

    fn deref(&self) -> &Arc<T> {
        self.0.as_ref().expect("a guard exists only while the object is present")
    }
}

impl<T> Revocable<T> {
    /// Makes `value` available.
    pub fn new(value: Arc<T>) -> Revocable<T> {
        Revocable { slot: RwLock::new(Some(value)) }
    }

    /// The object, unless revoked.
    pub fn try_access(&self) -> Option<RevocableGuard<'_, T>> {
        let g = self.slot.read().unwrap_or_else(|e| e.into_inner());
        g.is_some().then_some(RevocableGuard(g))
    }

    /// Revokes access, waiting for guards in flight; returns the object so
    /// the caller decides when to drop its reference.
    pub fn revoke(&self) -> Option<Arc<T>> {
        self.slot.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Makes `value` available if nothing is, under `check` which sees the
    /// slot exclusively and may refuse with an error.
    ///
    /// # Errors
    /// What `check` returns; nothing changes then.
    pub fn install_with<E>(
        &self,
        value: Arc<T>,
        check: impl FnOnce(Option<&Arc<T>>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        check(slot.as_ref())?;
        *slot = Some(value);
        Ok(())
    }

    /// Whether the object is currently available (a snapshot for reports).
    pub fn is_available(&self) -> bool {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}
