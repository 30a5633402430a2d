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

use rustix::event::epoll;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use crate::{Errno, Result};

/// Watches per inotify instance. Each instance queues at most
/// `fs.inotify.max_queued_events` (16 384 by default) unread events and
/// drops the rest (`IN_Q_OVERFLOW`); a SIGKILLed program holding tens of
/// thousands of buffers closes them all at once. A watched file raises
/// about two events (its program description's open and close), so an
/// instance of this many watches cannot overflow in such a burst.
const PER_INSTANCE: usize = 4096;

/// Reports keys of watched files whose last open description is released.
///
/// # Invariants
/// Each watched inode has one entry in `by_wd`, under the instance that
/// watches it, removed (and its watch removed) when its key is reported; a
/// key is reported at most once. Every instance's fd is in `epoll`.
#[derive(Debug)]
pub struct CloseWatcher<K> {
    /// Readable when any instance has events.
    epoll: OwnedFd,
    instances: Vec<Instance<K>>,
    /// Watches per instance ([`PER_INSTANCE`]; fewer in tests).
    per_instance: usize,
    /// Events dropped by a full queue (`IN_Q_OVERFLOW`) since start.
    overflows: u64,
}

#[derive(Debug)]
struct Instance<K> {
    inotify: OwnedFd,
    by_wd: HashMap<i32, Watched<K>>,
}

#[derive(Debug)]
struct Watched<K> {
    key: K,
    open: u64,
    closed_once: bool,
}

impl<K> Instance<K> {
    fn new(epoll_fd: &OwnedFd, index: usize) -> Result<Instance<K>> {
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        epoll::add(epoll_fd, &inotify, epoll::EventData::new_u64(index as u64), epoll::EventFlags::IN)?;
        Ok(Instance { inotify, by_wd: HashMap::new() })
    }
}

impl<K: Clone> CloseWatcher<K> {
    /// A watcher with no files. Errors: `EMFILE` (`fs.inotify.max_user_instances`).
    pub fn new() -> Result<CloseWatcher<K>> {
        Self::with_per_instance(PER_INSTANCE)
    }

    fn with_per_instance(per_instance: usize) -> Result<CloseWatcher<K>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let first = Instance::new(&epoll, 0)?;
        Ok(CloseWatcher { epoll, instances: vec![first], per_instance, overflows: 0 })
    }

    /// Starts watching the inode behind `file` under `key`. Call this before
    /// opening the descriptions that programs get, so their opens are
    /// counted. Errors: `ENOSPC` past `fs.inotify.max_user_watches`;
    /// `EEXIST` if the inode is already watched; `EMFILE` past
    /// `fs.inotify.max_user_instances` (a new instance every
    /// [`PER_INSTANCE`] watches).
    pub fn watch(&mut self, file: impl AsFd, key: K) -> Result<()> {
        let at = match self.instances.iter().position(|i| i.by_wd.len() < self.per_instance) {
            Some(at) => at,
            None => {
                let at = self.instances.len();
                self.instances.push(Instance::new(&self.epoll, at)?);
                at
            }
        };
        let inst = &mut self.instances[at];
        let path = format!("/proc/self/fd/{}", file.as_fd().as_raw_fd());
        let wd = inotify::add_watch(
            &inst.inotify,
            path.as_str(),
            WatchFlags::OPEN | WatchFlags::CLOSE | WatchFlags::MASK_CREATE,
        )?;
        inst.by_wd.insert(wd, Watched { key, open: 0, closed_once: false });
        Ok(())
    }

    /// Number of files still watched.
    pub fn len(&self) -> usize {
        self.instances.iter().map(|i| i.by_wd.len()).sum()
    }

    /// Whether no file is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times an instance's event queue overflowed since start
    /// (events were lost: files whose close was among them stay watched).
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Reads all pending events without blocking and returns the keys whose
    /// files lost their last reference, each once.
    pub fn released(&mut self) -> Result<Vec<K>> {
        let mut out = Vec::new();
        for inst in &mut self.instances {
            self.overflows += inst.released(&mut out)?;
        }
        Ok(out)
    }

    /// Waits up to `timeout` for events, then as [`CloseWatcher::released`].
    pub fn wait_released(&mut self, timeout: Duration) -> Result<Vec<K>> {
        let ts =
            rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
        let mut fds = [rustix::event::PollFd::new(&self.epoll, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
        self.released()
    }
}

impl<K: Clone> Instance<K> {
    /// One instance's part of [`CloseWatcher::released`]; returns the
    /// number of queue overflows seen.
    fn released(&mut self, out: &mut Vec<K>) -> Result<u64> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut gone = Vec::new();
        let mut overflows = 0;
        {
            let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
            loop {
                let ev = match reader.next() {
                    Ok(ev) => ev,
                    Err(Errno::AGAIN) => break,
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e),
                };
                if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                    overflows += 1;
                    continue;
                }
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
        Ok(overflows)
    }
}

impl<K> AsFd for CloseWatcher<K> {
    /// An epoll fd over every inotify instance, readable when events are
    /// pending (for poll; a dup of it keeps following new instances).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfd::{Access, BackingFile, CpuAccess};

    #[test]
    fn watches_spread_over_instances_and_all_are_released() {
        let mut w = CloseWatcher::<usize>::with_per_instance(4).unwrap();
        let mut held = Vec::new();
        for key in 0..18 {
            let b = BackingFile::create("w", 4096, CpuAccess::Mappable).unwrap();
            w.watch(&b, key).unwrap();
            held.push(b.open_for_client(Access::ReadWrite).unwrap());
        }
        assert_eq!(w.instances.len(), 5, "4 watches per instance");
        assert_eq!(w.len(), 18);
        // Closes in the last instance are seen through the one fd.
        held.truncate(16);
        let mut got = w.wait_released(Duration::from_secs(5)).unwrap();
        while got.len() < 2 {
            got.extend(w.wait_released(Duration::from_secs(5)).unwrap());
        }
        got.sort();
        assert_eq!(got, [16, 17]);
        held.clear();
        let mut all = Vec::new();
        while all.len() < 16 {
            let more = w.wait_released(Duration::from_secs(5)).unwrap();
            assert!(!more.is_empty(), "released {all:?} only");
            all.extend(more);
        }
        all.sort();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert!(w.is_empty());
        assert_eq!(w.overflows(), 0);
    }
}
