//! The files the daemon has handed to programs, by inode, and their release.
//!
//! Every model object a program holds an fd to (dma-buf, TEE context, TEE
//! shared memory) has one entry here, keyed by the `(st_dev,
//! st_ino)` of its backing memfd. The entry holds the fds' reference to the
//! model object; it is removed — and that reference dropped, exactly once —
//! when the [`CloseWatcher`] reports that the last description of the memfd
//! is gone in every process (close, exit, SIGKILL).
//!
//! The daemon holds no descriptor per served file (issue 18): once the
//! program's description is open, the daemon's own memfd fd is closed. The
//! inotify watch keeps the inode (and so its identity) alive. A `system`
//! buffer's or an SHM_ALLOC's memfd is mapped over its physical range in the
//! platform's DRAM at allocation, so program, devices and TAs share the
//! pages without the daemon seeing the program's mmap; that mapping is the
//! daemon's only reference to the memfd (one mapping per such file, under
//! `vm.max_map_count`). Protected buffers and TEE contexts hold no data:
//! the daemon keeps nothing of theirs but the watch.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use teeheap_sync::Recover;

use teeheap_intercept::Errno;
use teeheap_intercept::memfd::{Access, BackingFile, BlankFile, CpuAccess, FileId};
use teeheap_intercept::signal::SignalFile;
use teeheap_intercept::watch::CloseWatcher;
use teeheap_kernel::file::{Backing, File, FileKind, ReadyWatch};
use teeheap_platform::{PhysRange, Platform};

/// One served file. The daemon holds no descriptor of its memfd.
#[derive(Debug)]
struct Served {
    file: File,
    /// Physical ranges, with their file offsets, that the memfd is mapped
    /// over in DRAM (CPU-mappable files; empty for the others).
    backed: Vec<(PhysRange, u64)>,
}

/// One served signal file (a sync file): the model's file and the pipe
/// programs hold.
#[derive(Debug)]
struct ServedSync {
    file: File,
    /// The daemon's ends of the pipe, held here; the fence callback signals
    /// it through a `Weak`, so a release closes them even while a fence is
    /// still pending.
    _pipe: Arc<SignalFile>,
    /// The file's readiness callback, taken back when the entry goes.
    _watch: Option<ReadyWatch>,
}

/// A memfd made ahead of need by [`Registry::refill`]: watched, with the
/// program's read-write description already open (the open is counted).
#[derive(Debug)]
struct Spare {
    blank: BlankFile,
    id: FileId,
    client: OwnedFd,
}

/// Spares kept ready: the memfd, watch and open of an ALLOC are then off
/// the caller's path.
const SPARES: usize = 8;

/// Counts of served files by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServedCounts {
    /// dma-bufs.
    pub buffers: u64,
    /// TEE contexts.
    pub contexts: u64,
    /// TEE shared-memory objects.
    pub shms: u64,
    /// Sync files.
    pub sync_files: u64,
}

/// A burst of descriptor shortages ends after this long without one; the
/// next one is logged again.
const BURST_QUIET: Duration = Duration::from_secs(10);

/// The daemon's own descriptor table running full (`EMFILE`/`ENFILE`):
/// counted, and logged once per burst rather than per attempt.
#[derive(Debug, Default)]
struct Shortage {
    /// When the last one happened.
    last: Mutex<Option<Instant>>,
    /// How many since start.
    count: AtomicU64,
}

impl Shortage {
    /// Counts one; returns the count and whether it starts a burst.
    fn count_one(&self) -> (u64, bool) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut last = lock(&self.last);
        let new = last.is_none_or(|t| now.duration_since(t) >= BURST_QUIET);
        *last = Some(now);
        (n, new)
    }

    /// Whether `e` is a shortage of descriptors; if so, counts it and logs
    /// its cause if it starts a burst.
    fn hit(&self, e: Errno, what: &str) -> bool {
        if e != Errno::MFILE && e != Errno::NFILE {
            return false;
        }
        let (n, new_burst) = self.count_one();
        if new_burst {
            let limit = teeheap_intercept::nofile::raised()
                .map_or_else(|| "as inherited".to_owned(), |r| teeheap_intercept::nofile::show(r.now.current));
            tracing::warn!(
                error = %e,
                shortages = n,
                "the daemon is out of descriptors (limit {limit}) making {what}: programs' ALLOCs get ENOMEM until \
                 buffers are closed (logged once per burst; see docs/serving.md)"
            );
        }
        true
    }

    /// Counts a shortage of another per-buffer resource (`limit`: the
    /// sysctl that bounds it) and logs it if it starts a burst.
    fn other(&self, e: Errno, resource: &str, limit: &str, what: &str) {
        let (n, new_burst) = self.count_one();
        if new_burst {
            tracing::warn!(
                error = %e,
                shortages = n,
                "the daemon is out of {resource} ({limit}) making {what}: programs' ALLOCs get ENOMEM until buffers \
                 are closed (logged once per burst; see docs/serving.md)"
            );
        }
    }
}

/// Mappings kept free under `vm.max_map_count` for what is not a new
/// buffer: putting DRAM back under a released buffer (`mmap` refuses any
/// new mapping at the ceiling, even one that replaces another), threads'
/// stacks, the allocator's arenas.
const MAP_RESERVE: u64 = 2048;

/// How many memory mappings the daemon's process may still make for new
/// buffers' DRAM backing, under `vm.max_map_count`.
///
/// Each backed range adds at most 2 mappings (its own, and a split of
/// what was there). Counting the process's mappings exactly means reading
/// `/proc/self/maps` (linear in the mappings), so it is done only when the
/// estimate — the last exact count plus 2 per range backed since — says
/// the ceiling is near.
#[derive(Debug)]
struct MapBudget {
    /// `vm.max_map_count` at start (`None`: unreadable; no check).
    max: Option<u64>,
    /// The last exact count, and the backed ranges at that moment.
    exact: Option<(u64, usize)>,
}

impl MapBudget {
    fn new() -> MapBudget {
        MapBudget { max: sysctl("/proc/sys/vm/max_map_count"), exact: None }
    }

    /// Whether `new` more ranges may be backed while `backed` are.
    fn allows(&mut self, backed: usize, new: usize) -> bool {
        let Some(max) = self.max else { return true };
        let need = 2 * new as u64 + MAP_RESERVE;
        let estimate = match self.exact {
            Some((n, at)) => n + 2 * backed.saturating_sub(at) as u64,
            None => 2 * backed as u64 + MAP_RESERVE,
        };
        if estimate + need <= max {
            return true;
        }
        let Some(n) = mappings() else { return true };
        self.exact = Some((n, backed));
        n + need <= max
    }
}

/// A number from a `/proc/sys` file.
fn sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// This process's memory mappings (lines of `/proc/self/maps`).
pub(crate) fn mappings() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// The served files. See the module documentation.
///
/// # Invariants
/// A key is in `entries` iff its memfd is watched by `watcher` (until the
/// watcher reports it, after which the entry is removed at once).
#[derive(Debug)]
pub struct Registry {
    platform: Arc<Platform>,
    entries: Mutex<HashMap<FileId, Served>>,
    /// Sync files, by their pipe's inode (watched like `entries`).
    syncs: Mutex<HashMap<FileId, ServedSync>>,
    watcher: Mutex<CloseWatcher<FileId>>,
    /// A second fd of the watcher's inotify instance, polled without a lock.
    events: OwnedFd,
    released: AtomicU64,
    /// Files served since start.
    served: AtomicU64,
    spares: Mutex<Vec<Spare>>,
    /// The daemon running out of descriptors.
    shortage: Shortage,
    /// Out of inotify watches (`ENOSPC` adding one).
    watch_shortage: Shortage,
    /// Out of mappings (`ENOMEM` mapping a memfd over DRAM).
    map_shortage: Shortage,
    /// Mappings left for backing new buffers.
    maps: Mutex<MapBudget>,
    /// Queue overflows of the watcher already logged.
    overflows_seen: AtomicU64,

    /// Signalled when a spare is taken.
    spares_low: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().recover()
}

impl Registry {
    /// An empty registry for `platform`.
    ///
    /// # Errors
    /// `EMFILE` when no inotify instance can be created.
    pub fn new(platform: Arc<Platform>) -> Result<Registry, Errno> {
        let watcher = CloseWatcher::new()?;
        let events = watcher.as_fd().try_clone_to_owned().map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        Ok(Registry {
            platform,
            entries: Mutex::default(),
            syncs: Mutex::default(),
            watcher: Mutex::new(watcher),
            events,
            released: AtomicU64::new(0),
            served: AtomicU64::new(0),
            spares: Mutex::default(),
            shortage: Shortage::default(),
            watch_shortage: Shortage::default(),
            map_shortage: Shortage::default(),
            maps: Mutex::new(MapBudget::new()),
            overflows_seen: AtomicU64::new(0),
            spares_low: Condvar::new(),
        })
    }

    /// Waits up to `timeout` for spares to be taken, then makes new ones
    /// up to [`SPARES`]. Run by a thread of its own.
    pub fn refill(&self, timeout: Duration) {
        {
            let spares = lock(&self.spares);
            if spares.len() >= SPARES {
                let _ = self.spares_low.wait_timeout(spares, timeout);
            }
        }
        while lock(&self.spares).len() < SPARES {
            match self.make_spare() {
                Ok(s) => lock(&self.spares).push(s),
                Err(e) => {
                    if e == Errno::NOSPC {
                        self.watch_shortage.other(e, "inotify watches", "fs.inotify.max_user_watches", "a spare memfd");
                    } else if !self.shortage.hit(e, "the spare memfds") {
                        tracing::warn!(error = %e, "cannot make a spare memfd");
                    }
                    // Not at once again: nothing has changed yet.
                    std::thread::sleep(timeout);
                    return;
                }
            }
        }
    }

    fn make_spare(&self) -> Result<Spare, Errno> {
        let blank = BlankFile::create("dmabuf")?;
        let id = blank.identity()?;
        lock(&self.watcher).watch(blank.as_fd(), id)?;
        // If this fails, the watch goes with the inode (IN_IGNORED).
        let client = blank.open_for_client(Access::ReadWrite)?;
        Ok(Spare { blank, id, client })
    }

    fn take_spare(&self) -> Option<Spare> {
        let s = lock(&self.spares).pop();
        self.spares_low.notify_one();
        s
    }

    /// The model file behind the served inode `id`, if it is one of ours.
    pub fn file(&self, id: &FileId) -> Option<File> {
        if let Some(s) = lock(&self.entries).get(id) {
            return Some(s.file.clone());
        }
        lock(&self.syncs).get(id).map(|s| s.file.clone())
    }

    /// Maps `backing` over `ranges` in DRAM. All or nothing. `ENOMEM`
    /// (logged once per burst) when the mappings would come within
    /// [`MAP_RESERVE`] of `vm.max_map_count`.
    fn back(&self, ranges: &[(PhysRange, u64)], backing: &BackingFile) -> Result<(), Errno> {
        let ram = self.platform.ram();
        if !ranges.is_empty() && !lock(&self.maps).allows(ram.backed_ranges(), ranges.len()) {
            self.map_shortage.other(Errno::NOMEM, "memory mappings", "vm.max_map_count", "a buffer");
            return Err(Errno::NOMEM);
        }
        for (i, &(r, off)) in ranges.iter().enumerate() {
            if let Err(e) = ram.back_with(r, backing.as_fd(), off) {
                self.unback(&ranges[..i], false);
                if e == Errno::NOMEM {
                    self.map_shortage.other(e, "memory mappings", "vm.max_map_count", "a buffer");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts serving `file`: makes its memfd (or finishes a spare one),
    /// maps a CPU-mappable file's memfd over its physical memory, records
    /// it, watches it and opens a description with `access` for a program,
    /// which is returned; the daemon's own descriptor of the memfd is
    /// closed. Once that description and every other opened from the
    /// backing file are gone, the entry is released (also when the caller
    /// just drops it).
    ///
    /// # Errors
    /// `EINVAL` for a heap node (never served this way); `ENOMEM` if the
    /// memfd cannot be made, also when the daemon is out of descriptors
    /// (`EMFILE`/`ENFILE` here, logged once per burst: the program did
    /// not ask for these descriptors, and Linux fails a dma-buf it cannot
    /// back with `ENOMEM`); `ENOMEM` too when the daemon cannot map the
    /// memfd over DRAM (past `vm.max_map_count`); `EBUSY` if the pages are
    /// already backed; `ENOMEM` past the inotify watch limit (logged once
    /// per burst).
    pub fn serve(&self, file: File, access: Access) -> Result<OwnedFd, Errno> {
        self.serve_file(file, access).map_err(|e| self.short_of_files(e, "a buffer"))
    }

    /// `ENOMEM` for a full inotify watch table (`ENOSPC`), counted and
    /// logged once per burst; any other errno as it is.
    fn short_of_watches(&self, e: Errno, what: &str) -> Errno {
        if e != Errno::NOSPC {
            return e;
        }
        self.watch_shortage.other(e, "inotify watches", "fs.inotify.max_user_watches", what);
        Errno::NOMEM
    }

    fn serve_file(&self, file: File, access: Access) -> Result<OwnedFd, Errno> {
        // Every CPU-mappable file is backed at once (not only those whose
        // pages devices or TAs write unmapped, `eager`): see `back`.
        let (name, size, cpu, ranges) = match file.backing() {
            Backing::Pages { name, size, cpu: Some(c) } => (name, size, CpuAccess::Mappable, c.ranges),
            Backing::Pages { name, size, cpu: None } => (name, size, CpuAccess::None, Vec::new()),
            // Nodes are never served this way; signal files are served by
            // `serve_sync`.
            Backing::Node | Backing::Signal => return Err(Errno::INVAL),
        };
        // A file whose bytes the CPU must never reach is given to programs
        // write-only: the host refuses every mmap of a description without
        // read access (`EACCES`), so no decision of the supervisor's has to
        // hold against a program that swaps fd numbers under an mmap, and
        // the write seal refuses `write`. An ioctl-only description
        // (`O_ACCMODE`) has no read access either, and stays as asked.
        let access = if cpu == CpuAccess::None && access != Access::IoctlOnly { Access::WriteOnly } else { access };
        let spare = if access == Access::ReadWrite { self.take_spare() } else { None };
        // A spare's watch and description exist already; dropping them on
        // an error below is a close the reaper finds no entry for.
        let (backing, id, client) = match spare {
            Some(Spare { blank, id, client }) => (blank.finish(size, cpu)?, id, Some(client)),
            None => {
                let backing = BackingFile::create(name, size, cpu)?;
                let id = backing.identity()?;
                (backing, id, None)
            }
        };
        let mut offset = 0u64;
        let ranges: Vec<(PhysRange, u64)> = ranges
            .into_iter()
            .map(|r| {
                offset += r.len();
                (r, offset - r.len())
            })
            .collect();
        // Fresh memory (zeros on both sides): no DRAM bytes to copy in. A
        // TEE shm's DRAM is written by TAs during invokes, a system buffer's
        // by devices; mapped now, neither needs the daemon at the program's
        // mmap.
        self.back(&ranges, &backing)?;
        // Entry first, watch second: the reaper may report the key as soon
        // as the watch exists and must then find the entry.
        lock(&self.entries).insert(id, Served { file, backed: ranges });
        self.served.fetch_add(1, Ordering::Relaxed);
        let client = match client {
            Some(c) => Ok(c),
            None => lock(&self.watcher)
                .watch(backing.as_fd(), id)
                .map_err(|e| self.short_of_watches(e, "a buffer"))
                .and_then(|()| backing.open_for_client(access)),
        };
        client.inspect_err(|_| {
            // Not yet opened for a program: nobody will close it.
            if let Some(s) = lock(&self.entries).remove(&id) {
                self.unback(&s.backed, false);
            }
        })
        // `backing` (the daemon's descriptor) closes here: the watch keeps
        // the inode, a DRAM mapping the memfd's pages.
    }

    /// Starts serving a sync file: a pipe that becomes readable when every
    /// fence of `file` has signalled (at once if they have), watched, and a
    /// read description of it for a program. Released like [`Self::serve`]'s
    /// files once every description the programs hold is closed.
    ///
    /// # Errors
    /// `ENOMEM` if the daemon is out of descriptors (as [`Self::serve`]);
    /// `ENOMEM` past the inotify watch limit.
    pub fn serve_sync(&self, file: File) -> Result<OwnedFd, Errno> {
        self.serve_sync_file(file).map_err(|e| self.short_of_files(e, "a sync file"))
    }

    /// `ENOMEM` for the daemon's own `EMFILE`/`ENFILE` (recorded, logged
    /// once per burst); any other errno as it is.
    pub(crate) fn short_of_files(&self, e: Errno, what: &str) -> Errno {
        if self.shortage.hit(e, what) { Errno::NOMEM } else { e }
    }

    /// How many times the daemon ran out of descriptors making a file
    /// (for a program, or a spare) since start.
    pub fn descriptor_shortages(&self) -> u64 {
        self.shortage.count.load(Ordering::Relaxed)
    }

    fn serve_sync_file(&self, file: File) -> Result<OwnedFd, Errno> {
        if file.backing() != Backing::Signal {
            return Err(Errno::INVAL);
        }
        let pipe = Arc::new(SignalFile::create()?);
        let id = pipe.identity()?;
        let weak = Arc::downgrade(&pipe);
        let watch = file.watch_ready(Box::new(move || {
            if let Some(pipe) = weak.upgrade()
                && let Err(e) = pipe.signal()
            {
                tracing::warn!(error = %e, "cannot signal a sync file's pipe");
            }
        }));
        lock(&self.syncs).insert(id, ServedSync { file, _pipe: Arc::clone(&pipe), _watch: watch });
        let client = lock(&self.watcher)
            .watch(&*pipe, id)
            .map_err(|e| self.short_of_watches(e, "a sync file"))
            .and_then(|()| pipe.open_for_client());
        client.inspect_err(|_| {
            lock(&self.syncs).remove(&id);
        })
    }

    /// DRAM's own pages back under `backed`; with `keep`, what the memfd
    /// holds there is copied into DRAM first.
    fn unback(&self, backed: &[(PhysRange, u64)], keep: bool) {
        for (r, _) in backed {
            let ram = self.platform.ram();
            let res = if keep { ram.restore_keeping(*r) } else { ram.restore(*r, None) };
            if let Err(e) = res {
                tracing::error!(range = %r, error = %e, "cannot restore DRAM under a released buffer");
            }
        }
    }

    /// Releases `id`: DRAM gets its own pages back and the fds' reference
    /// to the model object is dropped. Idempotent.
    fn release(&self, id: FileId) {
        if let Some(s) = lock(&self.syncs).remove(&id) {
            tracing::debug!(ino = id.ino, kind = "sync-file", "served file released");
            self.released.fetch_add(1, Ordering::Relaxed);
            drop(s);
            return;
        }
        let Some(s) = lock(&self.entries).remove(&id) else { return };
        // If the model still holds the buffer (a TEE registration, an
        // attachment), it keeps what the program wrote.
        let still_used = s.file.strong_count() > 1;
        self.unback(&s.backed, still_used);
        tracing::debug!(ino = id.ino, kind = %s.file.kind(), "served file released");
        self.released.fetch_add(1, Ordering::Relaxed);
        drop(s);
    }

    /// Waits up to `timeout` for close events and releases every file
    /// whose last reference is gone. Returns how many were released.
    pub fn reap(&self, timeout: Duration) -> usize {
        let ts = rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos().into() };
        let mut fds = [rustix::event::PollFd::new(&self.events, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => return 0,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "polling close events failed");
                std::thread::sleep(timeout);
                return 0;
            }
        }
        let (gone, overflows) = {
            let mut w = lock(&self.watcher);
            match w.released() {
                Ok(g) => (g, w.overflows()),
                Err(e) => {
                    tracing::error!(error = %e, "reading close events failed");
                    return 0;
                }
            }
        };
        if overflows > self.overflows_seen.swap(overflows, Ordering::Relaxed) {
            tracing::error!(
                overflows,
                "close events were lost (an inotify queue overflowed, fs.inotify.max_queued_events): some released \
                 buffers stay served until the daemon stops"
            );
        }
        let n = gone.len();
        for id in gone {
            self.release(id);
        }
        n
    }

    /// Drops every entry and spare (daemon shutdown).
    pub fn clear(&self) {
        lock(&self.spares).clear();
        let mut ids: Vec<FileId> = lock(&self.entries).keys().copied().collect();
        ids.extend(lock(&self.syncs).keys().copied());
        for id in ids {
            self.release(id);
        }
    }

    /// Panics while holding the registry's locks (test hook).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn panic_holding_locks(&self) -> ! {
        let _entries = lock(&self.entries);
        let _spares = lock(&self.spares);
        panic!("test hook: panic while serving a call, holding the daemon's locks")
    }

    /// The served dma-bufs with the inode of their file, by inode.
    pub fn dma_bufs(&self) -> Vec<(u64, Arc<teeheap_kernel::dma_buf::DmaBuf>)> {
        let mut v: Vec<(u64, Arc<teeheap_kernel::dma_buf::DmaBuf>)> =
            lock(&self.entries).iter().filter_map(|(id, s)| Some((id.ino, s.file.as_dma_buf()?))).collect();
        v.sort_by_key(|(ino, _)| *ino);
        v
    }

    /// Served files by kind.
    pub fn counts(&self) -> ServedCounts {
        let mut c = ServedCounts::default();
        for s in lock(&self.entries).values() {
            match s.file.kind() {
                FileKind::DMA_BUF => c.buffers += 1,
                FileKind::TEE_CONTEXT => c.contexts += 1,
                FileKind::TEE_SHM => c.shms += 1,
                _ => {}
            }
        }
        c.sync_files = lock(&self.syncs).len() as u64;
        c
    }

    /// Files served plus files released since start: changes when the
    /// set of served files does.
    pub fn changes(&self) -> u64 {
        self.served.load(Ordering::Relaxed) + self.released.load(Ordering::Relaxed)
    }

    /// inotify watches held: one per served file and per spare.
    pub fn watches(&self) -> usize {
        lock(&self.watcher).len()
    }

    /// Files released since start.
    pub fn released_total(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teeheap_kernel::Kernel;
    use teeheap_platform::Master;

    use rustix::mm::MapFlags;

    /// What the host answers a one-page mmap of `fd` (unmapped again).
    fn host_mmap(fd: &OwnedFd, flags: MapFlags) -> Result<(), Errno> {
        use rustix::mm::ProtFlags;
        // SAFETY: a fresh mapping at an address the kernel picks; it aliases
        // no Rust object and is unmapped before returning.
        let p = unsafe { rustix::mm::mmap(std::ptr::null_mut(), 4096, ProtFlags::READ, flags, fd, 0) }?;
        // SAFETY: the mapping made above, used by nothing else.
        unsafe { rustix::mm::munmap(p, 4096) }.unwrap();
        Ok(())
    }

    /// No mmap goes to the daemon (issue 16): a protected buffer's file
    /// must be one the host refuses to map, shared or private, whatever
    /// access the program asked for; a `system` buffer's maps.
    #[test]
    fn the_host_refuses_to_map_protected_buffers() {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let _backend = crate::backend::Host::boot(&kernel).unwrap().probe(&kernel).unwrap();
        let reg = Registry::new(Arc::clone(&platform)).unwrap();
        let protected = kernel.dma_heaps().open("protected,secure-video").unwrap();
        for access in [Access::ReadWrite, Access::ReadOnly, Access::WriteOnly, Access::IoctlOnly] {
            let c = reg.serve(File::new(protected.allocate(4096, 0, 0).unwrap()), access).unwrap();
            assert_eq!(host_mmap(&c, MapFlags::SHARED), Err(Errno::ACCESS), "{access:?}");
            assert_eq!(host_mmap(&c, MapFlags::SHARED_VALIDATE), Err(Errno::ACCESS), "{access:?}");
            assert_eq!(host_mmap(&c, MapFlags::PRIVATE), Err(Errno::ACCESS), "{access:?}");
        }
        let system = kernel.dma_heaps().open("system").unwrap();
        let c = reg.serve(File::new(system.allocate(4096, 0, 0).unwrap()), Access::ReadWrite).unwrap();
        assert_eq!(host_mmap(&c, MapFlags::SHARED), Ok(()));
    }

    fn map(fd: &OwnedFd, len: usize) -> *mut u8 {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh shared mapping of a sealed memfd of at least `len`
        // bytes; it aliases no Rust object and is unmapped by the caller.
        unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, 0)
        }
        .unwrap()
        .cast()
    }

    /// Descriptors of this process open on one of the inodes `ids` (other
    /// tests of the process open their own files meanwhile).
    fn fds_on(ids: &[FileId]) -> usize {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
            .filter(|m| ids.contains(&FileId { dev: m.dev(), ino: m.ino() }))
            .count()
    }

    #[test]
    fn system_buffer_is_backed_at_allocation_and_coherent() {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let reg = Registry::new(Arc::clone(&platform)).unwrap();
        let heap = kernel.dma_heaps().open("system").unwrap();
        let buf = heap.allocate(3 * 4096, 0, 0).unwrap();
        let ranges = buf.sg_table().ranges().to_vec();
        let client = reg.serve(File::new(Arc::clone(&buf)), Access::ReadWrite).unwrap();
        assert_eq!(platform.ram().backed_ranges(), ranges.len(), "mapped over DRAM when served");
        // A device writes before any program mapping: the program sees it.
        assert!(ranges[0].len() >= 2 * 4096, "the system heap gives contiguous pages here");
        let at = ranges[0].start().checked_add(4096 + 5).unwrap();
        platform.write(Master::VideoDecoder, at, b"from the device").unwrap();
        let p = map(&client, 3 * 4096);
        // SAFETY: inside the 3-page mapping made above.
        let seen = unsafe { std::slice::from_raw_parts(p.add(4096 + 5), 15).to_vec() };
        assert_eq!(seen, b"from the device");
        // And the other way: a program write is what the devices read.
        // SAFETY: inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(b"from the program".as_ptr(), p.add(2 * 4096), 16) };
        let mut got = [0u8; 16];
        // Byte 2 * 4096 of the buffer, wherever its pages are.
        let mut off = 2 * 4096;
        let r = ranges
            .iter()
            .find(|r| {
                off < r.len() || {
                    off -= r.len();
                    false
                }
            })
            .unwrap();
        let at2 = r.start().checked_add(off).unwrap();
        platform.read(Master::Display, at2, &mut got).unwrap();
        assert_eq!(&got, b"from the program");
        // SAFETY: the mapping made above, no longer used.
        unsafe { rustix::mm::munmap(p.cast(), 3 * 4096).unwrap() };
        drop(client);
        let t0 = std::time::Instant::now();
        while reg.counts().buffers != 0 && t0.elapsed() < Duration::from_secs(5) {
            reg.reap(Duration::from_millis(50));
        }
        assert_eq!(reg.counts().buffers, 0);
        assert_eq!(platform.ram().backed_ranges(), 0);
        // The model still holds the buffer (as a TEE registration would):
        // DRAM kept what the program wrote.
        let mut kept = [0u8; 16];
        platform.read(Master::Display, at2, &mut kept).unwrap();
        assert_eq!(&kept, b"from the program");
    }

    #[test]
    fn the_daemon_holds_no_descriptor_per_served_file() {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let _backend = crate::backend::Host::boot(&kernel).unwrap().probe(&kernel).unwrap();
        let reg = Registry::new(Arc::clone(&platform)).unwrap();
        let system = kernel.dma_heaps().open("system").unwrap();
        let protected = kernel.dma_heaps().open("protected,secure-video").unwrap();
        let mut clients = Vec::new();
        for i in 0..64 {
            let heap = if i % 2 == 0 { &system } else { &protected };
            let buf = heap.allocate(4096, 0, 0).unwrap();
            clients.push(reg.serve(File::new(buf), Access::ReadWrite).unwrap());
        }
        // Only the programs' descriptions (held here) are open on them.
        let ids: Vec<FileId> = clients.iter().map(|c| FileId::of(c).unwrap()).collect();
        assert_eq!(fds_on(&ids), 64);
        assert_eq!(reg.counts().buffers, 64);
        // The watch keeps each inode, so its identity stays the entry's.
        for c in &clients {
            assert!(reg.file(&FileId::of(c).unwrap()).is_some());
        }
        drop(clients);
        let t0 = std::time::Instant::now();
        while reg.counts().buffers != 0 && t0.elapsed() < Duration::from_secs(5) {
            reg.reap(Duration::from_millis(50));
        }
        assert_eq!(reg.counts().buffers, 0);
        assert_eq!(platform.ram().backed_ranges(), 0);
        assert_eq!(fds_on(&ids), 0);
    }

    #[test]
    fn spares_serve_read_write_descriptions() {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let reg = Registry::new(Arc::clone(&platform)).unwrap();
        reg.refill(Duration::ZERO);
        assert_eq!(lock(&reg.spares).len(), SPARES);
        let heap = kernel.dma_heaps().open("system").unwrap();
        let buf = heap.allocate(4096, 0, 0).unwrap();
        let c = reg.serve(File::new(buf), Access::ReadWrite).unwrap();
        assert_eq!(lock(&reg.spares).len(), SPARES - 1, "a spare was taken");
        assert_eq!(rustix::fs::seek(&c, rustix::fs::SeekFrom::End(0)).unwrap(), 4096);
        assert!(reg.file(&FileId::of(&c).unwrap()).is_some());
        // A read-only description is made fresh.
        let buf = heap.allocate(4096, 0, 0).unwrap();
        let ro = reg.serve(File::new(buf), Access::ReadOnly).unwrap();
        assert_eq!(lock(&reg.spares).len(), SPARES - 1);
        drop((c, ro));
        let t0 = std::time::Instant::now();
        while reg.counts().buffers != 0 && t0.elapsed() < Duration::from_secs(5) {
            reg.reap(Duration::from_millis(50));
        }
        assert_eq!(reg.counts().buffers, 0);
        reg.clear();
        assert!(lock(&reg.spares).is_empty());
    }

    #[test]
    fn sync_file_pipe_is_readable_once_signalled_and_released_on_close() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        use teeheap_kernel::dma_buf::Fence;
        use teeheap_kernel::sync_file::SyncFile;
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let reg = Registry::new(platform).unwrap();
        let ready = |fd: &OwnedFd| {
            let mut p = [PollFd::new(fd, PollFlags::IN)];
            poll(&mut p, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap();
            p[0].revents()
        };
        let fence = Fence::new("test", "ring");
        let sync = SyncFile::new(vec![Arc::clone(&fence)]);
        let client = reg.serve_sync(File::new(Arc::clone(&sync))).unwrap();
        let id = FileId::of(&client).unwrap();
        assert!(reg.file(&id).and_then(|f| f.downcast::<SyncFile>()).is_some_and(|s| Arc::ptr_eq(&s, &sync)));
        // The kernel itself refuses to map it (a pipe has no mmap).
        assert_eq!(host_mmap(&client, MapFlags::SHARED), Err(Errno::NODEV));
        assert_eq!(reg.counts().sync_files, 1);
        assert!(ready(&client).is_empty(), "pending fence: not readable");
        fence.signal();
        assert_eq!(ready(&client), PollFlags::IN);
        // An already signalled file is readable from the start.
        let done = reg.serve_sync(File::new(SyncFile::new(Vec::new()))).unwrap();
        assert_eq!(ready(&done), PollFlags::IN);
        // A fence that signals after its file was released signals nothing.
        let late = Fence::new("test", "late");
        let gone = reg.serve_sync(File::new(SyncFile::new(vec![Arc::clone(&late)]))).unwrap();
        drop((client, done, gone));
        let t0 = std::time::Instant::now();
        while reg.counts().sync_files != 0 && t0.elapsed() < Duration::from_secs(5) {
            reg.reap(Duration::from_millis(50));
        }
        assert_eq!(reg.counts().sync_files, 0);
        assert_eq!(reg.released_total(), 3);
        assert!(reg.file(&id).is_none());
        assert_eq!(late.waiters(), 0, "a released sync file leaves no callback on a pending fence");
        late.signal();
    }
}
