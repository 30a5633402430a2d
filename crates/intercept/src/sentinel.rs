//! A sentinel process that ends a program tree if its supervisor is killed.
//!
//! `teeheap run` hosts its private daemon in its own process. If that
//! process is killed (SIGKILL, an abort), the program's served calls would
//! fail with `ENOSYS` from then on, and nothing is left to end the tree:
//! `PR_SET_PDEATHSIG` reaches only the direct child. The sentinel is a
//! process forked before anything else (no daemon memory in it, no other
//! thread to make `fork` unsafe) that only waits on a socket. The
//! supervisor arms it with the program's mount namespace (every run has its
//! own; the program's descendants stay in it, also when they are
//! reparented), and disarms it at a normal end. End-of-file on an armed
//! socket means the supervisor died: the sentinel kills every process in
//! that mount namespace until none is left, then exits. Arming passes the
//! namespace itself (an fd, over `SCM_RIGHTS`), so the sentinel holds it
//! from the moment it was sent — however late the sentinel gets to run, and
//! even if the program is already gone — and its inode number cannot be
//! reused by another run's namespace meanwhile; it refuses to arm with its
//! own namespace.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketFlags, SocketType,
};
use std::time::{Duration, Instant};

/// The supervisor's end of a sentinel (see the module documentation).
#[derive(Debug)]
pub struct Sentinel {
    sock: OwnedFd,
    pid: i32,
}

/// The byte that disarms the sentinel.
const DONE: u8 = b'.';
/// The byte that carries the namespace fd.
const ARM: u8 = b'A';

impl Sentinel {
    /// Forks the sentinel. The calling process must have exactly one
    /// thread (the child runs ordinary Rust code, which allocates, after
    /// `fork`); this is checked, so call it before starting any thread.
    ///
    /// # Errors
    /// `EBUSY` (as an `io::Error`) if the process has other threads (read
    /// from `/proc/self/task`); `socketpair` or `fork` errors.
    pub fn start() -> io::Result<Sentinel> {
        if std::fs::read_dir("/proc/self/task")?.count() != 1 {
            return Err(rustix::io::Errno::BUSY.into());
        }
        let (read, write) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
        // SAFETY: the process has one thread (checked above; only that
        // thread could have started another since), so the child may run
        // any code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(write);
            watch(read)
        }
        drop(read);
        Ok(Sentinel { sock: write, pid })
    }

    /// The sentinel's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Arms the sentinel with the program's mount namespace `mnt` (an fd
    /// of `/proc/<program>/ns/mnt`); the sentinel holds it from now on.
    ///
    /// # Errors
    /// The socket's send error.
    pub fn arm(&self, mnt: BorrowedFd<'_>) -> io::Result<()> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        let fds = [mnt];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
        let n = rustix::net::sendmsg(&self.sock, &[IoSlice::new(&[ARM])], &mut anc, SendFlags::NOSIGNAL)?;
        if n == 1 { Ok(()) } else { Err(io::ErrorKind::WriteZero.into()) }
    }

    /// Normal end: the sentinel exits without touching anything.
    pub fn disarm(self) {
        let _ = write_all(&self.sock, &[DONE]);
    }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    let n = rustix::net::send(fd, bytes, SendFlags::NOSIGNAL)?;
    if n == bytes.len() { Ok(()) } else { Err(io::ErrorKind::WriteZero.into()) }
}

/// Reads exactly `buf.len()` bytes; `false` at end-of-file first.
fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::read(fd, &mut buf[done..]) {
            Ok(0) => return false,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The sentinel's life: detach from the supervisor's files and terminal
/// signals, wait, and end the tree if the supervisor died.
fn watch(sock: OwnedFd) -> ! {
    // Hold nothing of the supervisor's (a test reading its stdout to the
    // end must not wait for us): the socket becomes fd 3, the rest goes.
    let _ = rustix::io::dup2(&sock, &mut unsafe_fd(3));
    // SAFETY: closes fds of this (forked, single-threaded) process only;
    // rustix has no `close_range`.
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) };
    // SAFETY: fd 3 is the socket (dup2 above); nothing else owns it now.
    let sock = unsafe { OwnedFd::from_raw_fd(3) };
    if let Ok(null) = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()) {
        for fd in 0..3 {
            let _ = rustix::io::dup2(&null, &mut unsafe_fd(fd));
        }
    }
    for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM, libc::SIGTSTP] {
        // SAFETY: SIG_IGN for a signal we may ignore; no handler runs.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // Held until we exit: the namespace (and its number) stays ours.
    let Some(ns) = receive_namespace(sock.as_fd()) else {
        std::process::exit(0); // never armed
    };
    let own = rustix::fs::stat("/proc/self/ns/mnt").map(|s| s.st_ino);
    let Ok(ino) = rustix::fs::fstat(&ns).map(|s| s.st_ino) else { std::process::exit(0) };
    if own == Ok(ino) {
        std::process::exit(0); // not a private namespace
    }
    let mut done = [0u8];
    if read_exact(&sock, &mut done) && done[0] == DONE {
        std::process::exit(0);
    }
    end_tree(ino);
    drop(ns);
    std::process::exit(0)
}

/// Waits for the arming message and returns the namespace fd it carries;
/// `None` at end-of-file first (the supervisor ended before arming).
fn receive_namespace(sock: BorrowedFd<'_>) -> Option<OwnedFd> {
    loop {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut b = [0u8; 1];
        match rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut b)], &mut anc, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
            Ok(r) if r.bytes == 0 || b[0] != ARM => return None,
            Ok(_) => {}
        }
        return anc.drain().find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut r) => r.next(),
            _ => None,
        });
    }
}

/// An fd number as a target of `dup2` (rustix wants an `OwnedFd`; it is
/// never dropped, as `dup2` replaces what the number holds).
fn unsafe_fd(n: RawFd) -> std::mem::ManuallyDrop<OwnedFd> {
    // SAFETY: used only as the target of dup2, and never dropped.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Kills every process in mount namespace `ino` until none is left (at
/// most 10 s).
fn end_tree(ino: u64) {
    let me = std::process::id();
    let t0 = Instant::now();
    loop {
        let mut found = 0;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
                if pid == me {
                    continue;
                }
                let Ok(st) = rustix::fs::stat(e.path().join("ns/mnt").as_path()) else { continue };
                if st.st_ino == ino {
                    found += 1;
                    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        if found == 0 || t0.elapsed() > Duration::from_secs(10) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
