//! A process stopped in an intercepted syscall, seen from the supervisor:
//! its memory (behind ioctl pointers) and its fds.
//!
//! A [`Target`] holds a pidfd, so its fd operations can never reach another
//! process that reused the pid. Memory access goes by pid (there is no
//! pidfd variant of `process_vm_readv`); callers confirm afterwards, with
//! [`crate::notify::Listener::id_valid`], that the notification, and so the
//! process, was still alive.

use std::os::fd::{AsFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

use crate::{Errno, Result, last_errno};

/// An address in the target's address space. No arithmetic operators on
/// purpose: use [`UserAddr::checked_add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserAddr(pub u64);

impl UserAddr {
    /// `self + off`, or `None` on overflow.
    pub fn checked_add(self, off: u64) -> Option<UserAddr> {
        self.0.checked_add(off).map(UserAddr)
    }
}

/// The process that made an intercepted call.
#[derive(Debug)]
pub struct Target {
    pid: Pid,
    pidfd: OwnedFd,
}

impl Target {
    /// Opens a pidfd for thread `pid` (a notification's `pid` is the
    /// calling thread, which need not lead its process). Errors: `ESRCH` if
    /// it is gone, `EINVAL` for pid 0 or a negative pid.
    pub fn open(pid: i32) -> Result<Target> {
        let pid = Pid::from_raw(pid).ok_or(Errno::INVAL)?;
        // PIDFD_THREAD (Linux 6.9); older kernels only take leaders.
        let thread = PidfdFlags::from_bits_retain(libc::O_EXCL as _);
        let pidfd = match pidfd_open(pid, thread) {
            Err(Errno::INVAL) => pidfd_open(pid, PidfdFlags::empty())?,
            other => other?,
        };
        Ok(Target { pid, pidfd })
    }

    /// The pid, in the supervisor's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw_nonzero().get()
    }

    /// A duplicate of the target's fd `fd` (same open file description),
    /// `O_CLOEXEC` in the supervisor. Errors: `EBADF` if `fd` is not open
    /// there (also for a negative `fd`, as the syscall answers), `EPERM`
    /// without ptrace access, `ESRCH` if the process exited.
    pub fn get_fd(&self, fd: i32) -> Result<OwnedFd> {
        // rustix asserts that an fd argument is not negative; the kernel
        // would answer EBADF, so answer it here.
        if fd < 0 {
            return Err(Errno::BADF);
        }
        pidfd_getfd(&self.pidfd, fd, PidfdGetfdFlags::empty())
    }

    /// The pidfd, e.g. to poll for the target's exit.
    pub fn pidfd(&self) -> impl AsFd + '_ {
        &self.pidfd
    }

    /// Reads exactly `buf.len()` bytes at `addr`. Errors: `EFAULT` if any
    /// byte is not mapped readable, `ESRCH` if the process is gone, `EPERM`
    /// without ptrace access.
    pub fn read(&self, addr: UserAddr, buf: &mut [u8]) -> Result<()> {
        self.transfer(addr, buf.as_mut_ptr(), buf.len(), false)
    }

    /// Writes all of `buf` at `addr`, errors as for [`Target::read`]. A
    /// partial write leaves the bytes before the fault written, as the
    /// kernel's `copy_to_user` does.
    pub fn write(&self, addr: UserAddr, buf: &[u8]) -> Result<()> {
        self.transfer(addr, buf.as_ptr().cast_mut(), buf.len(), true)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (NUL excluded).
    /// Errors: `EFAULT` as for `read`, `ENAMETOOLONG` if no NUL is found.
    pub fn read_cstr(&self, addr: UserAddr, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() <= max {
            // Stop chunks at page ends, so a string that ends just before
            // an unmapped page still reads.
            let to_page_end = 4096 - (at.0 % 4096) as usize;
            let mut chunk = vec![0u8; to_page_end.min(max + 1 - out.len())];
            self.read(at, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at = at.checked_add(chunk.len() as u64).ok_or(Errno::FAULT)?;
        }
        Err(Errno::NAMETOOLONG)
    }

    fn transfer(&self, addr: UserAddr, local: *mut u8, len: usize, write: bool) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        if addr.checked_add(len as u64).is_none() {
            return Err(Errno::FAULT);
        }
        let mut done = 0usize;
        while done < len {
            let liov = libc::iovec {
                // SAFETY: `done < len`, so the pointer stays inside the
                // caller's buffer of `len` bytes.
                iov_base: unsafe { local.add(done) }.cast(),
                iov_len: len - done,
            };
            let riov = libc::iovec { iov_base: (addr.0 + done as u64) as *mut libc::c_void, iov_len: len - done };
            // SAFETY: the local iovec covers memory the caller lent us
            // (`&mut [u8]` for reads, `&[u8]` only read by the kernel for
            // writes); the remote iovec is only interpreted in the target.
            let n = unsafe {
                if write {
                    libc::process_vm_writev(self.pid(), &liov, 1, &riov, 1, 0)
                } else {
                    libc::process_vm_readv(self.pid(), &liov, 1, &riov, 1, 0)
                }
            };
            if n < 0 {
                return Err(last_errno());
            }
            if n == 0 {
                return Err(Errno::FAULT);
            }
            done += n as usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Target {
        Target::open(std::process::id() as i32).unwrap()
    }

    #[test]
    fn read_write_self() {
        let t = me();
        let src = *b"teeheap!";
        let mut dst = [0u8; 8];
        t.read(UserAddr(src.as_ptr() as u64), &mut dst).unwrap();
        assert_eq!(dst, src);
        let mut slot = [0u8; 4];
        t.write(UserAddr(slot.as_mut_ptr() as u64), b"abcd").unwrap();
        assert_eq!(&slot, b"abcd");
    }

    #[test]
    fn bad_pointers_are_efault() {
        let t = me();
        let mut b = [0u8; 8];
        assert_eq!(t.read(UserAddr(8), &mut b), Err(Errno::FAULT));
        assert_eq!(t.write(UserAddr(8), &b), Err(Errno::FAULT));
        assert_eq!(t.read(UserAddr(u64::MAX - 2), &mut b), Err(Errno::FAULT));
        assert_eq!(t.read(UserAddr(8), &mut []), Ok(()));
    }

    #[test]
    fn cstr() {
        let t = me();
        let s = b"/dev/dma_heap/system\0";
        assert_eq!(t.read_cstr(UserAddr(s.as_ptr() as u64), 64).unwrap(), &s[..s.len() - 1]);
        assert_eq!(t.read_cstr(UserAddr(s.as_ptr() as u64), 4), Err(Errno::NAMETOOLONG));
        assert_eq!(t.read_cstr(UserAddr(16), 4), Err(Errno::FAULT));
    }

    #[test]
    fn negative_and_closed_fds_are_ebadf() {
        let t = me();
        for fd in [-1, -100, i32::MIN] {
            assert_eq!(t.get_fd(fd).unwrap_err(), Errno::BADF, "fd {fd}");
        }
        let unused = rustix::io::dup(std::io::stdin()).unwrap();
        let n = std::os::fd::AsRawFd::as_raw_fd(&unused);
        drop(unused);
        assert_eq!(t.get_fd(n).unwrap_err(), Errno::BADF);
        let f = t.get_fd(0).unwrap();
        assert!(std::os::fd::AsRawFd::as_raw_fd(&f) >= 0);
    }

    #[test]
    fn checked_add() {
        assert_eq!(UserAddr(1).checked_add(2), Some(UserAddr(3)));
        assert_eq!(UserAddr(u64::MAX).checked_add(1), None);
    }
}
