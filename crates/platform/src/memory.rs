//! The platform's DRAM: one shared memory mapping that backs the whole
//! physical address space.
//!
//! The mapping is created from a memfd of the DRAM size, sparse, so memory
//! costs nothing until it is touched, and a page can be handed back to the
//! kernel (`discard`) once it is no longer needed. It lives as long as the
//! [`Ram`] and is unmapped on drop. Nothing outside this crate reads it
//! directly: every access goes through [`crate::Platform`], which asks the
//! firewall first.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Mutex;
use teeheap_sync::Recover;

use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::addr::{PAGE_SIZE, PhysAddr, PhysRange};

/// Errors of setting up the DRAM mapping.
#[derive(Debug, thiserror::Error)]
pub enum RamError {
    /// The DRAM range is empty, wraps, or is not page aligned.
    #[error("DRAM range {base:#x}+{size:#x} is empty, wraps or is not page aligned")]
    BadRange {
        /// Requested base.
        base: u64,
        /// Requested size.
        size: u64,
    },
    /// The host refused the memfd or the mapping.
    #[error("cannot map {size:#x} bytes of DRAM: {source}")]
    Map {
        /// Requested size.
        size: u64,
        /// The host's error.
        source: rustix::io::Errno,
    },
}

/// The memory behind the physical range `range`.
///
/// # Invariants
/// `ptr` points to a live `MAP_SHARED` mapping of `range.len()` bytes,
/// readable and writable, owned by this value: of `memfd` everywhere except
/// the page-aligned ranges in `backed` (start offset → length), which map
/// other files (see [`Ram::back_with`]).
#[derive(Debug)]
pub struct Ram {
    range: PhysRange,
    ptr: NonNull<u8>,
    memfd: OwnedFd,
    backed: Mutex<BTreeMap<usize, usize>>,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; all
// access goes through raw-pointer copies that take no references into it.
unsafe impl Send for Ram {}
// SAFETY: see `Send`; concurrent copies into the same bytes behave like
// concurrent DMA on real hardware (the bytes end up from one of the writers),
// the same contract as guest memory in rust-vmm's vm-memory.
unsafe impl Sync for Ram {}

/// Leaves `len` bytes of our mapping at `ptr` out of forked children
/// (`MADV_DONTFORK`, again after every `MAP_FIXED` replacement, which makes
/// a new mapping): a process that forks the platform's owner (a launcher
/// before it execs a program) never holds physical memory, protected
/// ranges included. Best effort: on failure the child gets the mapping as
/// before and loses it at `exec`.
fn dont_fork(ptr: *mut u8, len: usize) {
    // SAFETY: MADV_DONTFORK changes only what `fork` copies, never the
    // contents or validity of the range, which is part of our own mapping.
    let _ = unsafe { rustix::mm::madvise(ptr.cast(), len, rustix::mm::Advice::LinuxDontFork) };
}

impl Ram {
    /// Maps `size` bytes of DRAM at physical address `base`. The pages are
    /// committed lazily.
    ///
    /// # Errors
    /// [`RamError::BadRange`] for an empty, wrapping or unaligned range,
    /// [`RamError::Map`] if the host refuses the memfd or the mapping.
    pub fn new(base: PhysAddr, size: u64) -> Result<Ram, RamError> {
        let bad = || RamError::BadRange { base: base.raw(), size };
        let range = PhysRange::new(base, size).ok_or_else(bad)?;
        if !range.is_page_aligned() || usize::try_from(size).is_err() {
            return Err(bad());
        }
        let map_err = |source| RamError::Map { size, source };
        let memfd = rustix::fs::memfd_create("teeheap-dram", MemfdFlags::CLOEXEC).map_err(map_err)?;
        rustix::fs::ftruncate(&memfd, size).map_err(map_err)?;
        // SAFETY: a fresh shared mapping of our own memfd at an address the
        // kernel picks; it aliases no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                size as usize,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::NORESERVE,
                &memfd,
                0,
            )
        }
        .map_err(map_err)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(RamError::Map { size, source: rustix::io::Errno::NOMEM })?;
        dont_fork(ptr.as_ptr(), size as usize);
        Ok(Ram { range, ptr, memfd, backed: Mutex::new(BTreeMap::new()) })
    }

    /// The physical range this DRAM covers.
    pub fn range(&self) -> PhysRange {
        self.range
    }

    /// The memfd that backs the DRAM (offset 0 = the first physical address).
    /// For the serving layer, which maps ranges of it into clients.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    /// The extents of `r` (in DRAM) that hold data, page granular, in
    /// order; all of `r` if the host cannot tell. Pages nobody wrote (or
    /// that were scrubbed by punching them out) are holes of the sparse
    /// DRAM file and read as zeros; this finds the rest with
    /// `SEEK_DATA`/`SEEK_HOLE` (lseek(2)), without reading or committing a
    /// page, so scans of memory read only what holds data.
    pub fn data_extents(&self, r: PhysRange) -> Vec<PhysRange> {
        use rustix::fs::{SeekFrom, seek};
        let fd = self.memfd.as_fd();
        let base = self.range.start();
        let Some(start) = r.start().checked_offset_from(base) else { return vec![r] };
        let end = start + r.len();
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            let data = match seek(fd, SeekFrom::Data(at)) {
                Ok(d) => d,
                Err(rustix::io::Errno::NXIO) => break,
                Err(_) => return vec![r],
            };
            if data >= end {
                break;
            }
            let hole = seek(fd, SeekFrom::Hole(data)).unwrap_or(end).min(end);
            if let Some(ext) = PhysRange::new(PhysAddr(base.raw() + data), hole - data) {
                out.push(ext);
            }
            at = hole.max(data + PAGE_SIZE);
        }
        out
    }

    /// The offset of `r` inside the mapping, if `r` lies in DRAM.
    fn offset_of(&self, r: PhysRange) -> Option<usize> {
        if !self.range.contains_range(&r) {
            return None;
        }
        // In range, so the offset is below `size`, which fits in usize.
        r.start().checked_offset_from(self.range.start()).map(|o| o as usize)
    }

    /// Copies the bytes at `addr` into `buf`. Returns `false` (and copies
    /// nothing) if the range is not entirely in DRAM.
    pub(crate) fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> bool {
        let Some(r) = PhysRange::new(addr, buf.len() as u64) else {
            return buf.is_empty();
        };
        let Some(off) = self.offset_of(r) else { return false };
        // SAFETY: `off + buf.len()` lies in the mapping (checked above, and
        // the mapping is live by the type invariant); `buf` is a distinct Rust
        // allocation, so the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies `data` to `addr`. Returns `false` (and writes nothing) if the
    /// range is not entirely in DRAM.
    pub(crate) fn write(&self, addr: PhysAddr, data: &[u8]) -> bool {
        let Some(r) = PhysRange::new(addr, data.len() as u64) else {
            return data.is_empty();
        };
        let Some(off) = self.offset_of(r) else { return false };
        // SAFETY: as in `read`; `data` is a Rust slice outside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len()) };
        true
    }

    /// Copies `len` bytes from `src` to `dst` inside DRAM (the ranges may
    /// overlap). Returns `false` if either range leaves DRAM.
    pub(crate) fn copy(&self, src: PhysAddr, dst: PhysAddr, len: u64) -> bool {
        let (Some(s), Some(d)) = (PhysRange::new(src, len), PhysRange::new(dst, len)) else {
            return len == 0;
        };
        let (Some(so), Some(dof)) = (self.offset_of(s), self.offset_of(d)) else {
            return false;
        };
        // SAFETY: both ranges lie in the live mapping (checked above);
        // `copy` allows overlap.
        unsafe { std::ptr::copy(self.ptr.as_ptr().add(so), self.ptr.as_ptr().add(dof), len as usize) };
        true
    }

    /// Sets every byte of `r` to `value`. Page-aligned zero fills give the
    /// pages back to the host instead of writing them. Returns `false` if
    /// `r` leaves DRAM.
    pub(crate) fn fill(&self, r: PhysRange, value: u8) -> bool {
        let Some(off) = self.offset_of(r) else { return false };
        if value == 0 && r.is_page_aligned() && !self.overlaps_backed(off, r.len() as usize) {
            let punched = rustix::fs::fallocate(
                &self.memfd,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                off as u64,
                r.len(),
            );
            if punched.is_ok() {
                return true;
            }
        }
        // SAFETY: the range lies in the live mapping (checked above).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(off), value, r.len() as usize) };
        true
    }

    /// Maps `fd` (from byte `file_offset`, `MAP_SHARED | MAP_FIXED`) over
    /// the physical range `range`, so that DRAM accesses there and every
    /// other mapping of `fd` (a program's `mmap` of a buffer) share pages.
    /// Undo with [`Ram::restore`]. The file must be at least
    /// `file_offset + range.len()` bytes long for as long as it is mapped
    /// (e.g. a memfd sealed against shrinking); otherwise accesses fault.
    ///
    /// # Errors
    /// `EINVAL` if `range` or `file_offset` is not page aligned or `range`
    /// leaves DRAM; `EBUSY` if it overlaps a range already backed by a
    /// file; the host's errno if `mmap` fails (the range is unchanged then).
    pub fn back_with(&self, range: PhysRange, fd: BorrowedFd<'_>, file_offset: u64) -> rustix::io::Result<()> {
        let off = self.offset_of(range).ok_or(rustix::io::Errno::INVAL)?;
        if !range.is_page_aligned() || file_offset % PAGE_SIZE != 0 {
            return Err(rustix::io::Errno::INVAL);
        }
        let len = range.len() as usize;
        let mut backed = self.backed.lock().recover();
        if overlaps(&backed, off, len) {
            return Err(rustix::io::Errno::BUSY);
        }
        // SAFETY: `off + len` lies inside our live mapping (checked above),
        // so MAP_FIXED replaces pages of our own mapping only; no Rust
        // reference points into the mapping (all access is by raw copies),
        // so nothing observes the pages changing identity.
        unsafe {
            rustix::mm::mmap(
                self.ptr.as_ptr().add(off).cast(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::FIXED,
                fd,
                file_offset,
            )
        }?;
        // SAFETY: as above, `off + len` lies inside our live mapping.
        dont_fork(unsafe { self.ptr.as_ptr().add(off) }, len);
        backed.insert(off, len);
        Ok(())
    }

    /// Undoes [`Ram::back_with`] for exactly `range`: DRAM's own pages are
    /// mapped there again. With `keep` (the file that backed the range and
    /// its offset), its current bytes are copied into DRAM first, so a
    /// buffer that outlives its last program mapping keeps its contents;
    /// without, DRAM shows what it held before.
    ///
    /// # Errors
    /// `EINVAL` if `range` is not a range given to `back_with`; the host's
    /// errno if copying or mapping fails (the range stays backed then).
    pub fn restore(&self, range: PhysRange, keep: Option<(BorrowedFd<'_>, u64)>) -> rustix::io::Result<()> {
        let off = self.offset_of(range).ok_or(rustix::io::Errno::INVAL)?;
        let len = range.len() as usize;
        let mut backed = self.backed.lock().recover();
        if backed.get(&off) != Some(&len) {
            return Err(rustix::io::Errno::INVAL);
        }
        if let Some((fd, file_offset)) = keep {
            let mut chunk = vec![0u8; len.min(1 << 20)];
            let mut done = 0usize;
            while done < len {
                let n = chunk.len().min(len - done);
                let got = rustix::io::pread(fd, &mut chunk[..n], file_offset + done as u64)?;
                if got == 0 {
                    break; // past the end of the file: the rest stays as it was
                }
                write_all_at(&self.memfd, &chunk[..got], (off + done) as u64)?;
                done += got;
            }
        }
        // SAFETY: as in `back_with`: the range lies inside our live mapping
        // and is replaced by the matching pages of our own memfd.
        unsafe {
            rustix::mm::mmap(
                self.ptr.as_ptr().add(off).cast(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::FIXED | MapFlags::NORESERVE,
                &self.memfd,
                off as u64,
            )
        }?;
        // SAFETY: as above, `off + len` lies inside our live mapping.
        dont_fork(unsafe { self.ptr.as_ptr().add(off) }, len);
        backed.remove(&off);
        Ok(())
    }

    /// As [`Ram::restore`] with `keep`, taking the bytes from the file
    /// mapped over `range` now (through the mapping itself), for a caller
    /// that holds no descriptor of that file.
    ///
    /// # Errors
    /// As [`Ram::restore`].
    pub fn restore_keeping(&self, range: PhysRange) -> rustix::io::Result<()> {
        let off = self.offset_of(range).ok_or(rustix::io::Errno::INVAL)?;
        let len = range.len() as usize;
        {
            let backed = self.backed.lock().recover();
            if backed.get(&off) != Some(&len) {
                return Err(rustix::io::Errno::INVAL);
            }
            let mut chunk = vec![0u8; len.min(1 << 20)];
            let mut done = 0usize;
            while done < len {
                let n = chunk.len().min(len - done);
                // SAFETY: `off + done + n <= off + len` lies inside our live
                // mapping (checked by `offset_of`); a raw copy into our own
                // buffer, no reference into the mapping is made.
                unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off + done), chunk.as_mut_ptr(), n) };
                write_all_at(&self.memfd, &chunk[..n], (off + done) as u64)?;
                done += n;
            }
        }
        self.restore(range, None)
    }

    /// Whether any byte of `range` is backed by another file (see
    /// [`Ram::back_with`]); `false` outside DRAM.
    pub fn is_backed(&self, range: PhysRange) -> bool {
        self.offset_of(range).is_some_and(|off| self.overlaps_backed(off, range.len() as usize))
    }

    /// Number of ranges currently backed by other files.
    pub fn backed_ranges(&self) -> usize {
        self.backed.lock().recover().len()
    }

    fn overlaps_backed(&self, off: usize, len: usize) -> bool {
        overlaps(&self.backed.lock().recover(), off, len)
    }

    /// Bytes of DRAM the host has actually committed (touched pages).
    pub fn resident_bytes(&self) -> u64 {
        rustix::fs::fstat(&self.memfd).map(|st| st.st_blocks as u64 * 512).unwrap_or(0)
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe our own mapping (type invariant), and
        // no reference into it can outlive `self`.
        let res = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.range.len() as usize) };
        debug_assert!(res.is_ok(), "munmap of DRAM failed: {res:?}");
    }
}

const _: () = assert!(PAGE_SIZE.is_power_of_two());

/// Whether `[off, off + len)` overlaps a range of `backed`.
fn overlaps(backed: &BTreeMap<usize, usize>, off: usize, len: usize) -> bool {
    let end = off.saturating_add(len);
    backed.range(..end).next_back().is_some_and(|(&s, &l)| s.saturating_add(l) > off)
}

fn write_all_at(fd: impl AsFd, mut data: &[u8], mut at: u64) -> rustix::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::pwrite(&fd, data, at)?;
        data = &data[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn read_write_copy_fill() {
        let ram = Ram::new(PhysAddr(0x8000_0000), 4 * MIB).unwrap();
        let a = PhysAddr(0x8000_1000);
        assert!(ram.write(a, b"hello"));
        let mut buf = [0u8; 5];
        assert!(ram.read(a, &mut buf));
        assert_eq!(&buf, b"hello");
        assert!(ram.copy(a, PhysAddr(0x8000_2000), 5));
        assert!(ram.read(PhysAddr(0x8000_2000), &mut buf));
        assert_eq!(&buf, b"hello");
        let page = PhysRange::new(PhysAddr(0x8000_1000), PAGE_SIZE).unwrap();
        assert!(ram.fill(page, 0));
        assert!(ram.read(a, &mut buf));
        assert_eq!(buf, [0; 5]);
        assert!(ram.fill(PhysRange::new(a, 3).unwrap(), 0xaa));
        assert!(ram.read(a, &mut buf));
        assert_eq!(buf, [0xaa, 0xaa, 0xaa, 0, 0]);
    }

    #[test]
    fn outside_dram_is_refused() {
        let ram = Ram::new(PhysAddr(0x8000_0000), MIB).unwrap();
        let mut buf = [0u8; 2];
        assert!(!ram.read(PhysAddr(0x7fff_ffff), &mut buf));
        assert!(!ram.read(PhysAddr(0x8000_0000 + MIB - 1), &mut buf));
        assert!(!ram.write(PhysAddr(u64::MAX), &buf));
        assert!(!ram.copy(PhysAddr(0x8000_0000), PhysAddr(0x8000_0000 + MIB), 1));
        assert!(Ram::new(PhysAddr(0x8000_0001), MIB).is_err());
        assert!(Ram::new(PhysAddr(0x8000_0000), 0).is_err());
    }

    #[test]
    fn backed_range_shares_pages_with_the_file() {
        use rustix::fs::MemfdFlags;
        let ram = Ram::new(PhysAddr(0x8000_0000), 4 * MIB).unwrap();
        let r = PhysRange::new(PhysAddr(0x8000_2000), 2 * PAGE_SIZE).unwrap();
        assert!(ram.write(r.start(), b"dram"));
        let f = rustix::fs::memfd_create("buf", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&f, 2 * PAGE_SIZE).unwrap();
        rustix::io::pwrite(&f, b"file", 0).unwrap();
        ram.back_with(r, f.as_fd(), 0).unwrap();
        assert_eq!(ram.backed_ranges(), 1);
        let mut b = [0u8; 4];
        assert!(ram.read(r.start(), &mut b));
        assert_eq!(&b, b"file");
        assert!(ram.write(PhysAddr(0x8000_3000), b"dev!"));
        rustix::io::pread(&f, &mut b, PAGE_SIZE).unwrap();
        assert_eq!(&b, b"dev!");
        // Zero fills in a backed range write through to the file.
        assert!(ram.fill(PhysRange::new(PhysAddr(0x8000_3000), PAGE_SIZE).unwrap(), 0));
        rustix::io::pread(&f, &mut b, PAGE_SIZE).unwrap();
        assert_eq!(b, [0; 4]);
        // Overlaps and foreign ranges are refused.
        let inner = PhysRange::new(PhysAddr(0x8000_3000), PAGE_SIZE).unwrap();
        assert_eq!(ram.back_with(inner, f.as_fd(), 0), Err(rustix::io::Errno::BUSY));
        assert_eq!(ram.restore(inner, None), Err(rustix::io::Errno::INVAL));
        let odd = PhysRange::new(PhysAddr(0x8000_2001), PAGE_SIZE).unwrap();
        assert_eq!(ram.back_with(odd, f.as_fd(), 0), Err(rustix::io::Errno::INVAL));
        // Restore without keeping: DRAM's own bytes are back.
        ram.restore(r, None).unwrap();
        assert!(ram.read(r.start(), &mut b));
        assert_eq!(&b, b"dram");
        // Restore keeping the contents copies the file into DRAM.
        ram.back_with(r, f.as_fd(), 0).unwrap();
        ram.restore(r, Some((f.as_fd(), 0))).unwrap();
        assert!(ram.read(r.start(), &mut b));
        assert_eq!(&b, b"file");
        assert_eq!(ram.backed_ranges(), 0);
    }

    #[test]
    fn large_dram_costs_nothing_until_touched() {
        let ram = Ram::new(PhysAddr(0x8000_0000), 4 << 30).unwrap();
        assert!(ram.resident_bytes() < MIB);
        assert!(ram.write(PhysAddr(0x1_7fff_f000), &[1; 16]));
        assert!(ram.resident_bytes() <= MIB);
    }
}
