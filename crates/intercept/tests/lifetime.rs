//! The last-reference event: exactly once, and only after every fd (after
//! dup, fork, exec, SCM_RIGHTS) and every mapping is gone, including when
//! the holder is SIGKILLed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;
use teeheap_sync::Recover;

use teeheap_intercept::memfd::{Access, BackingFile, CpuAccess};
use teeheap_intercept::watch::CloseWatcher;

const QUIET: Duration = Duration::from_millis(150);

/// Tests run one at a time: a fork in one test would copy another test's
/// fds into its child and delay that test's release.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().recover()
}

fn setup(key: u32) -> (CloseWatcher<u32>, BackingFile, OwnedFd) {
    // Callers hold `serial()`.
    let mut w = CloseWatcher::new().unwrap();
    let b = BackingFile::create("t", 4096, CpuAccess::Mappable).unwrap();
    w.watch(&b, key).unwrap();
    let c = b.open_for_client(Access::ReadWrite).unwrap();
    (w, b, c)
}

/// Waits for the next release, up to ~5 s.
fn next_release(w: &mut CloseWatcher<u32>) -> Vec<u32> {
    for _ in 0..50 {
        let r = w.wait_released(Duration::from_millis(100)).unwrap();
        if !r.is_empty() {
            return r;
        }
    }
    Vec::new()
}

/// Forks a child that closes `close_in_child`, keeps everything else, and
/// then either sleeps `ms` and exits or (ms == 0) waits to be killed.
fn fork_holder(close_in_child: i32, ms: u64) -> libc::pid_t {
    // SAFETY: the child only calls async-signal-safe functions (close,
    // nanosleep, pause, _exit) before it exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(close_in_child);
            if ms == 0 {
                loop {
                    libc::pause();
                }
            }
            let ts = libc::timespec { tv_sec: 0, tv_nsec: (ms * 1_000_000) as libc::c_long };
            libc::nanosleep(&ts, std::ptr::null_mut());
            libc::_exit(0);
        }
        pid
    }
}

fn reap(pid: libc::pid_t) {
    let mut st = 0;
    // SAFETY: waits for our own child; `st` is a live local.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

#[test]
fn dup_fork_close_releases_once() {
    let _serial = serial();
    let (mut w, _b, c) = setup(7);
    let d = c.try_clone().unwrap(); // dup
    let child = fork_holder(c.as_raw_fd(), 300); // child keeps only the dup
    drop(c);
    drop(d);
    assert_eq!(w.wait_released(QUIET).unwrap(), [], "child still holds the dup");
    reap(child);
    assert_eq!(next_release(&mut w), [7]);
    assert_eq!(w.wait_released(QUIET).unwrap(), [], "reported twice");
    assert!(w.is_empty());
}

#[test]
fn sigkill_of_holder_releases() {
    let _serial = serial();
    let (mut w, _b, c) = setup(8);
    let child = fork_holder(-1, 0);
    drop(c);
    assert_eq!(w.wait_released(QUIET).unwrap(), []);
    // SAFETY: signals our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    reap(child);
    assert_eq!(next_release(&mut w), [8]);
    assert_eq!(w.wait_released(QUIET).unwrap(), []);
}

#[test]
fn mapping_keeps_buffer_alive() {
    let _serial = serial();
    let (mut w, _b, c) = setup(9);
    // SAFETY: maps a fresh 4096-byte shared mapping of our own memfd;
    // nothing else aliases that address range.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &c,
            0,
        )
    }
    .unwrap();
    drop(c);
    assert_eq!(w.wait_released(QUIET).unwrap(), [], "the mapping holds it");
    // SAFETY: unmaps exactly the mapping made above, no longer used.
    unsafe { rustix::mm::munmap(p, 4096) }.unwrap();
    assert_eq!(next_release(&mut w), [9]);
}

#[test]
fn exec_inherits_and_releases() {
    let _serial = serial();
    let (mut w, _b, c) = setup(10);
    let raw = c.as_raw_fd();
    let mut cmd = Command::new("sleep");
    cmd.arg("0.3");
    // SAFETY: dup2 is async-signal-safe; it makes fd 3 a non-CLOEXEC copy.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(c);
    assert_eq!(w.wait_released(QUIET).unwrap(), [], "sleep holds fd 3");
    child.wait().unwrap();
    assert_eq!(next_release(&mut w), [10]);
}

#[test]
fn scm_rights_passes_reference() {
    let _serial = serial();
    use rustix::net::{
        AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
        SendFlags, SocketFlags, SocketType, recvmsg, sendmsg, socketpair,
    };
    let (mut w, _b, c) = setup(11);
    let (a, z) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut sbuf = SendAncillaryBuffer::new(&mut space);
    let fds = [rustix::fd::AsFd::as_fd(&c)];
    assert!(sbuf.push(SendAncillaryMessage::ScmRights(&fds)));
    sendmsg(&a, &[std::io::IoSlice::new(b"x")], &mut sbuf, SendFlags::empty()).unwrap();
    drop(c); // the only reference now sits in the socket queue
    assert_eq!(w.wait_released(QUIET).unwrap(), [], "in flight");
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut rbuf = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    recvmsg(&z, &mut [std::io::IoSliceMut::new(&mut byte)], &mut rbuf, RecvFlags::CMSG_CLOEXEC).unwrap();
    let got: Vec<OwnedFd> = rbuf
        .drain()
        .flat_map(|m| match m {
            RecvAncillaryMessage::ScmRights(f) => f.collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(w.wait_released(QUIET).unwrap(), []);
    drop(got);
    assert_eq!(next_release(&mut w), [11]);
}
