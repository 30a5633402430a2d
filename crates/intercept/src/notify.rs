//! The supervisor's side of seccomp user notification: one [`Listener`] per
//! filtered process tree, [`Notification`]s in, [`Response`]s out.
//!
//! A notification stays answerable until it is answered or its caller dies
//! (then every operation on its id fails with `ENOENT`). Each notification
//! must be answered exactly once, or the caller stays blocked.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::arch::Sysno;
use crate::request::IoctlCall;
use crate::{Errno, Result, last_errno};

/// One intercepted syscall, waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Cookie that names this call in every answer.
    pub id: u64,
    /// Caller's thread id, in the supervisor's pid namespace.
    pub pid: i32,
    /// Syscall number.
    pub nr: Sysno,
    /// `AUDIT_ARCH_*` of the call.
    pub arch: u32,
    /// Caller's instruction pointer.
    pub instruction_pointer: u64,
    /// Raw arguments.
    pub args: [u64; 6],
}

impl Notification {
    /// The call as an `ioctl`, if it is one.
    pub fn ioctl(&self) -> Option<IoctlCall> {
        (self.nr == Sysno::IOCTL).then(|| IoctlCall::from_args(&self.args))
    }
}

/// How an intercepted call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// The call returns this value (must not be in `-4095..=-1`).
    Value(i64),
    /// The call fails with this errno.
    Errno(Errno),
    /// The kernel runs the call natively, as if it had not been filtered.
    /// Only sound for calls whose arguments the supervisor merely looked at.
    Continue,
}

/// How [`Listener::add_fd`] installs a file in the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFd {
    /// Set `O_CLOEXEC` on the new fd (from the caller's flags, e.g. an
    /// ALLOC's `fd_flags`).
    pub cloexec: bool,
    /// Install at exactly this number, replacing what is there (like
    /// `dup2`); `None` takes the lowest free number.
    pub at: Option<i32>,
}

/// What [`Listener::poll`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A notification is waiting.
    Ready,
    /// Every filtered process has exited; no notification will come.
    Hangup,
    /// Nothing happened within the timeout.
    Timeout,
}

/// The listener fd of a seccomp filter.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Wraps a listener fd (from [`crate::filter::Filter::install`] or the
    /// launcher).
    pub fn from_fd(fd: OwnedFd) -> Listener {
        Listener { fd }
    }

    /// Blocks until a notification arrives. Errors: `ENOENT` when the
    /// caller died between the wake-up and the read (call again); `EINTR`.
    /// Once every filtered process has exited, the listener polls readable
    /// with `POLLHUP` and this fails with `ENOENT`.
    pub fn recv(&self) -> Result<Notification> {
        // SAFETY: `seccomp_notif` is plain old data; all-zero is valid and
        // is what the kernel requires on input.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        self.ioctl(libc::SECCOMP_IOCTL_NOTIF_RECV, (&mut n as *mut libc::seccomp_notif).cast())?;
        Ok(Notification {
            id: n.id,
            pid: n.pid as i32,
            nr: Sysno(n.data.nr as u32),
            arch: n.data.arch,
            instruction_pointer: n.data.instruction_pointer,
            args: n.data.args,
        })
    }

    /// Waits up to `timeout` (`None`: forever) for a notification or for
    /// the last filtered process to exit.
    pub fn poll(&self, timeout: Option<std::time::Duration>) -> Result<Readiness> {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let ts = timeout.map(|t| Timespec { tv_sec: t.as_secs() as i64, tv_nsec: i64::from(t.subsec_nanos()) });
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let n = match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(n) => n,
            Err(Errno::INTR) => return Ok(Readiness::Timeout),
            Err(e) => return Err(e),
        };
        let ev = fds[0].revents();
        // Not a hangup: the fd itself is gone (closed under us, a bug).
        if ev.contains(PollFlags::NVAL) {
            return Err(Errno::BADF);
        }
        Ok(if n == 0 {
            Readiness::Timeout
        } else if ev.contains(PollFlags::IN) {
            Readiness::Ready
        } else {
            Readiness::Hangup
        })
    }

    /// Whether notification `id` can still be answered, i.e. its caller is
    /// still blocked in the call. Use after reading target memory by pid.
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        self.ioctl(libc::SECCOMP_IOCTL_NOTIF_ID_VALID, (&mut id as *mut u64).cast()).is_ok()
    }

    /// Answers notification `id`. Errors: `ENOENT` if the caller is gone or
    /// was interrupted by a fatal signal; `EINPROGRESS` if already answered.
    pub fn respond(&self, id: u64, response: Response) -> Result<()> {
        let (val, error, flags) = match response {
            Response::Value(v) => (v, 0, 0),
            Response::Errno(e) => (0, -e.raw_os_error(), 0),
            Response::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        };
        let mut resp = libc::seccomp_notif_resp { id, val, error, flags };
        self.ioctl(libc::SECCOMP_IOCTL_NOTIF_SEND, (&mut resp as *mut libc::seccomp_notif_resp).cast())
    }

    /// Installs a duplicate of `file` in the caller of `id` and returns its
    /// fd number there; the call stays blocked. Errors: `ENOENT` if the
    /// caller is gone, `EMFILE`, `EBADF` for a bad `at`.
    pub fn add_fd(&self, id: u64, file: BorrowedFd<'_>, how: AddFd) -> Result<i32> {
        self.add_fd_flags(id, file, how, 0)
    }

    /// Installs a duplicate of `file` in the caller of `id` and, atomically,
    /// makes the call return the new fd number (`SECCOMP_ADDFD_FLAG_SEND`),
    /// as `open` or `TEE_IOC_SHM_ALLOC` do. The notification is answered.
    pub fn add_fd_and_return(&self, id: u64, file: BorrowedFd<'_>, how: AddFd) -> Result<i32> {
        self.add_fd_flags(id, file, how, libc::SECCOMP_ADDFD_FLAG_SEND as u32)
    }

    fn add_fd_flags(&self, id: u64, file: BorrowedFd<'_>, how: AddFd, extra: u32) -> Result<i32> {
        let mut flags = extra;
        if how.at.is_some() {
            flags |= libc::SECCOMP_ADDFD_FLAG_SETFD as u32;
        }
        let mut req = libc::seccomp_notif_addfd {
            id,
            flags,
            srcfd: file.as_raw_fd() as u32,
            newfd: how.at.unwrap_or(0) as u32,
            newfd_flags: if how.cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        let fd =
            self.ioctl_ret(libc::SECCOMP_IOCTL_NOTIF_ADDFD, (&mut req as *mut libc::seccomp_notif_addfd).cast())?;
        Ok(fd)
    }

    fn ioctl(&self, req: libc::Ioctl, arg: *mut libc::c_void) -> Result<()> {
        self.ioctl_ret(req, arg).map(drop)
    }

    fn ioctl_ret(&self, req: libc::Ioctl, arg: *mut libc::c_void) -> Result<i32> {
        loop {
            // SAFETY: every caller passes a pointer to a live, correctly
            // typed struct for `req`, borrowed for the duration of the call.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), req, arg) };
            if r >= 0 {
                return Ok(r);
            }
            let e = last_errno();
            if e != Errno::INTR || req != libc::SECCOMP_IOCTL_NOTIF_RECV {
                return Err(e);
            }
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
