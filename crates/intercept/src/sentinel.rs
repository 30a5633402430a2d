//! A sentinel process that ends a program tree if its supervisor is killed.
//!
//! `teeheap run` hosts its private daemon in its own process. If that
//! process is killed (SIGKILL, an abort), the program's served calls would
//! fail with `ENOSYS` from then on, and nothing is left to end the tree:
//! `PR_SET_PDEATHSIG` reaches only the direct child. The sentinel is a
//! process forked before anything else (no daemon memory in it, no other
//! thread to make `fork` unsafe) that only waits on a pipe. The supervisor
//! arms it with the program's mount namespace (every run has its own; the
//! program's descendants stay in it, also when they are reparented), and
//! disarms it at a normal end. End-of-file on an armed pipe means the
//! supervisor died: the sentinel kills every process in that mount
//! namespace until none is left, then exits. It holds the namespace open
//! from arming on, so its inode number cannot be reused by another run's
//! namespace meanwhile; it refuses to arm with its own namespace.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The supervisor's end of a sentinel (see the module documentation).
#[derive(Debug)]
pub struct Sentinel {
    pipe: OwnedFd,
    pid: i32,
}

/// The byte that disarms the sentinel.
const DONE: u8 = b'.';

impl Sentinel {
    /// Forks the sentinel. The calling process must have exactly one
    /// thread (the child runs ordinary Rust code, which allocates, after
    /// `fork`); this is checked, so call it before starting any thread.
    ///
    /// # Errors
    /// `EBUSY` (as an `io::Error`) if the process has other threads (read
    /// from `/proc/self/task`); `pipe` or `fork` errors.
    pub fn start() -> io::Result<Sentinel> {
        if std::fs::read_dir("/proc/self/task")?.count() != 1 {
            return Err(rustix::io::Errno::BUSY.into());
        }
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
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
        Ok(Sentinel { pipe: write, pid })
    }

    /// The sentinel's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Arms the sentinel with the mount namespace of `program`.
    ///
    /// # Errors
    /// `stat` of `/proc/<program>/ns/mnt` (the program is gone) or the
    /// pipe's write error.
    pub fn arm(&self, program: i32) -> io::Result<()> {
        let ino = rustix::fs::stat(format!("/proc/{program}/ns/mnt").as_str())?.st_ino;
        let mut msg = [0u8; 12];
        msg[..4].copy_from_slice(&program.to_ne_bytes());
        msg[4..].copy_from_slice(&ino.to_ne_bytes());
        write_all(&self.pipe, &msg)
    }

    /// Normal end: the sentinel exits without touching anything.
    pub fn disarm(self) {
        let _ = write_all(&self.pipe, &[DONE]);
    }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    let n = rustix::io::write(fd, bytes)?;
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
fn watch(pipe: OwnedFd) -> ! {
    // Hold nothing of the supervisor's (a test reading its stdout to the
    // end must not wait for us): the pipe becomes fd 3, the rest goes.
    let _ = rustix::io::dup2(&pipe, &mut unsafe_fd(3));
    // SAFETY: closes fds of this (forked, single-threaded) process only;
    // rustix has no `close_range`.
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) };
    // SAFETY: fd 3 is the pipe (dup2 above); nothing else owns it now.
    let pipe = unsafe { OwnedFd::from_raw_fd(3) };
    if let Ok(null) = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()) {
        for fd in 0..3 {
            let _ = rustix::io::dup2(&null, &mut unsafe_fd(fd));
        }
    }
    for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM, libc::SIGTSTP] {
        // SAFETY: SIG_IGN for a signal we may ignore; no handler runs.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut msg = [0u8; 12];
    if !read_exact(&pipe, &mut msg) {
        std::process::exit(0); // never armed
    }
    let pid = i32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let ino = u64::from_ne_bytes([msg[4], msg[5], msg[6], msg[7], msg[8], msg[9], msg[10], msg[11]]);
    // Held until we exit: the namespace (and its number) stays ours.
    let ns =
        rustix::fs::open(format!("/proc/{pid}/ns/mnt").as_str(), rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty());
    let own = rustix::fs::stat("/proc/self/ns/mnt").map(|s| s.st_ino);
    let held = ns.as_ref().ok().and_then(|f| rustix::fs::fstat(f).ok()).map(|s| s.st_ino);
    if held != Some(ino) || own == Ok(ino) {
        std::process::exit(0); // not the program's namespace, or not a private one
    }
    let mut done = [0u8];
    if read_exact(&pipe, &mut done) && done[0] == DONE {
        std::process::exit(0);
    }
    end_tree(ino);
    drop(ns);
    std::process::exit(0)
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
