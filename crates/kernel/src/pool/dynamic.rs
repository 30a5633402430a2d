//! The dynamic pool: protected memory lent from normal memory on demand (the
//! kernel's `protmem.c` pool), growing by chunks up to a cap.
//!
//! A chunk is taken from normal memory, lent to the secure world (which
//! protects it for the use case) and carved page by page. A chunk goes back
//! to normal memory only once it holds no buffer *and* the secure world gave
//! it back (scrubbed, unprotected); until then its pages stay allocated in
//! normal memory, so nothing the secure world protects is ever handed out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use teeheap_sync::Recover;

use serde::Serialize;
use teeheap_platform::{ByteSize, Len, PhysAddr, PhysRange, UseCase};

use crate::error::{Errno, Result, einval, enomem};
use crate::mm::{NormalMemory, PageAllocator};
use crate::pool::{PoolAlloc, PoolStats, ProtMemPool, ProtMemRef};
use crate::scatterlist::SgTable;

/// Lends normal memory to the secure world and takes it back: the backend's
/// `LEND_PROTMEM` / `RECLAIM_PROTMEM`. The secure world protects the range
/// for the use case on lend and scrubs + unprotects it on reclaim.
///
/// [`DynamicPool`] calls both with its lock held: they must be quick and
/// must not call back into the pool.
pub trait ProtMemLender: Send + Sync + 'static {
    /// Lends `range` for `use_case`; returns the cookie that names the lent
    /// object.
    ///
    /// # Errors
    /// The secure world's refusal, as an errno; the range stays normal memory.
    fn lend(&self, use_case: UseCase, range: PhysRange) -> Result<u64>;

    /// Takes back the object `cookie`.
    ///
    /// # Errors
    /// `EBUSY` if the secure world still uses it (retry later); the range
    /// stays protected on any error.
    fn reclaim(&self, cookie: u64) -> Result<()>;
}

/// How a [`DynamicPool`] grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DynamicConfig {
    /// Granularity of a lent chunk (the minimum size reported by
    /// `GET_PROTMEM_CONFIG`): every chunk is a multiple of it.
    pub chunk: Len,
    /// Physical alignment of a chunk's start (a power-of-two number of pages).
    pub align: Len,
    /// Cap on the bytes lent at any time.
    pub max: u64,
}

impl DynamicConfig {
    /// Checks that the pool can ever grow under this configuration.
    ///
    /// # Errors
    /// `EINVAL` if `align` is not a power-of-two number of pages or `max` is
    /// smaller than one chunk.
    pub fn check(&self) -> Result<()> {
        if !self.align.pages().is_power_of_two() {
            return Err(einval("protmem alignment must be a power-of-two number of pages"));
        }
        if self.max < self.chunk.bytes() {
            return Err(einval("protmem cap is smaller than one chunk"));
        }
        Ok(())
    }

    /// The size of the chunk lent for a `size`-byte request: `size` rounded
    /// up to a multiple of [`Self::chunk`]; `None` on overflow.
    pub fn chunk_for(&self, size: Len) -> Option<Len> {
        let per = self.chunk.pages();
        Len::from_pages(size.pages().div_ceil(per).checked_mul(per)?)
    }
}

/// Counters of a dynamic pool's chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChunkStats {
    /// Chunks lent now.
    pub lent_now: usize,
    /// Bytes lent now.
    pub lent_bytes: u64,
    /// Chunks lent now that hold no buffer and whose reclaim failed (it is
    /// retried on the next alloc, free and in destroy).
    pub reclaim_pending: usize,
    /// Chunks lent since the pool was created.
    pub lent_total: u64,
    /// Chunks reclaimed since the pool was created.
    pub reclaimed_total: u64,
    /// Reclaim attempts on a chunk whose previous attempt had failed.
    pub reclaim_retries: u64,
    /// Lend requests the secure world refused.
    pub lend_failures: u64,
}

/// One lent chunk, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkInfo {
    /// The lent object's cookie.
    pub cookie: u64,
    /// Its physical range.
    pub range: PhysRange,
    /// Bytes allocated in it.
    pub used: u64,
    /// Empty, but the secure world has not given it back yet.
    pub reclaim_pending: bool,
}

/// A lent chunk and the allocator carving it.
#[derive(Debug)]
struct Chunk {
    cookie: u64,
    pages: PageAllocator,
    /// The last reclaim attempt failed; cleared when a buffer is placed in it.
    reclaim_failed: bool,
}

impl Chunk {
    fn range(&self) -> PhysRange {
        self.pages.range()
    }

    fn used(&self) -> u64 {
        self.pages.stats().used
    }
}

/// Everything mutable, behind the pool's one lock.
///
/// # Invariants
/// - `chunks` is keyed by each chunk's start address; chunks never overlap.
/// - Every chunk's range is allocated in normal memory and lent under its
///   cookie; `lent_bytes` is the sum of their lengths and `≤ max`.
#[derive(Debug, Default)]
struct State {
    chunks: BTreeMap<PhysAddr, Chunk>,
    lent_bytes: u64,
    counters: ChunkStats,
    destroyed: bool,
}

impl State {
    /// The chunk that contains `r`, if any.
    fn chunk_of(&mut self, r: &PhysRange) -> Option<&mut Chunk> {
        self.chunks.range_mut(..=r.start()).next_back().map(|(_, c)| c).filter(|c| c.range().contains_range(r))
    }

    /// The chunk holding the smallest free run of at least `size` (lowest
    /// address on ties), if any.
    fn best_fit(&self, size: Len) -> Option<PhysAddr> {
        let mut best: Option<(u64, PhysAddr)> = None;
        for (&start, chunk) in &self.chunks {
            if chunk.pages.stats().largest_free < size.bytes() {
                continue;
            }
            let hole = chunk.pages.free_ranges().iter().map(PhysRange::len).filter(|&l| l >= size.bytes()).min();
            if let Some(len) = hole.filter(|&l| best.is_none_or(|(b, _)| l < b)) {
                best = Some((len, start));
            }
        }
        best.map(|(_, start)| start)
    }
}

/// A protected-memory pool over chunks of normal memory lent to the secure
/// world. See the module documentation.
///
/// # Invariants
/// A chunk with a live allocation is never reclaimed; a chunk's pages go
/// back to normal memory only after a successful reclaim.
pub struct DynamicPool {
    use_case: UseCase,
    config: DynamicConfig,
    lender: Arc<dyn ProtMemLender>,
    normal: Arc<NormalMemory>,
    state: Mutex<State>,
}

impl std::fmt::Debug for DynamicPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicPool")
            .field("use_case", &self.use_case)
            .field("config", &self.config)
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl DynamicPool {
    /// A pool for `use_case` that lends chunks of `normal` memory through
    /// `lender`. Nothing is lent before the first allocation. A `config`
    /// that fails [`DynamicConfig::check`] makes every growth fail with
    /// `ENOMEM`.
    pub fn new(
        use_case: UseCase,
        config: DynamicConfig,
        lender: Arc<dyn ProtMemLender>,
        normal: Arc<NormalMemory>,
    ) -> DynamicPool {
        if let Err(e) = config.check() {
            tracing::warn!(%use_case, error = %e, "dynamic pool cannot grow");
        }
        DynamicPool { use_case, config, lender, normal, state: Mutex::new(State::default()) }
    }

    /// The use case its chunks are lent for.
    pub fn use_case(&self) -> UseCase {
        self.use_case
    }

    /// Its configuration.
    pub fn config(&self) -> DynamicConfig {
        self.config
    }

    /// Counters of lent and reclaimed chunks.
    pub fn chunk_stats(&self) -> ChunkStats {
        let st = self.lock();
        ChunkStats {
            lent_now: st.chunks.len(),
            lent_bytes: st.lent_bytes,
            reclaim_pending: st.chunks.values().filter(|c| c.reclaim_failed).count(),
            ..st.counters
        }
    }

    /// The chunks lent now, by address.
    pub fn chunks(&self) -> Vec<ChunkInfo> {
        let st = self.lock();
        st.chunks
            .values()
            .map(|c| ChunkInfo {
                cookie: c.cookie,
                range: c.range(),
                used: c.used(),
                reclaim_pending: c.reclaim_failed,
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    /// Takes a chunk big enough for `size` from normal memory and lends it.
    fn grow(&self, st: &mut State, size: Len) -> Result<PhysAddr> {
        let len = self.config.chunk_for(size).ok_or(enomem("request larger than any chunk"))?;
        if st.lent_bytes.checked_add(len.bytes()).is_none_or(|total| total > self.config.max) {
            tracing::debug!(use_case = %self.use_case, lent = st.lent_bytes, want = len.bytes(), "dynamic pool at its cap");
            return Err(enomem("dynamic pool cap reached"));
        }
        let range = self.normal.alloc_pages_aligned(len, self.config.align).ok_or(enomem("normal memory exhausted"))?;
        let cookie = match self.lender.lend(self.use_case, range) {
            Ok(cookie) => cookie,
            Err(e) => {
                // Not lent: the secure world never protected it.
                self.normal.free_pages(range);
                st.counters.lend_failures += 1;
                tracing::warn!(use_case = %self.use_case, %range, error = %e, "secure world refused to lend a chunk");
                return Err(enomem("secure world refused to lend protected memory"));
            }
        };
        if st.chunks.values().any(|c| c.cookie == cookie) {
            tracing::error!(use_case = %self.use_case, cookie, "secure world reused a live lend cookie");
        }
        st.chunks.insert(range.start(), Chunk { cookie, pages: PageAllocator::new(range), reclaim_failed: false });
        st.lent_bytes += len.bytes();
        st.counters.lent_total += 1;
        tracing::debug!(use_case = %self.use_case, %range, cookie, "chunk lent");
        Ok(range.start())
    }

    /// Reclaims every empty chunk; one the secure world still holds stays
    /// lent (and usable) until a later attempt succeeds.
    fn reclaim_empty(&self, st: &mut State) {
        let empty: Vec<PhysAddr> = st.chunks.iter().filter(|(_, c)| c.used() == 0).map(|(&a, _)| a).collect();
        for start in empty {
            let Some(chunk) = st.chunks.get_mut(&start) else { continue };
            if chunk.reclaim_failed {
                st.counters.reclaim_retries += 1;
            }
            match self.lender.reclaim(chunk.cookie) {
                Ok(()) => {
                    let range = chunk.range();
                    let cookie = chunk.cookie;
                    st.chunks.remove(&start);
                    st.lent_bytes -= range.len();
                    st.counters.reclaimed_total += 1;
                    // Scrubbed and unprotected by the secure world: normal again.
                    self.normal.free_pages(range);
                    tracing::debug!(use_case = %self.use_case, %range, cookie, "chunk reclaimed");
                }
                Err(e) => {
                    chunk.reclaim_failed = true;
                    if e.errno() == Errno::EBUSY {
                        tracing::debug!(cookie = chunk.cookie, "chunk busy in the secure world; reclaim later");
                    } else {
                        tracing::warn!(cookie = chunk.cookie, error = %e, "chunk reclaim failed; retry later");
                    }
                }
            }
        }
    }
}

impl ProtMemPool for DynamicPool {
    /// Best fit among the lent chunks; else lends a new chunk of `size`
    /// rounded up to the chunk granularity.
    ///
    /// # Errors
    /// `ENOMEM` over the cap, when normal memory is exhausted, or when the
    /// secure world refuses the lend (its errno is logged).
    fn alloc(&self, size: Len) -> Result<PoolAlloc> {
        let mut st = self.lock();
        debug_assert!(!st.destroyed, "alloc from a destroyed pool");
        let start = match st.best_fit(size) {
            Some(start) => start,
            None => {
                // Chunks awaiting reclaim count against the cap: retry them first.
                self.reclaim_empty(&mut st);
                self.grow(&mut st, size)?
            }
        };
        let chunk = st.chunks.get_mut(&start).expect("best fit or fresh chunk is lent");
        let r = chunk.pages.alloc(size).expect("the chosen chunk has a fitting hole");
        chunk.reclaim_failed = false;
        let cookie = chunk.cookie;
        let offset = r.start().checked_offset_from(start).expect("allocated inside its chunk");
        // Retry chunks left empty by an earlier failed reclaim.
        self.reclaim_empty(&mut st);
        Ok(PoolAlloc { sg: SgTable::new(vec![r]), offset, tag: cookie })
    }

    fn free(&self, alloc: &PoolAlloc) {
        let mut st = self.lock();
        for r in alloc.sg.ranges() {
            let freed = st.chunk_of(r).map(|c| c.pages.free(*r));
            if !matches!(freed, Some(Ok(()))) {
                // A bug in the caller: every allocation is freed once.
                tracing::error!(range = %r, use_case = %self.use_case, "dynamic pool free of an unallocated range");
                debug_assert!(false, "dynamic pool free of an unallocated range {r}");
            }
        }
        self.reclaim_empty(&mut st);
    }

    /// The lent chunk's cookie and the offset inside it.
    ///
    /// # Errors
    /// `EINVAL` if `alloc` does not lie in the chunk it names.
    fn update_shm(&self, alloc: &PoolAlloc) -> Result<ProtMemRef> {
        let mut st = self.lock();
        let r = alloc.sg.ranges().first().ok_or(einval("empty protected allocation"))?;
        let chunk = st.chunk_of(r).ok_or(einval("allocation outside every lent chunk"))?;
        let offset = r.start().checked_offset_from(chunk.range().start());
        if chunk.cookie != alloc.tag || offset != Some(alloc.offset) {
            return Err(einval("allocation does not match its lent chunk"));
        }
        Ok(ProtMemRef::Lent { cookie: alloc.tag, offset: alloc.offset })
    }

    /// Reclaims every chunk; one the secure world refuses to give back stays
    /// out of normal memory for good (logged).
    fn destroy(&mut self) {
        let use_case = self.use_case;
        let mut st = self.lock();
        debug_assert!(!st.destroyed, "pool destroyed twice");
        debug_assert!(st.chunks.values().all(|c| c.used() == 0), "pool destroyed with live allocations");
        self.reclaim_empty(&mut st);
        if !st.chunks.is_empty() {
            tracing::error!(
                %use_case,
                chunks = st.chunks.len(),
                bytes = st.lent_bytes,
                "secure world kept lent chunks; their pages stay out of normal memory"
            );
        }
        st.destroyed = true;
        tracing::debug!(%use_case, "dynamic pool destroyed");
    }

    fn stats(&self) -> PoolStats {
        let st = self.lock();
        // Growth: one new lent region of whole chunks, within the cap, in
        // one aligned free run of normal memory. A configuration that
        // cannot grow gives none.
        let chunk = self.config.chunk.bytes();
        let room = self.config.max.saturating_sub(st.lent_bytes);
        let (growth, borrowable) = if self.config.check().is_ok() {
            let whole = |n: u64| n - n % chunk;
            (
                whole(room.min(self.normal.largest_aligned_free(self.config.align))),
                whole(room.min(self.normal.free_bytes())),
            )
        } else {
            (0, 0)
        };
        let in_chunks = st.chunks.values().map(|c| c.pages.stats().largest_free).max().unwrap_or(0);
        let free_in_chunks: u64 = st.chunks.values().map(|c| c.range().len() - c.used()).sum();
        PoolStats {
            kind: "dynamic",
            source: format!(
                "normal memory lent in chunks of {} ({} in {}, cap {})",
                ByteSize(self.config.chunk.bytes()),
                ByteSize(st.lent_bytes),
                match st.chunks.len() {
                    1 => "1 lent region".to_owned(),
                    n => format!("{n} lent regions"),
                },
                ByteSize(self.config.max)
            ),
            capacity: self.config.max,
            used: st.chunks.values().map(Chunk::used).sum(),
            largest_free: in_chunks.max(growth),
            free: free_in_chunks + borrowable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: u64) -> Len {
        Len::from_pages(n).unwrap()
    }

    #[test]
    fn chunk_sizes_round_up_to_the_granularity() {
        let c = DynamicConfig { chunk: pages(3), align: pages(1), max: 1 << 30 };
        for (req, want) in [(1, 3), (3, 3), (4, 6), (7, 9)] {
            assert_eq!(c.chunk_for(pages(req)), Some(pages(want)), "{req} pages");
        }
        let huge = DynamicConfig { chunk: pages(u64::MAX / 4096 / 2), ..c };
        assert_eq!(huge.chunk_for(pages(u64::MAX / 4096)), None, "overflow");
    }

    #[test]
    fn config_check() {
        let ok = DynamicConfig { chunk: pages(256), align: pages(16), max: 1 << 24 };
        assert!(ok.check().is_ok());
        for bad in [DynamicConfig { align: pages(3), ..ok }, DynamicConfig { max: 4096, ..ok }] {
            assert_eq!(bad.check().unwrap_err().errno(), Errno::EINVAL);
        }
    }
}
