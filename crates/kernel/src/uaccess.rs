//! Access to a caller's memory behind ioctl pointers (`copy_from_user` /
//! `copy_to_user`).
//!
//! The kernel model never dereferences a client pointer itself: it asks a
//! [`UserMemory`], which the serving layer implements over the client
//! process (`process_vm_readv`/`writev`) and tests implement with
//! [`SimUserMemory`]. A bad pointer is `EFAULT`, never a crash.

use std::collections::BTreeMap;
use std::sync::Mutex;
use teeheap_sync::Recover;

pub use crate::cred::Credentials;
use crate::error::{Errno, Error, Result, efault};

/// A pointer into a caller's address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserPtr(pub u64);

impl UserPtr {
    /// `self + off`, or `None` on overflow.
    pub const fn checked_add(self, off: u64) -> Option<UserPtr> {
        match self.0.checked_add(off) {
            Some(v) => Some(UserPtr(v)),
            None => None,
        }
    }
}

/// A caller's memory.
pub trait UserMemory {
    /// Copies `buf.len()` bytes at `ptr` into `buf`.
    ///
    /// # Errors
    /// `EFAULT` if any byte is not readable; `buf` may be partly written.
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<()>;

    /// Copies `data` to `ptr`.
    ///
    /// # Errors
    /// `EFAULT` if any byte is not writable; a prefix may have been written.
    fn write(&self, ptr: UserPtr, data: &[u8]) -> Result<()>;

    /// The caller's credentials (`current_cred()`), for what depends on who
    /// calls (the TEE client identity). By default the current process's:
    /// an in-process caller.
    ///
    /// # Errors
    /// `ESRCH` if they cannot be read.
    fn credentials(&self) -> Result<Credentials> {
        Credentials::of_process(std::process::id())
    }

    /// Whether `[ptr, ptr + len)` could be pinned for writing (as
    /// `pin_user_pages` with `FOLL_WRITE`): mapped writable. The caller
    /// has checked that it is readable. By default, readable memory is
    /// writable.
    ///
    /// # Errors
    /// `EFAULT` if the first byte is not writable, `ENOMEM` if only a part
    /// of the range is (as a partial pin).
    fn check_writable(&self, ptr: UserPtr, len: u64) -> Result<()> {
        let _ = (ptr, len);
        Ok(())
    }
}

/// [`UserMemory::check_writable`] over a process's `/proc/<pid>/maps`.
///
/// # Errors
/// As [`UserMemory::check_writable`].
pub fn check_writable_in_maps(maps: &str, ptr: UserPtr, len: u64) -> Result<()> {
    let end = ptr.0.checked_add(len).ok_or(efault("range wraps"))?;
    // (start, end, writable) of each mapping, in address order as the
    // kernel lists them.
    let vmas = maps.lines().filter_map(|l| {
        let mut f = l.split_whitespace();
        let (range, perms) = (f.next()?, f.next()?);
        let (a, b) = range.split_once('-')?;
        let (a, b) = (u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?);
        Some((a, b, perms.as_bytes().get(1) == Some(&b'w')))
    });
    let mut at = ptr.0;
    for (start, stop, writable) in vmas {
        if stop <= at {
            continue;
        }
        if start > at || !writable {
            break;
        }
        at = stop;
        if at >= end {
            return Ok(());
        }
    }
    if len == 0 || at >= end {
        return Ok(());
    }
    if at == ptr.0 {
        Err(efault("not mapped writable"))
    } else {
        Err(Error::new(Errno::ENOMEM, "only part of the range could be pinned for writing"))
    }
}

/// An in-process stand-in for a client's address space: regions handed out
/// by [`SimUserMemory::map`]; everything else faults. For tests, the demo and
/// in-process users of the model.
#[derive(Debug, Default)]
pub struct SimUserMemory {
    inner: Mutex<SimInner>,
}

#[derive(Debug, Default)]
struct SimInner {
    regions: BTreeMap<u64, Vec<u8>>,
    read_only: std::collections::BTreeSet<u64>,
    next: u64,
    credentials: Option<Credentials>,
}

impl SimUserMemory {
    /// An empty address space.
    pub fn new() -> SimUserMemory {
        SimUserMemory::default()
    }

    /// Maps a region holding `data` and returns its address. Regions are
    /// separated by unmapped gaps, so running off the end faults.
    pub fn map(&self, data: &[u8]) -> UserPtr {
        let mut inner = self.inner.lock().recover();
        if inner.next == 0 {
            inner.next = 0x7f00_0000_0000;
        }
        let addr = inner.next;
        inner.next += (data.len() as u64).div_ceil(0x1000) * 0x1000 + 0x1000;
        inner.regions.insert(addr, data.to_vec());
        UserPtr(addr)
    }

    /// Makes the caller `credentials` (by default: the current process's).
    pub fn set_credentials(&self, credentials: Credentials) {
        self.inner.lock().recover().credentials = Some(credentials);
    }

    /// Maps a read-only region holding `data` (writes fault).
    pub fn map_read_only(&self, data: &[u8]) -> UserPtr {
        let ptr = self.map(data);
        self.inner.lock().recover().read_only.insert(ptr.0);
        ptr
    }

    /// Maps a zero-filled region of `len` bytes.
    pub fn map_zeroed(&self, len: usize) -> UserPtr {
        self.map(&vec![0; len])
    }

    /// The current contents of the region mapped at `ptr`, if any.
    pub fn contents(&self, ptr: UserPtr) -> Option<Vec<u8>> {
        self.inner.lock().recover().regions.get(&ptr.0).cloned()
    }

    fn with_range<R>(&self, ptr: UserPtr, len: usize, write: bool, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let mut inner = self.inner.lock().recover();
        let fault = efault("address not mapped in the caller");
        let read_only = inner.regions.range(..=ptr.0).next_back().is_some_and(|(b, _)| inner.read_only.contains(b));
        if write && read_only {
            return Err(efault("region mapped read-only"));
        }
        let (&base, region) = inner.regions.range_mut(..=ptr.0).next_back().ok_or(fault.clone())?;
        let off = usize::try_from(ptr.0 - base).map_err(|_| fault.clone())?;
        let end = off.checked_add(len).ok_or(fault.clone())?;
        let slice = region.get_mut(off..end).ok_or(fault)?;
        Ok(f(slice))
    }
}

impl UserMemory for SimUserMemory {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.with_range(ptr, buf.len(), false, |s| buf.copy_from_slice(s))
    }

    fn write(&self, ptr: UserPtr, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.with_range(ptr, data.len(), true, |s| s.copy_from_slice(data))
    }

    fn check_writable(&self, ptr: UserPtr, len: u64) -> Result<()> {
        let inner = self.inner.lock().recover();
        match inner.regions.range(..=ptr.0).next_back() {
            Some((base, _)) if inner.read_only.contains(base) && len > 0 => Err(efault("region mapped read-only")),
            _ => Ok(()),
        }
    }

    fn credentials(&self) -> Result<Credentials> {
        let set = self.inner.lock().recover().credentials.clone();
        set.map_or_else(|| Credentials::of_process(std::process::id()), Ok)
    }
}

/// `copy_from_user` of a whole struct.
///
/// # Errors
/// `EFAULT` if it cannot be read.
pub fn read_obj<T: zerocopy::FromBytes + zerocopy::IntoBytes>(mem: &dyn UserMemory, ptr: UserPtr) -> Result<T> {
    let mut v = T::new_zeroed();
    mem.read(ptr, v.as_mut_bytes()).map_err(|_| efault("cannot read the argument"))?;
    Ok(v)
}

/// `copy_to_user` of a whole struct.
///
/// # Errors
/// `EFAULT` if it cannot be written.
pub fn write_obj<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    mem: &dyn UserMemory,
    ptr: UserPtr,
    v: &T,
) -> Result<()> {
    mem.write(ptr, v.as_bytes()).map_err(|_| efault("cannot write the argument"))
}

/// `put_user` of one field at byte offset `off` of the struct at `ptr`.
///
/// # Errors
/// `EFAULT` if it cannot be written.
pub fn put_field<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    mem: &dyn UserMemory,
    ptr: UserPtr,
    off: usize,
    v: &T,
) -> Result<()> {
    let at = ptr.checked_add(off as u64).ok_or(efault("pointer overflow"))?;
    mem.write(at, v.as_bytes()).map_err(|_| efault("cannot write the argument"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_memory_faults_outside_regions() {
        let m = SimUserMemory::new();
        let p = m.map(b"abcd");
        let mut b = [0u8; 4];
        m.read(p, &mut b).unwrap();
        assert_eq!(&b, b"abcd");
        m.write(p.checked_add(2).unwrap(), b"XY").unwrap();
        assert_eq!(m.contents(p).unwrap(), b"abXY");
        assert_eq!(m.read(p.checked_add(1).unwrap(), &mut b).unwrap_err().errno(), Errno::EFAULT);
        assert_eq!(m.read(UserPtr(0), &mut b).unwrap_err().errno(), Errno::EFAULT);
        assert_eq!(m.write(UserPtr(u64::MAX), b"x").unwrap_err().errno(), Errno::EFAULT);
        m.read(UserPtr(0), &mut []).unwrap();
    }

    #[test]
    fn writable_ranges_from_proc_maps() {
        let maps = "\
7f0000000000-7f0000002000 rw-p 00000000 00:00 0
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
7f0000003000-7f0000004000 r--p 00000000 00:00 0          /usr/lib/x
7f0000005000-7f0000006000 rw-s 00000000 00:05 42         /memfd:x (deleted)
";
        let check = |at: u64, len: u64| check_writable_in_maps(maps, UserPtr(at), len).map_err(|e| e.errno());
        assert_eq!(check(0x7f00_0000_0000, 0x3000), Ok(()), "two adjacent writable mappings");
        assert_eq!(check(0x7f00_0000_1800, 0x800), Ok(()));
        assert_eq!(check(0x7f00_0000_5000, 0x1000), Ok(()), "shared writable");
        assert_eq!(check(0x7f00_0000_3000, 0x1000), Err(Errno::EFAULT), "read-only");
        assert_eq!(check(0x7f00_0000_2000, 0x2000), Err(Errno::ENOMEM), "runs into a read-only mapping");
        assert_eq!(check(0x7f00_0000_5000, 0x2000), Err(Errno::ENOMEM), "runs off the end");
        assert_eq!(check(0x7f00_0000_4000, 0x1000), Err(Errno::EFAULT), "a hole");
        assert_eq!(check(0x1000, 1), Err(Errno::EFAULT), "nothing mapped");
        assert_eq!(check(u64::MAX, 2), Err(Errno::EFAULT), "wraps");
    }

    #[test]
    fn sim_read_only_regions() {
        let m = SimUserMemory::new();
        let p = m.map_read_only(b"abcd");
        let mut b = [0u8; 4];
        m.read(p, &mut b).unwrap();
        assert_eq!(m.write(p, b"x").unwrap_err().errno(), Errno::EFAULT);
        assert_eq!(m.check_writable(p, 4).unwrap_err().errno(), Errno::EFAULT);
        let w = m.map(b"abcd");
        m.check_writable(w, 4).unwrap();
    }
}
