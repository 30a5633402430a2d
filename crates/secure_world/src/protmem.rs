//! Protected memory owned by the secure world: static carveouts and objects
//! lent by the normal world, plus the shared memory it registered.
//!
//! Lending programs a firewall region with the use case's rights; reclaim
//! first scrubs (zeroes, as the secure CPU) and only then drops the region.
//! A lent object is reclaimable only when no resolved memref holds it: each
//! [`crate::TaMemref`] into it keeps an `Arc` of the object.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use teeheap_sync::Recover;

use teeheap_platform::{Master, PAGE_SIZE, PhysRange, Platform, RegionId, Rights, UseCase};

use crate::abi::ProtmemAttr;
use crate::config::ProtmemKind;
use crate::error::{TeeError, TeeResult};

/// Memory lent for a use case, as the secure world tracks it.
#[derive(Debug)]
pub struct LentObject {
    cookie: u64,
    use_case: UseCase,
    range: PhysRange,
    region: RegionId,
}

impl LentObject {
    /// The normal world's cookie for it.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Its use case.
    pub fn use_case(&self) -> UseCase {
        self.use_case
    }

    /// The lent range.
    pub fn range(&self) -> PhysRange {
        self.range
    }
}

/// A summary of one lent object, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LentInfo {
    /// The cookie.
    pub cookie: u64,
    /// The use case.
    pub use_case: UseCase,
    /// The range.
    pub range: PhysRange,
    /// Whether a resolved memref (an invocation in progress, or a TA that
    /// kept one) holds it, so that reclaim would answer BUSY.
    pub in_use: bool,
}

/// Counters of lending and reclaiming since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtmemStats {
    /// Objects lent successfully.
    pub lent: u64,
    /// Objects reclaimed (scrubbed and unprotected).
    pub reclaimed: u64,
    /// Bytes lent in total.
    pub bytes_lent: u64,
    /// Bytes zeroed before their protection was dropped.
    pub bytes_scrubbed: u64,
    /// Lend requests refused.
    pub lend_refused: u64,
    /// Reclaim requests refused because the object was in use.
    pub reclaim_busy: u64,
    /// Objects lent right now.
    pub outstanding: u64,
    /// Bytes lent right now.
    pub outstanding_bytes: u64,
}

/// What [`ScrubObserver`] is told: an object was scrubbed and is about to
/// lose its protection (its firewall region still exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubEvent {
    /// The cookie.
    pub cookie: u64,
    /// The use case.
    pub use_case: UseCase,
    /// The scrubbed range.
    pub range: PhysRange,
}

/// A diagnostics hook called between scrub and unprotect, e.g. to read the
/// range as [`Master::SecureCpu`] through the platform and see zeroes.
pub type ScrubObserver = Box<dyn Fn(&Platform, &ScrubEvent) + Send + Sync>;

struct Entry {
    obj: Arc<LentObject>,
    reclaiming: bool,
}

#[derive(Default)]
struct State {
    lent: BTreeMap<u64, Entry>,
    shm: BTreeMap<u64, PhysRange>,
    stats: ProtmemStats,
}

/// The secure world's table of protected memory. See the module docs.
pub(crate) struct Protmem {
    platform: Arc<Platform>,
    kinds: BTreeMap<UseCase, ProtmemKind>,
    state: Mutex<State>,
    observer: Mutex<Option<ScrubObserver>>,
}

impl fmt::Debug for Protmem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protmem").field("kinds", &self.kinds).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// Where a physical range falls, for memref checks.
pub(crate) enum Place {
    /// Normal memory, outside every carveout and lent object.
    Normal,
    /// Wholly inside the carveout of a use case.
    Carveout(UseCase),
    /// Anything else: partly protected, or in lent memory by address.
    Forbidden,
}

impl Protmem {
    pub(crate) fn new(platform: Arc<Platform>, kinds: BTreeMap<UseCase, ProtmemKind>) -> Protmem {
        Protmem { platform, kinds, state: Mutex::new(State::default()), observer: Mutex::new(None) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    pub(crate) fn kind(&self, use_case: UseCase) -> ProtmemKind {
        self.kinds.get(&use_case).copied().unwrap_or(ProtmemKind::Disabled)
    }

    pub(crate) fn stats(&self) -> ProtmemStats {
        self.lock().stats
    }

    pub(crate) fn set_observer(&self, observer: Option<ScrubObserver>) {
        *self.observer.lock().recover() = observer;
    }

    pub(crate) fn lent_objects(&self) -> Vec<LentInfo> {
        self.lock()
            .lent
            .values()
            .map(|e| LentInfo {
                cookie: e.obj.cookie,
                use_case: e.obj.use_case,
                range: e.obj.range,
                in_use: Arc::strong_count(&e.obj) > 1,
            })
            .collect()
    }

    /// Classifies `range` (which must be in DRAM).
    pub(crate) fn place(&self, range: PhysRange) -> Place {
        for c in self.platform.carveouts() {
            if c.range.overlaps(&range) {
                return match c.range.contains_range(&range) {
                    true => Place::Carveout(c.use_case),
                    false => Place::Forbidden,
                };
            }
        }
        match self.lock().lent.values().any(|e| e.obj.range.overlaps(&range)) {
            true => Place::Forbidden,
            false => Place::Normal,
        }
    }

    /// The lent object under `cookie` and `[offset, offset + size)` in it.
    pub(crate) fn lookup(
        &self,
        cookie: u64,
        offset: u64,
        size: u64,
    ) -> TeeResult<(Arc<LentObject>, Option<PhysRange>)> {
        let st = self.lock();
        let e = st.lent.get(&cookie).filter(|e| !e.reclaiming).ok_or(TeeError::SECURITY)?;
        let end = offset.checked_add(size).ok_or(TeeError::SECURITY)?;
        if end > e.obj.range.len() {
            return Err(TeeError::SECURITY);
        }
        Ok((Arc::clone(&e.obj), e.obj.range.subrange(offset, size)))
    }

    fn rights(&self, use_case: UseCase) -> Option<Rights> {
        match self.kind(use_case) {
            ProtmemKind::Disabled => None,
            ProtmemKind::Dynamic(_) => {
                Some(Rights { read: use_case.default_readers(), write: use_case.default_writers() })
            }
            ProtmemKind::Static(_) => {
                let c = self.platform.carveout(use_case)?;
                self.platform.firewall().regions().into_iter().find(|r| r.id == c.region).map(|r| r.rights)
            }
        }
    }

    /// `(min size, alignment, attributes)` of `use_case`.
    pub(crate) fn config(&self, use_case: UseCase) -> TeeResult<(u64, u64, Vec<ProtmemAttr>)> {
        let (min, align) = match self.kind(use_case) {
            ProtmemKind::Disabled => return Err(TeeError::NOT_SUPPORTED),
            ProtmemKind::Static(_) => (PAGE_SIZE, PAGE_SIZE),
            ProtmemKind::Dynamic(d) => (d.min_size.bytes(), d.alignment),
        };
        let rights = self.rights(use_case).ok_or(TeeError::NOT_SUPPORTED)?;
        let attrs = Master::ALL
            .into_iter()
            .map(|m| ProtmemAttr { master: m, read: rights.read.contains(m), write: rights.write.contains(m) })
            .filter(|a| a.read || a.write)
            .collect();
        Ok((min, align, attrs))
    }

    fn check_normal(&self, st: &State, range: PhysRange) -> TeeResult {
        let dram = self.platform.dram();
        let in_carveout = self.platform.carveouts().iter().any(|c| c.range.overlaps(&range));
        let in_lent = st.lent.values().any(|e| e.obj.range.overlaps(&range));
        if !dram.contains_range(&range) || in_carveout || in_lent {
            return Err(TeeError::BAD_PARAMETERS);
        }
        Ok(())
    }

    /// Lends `range` for `use_case` under `cookie`.
    pub(crate) fn lend(&self, use_case: UseCase, range: PhysRange, cookie: u64) -> TeeResult {
        let result = self.try_lend(use_case, range, cookie);
        if let Err(e) = result {
            self.lock().stats.lend_refused += 1;
            tracing::info!(%use_case, %range, cookie, error = %e, "secure world: lend refused");
        }
        result
    }

    fn try_lend(&self, use_case: UseCase, range: PhysRange, cookie: u64) -> TeeResult {
        let ProtmemKind::Dynamic(dynamic) = self.kind(use_case) else {
            return Err(TeeError::NOT_SUPPORTED);
        };
        let align = dynamic.alignment.max(PAGE_SIZE);
        if range.start().raw() % align != 0 || range.len() % align != 0 {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let mut st = self.lock();
        if st.lent.contains_key(&cookie) {
            return Err(TeeError::BAD_PARAMETERS);
        }
        self.check_normal(&st, range)?;
        if st.shm.values().any(|s| s.overlaps(&range)) {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let rights = Rights { read: use_case.default_readers(), write: use_case.default_writers() };
        let region = self
            .platform
            .firewall()
            .add_region(range, rights, format!("lent region #{cookie} ({use_case})"))
            .map_err(|_| TeeError::BAD_PARAMETERS)?;
        st.lent
            .insert(cookie, Entry { obj: Arc::new(LentObject { cookie, use_case, range, region }), reclaiming: false });
        st.stats.lent += 1;
        st.stats.bytes_lent += range.len();
        st.stats.outstanding += 1;
        st.stats.outstanding_bytes += range.len();
        tracing::info!(%use_case, %range, cookie, "secure world: memory lent and protected");
        Ok(())
    }

    /// Scrubs and unprotects the object lent under `cookie`.
    pub(crate) fn reclaim(&self, cookie: u64) -> TeeResult {
        let obj = {
            let mut st = self.lock();
            let e = st.lent.get_mut(&cookie).ok_or(TeeError::ITEM_NOT_FOUND)?;
            if e.reclaiming {
                return Err(TeeError::BAD_STATE);
            }
            if Arc::strong_count(&e.obj) > 1 {
                st.stats.reclaim_busy += 1;
                tracing::info!(cookie, "secure world: reclaim refused, object in use");
                return Err(TeeError::BUSY);
            }
            e.reclaiming = true;
            Arc::clone(&e.obj)
        };
        if let Err(err) = self.platform.fill(Master::SecureCpu, obj.range, 0) {
            tracing::error!(cookie, error = %err, "secure world: scrub failed, memory stays protected");
            if let Some(e) = self.lock().lent.get_mut(&cookie) {
                e.reclaiming = false;
            }
            return Err(TeeError::GENERIC);
        }
        let event = ScrubEvent { cookie, use_case: obj.use_case, range: obj.range };
        if let Some(observe) = self.observer.lock().recover().as_ref() {
            observe(&self.platform, &event);
        }
        if let Err(err) = self.platform.firewall().remove_region(obj.region) {
            tracing::error!(cookie, error = %err, "secure world: firewall region of a lent object vanished");
        }
        let mut st = self.lock();
        st.lent.remove(&cookie);
        st.stats.reclaimed += 1;
        st.stats.bytes_scrubbed += obj.range.len();
        st.stats.outstanding -= 1;
        st.stats.outstanding_bytes -= obj.range.len();
        tracing::info!(use_case = %obj.use_case, range = %obj.range, cookie, "secure world: memory scrubbed and returned");
        Ok(())
    }

    pub(crate) fn register_shm(&self, cookie: u64, range: PhysRange) -> TeeResult {
        let mut st = self.lock();
        if st.shm.contains_key(&cookie) {
            return Err(TeeError::BAD_PARAMETERS);
        }
        self.check_normal(&st, range)?;
        st.shm.insert(cookie, range);
        Ok(())
    }

    pub(crate) fn unregister_shm(&self, cookie: u64) -> TeeResult {
        self.lock().shm.remove(&cookie).map(drop).ok_or(TeeError::ITEM_NOT_FOUND)
    }
}
