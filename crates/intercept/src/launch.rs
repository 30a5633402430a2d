//! Starts a program under interception: in the child, right before `exec`,
//! restore the descriptor limit a daemon in this process raised
//! ([`crate::nofile`]), optionally build the private `/dev`, set
//! `no_new_privs`, install the filter, and pass the listener to the parent
//! over a socketpair.
//!
//! The listener is `O_CLOEXEC` in the child, so the program never holds it;
//! the filter is inherited by everything the program forks and execs.

use std::ffi::{CStr, OsStr};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::devns::{DevNodes, DevPlan};
use crate::filter::{Filter, install_program};
use crate::notify::Listener;
use crate::ns::{Namespace, NsKind};
use crate::{Errno, Result};
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketFlags, SocketType,
};
use rustix::process::Signal;

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
        let parent_pid = rustix::process::getpid();
        let hook = move || {
            if die_with_parent {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died before the flag was set.
                if rustix::process::getppid() != Some(parent_pid) {
                    return Err(io::Error::from(io::ErrorKind::BrokenPipe));
                }
            }
            // The program's descriptor limit is its own business: it gets
            // back what this process had before a daemon here raised it.
            crate::nofile::restore_in_child().map_err(io::Error::from)?;
            // The parent's end is the parent's alone: if it gives up, the
            // child must see end-of-file, not wait on its own copy.
            // SAFETY: the forked child's copy of `parent_end`, which nothing
            // in the child uses or closes again before exec.
            unsafe { rustix::io::close(parent_raw) };
            if let Some(plan) = &plan {
                // SAFETY: `pre_exec` runs this in the single-threaded forked
                // child, before exec.
                unsafe { plan.apply() }.map_err(io::Error::from)?;
            }
            let listener = install_program(&prog).map_err(io::Error::from)?;
            let user = open_self_ns(c"/proc/self/ns/user")?;
            let mnt = open_self_ns(c"/proc/self/ns/mnt")?;
            // SAFETY: `child_end` is open in the forked child until exec (the
            // parent drops its own copy only after the fork).
            let sock = unsafe { BorrowedFd::borrow_raw(child_raw) };
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            send_fds(sock, pid, [listener.as_fd(), user.as_fd(), mnt.as_fd()]).map_err(io::Error::from)?;
            wait_for_go(sock).map_err(io::Error::from)
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
                let (pid, [listener, user, mnt]) = recv_fds(parent_end.as_fd()).map_err(|_| None)?;
                let pre = Prelaunch {
                    pid,
                    listener: Listener::from_fd(listener),
                    user: Namespace::from_fd(user, NsKind::User).map_err(|e| Some(e.into()))?,
                    mnt: Namespace::from_fd(mnt, NsKind::Mount).map_err(|e| Some(e.into()))?,
                };
                register(pre).map_err(Some)?;
                go(parent_end.as_fd()).map_err(|e| Some(e.into()))
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
fn open_self_ns(path: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?)
}

/// Blocks until the parent's go byte; end-of-file or anything else is `ECANCELED`.
fn wait_for_go(sock: BorrowedFd<'_>) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        return match rustix::io::read(sock, &mut b) {
            Err(Errno::INTR) => continue,
            Ok(1) if b[0] == GO => Ok(()),
            _ => Err(Errno::CANCELED),
        };
    }
}

/// The byte that lets the child exec.
const GO: u8 = 1;

/// Sends the go byte.
fn go(sock: BorrowedFd<'_>) -> Result<()> {
    match rustix::io::write(sock, &[GO])? {
        1 => Ok(()),
        _ => Err(Errno::IO),
    }
}

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?)
}

/// How many fds the child sends: its listener, user and mount namespaces.
const SENT_FDS: usize = 3;

/// Sends `fds` with `pid` as data. Does not allocate (runs pre-exec).
fn send_fds(sock: BorrowedFd<'_>, pid: i32, fds: [BorrowedFd<'_>; SENT_FDS]) -> Result<()> {
    let data = pid.to_ne_bytes();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(SENT_FDS))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !anc.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Errno::NOBUFS);
    }
    rustix::net::sendmsg(sock, &[IoSlice::new(&data)], &mut anc, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives what [`send_fds`] sent. `EPIPE` if the peer closed without
/// sending (the child failed before installing the filter), or sent
/// anything but four bytes with exactly [`SENT_FDS`] fds (fds that came
/// along are closed then).
fn recv_fds(sock: BorrowedFd<'_>) -> Result<(i32, [OwnedFd; SENT_FDS])> {
    let mut data = [0u8; 4];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(SENT_FDS))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let r = rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut data)], &mut anc, RecvFlags::CMSG_CLOEXEC)?;
    let mut got: Vec<OwnedFd> = Vec::with_capacity(SENT_FDS);
    let mut messages = 0;
    for msg in anc.drain() {
        messages += 1;
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            got.extend(rights);
        }
    }
    let fds: [OwnedFd; SENT_FDS] = match got.try_into() {
        Ok(fds) if messages == 1 => fds,
        _ => return Err(Errno::PIPE), // whatever came is closed on the way out
    };
    if r.bytes != data.len() {
        return Err(Errno::PIPE);
    }
    Ok((i32::from_ne_bytes(data), fds))
}
