// The lifecycle core, compiled twice: in the kernel model with `std::sync`
// (see `mod.rs`) and in `tests/loom_lifecycle.rs` with `loom::sync`, so the
// model checker explores exactly this code. It uses only `super::sync`.

use std::collections::BTreeMap;
use std::fmt;

use super::sync::{Arc, Mutex, Recover, RwLock, RwLockReadGuard};

/// An object whose access can be revoked, in the spirit of Rust-for-Linux's
/// `Revocable`: [`Revocable::try_access`] hands out a guard while the object
/// is available and `None` after [`Revocable::revoke`], which waits for the
/// guards in flight. Holders that cloned the `Arc` keep the object alive
/// until they drop it; it is dropped with the last of them.
pub struct Revocable<T: ?Sized> {
    slot: RwLock<Option<Arc<T>>>,
}

impl<T: ?Sized> fmt::Debug for Revocable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocable").field("available", &self.is_available()).finish()
    }
}

impl<T: ?Sized> Default for Revocable<T> {
    fn default() -> Self {
        Revocable { slot: RwLock::new(None) }
    }
}

/// Access to a revocable object; while it exists, `revoke` waits.
pub struct RevocableGuard<'a, T: ?Sized>(RwLockReadGuard<'a, Option<Arc<T>>>);

impl<T: ?Sized> std::ops::Deref for RevocableGuard<'_, T> {
    type Target = Arc<T>;

    fn deref(&self) -> &Arc<T> {
        self.0.as_ref().expect("a guard exists only while the object is present")
    }
}

impl<T: ?Sized> Revocable<T> {
    /// Makes `value` available.
    pub fn new(value: Arc<T>) -> Revocable<T> {
        Revocable { slot: RwLock::new(Some(value)) }
    }

    /// The object, unless revoked.
    pub fn try_access(&self) -> Option<RevocableGuard<'_, T>> {
        let g = self.slot.read().recover();
        if g.is_some() { Some(RevocableGuard(g)) } else { None }
    }

    /// Revokes access, waiting for guards in flight; returns the object so
    /// the caller decides when to drop its reference.
    pub fn revoke(&self) -> Option<Arc<T>> {
        self.slot.write().recover().take()
    }

    /// Revokes access if `pred` holds for the object, atomically.
    pub fn revoke_if(&self, pred: impl FnOnce(&T) -> bool) -> Option<Arc<T>> {
        let mut slot = self.slot.write().recover();
        if slot.as_deref().is_some_and(pred) { slot.take() } else { None }
    }

    /// Makes `value` available unless something is.
    ///
    /// # Errors
    /// Gives `value` back if an object is available.
    pub fn install(&self, value: Arc<T>) -> Result<(), Arc<T>> {
        let mut slot = self.slot.write().recover();
        if slot.is_some() {
            return Err(value);
        }
        *slot = Some(value);
        Ok(())
    }

    /// Whether the object is currently available (a snapshot for reports).
    pub fn is_available(&self) -> bool {
        self.slot.read().recover().is_some()
    }
}

/// What may happen when a use case is registered while an earlier
/// registration still has live buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RebindPolicy {
    /// As Linux: `EBUSY` until the old buffers are gone.
    Upstream,
    /// teeheap: a new generation binds at once with its own pool; the old
    /// one drains into its pool.
    #[default]
    Generations,
}

/// State of one generation, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStatus {
    /// Whether it is the bound generation (else it drains).
    pub bound: bool,
    /// Its live buffers.
    pub buffers: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// The live generations of a use case, by number.
#[derive(Debug, Default)]
pub struct GenTable {
    gens: Mutex<BTreeMap<u64, GenStatus>>,
}

impl GenTable {
    fn update(&self, id: u64, f: impl FnOnce(&mut GenStatus)) {
        let mut gens = self.gens.lock().recover();
        f(gens.entry(id).or_default());
    }

    fn remove(&self, id: u64) {
        self.gens.lock().recover().remove(&id);
    }

    /// Every live generation: the bound one and those draining.
    pub fn snapshot(&self) -> Vec<(u64, GenStatus)> {
        self.gens.lock().recover().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Whether any generation is alive.
    pub fn is_empty(&self) -> bool {
        self.gens.lock().recover().is_empty()
    }
}

/// Tears a generation's resources down; runs once, when the generation is
/// dropped after its registration was revoked and its last buffer released.
pub trait Teardown: Send + Sync + 'static {
    /// Destroys the pool (scrub, unprotect, give memory back).
    fn teardown(&mut self);
}

/// One registration of a use case and everything allocated under it. The
/// registration and every buffer hold an `Arc` of it; the last one to go
/// runs [`Teardown::teardown`].
pub struct Generation<P: Teardown> {
    id: u64,
    inner: P,
    table: Arc<GenTable>,
}

impl<P: Teardown> Generation<P> {
    /// Its number (1 for the first registration of the use case).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The registration's resources (pool, device).
    pub fn get(&self) -> &P {
        &self.inner
    }

    /// Records that a buffer of `bytes` under this generation was released.
    pub fn buffer_released(&self, bytes: u64) {
        self.table.update(self.id, |s| {
            s.buffers -= 1;
            s.bytes -= bytes;
        });
    }
}

impl<P: Teardown> Drop for Generation<P> {
    fn drop(&mut self) {
        self.inner.teardown();
        self.table.remove(self.id);
    }
}

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// Bound already, or (upstream policy) an old generation still drains.
    Busy,
}

/// Why an allocation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocError<E> {
    /// No registration is bound.
    Unbound,
    /// The pool failed.
    Pool(E),
}

/// The registrations of one use case over time. See [`Generation`].
pub struct Lifecycle<P: Teardown> {
    current: Revocable<Generation<P>>,
    table: Arc<GenTable>,
    next: Mutex<u64>,
    policy: RebindPolicy,
}

impl<P: Teardown> Lifecycle<P> {
    /// No registration yet.
    pub fn new(policy: RebindPolicy) -> Lifecycle<P> {
        Lifecycle { current: Revocable::default(), table: Arc::new(GenTable::default()), next: Mutex::new(1), policy }
    }

    /// Registers `inner` as a new generation and returns its number.
    ///
    /// # Errors
    /// [`BindError::Busy`] if one is bound, or under the upstream policy if
    /// an old generation still has buffers; `inner` is dropped unused then
    /// (no teardown).
    pub fn bind(&self, inner: P) -> Result<u64, BindError> {
        let mut next = self.next.lock().recover();
        if self.current.is_available() || (self.policy == RebindPolicy::Upstream && !self.table.is_empty()) {
            return Err(BindError::Busy);
        }
        let id = *next;
        self.table.update(id, |s| s.bound = true);
        let generation = Arc::new(Generation { id, inner, table: Arc::clone(&self.table) });
        if self.current.install(generation).is_err() {
            unreachable!("binds are serialised and nothing was bound");
        }
        *next += 1;
        Ok(id)
    }

    /// Revokes the bound generation if `owned` says it is the caller's: no
    /// allocation succeeds from now on; returns its number. It is torn down
    /// after its last buffer.
    pub fn unbind_if(&self, owned: impl FnOnce(&P) -> bool) -> Option<u64> {
        let _serialised = self.next.lock().recover();
        let generation = self.current.revoke_if(|g| owned(&g.inner))?;
        let id = generation.id;
        self.table.update(id, |s| s.bound = false);
        drop(generation);
        Some(id)
    }

    /// Allocates with `f` from the bound generation, counting the buffer
    /// against it. The guard is held across `f`, so an unbind waits for it.
    ///
    /// # Errors
    /// [`AllocError::Unbound`] if nothing is bound; [`AllocError::Pool`]
    /// with `f`'s error.
    pub fn alloc<A, E>(
        &self,
        bytes: u64,
        f: impl FnOnce(&P) -> Result<A, E>,
    ) -> Result<(Arc<Generation<P>>, A), AllocError<E>> {
        let generation = self.current.try_access().ok_or(AllocError::Unbound)?;
        let a = f(&generation.inner).map_err(AllocError::Pool)?;
        self.table.update(generation.id, |s| {
            s.buffers += 1;
            s.bytes += bytes;
        });
        Ok((Arc::clone(&generation), a))
    }

    /// The bound generation's resources, if any (for reports).
    pub fn with_current<R>(&self, f: impl FnOnce(&Generation<P>) -> R) -> Option<R> {
        self.current.try_access().map(|g| f(&g))
    }

    /// Whether a generation is bound.
    pub fn is_bound(&self) -> bool {
        self.current.is_available()
    }

    /// The live generations.
    pub fn generations(&self) -> Vec<(u64, GenStatus)> {
        self.table.snapshot()
    }

    /// The rebind policy.
    pub fn policy(&self) -> RebindPolicy {
        self.policy
    }
}
