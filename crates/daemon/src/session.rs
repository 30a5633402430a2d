//! A supervised program tree: one seccomp listener, received by one
//! thread and answered by a bounded pool of workers ([`crate::workers`]).
//!
//! Calls of different threads and processes of the tree are served at
//! once, as the kernel does: a call in a long TA invoke does not delay an
//! ALLOC of another thread. A program thread has one call in flight at a
//! time, so its own calls keep their order. Trees never wait for each
//! other (each has its own threads), and the shared state is only locked
//! for map look-ups, never across a call into a client process, a TA or
//! the secure world (docs/concurrency.md).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use teeheap_sync::Recover;

use teeheap_intercept::Errno;
use teeheap_intercept::memfd::FileId;
use teeheap_intercept::notify::{Listener, Notification, Readiness, Response};
use teeheap_intercept::target::Target;
use teeheap_kernel::file::File;
use teeheap_kernel::uaccess::UserPtr;

use crate::Shared;
use crate::client::{ClientFiles, ClientMemory};
use crate::contexts::ContextError;
pub use crate::rundev::Node;
use crate::workers::{self, Workers};
use teeheap_uapi::tee::{TEE_IOC_SHM_ALLOC, TEE_IOC_SUPPL_RECV, TEE_IOC_SUPPL_SEND};

/// A supervised program tree.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: Listener,
    pub(crate) nodes: crate::rundev::NodeMap,
    /// pidfds of recent callers by thread id (see [`Session::target`]).
    pub(crate) targets: Mutex<HashMap<i32, Arc<Target>>>,
}

/// Most callers whose pidfd a session keeps; past it the cache starts over.
const TARGET_CACHE: usize = 256;

impl Session {
    /// Serves calls until every process of the tree has exited or the
    /// daemon shuts down. Returns whether the tree is known to be gone
    /// (the listener hung up).
    pub(crate) fn run(self: Arc<Self>) -> bool {
        tracing::info!(session = self.id, "supervising");
        let me = Arc::clone(&self);
        let serve: Arc<dyn Fn(Notification) + Send + Sync> = Arc::new(move |n| me.answer(n));
        let workers =
            Workers::new(format!("teeheap-s{}-call", self.id), workers::MAX_WORKERS, workers::MAX_QUEUED, serve);
        let gone = self.receive(&workers);
        // Calls in flight are answered (or find their caller gone) first.
        workers.finish();
        tracing::info!(session = self.id, "leaving the program tree");
        gone
    }

    /// Receives notifications and hands them to `workers` until the tree
    /// is gone (`true`) or the daemon shuts down or the listener fails.
    fn receive(&self, workers: &Workers<Notification>) -> bool {
        loop {
            if self.shared.shutdown.load(Ordering::Relaxed) {
                tracing::info!(session = self.id, "daemon shutting down; leaving the program");
                break;
            }
            match self.listener.poll(Some(Duration::from_millis(200))) {
                Ok(Readiness::Ready) => {}
                Ok(Readiness::Timeout) => continue,
                Ok(Readiness::Hangup) => {
                    tracing::info!(session = self.id, "program tree gone");
                    return true;
                }
                Err(e) => {
                    tracing::error!(session = self.id, error = %e, "poll on the listener failed");
                    break;
                }
            }
            let n = match self.listener.recv() {
                Ok(n) => n,
                Err(Errno::NOENT | Errno::INTR) => continue,
                Err(e) => {
                    tracing::error!(session = self.id, error = %e, "receiving a notification failed");
                    break;
                }
            };
            self.shared.calls.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "test-hooks")]
            if n.ioctl().is_some_and(|c| c.cmd.0 == crate::guard::test_hooks::SESSION_PANIC_IOCTL) {
                panic!("test hook: the session thread itself fails");
            }
            // A supplicant's calls never wait behind calls that wait for
            // them (an open session waiting on LOAD_TA holds a worker, and
            // the supplicant serves its SHM_ALLOC with TEE_IOC_SHM_ALLOC;
            // a program's SHM_ALLOC is as short, so the number alone
            // decides, without reaching the fd first).
            match n.ioctl() {
                Some(c) if [TEE_IOC_SUPPL_RECV, TEE_IOC_SUPPL_SEND, TEE_IOC_SHM_ALLOC].contains(&c.cmd.0) => {
                    workers.submit_urgent(n)
                }
                _ => workers.submit(n),
            }
            // Past the queue bound, further calls wait in the kernel.
            while !workers.wait_room(Duration::from_millis(200)) {
                if self.shared.shutdown.load(Ordering::Relaxed) {
                    return false;
                }
            }
        }
        false
    }

    /// Serves `n` and answers it (on a worker thread).
    fn answer(&self, n: Notification) {
        // A panic answers this call with EIO and is logged (guard.rs).
        let what = || match n.ioctl() {
            Some(c) => format!("ioctl {:#x} on fd {} of pid {}", c.cmd.0, c.fd, n.pid),
            None => format!("a call of pid {}", n.pid),
        };
        let r = self.shared.serve_one(what, Some(n.pid), || self.handle(&n)).unwrap_or(Response::Errno(Errno::IO));
        match self.listener.respond(n.id, r) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => tracing::warn!(session = self.id, error = %e, "answering a call failed"),
        }
    }

    /// The caller of `n`, by a pidfd opened for an earlier call of the same
    /// thread when that thread is still alive, else by a new one.
    ///
    /// A cached pidfd names a thread that was alive with this tid; while it
    /// lives, the tid is its own, so it is the caller. Once it has died,
    /// `pidfd_getfd` on the pidfd fails with `ESRCH` and [`Session::get_fd`]
    /// opens a fresh one. A fresh pidfd names the caller only if the call is
    /// still pending afterwards, hence the `id_valid` check.
    fn target(&self, n: &Notification, fresh: bool) -> Result<Arc<Target>, Errno> {
        if !fresh && let Some(t) = self.targets.lock().recover().get(&n.pid) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(Target::open(n.pid).map_err(|_| Errno::SRCH)?);
        if !self.listener.id_valid(n.id) {
            return Err(Errno::SRCH);
        }
        let mut cache = self.targets.lock().recover();
        if cache.len() >= TARGET_CACHE {
            cache.clear();
        }
        cache.insert(n.pid, Arc::clone(&t));
        Ok(t)
    }

    /// The node of the run's `/dev` with inode `id`, if it is one.
    fn node(&self, id: &FileId) -> Option<Node> {
        self.nodes.lock().recover().get(id).cloned()
    }

    /// The caller's fd `fd` (a dup of its description), refreshing a stale
    /// cached pidfd. Returns the target it was reached through.
    fn get_fd(&self, n: &Notification, fd: i32) -> (Result<Arc<Target>, Errno>, Result<std::os::fd::OwnedFd, Errno>) {
        let target = match self.target(n, false) {
            Ok(t) => t,
            Err(e) => return (Err(e), Err(e)),
        };
        match target.get_fd(fd) {
            Err(Errno::SRCH) => match self.target(n, true) {
                Ok(t) => {
                    let f = t.get_fd(fd);
                    (Ok(t), f)
                }
                Err(e) => (Err(e), Err(e)),
            },
            f => (Ok(target), f),
        }
    }

    fn handle(&self, n: &Notification) -> Response {
        if n.nr == teeheap_intercept::arch::Sysno::LSEEK {
            return self.lseek(n);
        }
        let Some(call) = n.ioctl() else { return Response::Continue };
        let (target, f) = self.get_fd(n, call.fd);
        let Ok(target) = target else { return Response::Errno(Errno::SRCH) };
        let f = match f {
            Ok(f) => f,
            Err(Errno::BADF) => return Response::Errno(Errno::BADF),
            // The daemon's own table full: ENOMEM, as for the files it makes.
            Err(e @ (Errno::MFILE | Errno::NFILE)) => {
                return Response::Errno(self.shared.registry.short_of_files(e, "reaching a caller's fd"));
            }
            Err(e) => {
                tracing::warn!(session = self.id, pid = n.pid, error = %e, "cannot reach the caller's fd");
                return Response::Errno(e);
            }
        };
        let Ok(id) = FileId::of(&f) else { return Response::Continue };
        let file = match self.shared.registry.file(&id) {
            Some(file) => file,
            None => match self.node(&id).as_ref() {
                None => return Response::Continue, // not ours: runs natively
                #[cfg(feature = "test-hooks")]
                Some(Node::Heap(_)) if call.cmd.0 == crate::guard::test_hooks::PANIC_IOCTL => {
                    self.shared.panic_holding_locks()
                }
                Some(Node::Heap(Some(heap))) => heap.clone(),
                // The heap went before the node was served: as a removed one.
                Some(Node::Heap(None)) => return Response::Errno(Errno::NODEV),
                // The context is the program's own description of the node.
                Some(Node::Tee(name)) => match self.shared.contexts.get_or_open(&f, id, || self.open_context(name)) {
                    Ok(f) => f,
                    Err(ContextError::Kernel(e)) => return errno(&e),
                    Err(ContextError::Host(e)) => {
                        tracing::warn!(session = self.id, pid = n.pid, error = %e, "cannot tag a TEE context");
                        return Response::Errno(e);
                    }
                },
                // So is a DRM file (its GEM handles are per open file) and
                // a V4L2 codec instance (its queues are per open file).
                Some(node @ (Node::Drm(path) | Node::Video(path))) => {
                    let open = || match node {
                        Node::Drm(_) => self.shared.kernel.drm_open(path).map(File::new),
                        _ => self.shared.kernel.v4l2_open(path).map(File::new),
                    };
                    match self.shared.contexts.get_or_open(&f, id, open) {
                        Ok(f) => f,
                        Err(ContextError::Kernel(e)) => return errno(&e),
                        Err(ContextError::Host(e)) => {
                            tracing::warn!(session = self.id, pid = n.pid, error = %e, "cannot tag a device file");
                            return Response::Errno(e);
                        }
                    }
                }
            },
        };
        // Whether a call that waits may wait (V4L2 DQBUF), from the flags
        // of the description it came through.
        let nonblocking = rustix::fs::fcntl_getfl(&f).map_or(true, |fl| fl.contains(rustix::fs::OFlags::NONBLOCK));
        // The program's description is not kept past the call: its release
        // is the release of what it stands for.
        drop(f);
        let mut files = ClientFiles {
            registry: &self.shared.registry,
            listener: &self.listener,
            id: n.id,
            target: &target,
            shared: &self.shared,
            tid: n.pid,
            nonblocking,
        };
        let mem = ClientMemory { target: &target };
        let r = self.shared.kernel.ioctl(&file, call.cmd.0, UserPtr(call.arg.0), &mem, &mut files);
        match r {
            Ok(v) => Response::Value(v),
            Err(e) => {
                tracing::debug!(session = self.id, pid = n.pid, cmd = format_args!("{:#x}", call.cmd.0), error = %e, "ioctl failed");
                errno(&e)
            }
        }
    }

    /// An `lseek` the filter sent: one other than to offset 0 from the
    /// start or the end. A dma-buf refuses it (`EINVAL`, `dma_buf_llseek`);
    /// heap and TEE nodes, TEE contexts and TEE shm have no `llseek`
    /// (`ESPIPE`); other files seek natively. A `dup2` racing it can only
    /// make a program's own seek act on another of its own files.
    fn lseek(&self, n: &Notification) -> Response {
        let (target, f) = self.get_fd(n, n.args[0] as i32);
        if target.is_err() {
            return Response::Errno(Errno::SRCH);
        }
        let Ok(f) = f else { return Response::Continue };
        let Ok(id) = FileId::of(&f) else { return Response::Continue };
        match self.shared.registry.file(&id) {
            // Other seeks than the filter lets run natively.
            Some(file) => match file.llseek(n.args[1] as i64, n.args[2] as u32) {
                Ok(_) => Response::Continue,
                Err(e) => errno(&e),
            },
            None if self.node(&id).is_some() => Response::Errno(Errno::SPIPE),
            None => Response::Continue,
        }
    }

    /// A new context on TEE device `name`, for the first TEE ioctl on a
    /// description of its node.
    fn open_context(&self, name: &str) -> teeheap_kernel::Result<File> {
        let file = match self.shared.kernel.tee_open(name) {
            // The supplicant's description may be gone already (closed
            // right before this open) while the reaper has not seen it yet:
            // its context is released now and the open tried again.
            Err(e) if e.errno() == teeheap_kernel::Errno::EBUSY && self.shared.contexts.sweep() > 0 => {
                self.shared.kernel.tee_open(name)?
            }
            r => r?,
        };
        tracing::debug!(session = self.id, dev = name, "TEE context opened");
        Ok(file)
    }
}

fn errno(e: &teeheap_kernel::Error) -> Response {
    Response::Errno(Errno::from_raw_os_error(e.errno().raw()))
}
