//! TEE contexts: each is the program's own open file description of a
//! `/dev/tee*` node, tagged with a random byte ([`teeheap_intercept::tag`]).
//!
//! At the first TEE ioctl on a description, the daemon opens a context in
//! the kernel model and tags the description (through its `pidfd_getfd`
//! duplicate, which it drops right after the call); later calls find the
//! context by the description's tag. Nothing is installed in the program,
//! so no fd number is ever replaced (issue 11, finding 5), and the
//! description is shared by `dup`, `fork` and `SCM_RIGHTS` as Linux's TEE
//! file is. The tag goes with the description: [`Contexts::sweep`] sees it
//! gone from a probe description of the same node and releases the
//! context.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};
use teeheap_intercept::Errno;
use teeheap_intercept::memfd::FileId;
use teeheap_intercept::tag::{MAX_TAG, Tag};
use teeheap_kernel::file::File;

/// One context: its model file and a description of the node of its own
/// from which the tag is checked.
#[derive(Debug)]
struct Ctx {
    file: File,
    probe: OwnedFd,
}

/// The live TEE contexts, by node inode and tag.
#[derive(Debug, Default)]
pub struct Contexts {
    map: Mutex<HashMap<(FileId, Tag), Ctx>>,
    random: RandomState,
    drawn: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Errors of [`Contexts::get_or_open`].
#[derive(Debug)]
pub enum ContextError {
    /// The host refused a step (fdinfo, lock, probe).
    Host(Errno),
    /// The kernel model refused to open a context.
    Kernel(teeheap_kernel::Error),
}

impl Contexts {
    /// The context of the description `desc` (this process's duplicate of
    /// a program's fd on the node with inode `node`), opened with `open`
    /// and tagged if the description has none yet.
    ///
    /// # Errors
    /// [`ContextError::Kernel`] from `open`; [`ContextError::Host`] if the
    /// description cannot be read or tagged (`ENOLCK`, `EMFILE`).
    pub fn get_or_open(
        &self,
        desc: &OwnedFd,
        node: FileId,
        open: impl FnOnce() -> teeheap_kernel::Result<File>,
    ) -> Result<File, ContextError> {
        let tags = Tag::held_by(desc).map_err(ContextError::Host)?;
        {
            let map = lock(&self.map);
            if let Some(c) = tags.iter().find_map(|t| map.get(&(node, *t))) {
                return Ok(c.file.clone());
            }
        }
        let probe = reopen(desc).map_err(ContextError::Host)?;
        let file = open().map_err(ContextError::Kernel)?;
        for _ in 0..16 {
            let tag = self.draw();
            if lock(&self.map).contains_key(&(node, tag)) {
                continue;
            }
            match tag.set(desc) {
                Ok(true) => {
                    lock(&self.map).insert((node, tag), Ctx { file: file.clone(), probe });
                    return Ok(file);
                }
                Ok(false) => continue,
                Err(e) => return Err(ContextError::Host(e)),
            }
        }
        Err(ContextError::Host(Errno::NOLCK))
    }

    /// A random tag in `1..=MAX_TAG`.
    fn draw(&self) -> Tag {
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        Tag(self.random.hash_one(n) % MAX_TAG + 1)
    }

    /// Releases every context whose description is gone (its tag no longer
    /// held). Returns how many. The model files are dropped after the
    /// lock is released.
    pub fn sweep(&self) -> usize {
        let gone: Vec<Ctx> = {
            let mut map = lock(&self.map);
            let dead: Vec<(FileId, Tag)> =
                map.iter().filter(|((_, t), c)| !t.held(&c.probe).unwrap_or(false)).map(|(k, _)| *k).collect();
            dead.iter().filter_map(|k| map.remove(k)).collect()
        };
        let n = gone.len();
        for c in gone {
            tracing::debug!("TEE context released");
            drop(c);
        }
        n
    }

    /// Live contexts.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether there is no live context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every context (daemon shutdown).
    pub fn clear(&self) {
        let all: Vec<Ctx> = lock(&self.map).drain().map(|(_, c)| c).collect();
        drop(all);
    }
}

/// Another description of the inode behind `fd`, read-only, through
/// `/proc/self/fd` (for a device node this opens the device again).
fn reopen(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    let p = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    rustix::fs::open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())
}
