//! The files the daemon has handed to programs, by inode, and their release.
//!
//! Every model object a program holds an fd to (dma-buf, TEE context, TEE
//! shared memory) has one entry here, keyed by the `(st_dev,
//! st_ino)` of its backing memfd. The entry holds the fds' reference to the
//! model object; it is removed — and that reference dropped, exactly once —
//! when the [`CloseWatcher`] reports that the last description of the memfd
//! is gone in every process (close, exit, SIGKILL). A `system` buffer's or
//! an SHM_ALLOC's memfd is mapped over its physical range in the platform's
//! DRAM while served, so program, devices and TAs share the pages.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teeheap_intercept::Errno;
use teeheap_intercept::memfd::{BackingFile, CpuAccess, FileId};
use teeheap_intercept::watch::CloseWatcher;
use teeheap_kernel::file::File;
use teeheap_platform::{Len, PhysRange, Platform};

/// What `mmap(MAP_SHARED)` of a served file does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmapPolicy {
    /// The kernel maps the memfd natively (`system` buffer, SHM_ALLOC).
    Native,
    /// Refused with this errno (protected buffer: `EINVAL`; registered
    /// shm: `EINVAL`; TEE context: `ENODEV`).
    Refuse(Errno),
}

/// One served file.
#[derive(Debug)]
struct Served {
    file: File,
    backing: Arc<BackingFile>,
    /// Physical ranges mapped from the memfd, with their file offsets.
    backed: Vec<(PhysRange, u64)>,
}

/// Counts of served files by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServedCounts {
    /// dma-bufs.
    pub buffers: u64,
    /// TEE contexts.
    pub contexts: u64,
    /// TEE shared-memory objects.
    pub shms: u64,
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
    watcher: Mutex<CloseWatcher<FileId>>,
    /// A second fd of the watcher's inotify instance, polled without a lock.
    events: OwnedFd,
    released: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            watcher: Mutex::new(watcher),
            events,
            released: AtomicU64::new(0),
        })
    }

    /// The model file behind the served inode `id`, if it is one of ours.
    pub fn file(&self, id: &FileId) -> Option<File> {
        lock(&self.entries).get(id).map(|s| s.file.clone())
    }

    /// What a shared mmap of the served inode `id` does, or `None` if the
    /// inode is not ours.
    pub fn mmap_policy(&self, id: &FileId) -> Option<MmapPolicy> {
        let entries = lock(&self.entries);
        let s = entries.get(id)?;
        Some(match (&s.file, s.backing.cpu_access()) {
            (File::Tee(_) | File::DmaHeap(_), _) => MmapPolicy::Refuse(Errno::NODEV),
            (_, CpuAccess::Mappable) => MmapPolicy::Native,
            (_, CpuAccess::None) => MmapPolicy::Refuse(Errno::INVAL),
        })
    }

    /// Starts serving `file`: makes its memfd, maps it over the file's
    /// physical memory if the CPU may touch it, records it and watches it.
    /// The caller then opens descriptions for programs from the returned
    /// backing file; once all are gone the entry is released.
    ///
    /// # Errors
    /// `EINVAL` for a heap node (never served this way); `ENOMEM`/`EMFILE`
    /// if the memfd cannot be made; `EBUSY` if the pages are already
    /// backed; `ENOSPC` past the inotify watch limit.
    pub fn serve(&self, file: File) -> Result<Arc<BackingFile>, Errno> {
        let (name, size, cpu, ranges): (&str, u64, CpuAccess, Vec<PhysRange>) = match &file {
            File::DmaBuf(b) if b.is_protected() => ("dmabuf", b.size().bytes(), CpuAccess::None, Vec::new()),
            File::DmaBuf(b) => ("dmabuf", b.size().bytes(), CpuAccess::Mappable, b.sg_table().ranges().to_vec()),
            File::TeeShm(s) => {
                let size = Len::page_align(s.size()).map_or(4096, |l| l.bytes());
                match s.mappable_range() {
                    Ok(r) => ("tee_shm", size, CpuAccess::Mappable, vec![r]),
                    Err(_) => ("tee_shm", size, CpuAccess::None, Vec::new()),
                }
            }
            File::Tee(_) => ("tee_ctx", 4096, CpuAccess::None, Vec::new()),
            File::DmaHeap(_) => return Err(Errno::INVAL),
        };
        let backing = Arc::new(BackingFile::create(name, size, cpu)?);
        let id = backing.identity()?;
        let mut backed = Vec::new();
        let mut offset = 0u64;
        for r in ranges {
            if let Err(e) = self.platform.ram().back_with(r, backing.as_fd(), offset) {
                self.unback(&backed, None);
                return Err(e);
            }
            backed.push((r, offset));
            offset += r.len();
        }
        // Entry first, watch second: the reaper may report the key as soon
        // as the watch exists and must then find the entry.
        lock(&self.entries).insert(id, Served { file, backing: Arc::clone(&backing), backed: backed.clone() });
        if let Err(e) = lock(&self.watcher).watch(backing.as_fd(), id) {
            if let Some(s) = lock(&self.entries).remove(&id) {
                self.unback(&s.backed, None);
            }
            return Err(e);
        }
        Ok(backing)
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
        let Some(s) = lock(&self.entries).remove(&id) else { return };
        // If the model still holds the buffer (a TEE registration, an
        // attachment), it keeps what the program wrote.
        let still_used = match &s.file {
            File::DmaBuf(b) => Arc::strong_count(b) > 1,
            File::TeeShm(sh) => Arc::strong_count(sh) > 1,
            _ => false,
        };
        self.unback(&s.backed, still_used.then_some(&*s.backing));
        tracing::debug!(ino = id.ino, kind = kind(&s.file), "served file released");
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

    /// Drops every entry (daemon shutdown).
    pub fn clear(&self) {
        let ids: Vec<FileId> = lock(&self.entries).keys().copied().collect();
        for id in ids {
            self.release(id);
        }
    }

    /// Served files by kind.
    pub fn counts(&self) -> ServedCounts {
        let mut c = ServedCounts::default();
        for s in lock(&self.entries).values() {
            match s.file {
                File::DmaBuf(_) => c.buffers += 1,
                File::Tee(_) => c.contexts += 1,
                File::TeeShm(_) => c.shms += 1,
                File::DmaHeap(_) => {}
            }
        }
        c
    }

    /// Files released since start.
    pub fn released_total(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }
}

fn kind(f: &File) -> &'static str {
    match f {
        File::DmaHeap(_) => "heap",
        File::DmaBuf(_) => "dma-buf",
        File::Tee(_) => "tee-context",
        File::TeeShm(_) => "tee-shm",
    }
}
