//! Opens of chosen files answered by the daemon: a fanotify group of the
//! pre-content class, with `FAN_OPEN_PERM` and `FAN_CLOSE` marked on single
//! inodes (never a mount or a filesystem), so that an open of a marked
//! file waits for [`OpenRequest::allow`] or [`OpenRequest::deny`] and the
//! release of its description is reported ([`GateEvent::Closed`]).
//!
//! A request answers itself with "allow" if it is dropped unanswered, and
//! closing the group allows every pending open (kernel rule), so a gate
//! that stops never leaves a program blocked in `open`. Files the group
//! opens for its events carry `FMODE_NONOTIFY`: they raise nothing.
//!
//! Limits (kernel rules, `fanotify_init(2)`, `fanotify_mark(2)`):
//! permission events need `CAP_SYS_ADMIN` in the initial user namespace
//! (`EPERM` otherwise, e.g. in a user namespace); events are reported for
//! regular files and directories only, not for device nodes; a custom
//! errno in a denial (`FAN_DENY_ERRNO`) needs Linux 6.14.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::memfd::FileId;
use crate::{Errno, Result, last_errno};

/// `FAN_DENY_ERRNO(e)` of `<linux/fanotify.h>` (6.14): the errno rides in
/// the top 8 bits of the response.
const fn deny_errno(e: Errno) -> u32 {
    libc::FAN_DENY | ((e.raw_os_error() as u32 & 0xff) << 24)
}

/// The length of `struct fanotify_event_metadata`.
const METADATA_LEN: usize = 24;

/// A fanotify group that answers opens of marked inodes.
///
/// # Invariants
/// `fd` is a fanotify group of class `FAN_CLASS_PRE_CONTENT` without
/// `FAN_REPORT_FID` (events carry a file descriptor).
#[derive(Debug)]
pub struct OpenGate {
    fd: OwnedFd,
}

/// What [`OpenGate::read`] reports.
#[derive(Debug)]
pub enum GateEvent<'g> {
    /// A process is opening a marked file and waits for the answer.
    Open(OpenRequest<'g>),
    /// An open file description of a marked file was released (its last
    /// fd closed and its last mapping gone, in any process).
    Closed {
        /// The file.
        file: FileId,
        /// The process that dropped the last reference.
        pid: i32,
    },
}

/// An open waiting for its answer.
///
/// # Invariants
/// `event` is the fd of a permission event of `gate` not answered yet;
/// [`Drop`] answers "allow" if neither [`allow`](Self::allow) nor
/// [`deny`](Self::deny) did.
#[derive(Debug)]
pub struct OpenRequest<'g> {
    gate: &'g OpenGate,
    event: Option<OwnedFd>,
    /// The file being opened.
    pub file: FileId,
    /// The opening process (thread group id, in the reader's pid namespace).
    pub pid: i32,
}

impl OpenGate {
    /// A new group (`fanotify_init(FAN_CLASS_PRE_CONTENT)`).
    ///
    /// # Errors
    /// `EPERM` without `CAP_SYS_ADMIN` in the initial user namespace;
    /// `ENOSYS`/`EINVAL` on a kernel without fanotify permission events;
    /// `EOPNOTSUPP` on a kernel older than 6.14 (no errno in a denial).
    pub fn new() -> Result<OpenGate> {
        if !kernel_at_least(6, 14) {
            return Err(Errno::OPNOTSUPP);
        }
        let flags = libc::FAN_CLASS_PRE_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
        let event_flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as libc::c_uint;
        // SAFETY: plain integer arguments; the returned fd is checked and
        // owned only when valid.
        let fd = unsafe { libc::fanotify_init(flags, event_flags) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: `fd` was just returned by fanotify_init and is owned by no one else.
        Ok(OpenGate { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Asks for the opens and releases of the inode behind `file` (any
    /// open description of it; `O_PATH` too). Its own opens made before
    /// this call are not reported, their releases are.
    ///
    /// # Errors
    /// Those of `fanotify_mark(2)`: `EINVAL` for a file type fanotify
    /// does not report, `ENOSPC` past the group's marks.
    pub fn mark(&self, file: BorrowedFd<'_>) -> Result<()> {
        self.mark_op(libc::FAN_MARK_ADD, file)
    }

    /// Stops reporting the inode behind `file`. Errors: `ENOENT` if it was
    /// not marked.
    pub fn unmark(&self, file: BorrowedFd<'_>) -> Result<()> {
        self.mark_op(libc::FAN_MARK_REMOVE, file)
    }

    fn mark_op(&self, op: libc::c_uint, file: BorrowedFd<'_>) -> Result<()> {
        let mask = libc::FAN_OPEN_PERM | libc::FAN_CLOSE;
        // SAFETY: both fds are live for the call; a null path names the
        // inode of `file` itself (fanotify_mark(2)).
        let r = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                op | libc::FAN_MARK_INODE,
                mask,
                file.as_raw_fd(),
                std::ptr::null(),
            )
        };
        if r < 0 { Err(last_errno()) } else { Ok(()) }
    }

    /// Waits up to `timeout` for events and returns those queued (none
    /// after a timeout). Open requests must be answered soon: the opener
    /// waits.
    ///
    /// # Errors
    /// Those of `poll(2)`/`read(2)` on the group, but not `EINTR`/`EAGAIN`.
    pub fn read(&self, timeout: Duration) -> Result<Vec<GateEvent<'_>>> {
        let ts =
            rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
        let mut pfd = [rustix::event::PollFd::new(&self.fd, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut pfd, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => return Ok(Vec::new()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        let mut buf = vec![0u8; 64 * METADATA_LEN];
        let n = match rustix::io::read(&self.fd, &mut buf) {
            Ok(n) => n,
            Err(Errno::INTR | Errno::AGAIN) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(m) = buf.get(at..n).and_then(Metadata::parse) {
            at += m.event_len.max(METADATA_LEN);
            // SAFETY: the kernel just installed this fd for the event; it is
            // ours to own (FAN_NOFD, -1, is no fd).
            let event = (m.fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(m.fd) });
            let Some(event) = event else { continue }; // a queue overflow
            let Ok(file) = FileId::of(&event) else {
                if m.mask & libc::FAN_OPEN_PERM != 0 {
                    drop(OpenRequest { gate: self, event: Some(event), file: FileId { dev: 0, ino: 0 }, pid: m.pid });
                }
                continue;
            };
            if m.mask & libc::FAN_OPEN_PERM != 0 {
                out.push(GateEvent::Open(OpenRequest { gate: self, event: Some(event), file, pid: m.pid }));
            } else if m.mask & libc::FAN_CLOSE != 0 {
                out.push(GateEvent::Closed { file, pid: m.pid });
            }
        }
        Ok(out)
    }

    fn respond(&self, event: &OwnedFd, response: u32) -> Result<()> {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&event.as_raw_fd().to_ne_bytes());
        bytes[4..].copy_from_slice(&response.to_ne_bytes());
        rustix::io::write(&self.fd, &bytes).map(|_| ())
    }
}

impl AsFd for OpenGate {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl OpenRequest<'_> {
    /// Lets the open proceed.
    pub fn allow(mut self) {
        if let Some(e) = self.event.take() {
            let _ = self.gate.respond(&e, libc::FAN_ALLOW);
        }
    }

    /// Fails the open with `errno` (one the kernel accepts for a denial:
    /// `EBUSY`, `EPERM`, `EIO`, `EAGAIN`, `ETXTBSY`, `ENOSPC`, `EDQUOT`).
    ///
    /// # Errors
    /// `EINVAL` if the kernel refused that answer; the open is then
    /// allowed, so it never stays blocked.
    pub fn deny(mut self, errno: Errno) -> Result<()> {
        let Some(e) = self.event.take() else { return Ok(()) };
        match self.gate.respond(&e, deny_errno(errno)) {
            Ok(()) => Ok(()),
            Err(err) => {
                let _ = self.gate.respond(&e, libc::FAN_ALLOW);
                Err(err)
            }
        }
    }
}

impl Drop for OpenRequest<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.event.take() {
            let _ = self.gate.respond(&e, libc::FAN_ALLOW);
        }
    }
}

/// The fields of `struct fanotify_event_metadata` this module reads.
struct Metadata {
    event_len: usize,
    mask: u64,
    fd: i32,
    pid: i32,
}

impl Metadata {
    fn parse(b: &[u8]) -> Option<Metadata> {
        let b: &[u8; METADATA_LEN] = b.get(..METADATA_LEN)?.try_into().ok()?;
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if b[4] != libc::FANOTIFY_METADATA_VERSION {
            return None;
        }
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&b[8..16]);
        Some(Metadata {
            event_len: u32_at(0) as usize,
            mask: u64::from_ne_bytes(mask),
            fd: u32_at(16) as i32,
            pid: u32_at(20) as i32,
        })
    }
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    /// A fresh directory under the temporary directory, removed on drop.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("teeheap-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).to_string_lossy().into_owned()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn metadata_parses_and_rejects_other_versions() {
        let mut b = [0u8; METADATA_LEN];
        b[..4].copy_from_slice(&24u32.to_ne_bytes());
        b[4] = libc::FANOTIFY_METADATA_VERSION;
        b[8..16].copy_from_slice(&libc::FAN_OPEN_PERM.to_ne_bytes());
        b[16..20].copy_from_slice(&7i32.to_ne_bytes());
        b[20..24].copy_from_slice(&1234i32.to_ne_bytes());
        let m = Metadata::parse(&b).unwrap();
        assert_eq!((m.event_len, m.mask, m.fd, m.pid), (24, libc::FAN_OPEN_PERM, 7, 1234));
        assert!(Metadata::parse(&b[..23]).is_none(), "short");
        b[4] = 2;
        assert!(Metadata::parse(&b).is_none(), "another version");
    }

    #[test]
    fn deny_carries_the_errno_in_the_top_byte() {
        assert_eq!(deny_errno(Errno::BUSY), 0x1000_0002);
    }

    /// Where the group can be made (root, Linux >= 6.14): a second open of
    /// a marked file is refused with `EBUSY` while the first is open, and
    /// the release is reported. Elsewhere the refusal reason is checked.
    #[test]
    fn an_open_is_refused_with_ebusy_while_another_is_open() {
        let gate = match OpenGate::new() {
            Ok(g) => g,
            Err(e) => {
                assert!(matches!(e, Errno::PERM | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS), "{e:?}");
                return;
            }
        };
        let dir = Dir::new("fanotify");
        let flags = OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC;
        let probe = rustix::fs::open(dir.path("node").as_str(), flags, Mode::RUSR | Mode::WUSR).unwrap();
        gate.mark(probe.as_fd()).unwrap();
        let id = FileId::of(&probe).unwrap();
        let path = dir.path("node");
        let opener = std::thread::spawn(move || {
            let first = rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty());
            let second = rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty());
            let second = second.map(|_| ());
            drop(first);
            let third = rustix::fs::open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map(|_| ());
            (second, third)
        });
        let (mut open, mut closed) = (0, 0);
        while !opener.is_finished() {
            for ev in gate.read(Duration::from_millis(50)).unwrap() {
                match ev {
                    GateEvent::Open(r) => {
                        assert_eq!(r.file, id);
                        if open == 1 && closed == 0 {
                            r.deny(Errno::BUSY).unwrap();
                        } else {
                            r.allow();
                        }
                        open += 1;
                    }
                    GateEvent::Closed { file, .. } => {
                        assert_eq!(file, id);
                        closed += 1;
                    }
                }
            }
        }
        let (second, third) = opener.join().unwrap();
        assert_eq!(second, Err(Errno::BUSY));
        assert_eq!(third, Ok(()));
        assert_eq!(open, 3);
        gate.unmark(probe.as_fd()).unwrap();
    }
}
