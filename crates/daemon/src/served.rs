//! The files the daemon has handed to programs, by inode, and their release.
//!
//! Every model object a program holds an fd to (dma-buf, TEE context, TEE
//! shared memory) has one entry here, keyed by the `(st_dev,
//! st_ino)` of its backing memfd. The entry holds the fds' reference to the
//! model object; it is removed — and that reference dropped, exactly once —
//! when the [`CloseWatcher`] reports that the last description of the memfd
//! is gone in every process (close, exit, SIGKILL). A `system` buffer's or
//! an SHM_ALLOC's memfd is mapped over its physical range in the platform's
//! DRAM while served, so program, devices and TAs share the pages: an
//! SHM_ALLOC's from the start (TAs write it during invokes), a `system`
//! buffer's from the first shared mmap of it in the run (until then neither
//! side has written it: both hold zeros, or what DRAM holds is copied into
//! the memfd first). Most buffers handed around by fd and never mapped by
//! the CPU — and every protected buffer — so cost no DRAM remapping.

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

/// What `mmap(MAP_SHARED)` of a served file does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmapPolicy {
    /// The kernel maps the memfd natively (`system` buffer, SHM_ALLOC),
    /// within `size` bytes (past it, `EINVAL` as the kernel's
    /// `dma_buf_mmap_internal` and `tee_shm_fop_mmap` answer).
    Native {
        /// The file's size in bytes (page-aligned).
        size: u64,
    },
    /// Refused with this errno (protected buffer: `EINVAL`; registered
    /// shm: `EINVAL`; TEE context: `ENODEV`).
    Refuse(Errno),
}

/// The physical ranges of a served file and whether the memfd is mapped
/// over them yet.
#[derive(Debug, Default)]
struct Backed {
    /// Physical ranges with their file offsets.
    ranges: Vec<(PhysRange, u64)>,
    /// Whether `ranges` are mapped from the memfd now.
    mapped: bool,
}

/// One served file.
#[derive(Debug)]
struct Served {
    file: File,
    backing: Arc<BackingFile>,
    /// Its own lock, so that backing a large buffer stalls nobody else.
    backed: Arc<Mutex<Backed>>,
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
    /// Whether `e` is a shortage of descriptors; if so, counts it and logs
    /// its cause if it starts a burst.
    fn hit(&self, e: Errno, what: &str) -> bool {
        if e != Errno::MFILE && e != Errno::NFILE {
            return false;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let new_burst = {
            let mut last = lock(&self.last);
            let new = last.is_none_or(|t| now.duration_since(t) >= BURST_QUIET);
            *last = Some(now);
            new
        };
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
                    if !self.shortage.hit(e, "the spare memfds") {
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

    /// What a shared mmap of the served inode `id` does, or `None` if the
    /// inode is not ours. `fits(size)` says whether the call's pages fit in
    /// a CPU-mappable file of `size` bytes; if not, the answer is `EINVAL`.
    /// For a CPU-mappable file whose memfd is not yet mapped over its DRAM,
    /// maps it now (after copying in whatever DRAM holds there), so the
    /// program's mapping and the devices' view agree.
    ///
    /// The caller must hold a reference to the file (its dup of the
    /// program's fd), so that the entry cannot be released meanwhile.
    pub fn mmap_policy(&self, id: &FileId, fits: impl FnOnce(u64) -> bool) -> Option<MmapPolicy> {
        let (policy, backing, backed) = {
            let entries = lock(&self.entries);
            let Some(s) = entries.get(id) else {
                // A sync_file has no mmap.
                return lock(&self.syncs).contains_key(id).then_some(MmapPolicy::Refuse(Errno::NODEV));
            };
            let policy = match (s.file.mmap(), s.backing.cpu_access()) {
                (Err(e), _) => MmapPolicy::Refuse(host_errno(&e)),
                (Ok(()), CpuAccess::Mappable) => MmapPolicy::Native { size: s.backing.size() },
                (Ok(()), CpuAccess::None) => MmapPolicy::Refuse(Errno::INVAL),
            };
            (policy, Arc::clone(&s.backing), Arc::clone(&s.backed))
        };
        if let MmapPolicy::Native { size } = policy {
            if !fits(size) {
                return Some(MmapPolicy::Refuse(Errno::INVAL));
            }
            let mut b = lock(&backed);
            if !b.mapped {
                if let Err(e) = self.back(&b.ranges, &backing, true) {
                    tracing::warn!(ino = id.ino, error = %e, "cannot map a buffer over its DRAM");
                    return Some(MmapPolicy::Refuse(e));
                }
                b.mapped = true;
            }
        }
        Some(policy)
    }

    /// Maps `backing` over `ranges`; with `copy_in`, DRAM's current bytes
    /// there are copied into the memfd first (skipped for holes, which read
    /// as zeros on both sides). All or nothing.
    fn back(&self, ranges: &[(PhysRange, u64)], backing: &BackingFile, copy_in: bool) -> Result<(), Errno> {
        let ram = self.platform.ram();
        for (i, &(r, off)) in ranges.iter().enumerate() {
            let res = if copy_in { copy_from_dram(ram, r, backing, off) } else { Ok(()) };
            if let Err(e) = res.and_then(|()| ram.back_with(r, backing.as_fd(), off)) {
                self.unback(&ranges[..i], None);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts serving `file`: makes its memfd (or finishes a spare one),
    /// maps a TEE shm's memfd over its physical memory, records it, watches
    /// it and opens a description with `access` for a program. Once that
    /// description and every other opened from the backing file are gone,
    /// the entry is released (also when the caller just drops it).
    ///
    /// # Errors
    /// `EINVAL` for a heap node (never served this way); `ENOMEM` if the
    /// memfd cannot be made, also when the daemon is out of descriptors
    /// (`EMFILE`/`ENFILE` here, logged once per burst: the program did
    /// not ask for these descriptors, and Linux fails a dma-buf it cannot
    /// back with `ENOMEM`); `EBUSY` if the pages are already backed;
    /// `ENOSPC` past the inotify watch limit.
    pub fn serve(&self, file: File, access: Access) -> Result<(Arc<BackingFile>, OwnedFd), Errno> {
        self.serve_file(file, access).map_err(|e| self.short_of_files(e, "a buffer"))
    }

    fn serve_file(&self, file: File, access: Access) -> Result<(Arc<BackingFile>, OwnedFd), Errno> {
        let (name, size, cpu, ranges, eager) = match file.backing() {
            Backing::Pages { name, size, cpu: Some(c) } => (name, size, CpuAccess::Mappable, c.ranges, c.eager),
            Backing::Pages { name, size, cpu: None } => (name, size, CpuAccess::None, Vec::new(), false),
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
            Some(Spare { blank, id, client }) => (Arc::new(blank.finish(size, cpu)?), id, Some(client)),
            None => {
                let backing = BackingFile::create(name, size, cpu)?;
                let id = backing.identity()?;
                (Arc::new(backing), id, None)
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
        // Pages devices or TAs write whether or not a program mapped them
        // (TEE shm) are backed from the start; others (dma-bufs) at their
        // first shared mmap.
        let eager = eager && !ranges.is_empty();
        if eager {
            self.back(&ranges, &backing, false)?;
        }
        let backed = Arc::new(Mutex::new(Backed { ranges, mapped: eager }));
        // Entry first, watch second: the reaper may report the key as soon
        // as the watch exists and must then find the entry.
        lock(&self.entries).insert(id, Served { file, backing: Arc::clone(&backing), backed });
        self.served.fetch_add(1, Ordering::Relaxed);
        let client = match client {
            Some(c) => Ok(c),
            None => lock(&self.watcher)
                .watch(backing.as_fd(), id)
                .and_then(|()| backing.open_for_client(access))
                .inspect_err(|_| {
                    // Not yet opened for a program: nobody will close it.
                    if let Some(s) = lock(&self.entries).remove(&id) {
                        let b = lock(&s.backed);
                        if b.mapped {
                            self.unback(&b.ranges, None);
                        }
                    }
                }),
        }?;
        Ok((backing, client))
    }

    /// Starts serving a sync file: a pipe that becomes readable when every
    /// fence of `file` has signalled (at once if they have), watched, and a
    /// read description of it for a program. Released like [`Self::serve`]'s
    /// files once every description the programs hold is closed.
    ///
    /// # Errors
    /// `ENOMEM` if the daemon is out of descriptors (as [`Self::serve`]);
    /// `ENOSPC` past the inotify watch limit.
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
        let client = lock(&self.watcher).watch(&*pipe, id).and_then(|()| pipe.open_for_client());
        client.inspect_err(|_| {
            lock(&self.syncs).remove(&id);
        })
    }

    fn unback(&self, backed: &[(PhysRange, u64)], keep: Option<&BackingFile>) {
        for (r, off) in backed {
            let keep = keep.map(|b| (b.as_fd(), *off));
            if let Err(e) = self.platform.ram().restore(*r, keep) {
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
        {
            let b = lock(&s.backed);
            if b.mapped {
                self.unback(&b.ranges, still_used.then_some(&*s.backing));
            }
        }
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
        let gone = match lock(&self.watcher).released() {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "reading close events failed");
                return 0;
            }
        };
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

    /// Files released since start.
    pub fn released_total(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }
}

/// Copies DRAM's bytes under `r` into `backing` at `off`, skipping holes
/// of the DRAM memfd (they read as zeros, as the fresh memfd does).
fn copy_from_dram(ram: &teeheap_platform::Ram, r: PhysRange, backing: &BackingFile, off: u64) -> Result<(), Errno> {
    let base = r.start().checked_offset_from(ram.range().start()).ok_or(Errno::INVAL)?;
    let end = base + r.len();
    let mut at = base;
    let mut chunk = Vec::new();
    while at < end {
        // Next data at or after `at`; ENXIO: only a hole up to the end.
        let data = match rustix::fs::seek(ram.memfd(), rustix::fs::SeekFrom::Data(at)) {
            Ok(d) if d < end => d,
            Ok(_) | Err(Errno::NXIO) => return Ok(()),
            Err(e) => return Err(e),
        };
        let hole = match rustix::fs::seek(ram.memfd(), rustix::fs::SeekFrom::Hole(data)) {
            Ok(h) => h.min(end),
            Err(e) => return Err(e),
        };
        chunk.resize(((hole - data) as usize).min(1 << 20), 0);
        let n = rustix::io::pread(ram.memfd(), &mut chunk, data)?;
        if n == 0 {
            return Ok(());
        }
        let mut done = 0;
        while done < n {
            done += rustix::io::pwrite(backing, &chunk[done..n], off + (data - base) + done as u64)?;
        }
        at = data + n as u64;
    }
    Ok(())
}

/// The host errno of a model error.
fn host_errno(e: &teeheap_kernel::Error) -> Errno {
    Errno::from_raw_os_error(e.errno().raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use teeheap_kernel::Kernel;
    use teeheap_platform::Master;

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

    #[test]
    fn system_buffer_is_backed_at_its_first_mmap_with_what_dram_holds() {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let reg = Registry::new(Arc::clone(&platform)).unwrap();
        let heap = kernel.dma_heaps().open("system").unwrap();
        let buf = heap.allocate(3 * 4096, 0, 0).unwrap();
        let ranges = buf.sg_table().ranges().to_vec();
        let (backing, client) = reg.serve(File::new(Arc::clone(&buf)), Access::ReadWrite).unwrap();
        assert_eq!(platform.ram().backed_ranges(), 0, "nothing mapped before an mmap");
        // A device writes before any program mapping: the program must see it.
        assert!(ranges[0].len() >= 2 * 4096, "the system heap gives contiguous pages here");
        let at = ranges[0].start().checked_add(4096 + 5).unwrap();
        platform.write(Master::VideoDecoder, at, b"from the device").unwrap();
        let id = backing.identity().unwrap();
        assert_eq!(reg.mmap_policy(&id, |_| true), Some(MmapPolicy::Native { size: 3 * 4096 }));
        assert_eq!(platform.ram().backed_ranges(), ranges.len());
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
        // A second mmap does not map again.
        assert_eq!(reg.mmap_policy(&id, |_| true), Some(MmapPolicy::Native { size: 3 * 4096 }));
        assert_eq!(platform.ram().backed_ranges(), ranges.len());
        // SAFETY: the mapping made above, no longer used.
        unsafe { rustix::mm::munmap(p.cast(), 3 * 4096).unwrap() };
        drop(client);
        let t0 = std::time::Instant::now();
        while reg.counts().buffers != 0 && t0.elapsed() < Duration::from_secs(5) {
            reg.reap(Duration::from_millis(50));
        }
        assert_eq!(reg.counts().buffers, 0);
        assert_eq!(platform.ram().backed_ranges(), 0);
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
        let (b, c) = reg.serve(File::new(buf), Access::ReadWrite).unwrap();
        assert_eq!(lock(&reg.spares).len(), SPARES - 1, "a spare was taken");
        assert_eq!(rustix::fs::seek(&c, rustix::fs::SeekFrom::End(0)).unwrap(), 4096);
        assert_eq!(FileId::of(&c).unwrap(), b.identity().unwrap());
        // A read-only description is made fresh.
        let buf = heap.allocate(4096, 0, 0).unwrap();
        let (_, ro) = reg.serve(File::new(buf), Access::ReadOnly).unwrap();
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
        assert_eq!(reg.mmap_policy(&id, |_| true), Some(MmapPolicy::Refuse(Errno::NODEV)));
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
