//! Starts a program under interception: in the child, right before `exec`,
//! optionally build the private `/dev`, set `no_new_privs`, install the
//! filter, and pass the listener to the parent over a socketpair.
//!
//! The listener is `O_CLOEXEC` in the child, so the program never holds it;
//! the filter is inherited by everything the program forks and execs.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::devns::{DevNodes, DevPlan};
use crate::filter::{Filter, install_program};
use crate::notify::Listener;
use crate::{Errno, Result, last_errno};

/// A program to start under interception (a thin layer over
/// [`std::process::Command`]).
#[derive(Debug)]
pub struct Launch {
    cmd: Command,
    filter: Filter,
    dev: Option<DevNodes>,
}

/// A started program and the listener for its calls.
#[derive(Debug)]
pub struct Launched {
    /// The child process (the program itself, after `exec`).
    pub child: Child,
    /// Receives the intercepted calls of the child and all its descendants.
    pub listener: Listener,
}

impl Launch {
    /// Runs `program` (looked up in `PATH` like `execvp`) with
    /// [`Filter::teeheap`] and no private `/dev`.
    pub fn new(program: impl AsRef<OsStr>) -> Launch {
        Launch { cmd: Command::new(program), filter: Filter::teeheap(), dev: None }
    }

    /// Runs a prepared [`Command`] (program, arguments, environment,
    /// working directory and stdio as set on it) with [`Filter::teeheap`]
    /// and no private `/dev`.
    pub fn from_command(cmd: Command) -> Launch {
        Launch { cmd, filter: Filter::teeheap(), dev: None }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Launch {
        self.cmd.arg(a);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, a: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(a);
        self
    }

    /// Sets an environment variable (the rest is inherited unless cleared).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Launch {
        self.cmd.env(k, v);
        self
    }

    /// Starts from an empty environment.
    pub fn env_clear(mut self) -> Launch {
        self.cmd.env_clear();
        self
    }

    /// Standard output of the child.
    pub fn stdout(mut self, s: Stdio) -> Launch {
        self.cmd.stdout(s);
        self
    }

    /// Standard error of the child.
    pub fn stderr(mut self, s: Stdio) -> Launch {
        self.cmd.stderr(s);
        self
    }

    /// Standard input of the child.
    pub fn stdin(mut self, s: Stdio) -> Launch {
        self.cmd.stdin(s);
        self
    }

    /// Replaces the filter.
    pub fn filter(mut self, f: Filter) -> Launch {
        self.filter = f;
        self
    }

    /// Gives the program a private `/dev` with these nodes added.
    pub fn dev_nodes(mut self, nodes: DevNodes) -> Launch {
        self.dev = Some(nodes);
        self
    }

    /// Starts the program. Returns once it has exec'ed, with the listener.
    /// Errors: the child's setup errno (`EPERM` if namespaces are denied,
    /// `EINVAL` if seccomp user notification is unsupported) or the exec's.
    pub fn spawn(mut self) -> io::Result<Launched> {
        let prog = self.filter.program();
        let plan = match &self.dev {
            Some(nodes) => Some(DevPlan::prepare(nodes).map_err(io::Error::from)?),
            None => None,
        };
        let (parent_end, child_end) = socketpair()?;
        let child_raw = child_end.as_raw_fd();
        let hook = move || {
            if let Some(plan) = &plan {
                // SAFETY: `pre_exec` runs this in the single-threaded forked
                // child, before exec.
                unsafe { plan.apply() }.map_err(io::Error::from)?;
            }
            let listener = install_program(&prog).map_err(io::Error::from)?;
            send_fd(child_raw, listener.as_raw_fd()).map_err(io::Error::from)?;
            Ok(())
        };
        // SAFETY: the hook runs in the forked child before exec. It uses
        // only data prepared above (`plan`, `prog`, `child_raw`) and raw
        // syscalls; it does not allocate or take locks.
        unsafe {
            self.cmd.pre_exec(hook);
        }
        let child = self.cmd.spawn()?;
        drop(child_end);
        let listener = recv_fd(parent_end.as_raw_fd()).map_err(io::Error::from)?;
        Ok(Launched { child, listener: Listener::from_fd(listener) })
    }
}

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0 as RawFd; 2];
    // SAFETY: `sv` has room for the two fds the kernel writes.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

/// Room for one `SCM_RIGHTS` fd (`CMSG_SPACE(sizeof(int))` on 64-bit).
#[repr(C, align(8))]
struct CmsgBuf([u8; 24]);

/// A message of one data byte (`iov`) with room for one fd (`cbuf`); it
/// points at the caller's locals, which must outlive its use.
fn fd_msghdr(iov: &mut libc::iovec, cbuf: &mut CmsgBuf) -> libc::msghdr {
    // SAFETY: msghdr is plain data; zero is a valid start.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len();
    msg
}

/// Sends `fd` with one data byte. Does not allocate (runs pre-exec).
fn send_fd(sock: RawFd, fd: RawFd) -> Result<()> {
    let mut byte = 0u8;
    let mut iov = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
    let mut cbuf = CmsgBuf([0; 24]);
    let msg = fd_msghdr(&mut iov, &mut cbuf);
    // SAFETY: the control buffer is large and aligned enough for one cmsg
    // with one int (CMSG_SPACE(4) = 24), so CMSG_FIRSTHDR is non-null and
    // CMSG_DATA points inside `cbuf`.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    }
    // SAFETY: `msg` points at live locals for the duration of the call.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Receives one fd sent by [`send_fd`]. `EPIPE` if the peer closed without
/// sending (the child failed before installing the filter).
fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    let mut byte = 0u8;
    let mut iov = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
    let mut cbuf = CmsgBuf([0; 24]);
    let mut msg = fd_msghdr(&mut iov, &mut cbuf);
    // SAFETY: `msg` points at live locals for the duration of the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(last_errno());
    }
    // SAFETY: the kernel filled `msg`; CMSG_FIRSTHDR checks the length.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(Errno::PIPE);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        // SAFETY: SCM_RIGHTS installed this fd in our table just now.
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
