//! The file a program gets for a buffer: a sealed memfd of the buffer's size.
//!
//! The daemon keeps the memfd's own open file description (it is silent to
//! inotify, being a pseudo file) and hands programs *other* descriptions of
//! the same inode, opened through `/proc/self/fd`. Each such description
//! raises `IN_OPEN` and, when its last fd and last mapping are gone,
//! `IN_CLOSE_*` — see [`crate::watch`]. The daemon maps the memfd too, so a
//! `system` buffer's pages are the same for program and emulated devices.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use crate::{Errno, Result};

/// Whether the program may touch the buffer's bytes with the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuAccess {
    /// `system`-heap and TEE shared memory: mmap-able, data lives in the memfd.
    Mappable,
    /// Protected: the memfd never holds data; it is write-sealed so nothing
    /// can be stored in it, and shared mmaps are refused by the supervisor.
    None,
}

/// Access mode of a program's description (`O_ACCMODE` of `fd_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
    /// `O_ACCMODE` (3): Linux's "ioctl only" mode. A dma-buf exported with
    /// it is a file with neither read nor write access (`OPEN_FMODE(3)` is
    /// 0) whose `F_GETFL` shows 3; `read`/`write` fail `EBADF` and `mmap`
    /// fails `EACCES`. A description opened with 3 is exactly that file.
    IoctlOnly,
}

impl Access {
    /// From `flags & O_ACCMODE`; each of the four values is a mode.
    pub fn from_flags(flags: u32) -> Result<Access> {
        Ok(match flags & libc::O_ACCMODE as u32 {
            0 => Access::ReadOnly,
            1 => Access::WriteOnly,
            2 => Access::ReadWrite,
            _ => Access::IoctlOnly,
        })
    }
}

/// A buffer's backing memfd, owned by the daemon.
///
/// # Invariants
/// The size is fixed at creation (grow and shrink are sealed), so a mapping
/// of the whole size never faults with `SIGBUS`.
#[derive(Debug)]
pub struct BackingFile {
    fd: OwnedFd,
    size: u64,
    cpu: CpuAccess,
}

impl BackingFile {
    /// Creates a memfd named `name` (shown in `/proc/<pid>/fd` as
    /// `/memfd:<name>`) of `size` bytes. Errors: `EINVAL` for a name with a
    /// NUL or `size == 0`, `EMFILE`, `ENOMEM`.
    pub fn create(name: &str, size: u64, cpu: CpuAccess) -> Result<BackingFile> {
        if size == 0 {
            return Err(Errno::INVAL);
        }
        BlankFile::create(name)?.finish(size, cpu)
    }

    /// Size in bytes (what `lseek(fd, 0, SEEK_END)` returns to programs).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the buffer is CPU-accessible.
    pub fn cpu_access(&self) -> CpuAccess {
        self.cpu
    }

    /// Opens a new description of this inode for a program, `O_CLOEXEC` in
    /// the daemon (the program's own flag is set by
    /// [`crate::notify::AddFd::cloexec`]). Raises `IN_OPEN` on watchers.
    /// A protected file keeps the requested access mode; its write seal
    /// makes `write` fail with `EPERM`.
    pub fn open_for_client(&self, access: Access) -> Result<OwnedFd> {
        reopen(&self.fd, access)
    }

    /// `(st_dev, st_ino)` of the inode, to recognise a program's fd after
    /// [`crate::target::Target::get_fd`] + `fstat`.
    pub fn identity(&self) -> Result<FileId> {
        FileId::of(&self.fd)
    }
}

impl AsFd for BackingFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A new description of the inode behind `fd`, through `/proc`.
pub(crate) fn reopen(fd: &OwnedFd, access: Access) -> Result<OwnedFd> {
    let acc = match access {
        Access::ReadOnly => OFlags::RDONLY,
        Access::WriteOnly => OFlags::WRONLY,
        Access::ReadWrite => OFlags::RDWR,
        Access::IoctlOnly => OFlags::RDWR | OFlags::WRONLY,
    };
    let name = fd.as_raw_fd().to_string();
    match proc_self_fd() {
        // Relative to a kept `/proc/<pid>/fd`: no walk of /proc each time.
        Some(dir) => rustix::fs::openat(dir, name.as_str(), acc | OFlags::CLOEXEC, Mode::empty()),
        None => {
            let path = format!("/proc/self/fd/{name}");
            rustix::fs::open(path.as_str(), acc | OFlags::CLOEXEC, Mode::empty())
        }
    }
}

/// A memfd made ahead of need (e.g. by a pool thread), not yet sized or
/// sealed; [`BlankFile::finish`] makes it a [`BackingFile`]. Its inode is
/// fresh: nothing but its creator has seen it.
#[derive(Debug)]
pub struct BlankFile {
    fd: OwnedFd,
}

impl BlankFile {
    /// A new empty memfd named `name`, sealable. Errors: `EINVAL` for a
    /// name with a NUL, `EMFILE`, `ENOMEM`.
    pub fn create(name: &str) -> Result<BlankFile> {
        let name = CString::new(name).map_err(|_| Errno::INVAL)?;
        let fd = rustix::fs::memfd_create(&name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        Ok(BlankFile { fd })
    }

    /// As [`BackingFile::open_for_client`]; the description sees the size
    /// and seals that [`BlankFile::finish`] sets later.
    pub fn open_for_client(&self, access: Access) -> Result<OwnedFd> {
        reopen(&self.fd, access)
    }

    /// `(st_dev, st_ino)` of the inode (the same after `finish`).
    pub fn identity(&self) -> Result<FileId> {
        FileId::of(&self.fd)
    }

    /// Sizes the memfd to `size` bytes and seals it (grow, shrink, seal;
    /// protected: write too). Errors: `EINVAL` for `size == 0`; `EBUSY` if
    /// a writable shared mapping exists and `cpu` is `None`.
    pub fn finish(self, size: u64, cpu: CpuAccess) -> Result<BackingFile> {
        if size == 0 {
            return Err(Errno::INVAL);
        }
        rustix::fs::ftruncate(&self.fd, size)?;
        let mut seals = SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL;
        if cpu == CpuAccess::None {
            seals |= SealFlags::WRITE;
        }
        rustix::fs::fcntl_add_seals(&self.fd, seals)?;
        Ok(BackingFile { fd: self.fd, size, cpu })
    }
}

impl AsFd for BlankFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `/proc/<pid>/fd` of this process, opened once (`O_PATH`). `None` if
/// `/proc` is not there, or in a forked child of the process that opened it
/// (the directory names the parent's fds).
fn proc_self_fd() -> Option<BorrowedFd<'static>> {
    static DIR: OnceLock<Option<(u32, OwnedFd)>> = OnceLock::new();
    let pid = std::process::id();
    DIR.get_or_init(|| {
        let path = format!("/proc/{pid}/fd");
        let fd = rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        fd.ok().map(|fd| (pid, fd))
    })
    .as_ref()
    .filter(|(owner, _)| *owner == pid)
    .map(|(_, fd)| fd.as_fd())
}

/// Names an inode: `(st_dev, st_ino)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity of the inode behind `fd`.
    pub fn of(fd: impl AsFd) -> Result<FileId> {
        let st = rustix::fs::fstat(fd)?;
        Ok(FileId { dev: st.st_dev, ino: st.st_ino })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_sealed() {
        let b = BackingFile::create("t", 8192, CpuAccess::Mappable).unwrap();
        let c = b.open_for_client(Access::ReadWrite).unwrap();
        assert_eq!(rustix::fs::seek(&c, rustix::fs::SeekFrom::End(0)).unwrap(), 8192);
        assert_eq!(rustix::fs::ftruncate(&c, 4096), Err(Errno::PERM));
        assert_eq!(rustix::fs::ftruncate(&c, 1 << 20), Err(Errno::PERM));
        assert_eq!(FileId::of(&c).unwrap(), b.identity().unwrap());
    }

    #[test]
    fn protected_holds_no_data() {
        let b = BackingFile::create("p", 4096, CpuAccess::None).unwrap();
        let c = b.open_for_client(Access::ReadWrite).unwrap();
        assert_eq!(rustix::io::write(&c, b"x"), Err(Errno::PERM));
        assert_eq!(rustix::fs::seek(&c, rustix::fs::SeekFrom::End(0)).unwrap(), 4096);
    }

    #[test]
    fn blank_then_finished() {
        let blank = BlankFile::create("b").unwrap();
        let id = blank.identity().unwrap();
        let early = blank.open_for_client(Access::ReadWrite).unwrap();
        let b = blank.finish(4096, CpuAccess::None).unwrap();
        assert_eq!(b.identity().unwrap(), id);
        assert_eq!(rustix::fs::seek(&early, rustix::fs::SeekFrom::End(0)).unwrap(), 4096);
        assert_eq!(rustix::io::write(&early, b"x"), Err(Errno::PERM));
        assert_eq!(rustix::fs::ftruncate(&early, 8192), Err(Errno::PERM));
    }

    #[test]
    fn ioctl_only_has_neither_read_nor_write() {
        let b = BackingFile::create("i", 4096, CpuAccess::Mappable).unwrap();
        let c = b.open_for_client(Access::IoctlOnly).unwrap();
        let fl = rustix::fs::fcntl_getfl(&c).unwrap();
        assert_eq!(fl.bits() & libc::O_ACCMODE as u32, 3);
        let mut x = [0u8; 1];
        assert_eq!(rustix::io::read(&c, &mut x), Err(Errno::BADF));
        assert_eq!(rustix::io::write(&c, b"x"), Err(Errno::BADF));
        // SAFETY: a fresh shared mapping request; it is expected to fail
        // and would be unmapped at once if it did not.
        let r = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                4096,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                &c,
                0,
            )
        };
        assert_eq!(r.err(), Some(Errno::ACCESS));
    }

    #[test]
    fn bad_args() {
        assert_eq!(BackingFile::create("z", 0, CpuAccess::Mappable).unwrap_err(), Errno::INVAL);
        assert_eq!(BackingFile::create("a\0b", 1, CpuAccess::Mappable).unwrap_err(), Errno::INVAL);
        assert_eq!(Access::from_flags(3 | libc::O_CLOEXEC as u32), Ok(Access::IoctlOnly));
        assert_eq!(Access::from_flags(libc::O_RDWR as u32 | libc::O_CLOEXEC as u32), Ok(Access::ReadWrite));
    }
}
