//! Access to a caller's memory behind ioctl pointers (`copy_from_user` /
//! `copy_to_user`).
//!
//! The kernel model never dereferences a client pointer itself: it asks a
//! [`UserMemory`], which the serving layer implements over the client
//! process (`process_vm_readv`/`writev`) and tests implement with
//! [`SimUserMemory`]. A bad pointer is `EFAULT`, never a crash.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{Result, efault};
pub use crate::tee::login::Credentials;

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
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
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
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).credentials = Some(credentials);
    }

    /// Maps a zero-filled region of `len` bytes.
    pub fn map_zeroed(&self, len: usize) -> UserPtr {
        self.map(&vec![0; len])
    }

    /// The current contents of the region mapped at `ptr`, if any.
    pub fn contents(&self, ptr: UserPtr) -> Option<Vec<u8>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).regions.get(&ptr.0).cloned()
    }

    fn with_range<R>(&self, ptr: UserPtr, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let fault = efault("address not mapped in the caller");
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
        self.with_range(ptr, buf.len(), |s| buf.copy_from_slice(s))
    }

    fn write(&self, ptr: UserPtr, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.with_range(ptr, data.len(), |s| s.copy_from_slice(data))
    }

    fn credentials(&self) -> Result<Credentials> {
        let set = self.inner.lock().unwrap_or_else(|e| e.into_inner()).credentials.clone();
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
    use crate::error::Errno;

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
}
