//! The lifecycle of protected heaps: registrations that can be revoked,
//! generations of a use case that drain independently, and removable heap
//! nodes — all by ownership.
//!
//! A registration is a [`Generation`] in an `Arc`: the [`Lifecycle`] holds
//! it while bound (in a [`Revocable`]), every buffer allocated under it
//! holds it too. Unbinding revokes access at once (allocations in flight
//! finish first, new ones fail); the generation, with its pool, is torn
//! down when the last buffer goes. Under [`RebindPolicy::Generations`] a
//! new generation may bind while an old one drains. The code of `core.rs`
//! is also compiled against `loom` by `tests/loom_lifecycle.rs`, which
//! model-checks these rules.
//!
//! ```
//! use std::sync::Arc;
//! use teeheap_kernel::lifecycle::Revocable;
//!
//! let r = Revocable::new(Arc::new(5));
//! let held = Arc::clone(&*r.try_access().unwrap()); // e.g. a buffer keeps its pool
//! assert!(r.revoke().is_some());
//! assert!(r.try_access().is_none()); // no new allocation after unbind
//! assert_eq!(*held, 5); // the buffer still works until released
//! ```

mod sync {
    pub(super) use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
    pub(super) use teeheap_sync::Recover;
}

mod core;

pub use self::core::{
    AllocError, BindError, GenStatus, GenTable, Generation, Lifecycle, RebindPolicy, Revocable, RevocableGuard,
    Teardown,
};

impl From<teeheap_platform::config::Rebind> for RebindPolicy {
    fn from(r: teeheap_platform::config::Rebind) -> Self {
        match r {
            teeheap_platform::config::Rebind::Upstream => RebindPolicy::Upstream,
            teeheap_platform::config::Rebind::Generations => RebindPolicy::Generations,
        }
    }
}
