//! `/dev/teepriv0` is single-open at `open` itself, as upstream OP-TEE's
//! `optee_open` (`EBUSY` while the supplicant's file is open).
//!
//! One fanotify group per daemon ([`teeheap_intercept::fanotify`]) marks
//! each run's teepriv0 inode (regular files: fanotify reports no device
//! nodes) and counts the descriptions opened on them; an open while one
//! is counted is denied with `EBUSY`, and the release of the description
//! (its last fd and mapping in any process) uncounts it. Opens of other
//! files raise no event: only those inodes are marked. Where the group cannot
//! be made (not root, Linux < 6.14) there is no gate and the kernel model
//! refuses the second context at its first ioctl instead.
//!
//! The daemon never opens a marked inode itself: the TEE context probe of
//! the node ([`crate::contexts::Contexts::pin_probe`]) is the description
//! opened before the mark, so every counted open and release is a program's.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teeheap_intercept::Errno;
use teeheap_intercept::fanotify::{GateEvent, OpenGate};
use teeheap_intercept::memfd::FileId;
use teeheap_sync::Recover;

/// The gate: the group and the open descriptions per marked inode.
#[derive(Debug)]
pub struct SuppGate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gate: OpenGate,
    /// Open descriptions of each marked inode (0 or 1: a second is denied).
    open: Mutex<HashMap<FileId, u32>>,
    /// Set once the kernel refused an errno in a denial: from then on
    /// every open is allowed (the kernel model's first-ioctl `EBUSY` stays).
    no_errno: AtomicBool,
}

/// A marked inode; dropping it removes the mark.
#[derive(Debug)]
pub struct GateMark {
    inner: Arc<Inner>,
    probe: OwnedFd,
    node: FileId,
}

impl SuppGate {
    /// The daemon's gate, or why there is none (`EPERM` without
    /// `CAP_SYS_ADMIN` in the initial user namespace, `EOPNOTSUPP` before
    /// Linux 6.14).
    pub fn new() -> Result<SuppGate, Errno> {
        Ok(SuppGate {
            inner: Arc::new(Inner { gate: OpenGate::new()?, open: Mutex::default(), no_errno: Default::default() }),
        })
    }

    /// Gates the node whose description `probe` is (opened before this
    /// call, kept by the mark; never counted).
    ///
    /// # Errors
    /// Those of `fanotify_mark` (`EINVAL` for a device node).
    pub fn watch(&self, probe: OwnedFd) -> Result<GateMark, Errno> {
        let node = FileId::of(&probe)?;
        self.inner.open.lock().recover().insert(node, 0);
        if let Err(e) = self.inner.gate.mark(probe.as_fd()) {
            self.inner.open.lock().recover().remove(&node);
            return Err(e);
        }
        Ok(GateMark { inner: Arc::clone(&self.inner), probe, node })
    }

    /// Answers the opens and counts the releases queued within `wait`.
    /// Runs on the daemon's gate thread; never blocks on anything else.
    pub fn serve(&self, wait: Duration) -> Result<(), Errno> {
        let me = std::process::id() as i32;
        for ev in self.inner.gate.read(wait)? {
            match ev {
                GateEvent::Open(req) => {
                    let no_errno = self.inner.no_errno.load(Ordering::Relaxed);
                    let deny = {
                        let mut open = self.inner.open.lock().recover();
                        let busy = open.values().any(|n| *n > 0);
                        match open.get_mut(&req.file) {
                            // Not (or no longer) gated, or the daemon's own:
                            // allowed and not counted.
                            None => false,
                            Some(_) if req.pid == me => false,
                            Some(_) if busy && !no_errno => true,
                            Some(n) => {
                                *n += 1;
                                false
                            }
                        }
                    };
                    if !deny {
                        req.allow();
                        continue;
                    }
                    let (file, pid) = (req.file, req.pid);
                    tracing::debug!(pid, "second open of teepriv0: EBUSY");
                    if let Err(e) = req.deny(Errno::BUSY) {
                        // Allowed instead: counted, and no denial from now on.
                        tracing::warn!(pid, error = %e, "the kernel refused EBUSY in an open denial; teepriv0 is single-open at the first ioctl only");
                        self.inner.no_errno.store(true, Ordering::Relaxed);
                        if let Some(n) = self.inner.open.lock().recover().get_mut(&file) {
                            *n += 1;
                        }
                    }
                }
                GateEvent::Closed { file, .. } => {
                    if let Some(n) = self.inner.open.lock().recover().get_mut(&file) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        Ok(())
    }
}

impl GateMark {
    /// The gated node.
    pub fn node(&self) -> FileId {
        self.node
    }

    /// Another fd of the probe description (opened before the mark).
    pub fn probe(&self) -> Result<OwnedFd, Errno> {
        rustix::io::fcntl_dupfd_cloexec(&self.probe, 0)
    }
}

impl Drop for GateMark {
    fn drop(&mut self) {
        // Unmarked before the probe closes: its release is not counted.
        let _ = self.inner.gate.unmark(self.probe.as_fd());
        self.inner.open.lock().recover().remove(&self.node);
    }
}
