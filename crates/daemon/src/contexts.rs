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

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use teeheap_sync::Recover;

use rustix::fs::{Mode, OFlags};
use teeheap_intercept::Errno;
use teeheap_intercept::memfd::FileId;
use teeheap_intercept::tag::{MAX_TAG, Tag};
use teeheap_kernel::file::File;

/// The live contexts by node inode and tag, and per node a description
/// of the daemon's own from which tags are checked (one per node, not per
/// context, so a program's contexts cost the daemon no fds).
#[derive(Debug, Default)]
struct Live {
    contexts: HashMap<(FileId, Tag), File>,
    probes: HashMap<FileId, OwnedFd>,
    /// Nodes whose probe was given ([`Contexts::pin_probe`]): kept while
    /// no context is live, and the daemon opens no other.
    pinned: HashSet<FileId>,
}

/// The live TEE contexts, by node inode and tag.
#[derive(Debug, Default)]
pub struct Contexts {
    live: Mutex<Live>,
    /// Held while a new context is made and tagged, so that two threads'
    /// first calls on one description make one context, not two.
    opening: Mutex<()>,
    random: RandomState,
    drawn: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().recover()
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
        if let Some(f) = self.find(desc, node)? {
            return Ok(f);
        }
        let _opening = lock(&self.opening);
        // Another thread's first call may have tagged it meanwhile.
        if let Some(f) = self.find(desc, node)? {
            return Ok(f);
        }
        // Opened for every new context (rare) and kept if the node has no
        // probe then: a sweep may drop the node's probe meanwhile. None
        // for a node with a pinned probe (an open of it would be counted).
        let pinned = lock(&self.live).pinned.contains(&node);
        let probe = if pinned { None } else { Some(reopen(desc).map_err(ContextError::Host)?) };
        let file = open().map_err(ContextError::Kernel)?;
        for _ in 0..16 {
            let tag = self.draw();
            if lock(&self.live).contexts.contains_key(&(node, tag)) {
                continue;
            }
            match tag.set(desc) {
                Ok(true) => {
                    let mut live = lock(&self.live);
                    live.contexts.insert((node, tag), file.clone());
                    if let Some(probe) = probe {
                        live.probes.entry(node).or_insert(probe);
                    }
                    return Ok(file);
                }
                Ok(false) => continue,
                Err(e) => return Err(ContextError::Host(e)),
            }
        }
        Err(ContextError::Host(Errno::NOLCK))
    }

    /// The context of `desc` if it holds a live tag; `Ok(None)` if it
    /// holds none and may get one.
    fn find(&self, desc: &OwnedFd, node: FileId) -> Result<Option<File>, ContextError> {
        let (tags, complete) = Tag::held_by(desc).map_err(ContextError::Host)?;
        let found = {
            let live = lock(&self.live);
            tags.iter().find_map(|t| live.contexts.get(&(node, *t)).map(|f| (*t, f.clone())))
        };
        if let Some((tag, f)) = found {
            // A read-locked tag (a read-only description) could be locked
            // by another description too, by someone who read it in
            // /proc/locks: a tag another description also holds names no
            // context (nor for its first holder, which that other process
            // could harm anyway).
            return match tag.held(desc) {
                Ok(false) => Ok(Some(f)),
                Ok(true) => Err(ContextError::Host(Errno::NOLCK)),
                Err(e) => Err(ContextError::Host(e)),
            };
        }
        if !complete {
            // The program buried its description's tag (if any) under its
            // own locks: no new context for it, or each call would make one.
            return Err(ContextError::Host(Errno::NOLCK));
        }
        Ok(None)
    }

    /// A random tag in `1..=MAX_TAG`.
    fn draw(&self) -> Tag {
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        Tag(self.random.hash_one(n) % MAX_TAG + 1)
    }

    /// Releases every context whose description is gone (its tag no longer
    /// held), and the probes of nodes left without a context. Returns how
    /// many contexts. The model files are dropped after the lock is
    /// released.
    pub fn sweep(&self) -> usize {
        let gone: Vec<File> = {
            let mut live = lock(&self.live);
            let Live { contexts, probes, pinned } = &mut *live;
            let dead: Vec<(FileId, Tag)> = contexts
                .keys()
                .filter(|(node, t)| probes.get(node).is_none_or(|p| !t.held(p).unwrap_or(false)))
                .copied()
                .collect();
            let gone = dead.iter().filter_map(|k| contexts.remove(k)).collect();
            probes.retain(|node, _| pinned.contains(node) || contexts.keys().any(|(n, _)| n == node));
            gone
        };
        let n = gone.len();
        if n > 0 {
            tracing::debug!(n, "TEE contexts released");
        }
        drop(gone);
        n
    }

    /// Uses `probe` (a description of the node `node` the daemon opened
    /// before anyone could count it) as the node's probe until
    /// [`Contexts::unpin_probe`]; no other description of the node is
    /// opened meanwhile (`/dev/teepriv0` under the open gate, supp_gate.rs).
    pub fn pin_probe(&self, node: FileId, probe: OwnedFd) {
        let old = {
            let mut live = lock(&self.live);
            live.pinned.insert(node);
            live.probes.insert(node, probe)
        };
        drop(old);
    }

    /// Ends [`Contexts::pin_probe`] for `node` (its run is over).
    pub fn unpin_probe(&self, node: FileId) {
        let old = {
            let mut live = lock(&self.live);
            live.pinned.remove(&node);
            live.probes.remove(&node)
        };
        drop(old);
    }

    /// Live contexts.
    pub fn len(&self) -> usize {
        lock(&self.live).contexts.len()
    }

    /// Whether there is no live context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every context (daemon shutdown).
    pub fn clear(&self) {
        let all: Vec<File> = {
            let mut live = lock(&self.live);
            live.probes.clear();
            live.pinned.clear();
            live.contexts.drain().map(|(_, f)| f).collect()
        };
        drop(all);
    }
}

/// Another description of the inode behind `fd`, read-only, through
/// `/proc/self/fd` (for a device node this opens the device again).
fn reopen(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    let p = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    rustix::fs::open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description_of(node: &OwnedFd) -> OwnedFd {
        let p = format!("/proc/self/fd/{}", node.as_raw_fd());
        rustix::fs::open(p.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn a_context_lives_as_long_as_its_description() {
        let daemon = crate::Daemon::start(&crate::DaemonConfig::default()).unwrap();
        let kernel = daemon.kernel();
        let node = rustix::fs::memfd_create("tee0", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let id = FileId::of(&node).unwrap();
        let ctxs = Contexts::default();
        let a = description_of(&node);
        let b = description_of(&node);
        let fa = ctxs.get_or_open(&a, id, || kernel.tee_open("tee0")).unwrap();
        let dup = rustix::io::dup(&a).unwrap();
        let again = ctxs.get_or_open(&dup, id, || panic!("a dup is the same context")).unwrap();
        assert!(fa.ptr_eq(&again));
        ctxs.get_or_open(&b, id, || kernel.tee_open("tee0")).unwrap();
        assert_eq!(ctxs.len(), 2);
        assert_eq!(ctxs.sweep(), 0);
        drop((a, fa, again));
        assert_eq!(ctxs.sweep(), 0, "the dup keeps the description");
        drop(dup);
        assert_eq!(ctxs.sweep(), 1);
        drop(b);
        assert_eq!(ctxs.sweep(), 1);
        assert!(ctxs.is_empty());
        assert!(lock(&ctxs.live).probes.is_empty(), "no probe without a context");
    }

    #[test]
    fn a_read_locked_tag_taken_by_another_description_names_no_context() {
        let daemon = crate::Daemon::start(&crate::DaemonConfig::default()).unwrap();
        let kernel = daemon.kernel();
        let node = rustix::fs::memfd_create("tee0", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let id = FileId::of(&node).unwrap();
        let ctxs = Contexts::default();
        let ro = |n: &OwnedFd| {
            let p = format!("/proc/self/fd/{}", n.as_raw_fd());
            rustix::fs::open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap()
        };
        let a = ro(&node);
        ctxs.get_or_open(&a, id, || kernel.tee_open("tee0")).unwrap();
        let (tags, _) = Tag::held_by(&a).unwrap();
        // Another read-only description read-locks the same byte.
        let thief = ro(&node);
        assert!(tags[0].set(&thief).is_ok_and(|set| !set), "set() sees the holder and refuses");
        let mut l =
            libc::flock { l_type: libc::F_RDLCK as i16, l_whence: 0, l_start: tags[0].0 as i64, l_len: 1, l_pid: 0 };
        // SAFETY: a live flock for the call.
        assert_eq!(unsafe { libc::fcntl(thief.as_raw_fd(), libc::F_OFD_SETLK, &mut l as *mut libc::flock) }, 0);
        let r = ctxs.get_or_open(&thief, id, || panic!("no new context for a forged tag"));
        assert!(matches!(r, Err(ContextError::Host(Errno::NOLCK))), "{r:?}");
        assert!(matches!(ctxs.get_or_open(&a, id, || panic!()), Err(ContextError::Host(Errno::NOLCK))));
        drop(thief);
        assert!(ctxs.get_or_open(&a, id, || panic!()).is_ok(), "its own again once the other lock is gone");
    }

    #[test]
    fn a_buried_tag_makes_no_new_context() {
        let daemon = crate::Daemon::start(&crate::DaemonConfig::default()).unwrap();
        let kernel = daemon.kernel();
        let node = rustix::fs::memfd_create("tee0", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let id = FileId::of(&node).unwrap();
        let ctxs = Contexts::default();
        let a = description_of(&node);
        ctxs.get_or_open(&a, id, || kernel.tee_open("tee0")).unwrap();
        // The program locks 3000 bytes of its own description, below the tag.
        for k in 0..3000u64 {
            assert!(Tag(k * 2).set(&a).unwrap());
        }
        let r = ctxs.get_or_open(&a, id, || kernel.tee_open("tee0"));
        assert!(matches!(r, Err(ContextError::Host(Errno::NOLCK))), "{r:?}");
        assert_eq!(ctxs.len(), 1);
        drop(a);
        assert_eq!(ctxs.sweep(), 1);
    }
}
