//! One intercepted call's view of its caller, as the kernel model wants it:
//! the caller's memory ([`UserMemory`]) and fd table ([`Files`]).
//!
//! Both live only while the call is being answered: the caller is blocked
//! in the syscall, so its memory and fds stay put (other threads of the
//! caller may still change them, as they may under a real kernel).

use std::os::fd::AsFd;

use teeheap_intercept::memfd::{Access, FileId};
use teeheap_intercept::notify::{AddFd, Listener};
use teeheap_intercept::target::{Target, UserAddr};
use teeheap_kernel::error::{Errno as KErrno, Error, efault};
use teeheap_kernel::file::{Backing, File, Files};
use teeheap_kernel::uaccess::{Credentials, UserMemory, UserPtr, check_writable_in_maps};
use teeheap_platform::Len;
use teeheap_uapi::dma_heap::O_CLOEXEC;

use crate::served::Registry;

/// The caller's memory, over `process_vm_readv`/`writev`.
#[derive(Debug)]
pub struct ClientMemory<'a> {
    /// The caller.
    pub target: &'a Target,
}

impl UserMemory for ClientMemory<'_> {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> teeheap_kernel::Result<()> {
        self.target.read(UserAddr(ptr.0), buf).map_err(|_| efault("caller memory not readable"))
    }

    fn write(&self, ptr: UserPtr, data: &[u8]) -> teeheap_kernel::Result<()> {
        self.target.write(UserAddr(ptr.0), data).map_err(|_| efault("caller memory not writable"))
    }

    /// From the caller's `/proc/<pid>/maps`: Linux pins registered memory
    /// for writing, so a read-only mapping cannot be registered.
    fn check_writable(&self, ptr: UserPtr, len: u64) -> teeheap_kernel::Result<()> {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.target.pid()))
            .map_err(|_| efault("cannot read the caller's mappings"))?;
        check_writable_in_maps(&maps, ptr, len)
    }

    /// The caller's, from `/proc/<pid>/status` and `gid_map` (the caller is
    /// blocked in the call, so its pid is its own).
    fn credentials(&self) -> teeheap_kernel::Result<Credentials> {
        let pid = u32::try_from(self.target.pid()).map_err(|_| Error::new(KErrno::ESRCH, "bad caller pid"))?;
        Credentials::of_process(pid)
    }
}

/// The caller's fd table: installs go through `SECCOMP_IOCTL_NOTIF_ADDFD`,
/// lookups through `pidfd_getfd` and the registry of served inodes.
#[derive(Debug)]
pub struct ClientFiles<'a> {
    /// Served files.
    pub registry: &'a Registry,
    /// The listener the call came from.
    pub listener: &'a Listener,
    /// The notification's id.
    pub id: u64,
    /// The caller.
    pub target: &'a Target,
    /// The caps in force and the accounting they are checked against.
    pub shared: &'a crate::Shared,
    /// The calling thread.
    pub tid: i32,
    /// The caller's description is `O_NONBLOCK`.
    pub nonblocking: bool,
}

/// The kernel model's error for a host errno.
pub fn kerr(e: teeheap_intercept::Errno, reason: &'static str) -> Error {
    Error::new(KErrno::from_raw(e.raw_os_error()), reason)
}

impl Files for ClientFiles<'_> {
    fn install(&mut self, file: File, flags: u32) -> teeheap_kernel::Result<i32> {
        let desc = match file.backing() {
            Backing::Signal => self.registry.serve_sync(file).map_err(|e| kerr(e, "cannot make the sync file"))?,
            _ => {
                let access = Access::from_flags(flags).map_err(|e| kerr(e, "bad access mode"))?;
                self.registry.serve(file, access).map_err(|e| kerr(e, "cannot make the buffer's file"))?
            }
        };
        let how = AddFd { cloexec: flags & O_CLOEXEC != 0, at: None };
        // On failure `desc` is dropped here: that close is the release.
        let fd = self.listener.add_fd(self.id, desc.as_fd(), how).map_err(|e| kerr(e, "cannot install the fd"))?;
        Ok(fd)
    }

    fn lookup(&self, fd: i64) -> teeheap_kernel::Result<File> {
        let bad = Error::new(KErrno::EBADF, "fd not open or not a teeheap file");
        let fd = i32::try_from(fd).map_err(|_| bad.clone())?;
        let f = self.target.get_fd(fd).map_err(|_| bad.clone())?;
        let id = FileId::of(&f).map_err(|_| bad.clone())?;
        self.registry.file(&id).ok_or(bad)
    }

    /// The per-process caps (`[limits]`), checked with the length the
    /// kernel parsed; a refusal is counted and logged by the daemon.
    fn admit_allocation(&mut self, heap: &str, len: Len) -> teeheap_kernel::Result<()> {
        if self.shared.allow_alloc(self.tid, heap, len.bytes()) {
            Ok(())
        } else {
            Err(Error::new(KErrno::ENOMEM, "over a cap of [limits]"))
        }
    }

    /// The call is no longer pending: the caller was interrupted or died.
    fn gave_up(&self) -> bool {
        !self.listener.id_valid(self.id)
    }

    fn nonblocking(&self) -> bool {
        self.nonblocking
    }
}
