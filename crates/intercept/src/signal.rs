//! The file a program gets for a sync_file: the read end of a pipe that
//! holds one byte once the fence has signalled, so `poll`/`select`/`epoll`
//! report `POLLIN` exactly as for a signalled sync_file, and nothing before.
//!
//! Like a buffer's memfd ([`crate::memfd`]), the daemon keeps the pipe's
//! own ends (silent to inotify: its descriptions were never opened by
//! path) and hands programs a *new* read description opened through
//! `/proc/self/fd`, whose `IN_OPEN` and last `IN_CLOSE_NOWRITE` a
//! [`crate::watch::CloseWatcher`] counts. The pipe's inode names it
//! ([`FileId`]). The daemon keeps the read end too, so signalling never
//! meets a pipe without readers (`EPIPE`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::pipe::{PipeFlags, pipe_with};

use crate::memfd::{Access, FileId, reopen};
use crate::{Errno, Result};

/// A sync_file's pipe, owned by the daemon.
#[derive(Debug)]
pub struct SignalFile {
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalFile {
    /// A new pipe, not signalled. Errors: `EMFILE`, `ENFILE`.
    pub fn create() -> Result<SignalFile> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(SignalFile { read, write })
    }

    /// Opens a new read description for a program (`O_RDONLY`, `O_CLOEXEC`
    /// in the daemon). Raises `IN_OPEN`. It is `O_NONBLOCK`: Linux answers
    /// a `read` of a sync_file with `EINVAL` at once, so a program that
    /// reads one (the signal byte, then nothing) gets `EAGAIN` rather than
    /// blocking forever.
    pub fn open_for_client(&self) -> Result<OwnedFd> {
        let fd = reopen(&self.write, Access::ReadOnly)?;
        rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? | rustix::fs::OFlags::NONBLOCK)?;
        Ok(fd)
    }

    /// Makes every read description readable from now on. Idempotent (at
    /// most one byte is ever queued); programs that `read` the byte take it
    /// (Linux answers such a `read` with `EINVAL`; see docs/serving.md).
    pub fn signal(&self) -> Result<()> {
        let mut probe = [rustix::event::PollFd::new(&self.read, rustix::event::PollFlags::IN)];
        if rustix::event::poll(&mut probe, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 }))? > 0 {
            return Ok(());
        }
        match rustix::io::write(&self.write, b"S") {
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `(st_dev, st_ino)` of the pipe.
    pub fn identity(&self) -> Result<FileId> {
        FileId::of(&self.write)
    }
}

impl AsFd for SignalFile {
    /// The pipe (its write end), e.g. to watch it.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    fn revents(fd: &OwnedFd) -> PollFlags {
        let mut p = [PollFd::new(fd, PollFlags::IN | PollFlags::OUT)];
        poll(&mut p, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap();
        p[0].revents()
    }

    #[test]
    fn readable_only_once_signalled_for_every_description() {
        let s = SignalFile::create().unwrap();
        let a = s.open_for_client().unwrap();
        assert_eq!(FileId::of(&a).unwrap(), s.identity().unwrap());
        assert_eq!(rustix::fs::fcntl_getfl(&a).unwrap() & rustix::fs::OFlags::ACCMODE, rustix::fs::OFlags::RDONLY);
        assert!(revents(&a).is_empty());
        s.signal().unwrap();
        s.signal().unwrap();
        let b = s.open_for_client().unwrap();
        assert_eq!(revents(&a), PollFlags::IN);
        assert_eq!(revents(&b), PollFlags::IN);
        // Not writable by the program; a read never blocks.
        assert_eq!(rustix::io::write(&a, b"x"), Err(Errno::BADF));
        let mut x = [0u8; 8];
        assert_eq!(rustix::io::read(&a, &mut x), Ok(1));
        assert_eq!(rustix::io::read(&b, &mut x), Err(Errno::AGAIN));
    }

    #[test]
    fn program_closes_are_seen_by_the_watcher() {
        let mut w = crate::watch::CloseWatcher::new().unwrap();
        let s = SignalFile::create().unwrap();
        s.signal().unwrap();
        w.watch(&s, 7u32).unwrap();
        let a = s.open_for_client().unwrap();
        let dup = a.try_clone().unwrap();
        drop(a);
        assert!(w.wait_released(std::time::Duration::from_millis(50)).unwrap().is_empty());
        drop(dup);
        assert_eq!(w.wait_released(std::time::Duration::from_secs(5)).unwrap(), [7]);
    }
}
