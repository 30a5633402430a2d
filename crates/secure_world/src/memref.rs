//! Memory references as a TA sees them, and the only way a TA touches memory.
//!
//! The secure world resolves every memref of a message into a [`TaMemref`]
//! (checked against DRAM, the carveouts and the lent objects) before a TA is
//! called. A TA reads and writes it through [`TaMemory`], which goes through
//! [`Platform`] as [`Master::SecureCpu`], so the firewall stays the only
//! gate. A memref into a lent object keeps that object lent (not
//! reclaimable) while it exists.

use std::sync::Arc;

use teeheap_platform::{AccessError, Master, PAGE_SIZE, PhysRange, Platform, UseCase};
use zeroize::Zeroizing;

use crate::error::{TeeError, TeeResult};
use crate::protmem::LentObject;

/// What kind of memory a memref points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemKind {
    /// Normal (non-secure) memory, or a null memref.
    Normal,
    /// A static carveout of a use case.
    Carveout(UseCase),
    /// An object lent for a use case.
    Lent {
        /// Its use case.
        use_case: UseCase,
        /// Its cookie.
        cookie: u64,
    },
}

impl MemKind {
    /// Whether the memory is protected (a carveout or lent).
    pub const fn is_protected(self) -> bool {
        !matches!(self, MemKind::Normal)
    }

    /// The use case of protected memory.
    pub const fn use_case(self) -> Option<UseCase> {
        match self {
            MemKind::Normal => None,
            MemKind::Carveout(u) | MemKind::Lent { use_case: u, .. } => Some(u),
        }
    }
}

/// A resolved memref: one contiguous physical range (absent for size 0).
///
/// # Invariants
/// `range` lies wholly in DRAM and in a single kind of memory (normal, one
/// carveout, or one lent object, which `_lent` keeps lent).
#[derive(Debug)]
pub struct TaMemref {
    range: Option<PhysRange>,
    kind: MemKind,
    writable: bool,
    out_size: u64,
    _lent: Option<Arc<LentObject>>,
}

impl TaMemref {
    pub(crate) fn new(range: Option<PhysRange>, kind: MemKind, writable: bool, lent: Option<Arc<LentObject>>) -> Self {
        let out_size = range.map_or(0, |r| r.len());
        TaMemref { range, kind, writable, out_size, _lent: lent }
    }

    /// A null memref (size 0).
    pub(crate) fn null(writable: bool) -> Self {
        TaMemref::new(None, MemKind::Normal, writable, None)
    }

    /// `len` bytes at `offset` of this memref, of the same kind (and
    /// keeping a lent object lent); writable only if this one is.
    ///
    /// # Errors
    /// BAD_PARAMETERS outside this memref or for a write to an input.
    pub(crate) fn sub_memref(&self, offset: u64, len: u64, writable: bool) -> TeeResult<TaMemref> {
        if writable && !self.writable {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let range = self.sub(offset, len)?;
        Ok(TaMemref::new(range, self.kind, writable, self._lent.clone()))
    }

    /// Its size in bytes as given by the client.
    pub fn size(&self) -> u64 {
        self.range.map_or(0, |r| r.len())
    }

    /// The physical range (for reports; access goes through [`TaMemory`]).
    pub fn range(&self) -> Option<PhysRange> {
        self.range
    }

    /// What memory it points to.
    pub fn kind(&self) -> MemKind {
        self.kind
    }

    /// Whether it points to protected memory.
    pub fn is_protected(&self) -> bool {
        self.kind.is_protected()
    }

    /// Whether the TA may write it (direction out or inout).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The size reported back to the client: by default the size given; a
    /// TA sets the length written, or the length needed with SHORT_BUFFER.
    pub fn out_size(&self) -> u64 {
        self.out_size
    }

    /// Sets the size reported back.
    pub fn set_out_size(&mut self, size: u64) {
        self.out_size = size;
    }

    /// `TEE_CheckMemoryAccessRights` for this memref as a whole: an empty
    /// one passes (as OP-TEE's libutee answers for size 0); `WRITE` needs
    /// an output memref, `SECURE` protected and `NONSECURE` normal memory.
    /// Reading is always allowed.
    ///
    /// # Errors
    /// ACCESS_DENIED otherwise.
    pub fn check_access_rights(&self, flags: AccessRights) -> TeeResult {
        let ok = self.size() == 0
            || ((!flags.contains(AccessRights::WRITE) || self.writable)
                && (!flags.contains(AccessRights::SECURE) || self.is_protected())
                && (!flags.contains(AccessRights::NONSECURE) || !self.is_protected()));
        if ok { Ok(()) } else { Err(TeeError::ACCESS_DENIED) }
    }

    /// How many bytes from its start a TA's page-granular mapping of this
    /// memref reaches: to the end of its last page (0 for a null memref).
    pub fn mapped_len(&self) -> u64 {
        self.range.map_or(0, |r| {
            let end = r.end().raw();
            end.checked_next_multiple_of(PAGE_SIZE).unwrap_or(end) - r.start().raw()
        })
    }

    fn sub(&self, offset: u64, len: u64) -> TeeResult<Option<PhysRange>> {
        if len == 0 {
            return match offset <= self.size() {
                true => Ok(None),
                false => Err(TeeError::BAD_PARAMETERS),
            };
        }
        self.range.and_then(|r| r.subrange(offset, len)).map(Some).ok_or(TeeError::BAD_PARAMETERS)
    }
}

bitflags::bitflags! {
    /// The flags of `TEE_CheckMemoryAccessRights` (GP's READ, WRITE,
    /// ANY_OWNER and OP-TEE's NONSECURE, SECURE), with their values.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct AccessRights: u32 {
        /// `TEE_MEMORY_ACCESS_READ`.
        const READ = 0x1;
        /// `TEE_MEMORY_ACCESS_WRITE`.
        const WRITE = 0x2;
        /// `TEE_MEMORY_ACCESS_ANY_OWNER`.
        const ANY_OWNER = 0x4;
        /// `TEE_MEMORY_ACCESS_NONSECURE` (OP-TEE).
        const NONSECURE = 0x1000_0000;
        /// `TEE_MEMORY_ACCESS_SECURE` (OP-TEE).
        const SECURE = 0x2000_0000;
    }
}

/// A TA's view of memory: accesses by [`Master::SecureCpu`] through the
/// firewall, bounded by the memrefs it was given.
#[derive(Clone, Copy, Debug)]
pub struct TaMemory<'a> {
    platform: &'a Platform,
}

fn denied(e: AccessError) -> TeeError {
    tracing::warn!(error = %e, "secure world: TA access refused");
    match e {
        AccessError::Denied(_) => TeeError::ACCESS_DENIED,
        AccessError::Unmapped { .. } => TeeError::SECURITY,
    }
}

impl<'a> TaMemory<'a> {
    pub(crate) fn new(platform: &'a Platform) -> Self {
        TaMemory { platform }
    }

    /// The platform (for the TA runtime, which maps memrefs as windows).
    pub(crate) fn platform(&self) -> &'a Platform {
        self.platform
    }

    /// Reads `buf.len()` bytes at `offset` of `m`.
    ///
    /// # Errors
    /// BAD_PARAMETERS outside the memref; ACCESS_DENIED if the firewall
    /// refuses the secure CPU.
    pub fn read(&self, m: &TaMemref, offset: u64, buf: &mut [u8]) -> TeeResult {
        match m.sub(offset, buf.len() as u64)? {
            None => Ok(()),
            Some(r) => self.platform.read(Master::SecureCpu, r.start(), buf).map_err(denied),
        }
    }

    /// Reads `len` bytes at `offset` of `m` into a new vector, which is
    /// wiped when dropped (it may hold protected bytes).
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_vec(&self, m: &TaMemref, offset: u64, len: u64) -> TeeResult<Zeroizing<Vec<u8>>> {
        let len = usize::try_from(len).map_err(|_| TeeError::OUT_OF_MEMORY)?;
        let mut v = Zeroizing::new(vec![0; len]);
        self.read(m, offset, &mut v)?;
        Ok(v)
    }

    /// Writes `data` at `offset` of `m`.
    ///
    /// # Errors
    /// BAD_PARAMETERS outside the memref; ACCESS_DENIED if the memref is
    /// input only or the firewall refuses.
    pub fn write(&self, m: &TaMemref, offset: u64, data: &[u8]) -> TeeResult {
        if !m.writable {
            return Err(TeeError::ACCESS_DENIED);
        }
        match m.sub(offset, data.len() as u64)? {
            None => Ok(()),
            Some(r) => self.platform.write(Master::SecureCpu, r.start(), data).map_err(denied),
        }
    }

    /// Copies `len` bytes from the start of `src` to the start of `dst` the
    /// way a TA that dereferences `src`'s pointer does: past `src`'s end it
    /// reads what its page-granular mapping of `src` holds (the rest of the
    /// last page, as on OP-TEE), and beyond that it faults.
    ///
    /// # Errors
    /// TARGET_DEAD where the TA would fault (past the mapping); otherwise
    /// as [`Self::copy`] (a firewall refusal is ACCESS_DENIED).
    pub fn copy_as_mapped(&self, src: &TaMemref, dst: &TaMemref, len: u64) -> TeeResult {
        if len == 0 {
            return Ok(());
        }
        if !dst.writable {
            return Err(TeeError::ACCESS_DENIED);
        }
        let d = dst.sub(0, len)?.ok_or(TeeError::BAD_PARAMETERS)?;
        let (Some(s), true) = (src.range, len <= src.mapped_len()) else {
            tracing::warn!(len, mapped = src.mapped_len(), "secure world: TA read past its mapping of a memref");
            return Err(TeeError::TARGET_DEAD);
        };
        self.platform.copy(Master::SecureCpu, s.start(), d.start(), len).map_err(denied)
    }

    /// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off`.
    ///
    /// # Errors
    /// As [`Self::read`] and [`Self::write`].
    pub fn copy(&self, src: &TaMemref, src_off: u64, dst: &TaMemref, dst_off: u64, len: u64) -> TeeResult {
        if !dst.writable {
            return Err(TeeError::ACCESS_DENIED);
        }
        match (src.sub(src_off, len)?, dst.sub(dst_off, len)?) {
            (Some(s), Some(d)) => self.platform.copy(Master::SecureCpu, s.start(), d.start(), len).map_err(denied),
            _ => Ok(()),
        }
    }
}
