//! Starts a program under interception: in the child, right before `exec`,
//! restore the descriptor limit a daemon in this process raised
//! ([`crate::nofile`]), optionally build the private `/dev`, set
//! `no_new_privs`, install the filter, and pass the listener to the parent
//! over a socketpair.
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
use crate::ns::{Namespace, NsKind};
use crate::{Errno, Result, last_errno};

/// A program to start under interception (a thin layer over
/// [`std::process::Command`]).
#[derive(Debug)]
pub struct Launch {
    cmd: Command,
    filter: Filter,
    dev: Option<DevNodes>,
    die_with_parent: bool,
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
        Launch { cmd: Command::new(program), filter: Filter::teeheap(), dev: None, die_with_parent: false }
    }

    /// Runs a prepared [`Command`] (program, arguments, environment,
    /// working directory and stdio as set on it) with [`Filter::teeheap`]
    /// and no private `/dev`.
    pub fn from_command(cmd: Command) -> Launch {
        Launch { cmd, filter: Filter::teeheap(), dev: None, die_with_parent: false }
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

    /// The program gets SIGKILL when the thread that starts it dies
    /// (`PR_SET_PDEATHSIG`), e.g. when its supervisor is killed: it is not
    /// left running unsupervised, its served calls failing with `ENOSYS`.
    /// Only for a caller whose starting thread outlives the program (the
    /// `teeheap run` command's main thread). Processes the program forks
    /// do not inherit it.
    pub fn die_with_parent(mut self) -> Launch {
        self.die_with_parent = true;
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
    pub fn spawn(self) -> io::Result<Launched> {
        let mut listener = None;
        let child = self.spawn_with(|p| {
            listener = Some(p.listener);
            Ok(())
        })?;
        let listener = listener.ok_or_else(|| io::Error::other("the child sent no listener"))?;
        Ok(Launched { child, listener })
    }

    /// Starts the program and calls `register` while the child waits right
    /// before `exec`: its private `/dev` is built and the filter installed,
    /// but none of the program's code has run yet. The child execs only if
    /// `register` returns `Ok` (else it exits and this returns
    /// `register`'s error), so whatever `register` sets up — a supervisor
    /// for the listener, the run's identity — is in place before the
    /// program can act. `register` runs on a helper thread.
    ///
    /// # Errors
    /// `register`'s error; else as [`Launch::spawn`].
    pub fn spawn_with<F>(mut self, register: F) -> io::Result<Child>
    where
        F: FnOnce(Prelaunch) -> io::Result<()> + Send,
    {
        let prog = self.filter.program();
        let plan = match &self.dev {
            Some(nodes) => Some(DevPlan::prepare(nodes).map_err(io::Error::from)?),
            None => None,
        };
        let (parent_end, child_end) = socketpair()?;
        let child_raw = child_end.as_raw_fd();
        let parent_raw = parent_end.as_raw_fd();
        let die_with_parent = self.die_with_parent;
        let parent_pid = std::process::id() as libc::pid_t;
        let hook = move || {
            if die_with_parent {
                // SAFETY: prctl with integer arguments only.
                if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the flag was set.
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } != parent_pid {
                    return Err(io::Error::from(io::ErrorKind::BrokenPipe));
                }
            }
            // The program's descriptor limit is its own business: it gets
            // back what this process had before a daemon here raised it.
            crate::nofile::restore_in_child().map_err(io::Error::from)?;
            // The parent's end is the parent's alone: if it gives up, the
            // child must see end-of-file, not wait on its own copy.
            // SAFETY: closes the child's copy of an fd it does not use.
            unsafe { libc::close(parent_raw) };
            if let Some(plan) = &plan {
                // SAFETY: `pre_exec` runs this in the single-threaded forked
                // child, before exec.
                unsafe { plan.apply() }.map_err(io::Error::from)?;
            }
            let listener = install_program(&prog).map_err(io::Error::from)?;
            let user = open_self_ns(c"/proc/self/ns/user")?;
            let mnt = open_self_ns(c"/proc/self/ns/mnt")?;
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            send_fds(child_raw, pid, [listener.as_raw_fd(), user.as_raw_fd(), mnt.as_raw_fd()])
                .map_err(io::Error::from)?;
            wait_for_go(child_raw).map_err(io::Error::from)
        };
        // SAFETY: the hook runs in the forked child before exec. It uses
        // only data prepared above (`plan`, `prog`, the two raw fds) and raw
        // syscalls; it does not allocate or take locks.
        unsafe {
            self.cmd.pre_exec(hook);
        }
        let cmd = &mut self.cmd;
        std::thread::scope(|s| {
            let helper = s.spawn(move || -> std::result::Result<(), Option<io::Error>> {
                // `None`: the child never got that far (its own error tells why).
                let (pid, [listener, user, mnt]) = recv_fds(parent_end.as_raw_fd()).map_err(|_| None)?;
                let pre = Prelaunch {
                    pid,
                    listener: Listener::from_fd(listener),
                    user: Namespace::from_fd(user, NsKind::User).map_err(|e| Some(e.into()))?,
                    mnt: Namespace::from_fd(mnt, NsKind::Mount).map_err(|e| Some(e.into()))?,
                };
                register(pre).map_err(Some)?;
                go(parent_end.as_raw_fd()).map_err(|e| Some(e.into()))
            });
            let spawned = cmd.spawn();
            // The helper sees end-of-file once no child holds this end.
            drop(child_end);
            let registered = helper.join().unwrap_or_else(|_| Err(Some(io::Error::other("registration panicked"))));
            match (spawned, registered) {
                (Ok(child), Ok(())) => Ok(child),
                (Ok(mut child), Err(e)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(e.unwrap_or_else(|| io::Error::other("the child sent no listener")))
                }
                (Err(_), Err(Some(e))) => Err(e),
                (Err(e), _) => Err(e),
            }
        })
    }
}

/// A started program held right before `exec` (see [`Launch::spawn_with`]).
#[derive(Debug)]
pub struct Prelaunch {
    /// The child's pid (it is alive and not yet the program).
    pub pid: i32,
    /// Receives the intercepted calls of the child and all its descendants.
    pub listener: Listener,
    /// The child's user namespace (the caller's own when it is root: no
    /// user namespace is made then), opened by the child itself.
    pub user: Namespace,
    /// The child's mount namespace (the private `/dev`'s).
    pub mnt: Namespace,
}

/// Opens one of the calling process's namespace files. Does not allocate.
fn open_self_ns(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated literal.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks until the parent's go byte; end-of-file or anything else is `ECANCELED`.
fn wait_for_go(sock: RawFd) -> Result<()> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads one byte into a live local.
        let n = unsafe { libc::read(sock, (&raw mut b).cast(), 1) };
        if n < 0 && last_errno() == Errno::INTR {
            continue;
        }
        return if n == 1 && b == GO { Ok(()) } else { Err(Errno::CANCELED) };
    }
}

/// The byte that lets the child exec.
const GO: u8 = 1;

/// Sends the go byte.
fn go(sock: RawFd) -> Result<()> {
    let b = GO;
    // SAFETY: writes one byte from a live local.
    if unsafe { libc::write(sock, (&raw const b).cast(), 1) } != 1 {
        return Err(last_errno());
    }
    Ok(())
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

/// How many fds the child sends: its listener, user and mount namespaces.
const SENT_FDS: usize = 3;

/// Room for [`SENT_FDS`] fds in one `SCM_RIGHTS` message
/// (`CMSG_SPACE(3 * sizeof(int))` on 64-bit).
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// A message of four data bytes (`iov`) with room for the fds (`cbuf`); it
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

/// Sends `fds` with `pid` as data. Does not allocate (runs pre-exec).
fn send_fds(sock: RawFd, pid: i32, fds: [RawFd; SENT_FDS]) -> Result<()> {
    let mut data = pid.to_ne_bytes();
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut cbuf = CmsgBuf([0; 32]);
    let msg = fd_msghdr(&mut iov, &mut cbuf);
    // SAFETY: the control buffer is large and aligned enough for one cmsg
    // with SENT_FDS ints (CMSG_SPACE(12) = 32), so CMSG_FIRSTHDR is non-null
    // and CMSG_DATA has room for the fds inside `cbuf`.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN((SENT_FDS * 4) as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<[i32; SENT_FDS]>(), fds);
    }
    // SAFETY: `msg` points at live locals for the duration of the call.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Receives what [`send_fds`] sent. `EPIPE` if the peer closed without
/// sending (the child failed before installing the filter).
fn recv_fds(sock: RawFd) -> Result<(i32, [OwnedFd; SENT_FDS])> {
    let mut data = [0u8; 4];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut cbuf = CmsgBuf([0; 32]);
    let mut msg = fd_msghdr(&mut iov, &mut cbuf);
    // SAFETY: `msg` points at live locals for the duration of the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(last_errno());
    }
    // SAFETY: the kernel filled `msg`; CMSG_FIRSTHDR checks the length.
    let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: `c` is checked non-null before it is read, and points into `cbuf`.
    let ok = !c.is_null()
        && unsafe {
            (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_RIGHTS
                && (*c).cmsg_len == libc::CMSG_LEN((SENT_FDS * 4) as u32) as usize
        };
    if !ok {
        return Err(Errno::PIPE);
    }
    // SAFETY: the cmsg holds SENT_FDS ints (its length was checked).
    let raw = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<[i32; SENT_FDS]>()) };
    // SAFETY: SCM_RIGHTS installed these fds in our table just now.
    let fds = raw.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    if n != 4 {
        return Err(Errno::PIPE); // the fds are closed on the way out
    }
    Ok((i32::from_ne_bytes(data), fds))
}
