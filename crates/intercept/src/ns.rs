//! Namespaces as identities: which run a process belongs to.
//!
//! A [`Namespace`] is an open nsfs file (`/proc/<pid>/ns/user`, `.../mnt`);
//! holding it keeps the namespace, and so its inode number, from being
//! reused, so its [`NsId`] names it for as long as the value lives. User
//! namespaces nest and a process can never leave its own for an ancestor
//! (that needs `CAP_SYS_ADMIN` over the ancestor), so "is this process
//! inside that user namespace or one nested in it" is a question a process
//! cannot lie its way out of; [`Namespace::ancestry`] answers it. A
//! [`Peer`] is the process at the other end of a Unix socket, identified
//! race-free by the pidfd the kernel hands out for it (`SO_PEERPIDFD`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::process::{PidfdFlags, pidfd_open};

use crate::{Errno, Result};

/// `SO_PEERPIDFD` (Linux 6.5), the same number on every architecture we build for.
const SO_PEERPIDFD: libc::c_int = 77;

/// Most levels of user namespace nesting Linux allows (plus the initial one).
const MAX_USER_NS_DEPTH: usize = 33;

/// The kind of a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// A user namespace (`CLONE_NEWUSER`).
    User,
    /// A mount namespace (`CLONE_NEWNS`).
    Mount,
}

impl NsKind {
    /// The name under `/proc/<pid>/ns/`.
    pub const fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mnt",
        }
    }

    const fn clone_flag(self) -> libc::c_int {
        match self {
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Mount => libc::CLONE_NEWNS,
        }
    }
}

/// The identity of a namespace: the `(st_dev, st_ino)` of its nsfs file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NsId {
    /// `st_dev` of the nsfs file.
    pub dev: u64,
    /// `st_ino` (the number in `user:[4026531837]`).
    pub ino: u64,
}

/// An open namespace of a known kind. See the module documentation.
///
/// # Invariants
/// `fd` is an nsfs file of kind `kind` whose identity is `id`.
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
    kind: NsKind,
    id: NsId,
}

impl Namespace {
    /// The namespace of `kind` that `fd` refers to (an fd opened on
    /// `/proc/<pid>/ns/<kind>`, received from elsewhere). Errors: `EINVAL`
    /// if `fd` is not a namespace of that kind.
    pub fn from_fd(fd: OwnedFd, kind: NsKind) -> Result<Namespace> {
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
        let ty = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
        if ty != kind.clone_flag() {
            return Err(Errno::INVAL);
        }
        let st = rustix::fs::fstat(&fd)?;
        Ok(Namespace { fd, kind, id: NsId { dev: st.st_dev, ino: st.st_ino } })
    }

    /// The namespace of `kind` of process `pid` (through `/proc`).
    /// Errors: `ENOENT` if it is gone (or a zombie), `EACCES` without
    /// ptrace read access to it.
    pub fn of_pid(pid: i32, kind: NsKind) -> Result<Namespace> {
        let path = format!("/proc/{pid}/ns/{}", kind.proc_name());
        let fd = rustix::fs::open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Namespace::from_fd(fd, kind)
    }

    /// The calling process's namespace of `kind`.
    ///
    /// # Errors
    /// As [`Namespace::of_pid`].
    pub fn of_self(kind: NsKind) -> Result<Namespace> {
        let fd = rustix::fs::open(
            format!("/proc/self/ns/{}", kind.proc_name()).as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Namespace::from_fd(fd, kind)
    }

    /// Its identity.
    pub fn id(&self) -> NsId {
        self.id
    }

    /// Its kind.
    pub fn kind(&self) -> NsKind {
        self.kind
    }

    /// The parent of a user namespace, or `None` if it has none we may see
    /// (the initial namespace, or one above the caller's own). Errors:
    /// `EINVAL` for a namespace kind without parents (mount).
    pub fn parent(&self) -> Result<Option<Namespace>> {
        if self.kind != NsKind::User {
            return Err(Errno::INVAL);
        }
        // SAFETY: NS_GET_PARENT takes no argument; it returns a new fd or -1.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::NS_GET_PARENT) };
        if r < 0 {
            return match crate::last_errno() {
                Errno::PERM | Errno::NOENT => Ok(None),
                e => Err(e),
            };
        }
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(r) };
        let st = rustix::fs::fstat(&fd)?;
        Ok(Some(Namespace { fd, kind: NsKind::User, id: NsId { dev: st.st_dev, ino: st.st_ino } }))
    }

    /// The identities of this user namespace and its ancestors, nearest
    /// first, up to `stop` (excluded) or the first one the caller may not
    /// see. Errors: `EINVAL` for a mount namespace.
    pub fn ancestry(&self, stop: NsId) -> Result<Vec<NsId>> {
        if self.kind != NsKind::User {
            return Err(Errno::INVAL);
        }
        let mut chain = Vec::new();
        if self.id == stop {
            return Ok(chain);
        }
        chain.push(self.id);
        let mut cur = self.parent()?;
        while let Some(ns) = cur {
            if ns.id == stop || chain.len() >= MAX_USER_NS_DEPTH {
                break;
            }
            chain.push(ns.id);
            cur = ns.parent()?;
        }
        Ok(chain)
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The process at the other end of a connected Unix socket, with the
/// namespaces it is in. See the module documentation.
#[derive(Debug)]
pub struct Peer {
    /// Its pid in the caller's pid namespace (`SO_PEERCRED`).
    pub pid: i32,
    /// Its user namespace.
    pub user: Namespace,
    /// Its mount namespace.
    pub mnt: Namespace,
}

impl Peer {
    /// The process that connected `sock`, as it is now. The pidfd comes
    /// from `SO_PEERPIDFD` (Linux 6.5), so it names the process that
    /// connected even if it has exited and its pid was reused; on older
    /// kernels it is opened by pid, which leaves the pid-reuse window
    /// between `connect` and this call. The namespaces are read from
    /// `/proc/<pid>` and trusted only if the pidfd's process is still alive
    /// afterwards. Errors: `ESRCH` if the peer has exited; `/proc` errors.
    pub fn of_socket(sock: BorrowedFd<'_>) -> Result<Peer> {
        let cred = PeerCred::of_socket(sock)?;
        let pid = rustix::process::Pid::from_raw(cred.pid).ok_or(Errno::SRCH)?;
        let pidfd = match peer_pidfd(sock) {
            Ok(fd) => fd,
            Err(Errno::NOPROTOOPT | Errno::INVAL) => pidfd_open(pid, PidfdFlags::empty())?,
            Err(e) => return Err(e),
        };
        let raw = cred.pid;
        let user = Namespace::of_pid(raw, NsKind::User)?;
        let mnt = Namespace::of_pid(raw, NsKind::Mount)?;
        if exited(&pidfd)? {
            return Err(Errno::SRCH);
        }
        Ok(Peer { pid: raw, user, mnt })
    }
}

/// The credentials of the process that connected a Unix socket, as it
/// connected (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Its pid in the caller's pid namespace; 0 if it has none there.
    pub pid: i32,
    /// Its effective uid, as seen from the caller's user namespace.
    pub uid: u32,
    /// Its effective gid, likewise.
    pub gid: u32,
}

impl PeerCred {
    /// `getsockopt(SO_PEERCRED)` on `sock`. Errors: `ENOTCONN`, `ENOTSOCK`.
    ///
    /// Through libc, not rustix's `socket_peercred`: its `UCred` holds a
    /// non-zero `Pid`, but the kernel reports pid 0 for a peer outside our
    /// pid namespace.
    pub fn of_socket(sock: BorrowedFd<'_>) -> Result<PeerCred> {
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are live locals of the sizes the kernel expects.
        let r = unsafe {
            libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len)
        };
        if r < 0 {
            return Err(crate::last_errno());
        }
        Ok(PeerCred { pid: cred.pid, uid: cred.uid, gid: cred.gid })
    }
}

/// `getsockopt(SO_PEERPIDFD)`: a pidfd of the process that connected.
fn peer_pidfd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` and `len` are live locals of the sizes the kernel expects.
    let r =
        unsafe { libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, SO_PEERPIDFD, (&raw mut fd).cast(), &mut len) };
    if r < 0 {
        return Err(crate::last_errno());
    }
    if fd < 0 {
        return Err(Errno::SRCH);
    }
    // SAFETY: the kernel installed a new fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process behind `pidfd` has exited (the pidfd is readable).
fn exited(pidfd: &OwnedFd) -> Result<bool> {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    Ok(rustix::event::poll(&mut fds, Some(&zero))? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn own_namespaces_and_a_socket_peer() {
        let user = Namespace::of_self(NsKind::User).unwrap();
        let mnt = Namespace::of_self(NsKind::Mount).unwrap();
        assert_ne!(user.id(), mnt.id());
        // Opening it again names the same namespace.
        assert_eq!(Namespace::of_pid(std::process::id() as i32, NsKind::User).unwrap().id(), user.id());
        // The wrong kind is refused.
        let fd = user.as_fd().try_clone_to_owned().unwrap();
        assert_eq!(Namespace::from_fd(fd, NsKind::Mount).unwrap_err(), Errno::INVAL);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(Namespace::from_fd(r, NsKind::User).unwrap_err(), Errno::INVAL);
        assert_eq!(mnt.parent().unwrap_err(), Errno::INVAL);
        // Our own ancestry up to ourselves is empty; up to something else
        // it starts with us.
        assert!(user.ancestry(user.id()).unwrap().is_empty());
        let other = NsId { dev: 0, ino: 0 };
        assert_eq!(user.ancestry(other).unwrap().first(), Some(&user.id()));
        let (a, _b) = UnixStream::pair().unwrap();
        let c = PeerCred::of_socket(a.as_fd()).unwrap();
        assert_eq!((c.pid, c.uid), (std::process::id() as i32, rustix::process::geteuid().as_raw()));
        let p = Peer::of_socket(a.as_fd()).unwrap();
        assert_eq!(p.pid, std::process::id() as i32);
        assert_eq!((p.user.id(), p.mnt.id()), (user.id(), mnt.id()));
    }

    #[test]
    fn a_nested_user_namespace_has_ours_as_parent() {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("5");
        let hook = || {
            // SAFETY: no `CLONE_FILES`, and the forked child has one thread.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }?;
            Ok(())
        };
        // SAFETY: the hook runs in the forked, single-threaded child before
        // exec and only calls unshare.
        unsafe { cmd.pre_exec(hook) };
        let mut child = cmd.spawn().unwrap();
        let ours = Namespace::of_self(NsKind::User).unwrap();
        let theirs = Namespace::of_pid(child.id() as i32, NsKind::User).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_ne!(theirs.id(), ours.id());
        assert_eq!(theirs.parent().unwrap().map(|p| p.id()), Some(ours.id()));
        assert_eq!(theirs.ancestry(ours.id()).unwrap(), [theirs.id()]);
    }
}
