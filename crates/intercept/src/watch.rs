//! Learns, without holding a reference, when the last reference to a
//! buffer's file is gone — every fd in every process and every mapping.
//!
//! The kernel raises `IN_CLOSE_WRITE`/`IN_CLOSE_NOWRITE` when an open file
//! description is released, which happens only after its last fd (after any
//! `dup`, `fork`, `SCM_RIGHTS`) is closed or its process exits or is killed,
//! *and* its last mmap is unmapped. A [`CloseWatcher`] counts `IN_OPEN` and
//! `IN_CLOSE_*` per inode and reports the key once the count drops to zero.
//! The daemon's own memfd description is a pseudo file and raises nothing.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use crate::{Errno, Result};

/// Reports keys of watched files whose last open description is released.
///
/// # Invariants
/// Each watched inode has one entry in `by_wd`, removed (and its watch
/// removed) when its key is reported; a key is reported at most once.
#[derive(Debug)]
pub struct CloseWatcher<K> {
    inotify: OwnedFd,
    by_wd: HashMap<i32, Watched<K>>,
}

#[derive(Debug)]
struct Watched<K> {
    key: K,
    open: u64,
    closed_once: bool,
}

impl<K: Clone> CloseWatcher<K> {
    /// A watcher with no files. Errors: `EMFILE` (`fs.inotify.max_user_instances`).
    pub fn new() -> Result<CloseWatcher<K>> {
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(CloseWatcher { inotify, by_wd: HashMap::new() })
    }

    /// Starts watching the inode behind `file` under `key`. Call this before
    /// opening the descriptions that programs get, so their opens are
    /// counted. Errors: `ENOSPC` past `fs.inotify.max_user_watches`;
    /// `EEXIST` if the inode is already watched.
    pub fn watch(&mut self, file: impl AsFd, key: K) -> Result<()> {
        let path = format!("/proc/self/fd/{}", file.as_fd().as_raw_fd());
        let wd = inotify::add_watch(
            &self.inotify,
            path.as_str(),
            WatchFlags::OPEN | WatchFlags::CLOSE | WatchFlags::MASK_CREATE,
        )?;
        self.by_wd.insert(wd, Watched { key, open: 0, closed_once: false });
        Ok(())
    }

    /// Number of files still watched.
    pub fn len(&self) -> usize {
        self.by_wd.len()
    }

    /// Whether no file is watched.
    pub fn is_empty(&self) -> bool {
        self.by_wd.is_empty()
    }

    /// Reads all pending events without blocking and returns the keys whose
    /// files lost their last reference, each once.
    pub fn released(&mut self) -> Result<Vec<K>> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut out = Vec::new();
        let mut gone = Vec::new();
        {
            let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
            loop {
                let ev = match reader.next() {
                    Ok(ev) => ev,
                    Err(Errno::AGAIN) => break,
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e),
                };
                let Some(w) = self.by_wd.get_mut(&ev.wd()) else {
                    continue; // IN_IGNORED after our own remove_watch
                };
                if ev.events().contains(ReadFlags::OPEN) {
                    w.open += 1;
                }
                if ev.events().intersects(ReadFlags::CLOSE_WRITE | ReadFlags::CLOSE_NOWRITE) {
                    w.open = w.open.saturating_sub(1);
                    w.closed_once = true;
                }
                if w.closed_once && w.open == 0 {
                    gone.push(ev.wd());
                }
            }
        }
        for wd in gone {
            if let Some(w) = self.by_wd.remove(&wd) {
                // The inode may already be gone; the watch then is too.
                let _ = inotify::remove_watch(&self.inotify, wd);
                out.push(w.key);
            }
        }
        Ok(out)
    }

    /// Waits up to `timeout` for events, then as [`CloseWatcher::released`].
    pub fn wait_released(&mut self, timeout: Duration) -> Result<Vec<K>> {
        let ts =
            rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
        let mut fds = [rustix::event::PollFd::new(&self.inotify, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
        self.released()
    }
}

impl<K> AsFd for CloseWatcher<K> {
    /// The inotify fd, readable when events are pending (for epoll).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}
