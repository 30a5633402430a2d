//! sync_file: fences as files, so programs can wait for work (poll), pass
//! it on (fds) and combine it (merge). Mirrors drivers/dma-buf/sync_file.c.
//!
//! A [`SyncFile`] holds its fences — the leaves of what the kernel would
//! hold as one fence or a `dma_fence_array` — by `Arc`, so a fence lives
//! while any sync file (or buffer reservation) needs it. The file is
//! readable (`POLLIN`) once every fence has signalled.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use teeheap_sync::Recover;

use teeheap_uapi::dma_heap::O_CLOEXEC;
use teeheap_uapi::sync_file::{
    SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE, SYNC_IOC_SET_DEADLINE, SYNC_NAME_LEN, SyncFenceInfo, SyncFileInfo,
    SyncMergeData, SyncSetDeadline,
};
use zerocopy::IntoBytes;

use crate::dma_fence::{CallbackId, Fence, SIGNALLED_DRIVER_NAME, SIGNALLED_TIMELINE_NAME};
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{Backing, File, FileKind, FileOps, Files, PollEvents, ReadyWatch};
use crate::uaccess::{UserMemory, UserPtr, read_obj, write_obj};

/// Contexts of the containers (`dma_fence_array`) made when a sync file
/// holds several fences; counted apart from the fences' own.
static NEXT_ARRAY_CONTEXT: AtomicU64 = AtomicU64::new(1 << 62);

/// A sync file. See the module documentation.
///
/// # Invariants
/// `fences` is not empty; with more than one fence, `array` is the
/// container's `(context, seqno)`.
#[derive(Debug)]
pub struct SyncFile {
    fences: Vec<Arc<Fence>>,
    array: Option<(u64, u64)>,
    /// The name a merge gave it (NUL-terminated); empty: named after its
    /// fence.
    user_name: [u8; SYNC_NAME_LEN],
}

impl SyncFile {
    /// `sync_file_create` of the fence made of `fences` (the stub when
    /// there are none, as `EXPORT_SYNC_FILE` of an idle buffer gives).
    pub fn new(mut fences: Vec<Arc<Fence>>) -> Arc<SyncFile> {
        if fences.is_empty() {
            fences.push(Fence::stub());
        }
        let array = (fences.len() > 1).then(|| (NEXT_ARRAY_CONTEXT.fetch_add(1, Ordering::Relaxed), 1));
        Arc::new(SyncFile { fences, array, user_name: [0; SYNC_NAME_LEN] })
    }

    /// `sync_file_merge` (`dma_fence_unwrap_merge`): a new sync file named
    /// `name` (cut at 31 bytes) of the pending fences of `a` and `b`, one per
    /// timeline (the later one); if none is pending, a signalled stub
    /// carrying the latest signal time.
    pub fn merge(name: &[u8], a: &SyncFile, b: &SyncFile) -> Arc<SyncFile> {
        let mut pending: Vec<Arc<Fence>> = Vec::new();
        let mut latest = 0;
        for f in a.fences.iter().chain(&b.fences) {
            match f.timestamp_ns() {
                Some(t) => latest = latest.max(t),
                None => pending.push(Arc::clone(f)),
            }
        }
        pending.sort_by(|x, y| x.context().cmp(&y.context()).then(y.seqno().cmp(&x.seqno())));
        pending.dedup_by(|later, kept| later.context() == kept.context());
        if pending.is_empty() {
            pending.push(Fence::signalled_at(latest));
        }
        let mut merged = SyncFile::new(pending);
        let m = Arc::get_mut(&mut merged).expect("a new sync file has one reference");
        let n = name.iter().position(|&c| c == 0).unwrap_or(name.len()).min(SYNC_NAME_LEN - 1);
        m.user_name[..n].copy_from_slice(&name[..n]);
        merged
    }

    /// The fences (leaves), at least one.
    pub fn fences(&self) -> &[Arc<Fence>] {
        &self.fences
    }

    /// Whether every fence has signalled (the file polls `POLLIN`).
    pub fn is_signalled(&self) -> bool {
        self.fences.iter().all(|f| f.is_signalled())
    }

    /// `dma_fence_get_status` of its fence: 0 while any is pending, else
    /// the first error, else 1.
    pub fn status(&self) -> i32 {
        if !self.is_signalled() {
            return 0;
        }
        self.fences.iter().map(|f| f.status()).find(|&s| s < 0).unwrap_or(1)
    }

    /// Runs `cb` once when every fence has signalled (now, in this thread,
    /// if they have). Dropping the returned [`SignalWatch`] takes back the
    /// callbacks that have not run, as `sync_file_release` does.
    pub fn watch(&self, cb: impl FnOnce() + Send + 'static) -> SignalWatch {
        let left = Arc::new(AtomicUsize::new(self.fences.len()));
        let cb = Arc::new(Mutex::new(Some(cb)));
        let mut waiting = Vec::new();
        for f in &self.fences {
            let (left, cb) = (Arc::clone(&left), Arc::clone(&cb));
            let id = f.add_callback(move || {
                if left.fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(cb) = cb.lock().recover().take()
                {
                    cb();
                }
            });
            if let Some(id) = id {
                waiting.push((Arc::clone(f), id));
            }
        }
        SignalWatch { waiting }
    }

    /// `sync_file_get_name`: the merge's name, else
    /// `<driver>-<timeline><context>-<seqno>` of its fence, cut at 31 bytes.
    pub fn name(&self) -> Vec<u8> {
        if self.user_name[0] != 0 {
            let n = self.user_name.iter().position(|&c| c == 0).unwrap_or(SYNC_NAME_LEN);
            return self.user_name[..n].to_vec();
        }
        let mut s = match (self.array, self.fences.as_slice()) {
            (Some((ctx, seqno)), _) => {
                let (d, t) = if self.is_signalled() {
                    (SIGNALLED_DRIVER_NAME, SIGNALLED_TIMELINE_NAME)
                } else {
                    ("dma_fence_array", "unbound")
                };
                format!("{d}-{t}{ctx}-{seqno}")
            }
            (None, [f, ..]) => format!("{}-{}{}-{}", f.driver_name(), f.timeline_name(), f.context(), f.seqno()),
            (None, []) => String::new(),
        }
        .into_bytes();
        s.truncate(SYNC_NAME_LEN - 1);
        s
    }

    /// An ioctl on the sync file's fd (`sync_file_ioctl`): MERGE, FILE_INFO
    /// and SET_DEADLINE.
    ///
    /// # Errors
    /// `EFAULT` for unreadable or unwritable arguments; `EINVAL` for
    /// non-zero `flags`/`pad` or a `num_fences` below the count; `ENOENT`
    /// when MERGE's `fd2` is not a sync file; `EMFILE` with no free fd;
    /// `ENOTTY` for other requests.
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        match cmd {
            SYNC_IOC_MERGE => self.ioctl_merge(arg, mem, files),
            SYNC_IOC_FILE_INFO => self.ioctl_file_info(arg, mem),
            SYNC_IOC_SET_DEADLINE => {
                let d: SyncSetDeadline = read_obj(mem, arg)?;
                if d.pad != 0 {
                    return Err(einval("sync_set_deadline pad must be 0"));
                }
                // A hint to the signaller; nothing in the model runs late.
                Ok(0)
            }
            _ => Err(Error::new(Errno::ENOTTY, "unknown sync_file ioctl")),
        }
    }

    fn ioctl_merge(&self, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let mut data: SyncMergeData = read_obj(mem, arg)?;
        if data.flags != 0 || data.pad != 0 {
            return Err(einval("sync_merge_data flags and pad must be 0"));
        }
        let Some(other) = files.lookup(i64::from(data.fd2)).ok().and_then(|f| f.downcast::<SyncFile>()) else {
            return Err(Error::new(Errno::ENOENT, "fd2 is not a sync file"));
        };
        let merged = SyncFile::merge(&data.name, self, &other);
        install_and_report(File::new(merged), mem, arg, files, |fd| {
            data.fence = fd;
            data.as_bytes().to_vec()
        })
    }

    fn ioctl_file_info(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        let mut info: SyncFileInfo = read_obj(mem, arg)?;
        if info.flags != 0 || info.pad != 0 {
            return Err(einval("sync_file_info flags and pad must be 0"));
        }
        let count = self.fences.len();
        if info.num_fences == 0 {
            info.status = self.status();
        } else {
            if (info.num_fences as usize) < count {
                return Err(einval("sync_file_info num_fences below the fence count"));
            }
            // Sized by our own fence count, never by the caller's number.
            let mut out = vec![SyncFenceInfo::default(); count];
            info.status = 1;
            for (f, o) in self.fences.iter().zip(&mut out) {
                copy_name(&mut o.obj_name, f.timeline_name().as_bytes());
                copy_name(&mut o.driver_name, f.driver_name().as_bytes());
                o.status = f.status();
                o.timestamp_ns = f.timestamp_ns().unwrap_or(0);
                if info.status > 0 {
                    info.status = o.status;
                }
            }
            mem.write(UserPtr(info.sync_fence_info), out.as_bytes())
                .map_err(|_| efault("cannot write the fence infos"))?;
        }
        copy_name(&mut info.name, &self.name());
        info.num_fences = count as u32;
        write_obj(mem, arg, &info)?;
        Ok(0)
    }
}

/// A sync file's fd: its ioctls, `POLLIN` once signalled; no mmap, no
/// llseek.
impl FileOps for SyncFile {
    fn kind(&self) -> FileKind {
        FileKind::SYNC_FILE
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        SyncFile::ioctl(self, cmd, arg, mem, files)
    }

    fn backing(&self) -> Backing {
        Backing::Signal
    }

    fn poll(&self) -> PollEvents {
        if self.is_signalled() { PollEvents::IN } else { PollEvents::NONE }
    }

    fn watch_ready(&self, wake: Box<dyn FnOnce() + Send>) -> Option<ReadyWatch> {
        Some(ReadyWatch::new(self.watch(wake)))
    }
}

/// A wait for a sync file's signal ([`SyncFile::watch`]); dropping it
/// takes back the callbacks still waiting, so a fence that never signals
/// holds nothing of a waiter that is gone.
#[must_use = "dropping the watch takes its callbacks back"]
#[derive(Debug)]
pub struct SignalWatch {
    waiting: Vec<(Arc<Fence>, CallbackId)>,
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        for (f, id) in self.waiting.drain(..) {
            f.remove_callback(id);
        }
    }
}

/// `strscpy` into a fixed name field: at most 31 bytes and a NUL; the bytes
/// after the NUL stay as they were.
fn copy_name(dst: &mut [u8; SYNC_NAME_LEN], src: &[u8]) {
    let n = src.len().min(SYNC_NAME_LEN - 1);
    dst[..n].copy_from_slice(&src[..n]);
    dst[n] = 0;
}

/// Installs `file` for the caller (`O_RDONLY | O_CLOEXEC`, as the kernel's
/// `get_unused_fd_flags(O_CLOEXEC)` + anon inode file) and copies out the
/// argument `out(fd)` builds. The kernel copies out before it installs, so
/// a failing copy leaves no fd; here the argument is first written back
/// unchanged, so an unwritable one fails (`EFAULT`) before any fd exists.
pub(crate) fn install_and_report(
    file: File,
    mem: &dyn UserMemory,
    arg: UserPtr,
    files: &mut dyn Files,
    mut out: impl FnMut(i32) -> Vec<u8>,
) -> Result<i64> {
    let probe = out(-1);
    let mut was = vec![0; probe.len()];
    mem.read(arg, &mut was).map_err(|_| efault("cannot read the argument"))?;
    mem.write(arg, &was).map_err(|_| efault("cannot write the argument"))?;
    let fd = files.install(file, O_CLOEXEC)?;
    mem.write(arg, &out(fd)).map_err(|_| efault("cannot write the argument"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_pending_fences_once_per_timeline() {
        let p1 = Fence::new("dev", "ring");
        let p2 = Fence::new("dev", "ring");
        let done = Fence::new("dev", "ring");
        done.signal();
        let a = SyncFile::new(vec![Arc::clone(&p1), Arc::clone(&done)]);
        let b = SyncFile::new(vec![Arc::clone(&p2), Arc::clone(&p1)]);
        let m = SyncFile::merge(b"both\0junk", &a, &b);
        assert_eq!(m.fences().len(), 2);
        assert_eq!(m.name(), b"both");
        assert_eq!(m.status(), 0);
        let fired = Arc::new(AtomicUsize::new(0));
        let f2 = Arc::clone(&fired);
        let _watch = m.watch(move || {
            f2.fetch_add(1, Ordering::SeqCst);
        });
        let dropped = m.watch(|| panic!("a dropped watch never fires"));
        assert_eq!((p1.waiters(), p2.waiters()), (2, 2));
        drop(dropped);
        assert_eq!((p1.waiters(), p2.waiters()), (1, 1));
        p1.signal();
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        p2.signal();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert_eq!(m.status(), 1);
        // Nothing pending: one signalled stub with the latest time.
        let s = SyncFile::merge(&[b'n'; 40], &a, &m);
        assert_eq!(s.fences().len(), 1);
        assert_eq!(s.fences()[0].timestamp_ns(), p2.timestamp_ns().max(p1.timestamp_ns()));
        assert_eq!(s.name(), [b'n'; 31]);
    }

    #[test]
    fn names_follow_the_fence() {
        let idle = SyncFile::new(Vec::new());
        assert!(idle.is_signalled());
        assert_eq!(idle.name(), &b"detached-driver-signaled-timeli"[..]);
        let f = Fence::new("tee", "decoder");
        let one = SyncFile::new(vec![Arc::clone(&f)]);
        assert_eq!(one.name(), format!("tee-decoder{}-1", f.context()).into_bytes());
    }
}
