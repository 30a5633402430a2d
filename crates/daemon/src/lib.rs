//! The teeheap daemon: owns one platform, the kernel model on it and the TEE
//! backend, and serves them to unmodified programs (see `docs/serving.md`)
//! and to `teeheap` commands over a control socket.
//!
//! Threads: per supervised program tree ([`session`]) one that receives
//! its calls and up to [`workers::MAX_WORKERS`] that answer them at once, one reaper that
//! releases served files whose last reference is gone ([`served`]), one
//! that keeps spare memfds ready for new buffers ([`served::Registry::refill`]),
//! one that keeps the programs' sysfs/debugfs views ([`views`]) up to date,
//! one accept thread plus one per control connection ([`control`]). They share
//! [`Shared`] through an `Arc`; its maps are locked only for look-ups and
//! inserts, never across a call into a client process, so a stalled client
//! stalls only its own thread. [`Daemon::shutdown`] (or drop) stops them all
//! and removes the backend.

// The daemon has no unsafe code (it reaches the system through the
// intercept edge); only its unit tests map memory as a program would.
#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod admin;
pub mod backend;
pub mod client;
pub mod contexts;
pub mod control;
pub mod events;
pub mod farewell;
pub mod guard;
pub mod holders;
pub mod inject;
pub mod limits;
pub mod observe;
pub mod paths;
pub mod privilege;
pub mod protocol;
pub mod reach;
pub mod report;
pub mod rundev;
pub mod served;
pub mod session;
pub mod supp_gate;
pub mod views;
pub mod workers;

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use teeheap_sync::Recover;

use teeheap_intercept::memfd::FileId;
use teeheap_intercept::notify::Listener;
use teeheap_intercept::ns::{Namespace, NsKind};
use teeheap_kernel::Kernel;
use teeheap_platform::{Platform, PlatformConfig};

use crate::backend::{Backend, Host};
use crate::control::ControlServer;
use crate::events::EventLog;
use crate::privilege::{Caller, Rights, Runs};
use crate::protocol::{HeapRow, Listing, NodeId, Reply, Request, Stats};
use crate::report::Caps;
use crate::served::Registry;
use crate::session::{Node, Session};

/// A session thread's last act, also when it panics outside a call (then
/// as a failed session: no last frame, so its launcher ends the program;
/// the run's identity is kept, as its processes may still be alive).
struct SessionEnd {
    shared: Arc<Shared>,
    id: u64,
    pid: i32,
    gone: bool,
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        let s = &self.shared;
        s.end_run(self.pid, self.gone);
        let dev = s.runs.lock().recover().remove(&self.id);
        if let Some(node) = dev.as_ref().and_then(|d| d.gated_node()) {
            s.contexts.unpin_probe(node);
        }
        drop(dev);
        if self.gone {
            s.identities.remove(self.id);
        }
        s.sessions_live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long the gate thread waits for events before it looks at shutdown.
const GATE_WAIT: Duration = Duration::from_millis(200);

/// Most program trees one daemon supervises at once; more are refused.
pub const MAX_SESSIONS: u64 = 1024;

/// Errors of starting a daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The platform description could not be loaded or booted.
    #[error("platform: {0}")]
    Platform(String),
    /// The secure world refused the platform description's `[tee]`
    /// provisioning.
    #[error("the secure world refused the platform description: {0}")]
    SecureWorld(teeheap_secure_world::SecureWorldError),
    /// The backend's probe failed.
    #[error("backend probe failed: {0}")]
    Backend(teeheap_kernel::Error),
    /// A host resource (inotify, thread, socket) was refused.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// How to start a daemon.
#[derive(Clone, Debug, Default)]
pub struct DaemonConfig {
    /// Platform description (TOML); the embedded default when `None`.
    pub platform: Option<PathBuf>,
    /// Faults to inject besides the description's `[[inject]]` tables.
    pub inject: Vec<teeheap_platform::fault::spec::Spec>,
    /// Seed of the `prob=` faults; random (and logged) when `None`.
    pub seed: Option<u64>,
}

/// State shared by the daemon's threads.
#[derive(Debug)]
pub struct Shared {
    kernel: Arc<Kernel>,
    registry: Registry,
    host: Host,
    /// The bound backend; `None` while unbound.
    backend: Mutex<Option<Backend>>,
    backend_name: &'static str,
    events: Arc<EventLog>,
    started: Instant,
    caps: Caps,
    /// Allocations refused by a cap.
    refusals: Mutex<observe::Refusals>,
    shutdown: AtomicBool,
    calls: AtomicU64,
    sessions_live: AtomicU64,
    sessions_total: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The launcher's connection of each supervised run, by pid
    /// (farewell.rs).
    farewells: Mutex<HashMap<i32, std::os::unix::net::UnixStream>>,
    /// `/sys/kernel/dmabuf` and debugfs `dma_buf/bufinfo` for the runs;
    /// `None` if the directory could not be made.
    views: Option<views::Views>,
    /// TEE contexts, each a program's description of a `/dev/tee*` node.
    contexts: contexts::Contexts,
    /// The private `/dev` of each live session, by session number.
    runs: Mutex<HashMap<u64, rundev::RunDev>>,
    /// The live runs' identities and rights (docs/threat-model.md).
    identities: Runs,
    /// The fault injector (docs/fault-injection.md).
    inject: Arc<inject::Injector>,
    /// `/dev/teepriv0` single-open at `open`; `None` where fanotify
    /// cannot answer opens (supp_gate.rs).
    supp_gate: Option<supp_gate::SuppGate>,
}

/// A running daemon. See the crate documentation.
#[derive(Debug)]
pub struct Daemon {
    shared: Arc<Shared>,
    reaper: Option<JoinHandle<()>>,
    gate: Option<JoinHandle<()>>,
    views: Option<JoinHandle<()>>,
    spares: Option<JoinHandle<()>>,
    injecting: Option<JoinHandle<()>>,
    control: Vec<ControlServer>,
}

impl Daemon {
    /// Boots the platform of `config`, the kernel model and the backend,
    /// and starts the reaper. No socket yet: see [`Daemon::listen`]. The
    /// calling process becomes non-dumpable ([`reach`]).
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub fn start(config: &DaemonConfig) -> Result<Daemon, DaemonError> {
        // Before the platform's memory exists (reach.rs).
        reach::keep_out_same_uid()?;
        let cfg = match &config.platform {
            Some(p) => PlatformConfig::load(p).map_err(|e| match e {
                // Names the file already.
                teeheap_platform::config::ConfigError::Io { .. } => DaemonError::Platform(e.to_string()),
                e => DaemonError::Platform(format!("{}: {e}", p.display())),
            })?,
            None => PlatformConfig::embedded_default(),
        };
        let platform = Platform::new(cfg).map_err(|e| DaemonError::Platform(e.to_string()))?;
        Daemon::injecting(platform, &config.inject, config.seed)
    }

    /// As [`Daemon::start`], on a platform built by the caller.
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub fn with_platform(platform: Platform) -> Result<Daemon, DaemonError> {
        Daemon::injecting(platform, &[], None)
    }

    /// As [`Daemon::with_platform`], injecting the faults of the
    /// description's `[[inject]]` tables and then `inject`, with `seed`
    /// (docs/fault-injection.md).
    ///
    /// # Errors
    /// See [`DaemonError`]; `Platform` for more than
    /// [`inject::MAX_SPECS`] specs.
    pub fn injecting(
        platform: Platform,
        inject: &[teeheap_platform::fault::spec::Spec],
        seed: Option<u64>,
    ) -> Result<Daemon, DaemonError> {
        reach::keep_out_same_uid()?;
        // One descriptor (or two) per live buffer, for every program served.
        let nofile = teeheap_intercept::nofile::raise();
        tracing::info!(
            "descriptors: {} (was {})",
            teeheap_intercept::nofile::show(nofile.now.current),
            teeheap_intercept::nofile::show(nofile.was.current)
        );
        let platform = Arc::new(platform);
        let kernel = Kernel::boot(Arc::clone(&platform));
        let host = Host::boot(&kernel).map_err(DaemonError::SecureWorld)?;
        let events = Arc::new(EventLog::default());
        let log = Arc::clone(&events);
        host.world().set_scrub_observer(Some(Box::new(move |_, ev| {
            log.reclaimed(ev.cookie, ev.use_case.name(), ev.range.into());
        })));
        let backend = host.probe(&kernel).map_err(DaemonError::Backend)?;
        let caps = limits::caps(&platform.config().limits);
        let registry = Registry::new(platform).map_err(io::Error::from)?;
        let backend_name = backend.name();
        let specs: Vec<_> =
            kernel.platform().config().inject.iter().map(|i| i.spec.clone()).chain(inject.iter().cloned()).collect();
        let injector =
            Arc::new(inject::Injector::new(&specs, seed, Arc::clone(&events)).map_err(DaemonError::Platform)?);
        kernel.platform().faults().install(Arc::clone(&injector) as _);
        let shared = Arc::new(Shared {
            kernel,
            registry,
            host,
            backend: Mutex::new(Some(backend)),
            backend_name,
            events,
            started: Instant::now(),
            caps,
            refusals: Mutex::default(),
            shutdown: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            sessions_live: AtomicU64::new(0),
            sessions_total: AtomicU64::new(0),
            threads: Mutex::default(),
            farewells: Mutex::default(),
            runs: Mutex::default(),
            identities: Runs::new(),
            contexts: contexts::Contexts::default(),
            inject: Arc::clone(&injector),
            supp_gate: supp_gate::SuppGate::new()
                .inspect_err(
                    |e| tracing::info!(error = %e, "no open gate: a second teepriv0 open fails at its first ioctl"),
                )
                .ok(),
            views: views::Views::create(&views::parent_dir())
                .inspect_err(|e| tracing::warn!(error = %e, "no sysfs/debugfs views for programs"))
                .ok(),
        });
        injector.attach(Arc::downgrade(&shared));
        let gate = match shared.supp_gate.is_some() {
            true => {
                let s = Arc::clone(&shared);
                Some(std::thread::Builder::new().name("teeheap-gate".into()).spawn(move || {
                    let Some(gate) = &s.supp_gate else { return };
                    while !s.shutdown.load(Ordering::Relaxed) {
                        // A panic is logged as a bug; an unanswered open is
                        // allowed when its request is dropped.
                        let r = s.serve_one(|| "the teepriv0 open gate".into(), None, || gate.serve(GATE_WAIT));
                        if let Ok(Err(e)) = r {
                            tracing::error!(error = %e, "the teepriv0 open gate failed; it allows every open now");
                            break;
                        }
                    }
                })?)
            }
            false => None,
        };
        let s = Arc::clone(&shared);
        let reaper = std::thread::Builder::new().name("teeheap-reaper".into()).spawn(move || {
            while !s.shutdown.load(Ordering::Relaxed) {
                // A panic here is logged as a bug and the reaper goes on.
                let _ = s.serve_one(
                    || "the reaper".into(),
                    None,
                    || {
                        s.registry.reap(Duration::from_millis(200));
                        s.contexts.sweep();
                        s.events.catch_up(s.kernel.platform(), s.host.world());
                    },
                );
            }
        })?;
        // The views in a thread of their own: rewritten by the reaper after
        // every change, under an allocation storm they starved the reaping
        // itself, and released buffers piled up in the daemon (thousands of
        // memfds, EMFILE, bufinfo past MAX_FRAME). They follow changes of
        // the served set within VIEWS_EVERY, names and attachments at least
        // every second.
        const VIEWS_EVERY: Duration = Duration::from_millis(50);
        let s = Arc::clone(&shared);
        let views = std::thread::Builder::new().name("teeheap-views".into()).spawn(move || {
            let (mut seen, mut shown_at, mut frames) = (u64::MAX, Instant::now(), 0);
            while !s.shutdown.load(Ordering::Relaxed) {
                let _ = s.serve_one(
                    || "the sysfs/debugfs views".into(),
                    None,
                    || {
                        // A refresh is linear in the served buffers: with
                        // many (issue 18: 100 000) the thread waits 9 times
                        // as long as its last refresh took, so it takes at
                        // most a tenth of a CPU from the callers.
                        let mut took = Duration::ZERO;
                        if let Some(v) = &s.views {
                            let changes = s.registry.changes();
                            if changes != seen || shown_at.elapsed() >= Duration::from_secs(1) {
                                let t0 = Instant::now();
                                v.refresh(&s.registry.dma_bufs());
                                took = t0.elapsed();
                                (seen, shown_at) = (changes, Instant::now());
                            }
                            if let Some(d) = s.kernel.display()
                                && d.frames() != frames
                            {
                                frames = d.frames();
                                v.refresh_crcs(&d.crcs());
                            }
                        }
                        std::thread::sleep(VIEWS_EVERY.max(took * 9));
                    },
                );
            }
        });
        let views = match views {
            Ok(t) => t,
            Err(e) => {
                shared.shutdown.store(true, Ordering::Relaxed);
                let _ = reaper.join();
                return Err(e.into());
            }
        };
        let s = Arc::clone(&shared);
        let spares = std::thread::Builder::new().name("teeheap-spares".into()).spawn(move || {
            while !s.shutdown.load(Ordering::Relaxed) {
                let _ =
                    s.serve_one(|| "the spare memfds".into(), None, || s.registry.refill(Duration::from_millis(200)));
            }
        });
        let spares = match spares {
            Ok(t) => t,
            Err(e) => {
                shared.shutdown.store(true, Ordering::Relaxed);
                let _ = reaper.join();
                let _ = views.join();
                return Err(e.into());
            }
        };
        // Timed faults (docs/fault-injection.md).
        let s = Arc::clone(&shared);
        let injecting = std::thread::Builder::new().name("teeheap-inject".into()).spawn(move || {
            while !s.shutdown.load(Ordering::Relaxed) {
                let _ =
                    s.serve_one(|| "the timed faults".into(), None, || s.inject.tick(&s, Duration::from_millis(200)));
            }
        });
        let injecting = match injecting {
            Ok(t) => t,
            Err(e) => {
                shared.shutdown.store(true, Ordering::Relaxed);
                let _ = reaper.join();
                let _ = views.join();
                let _ = spares.join();
                return Err(e.into());
            }
        };
        shared.log_lifecycle(report::EventKind::Bind, format!("backend {backend_name} bound at start"), None);
        tracing::info!(backend = backend_name, "daemon started");
        Ok(Daemon {
            shared,
            reaper: Some(reaper),
            gate,
            spares: Some(spares),
            views: Some(views),
            injecting: Some(injecting),
            control: Vec::new(),
        })
    }

    /// Serves the control protocol on a Unix socket at `path` (its
    /// directory is created 0700 if missing; a stale socket is replaced).
    ///
    /// # Errors
    /// `AddrInUse` if a daemon answers there; bind and directory errors.
    pub fn listen(&mut self, path: &Path) -> io::Result<()> {
        self.control.push(ControlServer::bind(path, Arc::clone(&self.shared))?);
        Ok(())
    }

    /// The sockets served.
    pub fn sockets(&self) -> Vec<PathBuf> {
        self.control.iter().map(|c| c.path().to_owned()).collect()
    }

    /// The kernel model.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.shared.kernel
    }

    /// The fault injector.
    pub fn injector(&self) -> &Arc<inject::Injector> {
        &self.shared.inject
    }

    /// The shared state, to answer requests in-process.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops every thread, releases every served file and removes the
    /// backend. Programs still running lose their supervisor: their
    /// intercepted calls then fail with `ENOSYS`.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for c in &mut self.control {
            c.stop();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().recover());
        for t in threads {
            let _ = t.join();
        }
        if let Some(t) = self.spares.take() {
            let _ = t.join();
        }
        self.shared.inject.wake();
        if let Some(t) = self.injecting.take() {
            let _ = t.join();
        }
        if let Some(t) = self.views.take() {
            let _ = t.join();
        }
        if let Some(t) = self.gate.take() {
            let _ = t.join();
            // No node gated any more; opens queued meanwhile are allowed.
            let runs = std::mem::take(&mut *self.shared.runs.lock().recover());
            drop(runs);
            if let Some(g) = &self.shared.supp_gate {
                let _ = g.serve(Duration::ZERO);
            }
        }
        if let Some(r) = self.reaper.take() {
            let _ = r.join();
            // Last events, then whatever is left.
            self.shared.registry.reap(Duration::ZERO);
            self.shared.registry.clear();
            self.shared.contexts.clear();
            tracing::info!("daemon stopped");
        }
        self.shared.backend.lock().recover().take();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// Makes the run's `/dev/teepriv0` (if served) single-open at `open`:
    /// a regular file (fanotify reports no device nodes) marked in the
    /// daemon's gate, its probe pinned for the TEE contexts. Without a gate,
    /// or if a step fails, the node stays as it is (a second context is
    /// refused at its first ioctl).
    fn gate_supplicant_node(&self, dev: &mut rundev::RunDev, ids: &[(String, FileId)]) {
        let Some(gate) = &self.supp_gate else { return };
        for (path, _) in ids {
            if !self.kernel.tee().list().iter().any(|d| d.name() == path && d.is_privileged()) {
                continue;
            }
            let marked = dev.regular_tee_node(path).and_then(|probe| gate.watch(probe));
            match marked.and_then(|mark| mark.probe().map(|p| (mark, p))) {
                Ok((mark, probe)) => {
                    self.contexts.pin_probe(mark.node(), probe);
                    dev.set_gate(mark);
                }
                Err(e) => tracing::warn!(node = %path, error = %e, "no open gate on the node"),
            }
        }
    }

    /// Node paths (relative to `/dev`) for a program's private `/dev`.
    pub fn node_paths(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.kernel.dma_heaps().list().iter().map(|h| format!("dma_heap/{}", h.name().as_str())).collect();
        v.extend(self.kernel.tee().list().iter().map(|d| d.name().to_owned()));
        v.extend(self.kernel.device_nodes().into_iter().map(|d| d.path));
        v
    }

    /// The device nodes among [`Self::node_paths`] with their sysfs identity.
    pub fn device_infos(&self) -> Vec<protocol::DeviceInfo> {
        let own = |v: Vec<(&'static str, String)>| v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.kernel
            .device_nodes()
            .into_iter()
            .map(|d| protocol::DeviceInfo {
                path: d.path,
                class: d.sysfs.class.to_owned(),
                name: d.sysfs.name,
                uevent: own(d.sysfs.uevent),
            })
            .collect()
    }

    /// The heaps, as `teeheap ls` shows them.
    pub fn listing(&self) -> Listing {
        let heaps = self.heap_infos().into_iter().map(HeapRow::from).collect();
        Listing { platform: self.kernel.platform().config().name.clone(), heaps }
    }

    /// The daemon's counters.
    pub fn stats(&self) -> Stats {
        let bufs = self.kernel.dma_bufs().snapshot();
        let listing = self.listing();
        let served = self.registry.counts();
        Stats {
            buffers: bufs.len() as u64,
            bytes: bufs.iter().map(|b| b.size).sum(),
            heap_bytes_used: listing.heaps.iter().map(|h| h.used).sum(),
            heap_buffers: listing.heaps.iter().map(|h| h.buffers).sum(),
            served_buffers: served.buffers,
            served_contexts: served.contexts + self.contexts.len() as u64,
            served_shms: served.shms,
            served_sync_files: served.sync_files,
            backed_ranges: self.kernel.platform().ram().backed_ranges() as u64,
            sessions: self.sessions_live.load(Ordering::Relaxed),
            sessions_total: self.sessions_total.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            released: self.registry.released_total(),
        }
    }

    /// Answers a request that needs no fd, for a caller in this process
    /// (all rights).
    pub fn answer(&self, req: &Request) -> Reply {
        self.answer_as(req, &Caller::owner())
    }

    /// Answers a request that needs no fd for `caller`: refused with
    /// [`privilege::NOT_PERMITTED`] (and logged as `denied`) if it needs
    /// rights the caller lacks (see [`Request::needs_admin`]).
    pub fn answer_as(&self, req: &Request, caller: &Caller) -> Reply {
        if let Some(refusal) = self.check_rights(req, caller) {
            return refusal;
        }
        match req {
            Request::Hello => Reply::Hello {
                platform: self.kernel.platform().config().name.clone(),
                backend: self.backend_name.to_owned(),
                nodes: self.node_paths(),
                devices: self.device_infos(),
                views: self.views.as_ref().map(|v| v.root().to_owned()),
            },
            Request::Ls => Reply::Ls { listing: self.listing() },
            Request::Stats => Reply::Stats { stats: self.stats() },
            Request::Supervise { .. } => Reply::error("no_fd", "supervise needs the listener fd (SCM_RIGHTS)"),
            Request::Backend { action } => self.backend_action(*action),
            Request::HeapRm { name } => self.heap_rm(name),
            Request::HeapAdd { name } => self.heap_add(name),
            Request::Bufinfo => Reply::Bufinfo { bufinfo: self.bufinfo() },
            Request::Stat => Reply::Stat { stat: self.stat() },
            Request::Log { after } => Reply::Log { log: self.log(*after) },
            Request::Map => Reply::Map { map: self.memory_map() },
            Request::Crc => Reply::Crc {
                crcs: self.kernel.display().map_or_else(Vec::new, |d| {
                    d.crcs().iter().map(|c| protocol::FrameCrcRow { frame: c.frame, crc: c.crc }).collect()
                }),
            },
            Request::Devmem { master, addr, len, write } => self.devmem_as(master, *addr, *len, *write, caller),
            Request::Inject { spec } => match spec.parse() {
                Ok(spec) => match self.inject.add(spec) {
                    Ok(message) => Reply::Done { message },
                    Err(e) => Reply::error("busy", e),
                },
                Err(e) => Reply::error("bad_request", format!("{e}")),
            },
        }
    }

    /// `None` if `caller` may ask `req`; else the refusal, logged.
    fn check_rights(&self, req: &Request, caller: &Caller) -> Option<Reply> {
        if !req.needs_admin() || caller.rights == Rights::Admin {
            return None;
        }
        let what = match req {
            Request::Devmem { master, write, .. } => {
                format!("devmem {} as {master}", if *write { "write" } else { "read" })
            }
            Request::Backend { action } => format!("backend {action:?}").to_lowercase(),
            Request::HeapRm { name } => format!("heap rm {name}"),
            Request::HeapAdd { name } => format!("heap add {name}"),
            Request::Inject { spec } => format!("inject {:?}", spec.chars().take(80).collect::<String>()),
            Request::Supervise { .. } => "a run with --allow-admin".to_owned(),
            other => format!("{other:?}"),
        };
        self.log_denied(&what, caller);
        Some(Reply::error(privilege::NOT_PERMITTED, privilege::NOT_PERMITTED_MESSAGE))
    }

    /// Logs that `what` was refused to `caller` (a `denied` event and stderr).
    pub(crate) fn log_denied(&self, what: &str, caller: &Caller) {
        let msg = format!("{what} refused: {}", caller.describe());
        tracing::warn!("{msg}");
        let e = report::Event {
            kind: report::EventKind::Denied,
            message: msg,
            pid: caller.pid,
            ..report::Event::default()
        };
        self.events.push(e, self.kernel.platform(), self.host.world());
    }

    /// Starts supervising the program tree behind the seccomp `listener`,
    /// whose private `/dev` has `nodes`, with the rights of an in-process
    /// caller: its processes get all rights (see [`Shared::supervise_as`];
    /// the identity is read from `/proc/<pid>/ns`). Returns the session
    /// number.
    ///
    /// # Errors
    /// As [`Shared::supervise_as`].
    pub fn supervise(self: &Arc<Self>, listener: OwnedFd, pid: i32, nodes: &[NodeId]) -> io::Result<u64> {
        let user = Namespace::of_pid(pid, NsKind::User)?;
        let mnt = Namespace::of_pid(pid, NsKind::Mount)?;
        self.supervise_as(listener, pid, nodes, (user, mnt), Rights::Admin, &Caller::owner())
    }

    /// Starts supervising the program tree behind the seccomp `listener`,
    /// whose private `/dev` has `nodes`, and records the run's namespaces
    /// (`user`, `mnt`) with `rights` for the connections its processes
    /// make. A `caller` inside a run may only start a run nested in its own
    /// namespaces, with no more rights than its own. Returns the session
    /// number.
    ///
    /// # Errors
    /// `InvalidInput` for a node path that names nothing served here;
    /// `PermissionDenied` for a run not nested in the caller's or with more
    /// rights; `ResourceBusy` past [`MAX_SESSIONS`]; thread creation errors.
    pub fn supervise_as(
        self: &Arc<Self>,
        listener: OwnedFd,
        pid: i32,
        nodes: &[NodeId],
        (user, mnt): (Namespace, Namespace),
        rights: Rights,
        caller: &Caller,
    ) -> io::Result<u64> {
        if rights > caller.rights {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, privilege::NOT_PERMITTED_MESSAGE));
        }
        // Each session is a thread: a program starting nested runs without
        // end must not balloon the daemon. (Checked before the session is
        // counted, so concurrent requests may pass it by at most one per
        // control connection.)
        if self.sessions_live.load(Ordering::Relaxed) >= MAX_SESSIONS {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("this daemon already supervises {MAX_SESSIONS} program trees"),
            ));
        }
        if let Some(run) = caller.run
            && !self.identities.nested(run, &user, &mnt)
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("a process of run {run} may only start runs inside its own namespaces"),
            ));
        }
        let served = self.node_paths();
        let mut map = HashMap::new();
        let mut ids = Vec::new();
        for n in nodes {
            if !served.contains(&n.path) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no node {:?} here", n.path)));
            }
            let id = FileId { dev: n.dev, ino: n.ino };
            map.insert(id, Node::open(&n.path, &self.kernel));
            ids.push((n.path.clone(), id));
        }
        let id = self.sessions_total.fetch_add(1, Ordering::Relaxed) + 1;
        let map: rundev::NodeMap = Arc::new(Mutex::new(map));
        if !ids.is_empty() {
            match rundev::RunDev::open(pid, &ids, Arc::clone(&map)) {
                Ok(mut dev) => {
                    self.gate_supplicant_node(&mut dev, &ids);
                    self.runs.lock().recover().insert(id, dev);
                }
                // The run is served; only heap rm/add will not reach its /dev.
                Err(e) => tracing::warn!(session = id, pid, error = %e, "cannot reach the run's /dev"),
            }
        }
        let session = Session {
            id,
            shared: Arc::clone(self),
            listener: Listener::from_fd(listener),
            nodes: map,
            targets: Default::default(),
        };
        self.sessions_live.fetch_add(1, Ordering::Relaxed);
        // Recorded before the program runs (the launcher holds it before
        // exec until this returns); forgotten only once every process of
        // the tree is gone, so no process of it can pass for an outsider.
        self.identities.register(id, user, mnt, rights);
        self.inject.program_started();
        let s = Arc::clone(self);
        let t = std::thread::Builder::new().name(format!("teeheap-session-{id}")).spawn(move || {
            let mut end = SessionEnd { shared: s, id, pid, gone: false };
            end.gone = Arc::new(session).run();
        });
        let t = match t {
            Ok(t) => t,
            Err(e) => {
                self.runs.lock().recover().remove(&id);
                self.identities.remove(id);
                self.sessions_live.fetch_sub(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        tracing::info!(session = id, pid, ?rights, "new program tree");
        let mut threads = self.threads.lock().recover();
        threads.retain(|t| !t.is_finished());
        threads.push(t);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session that lives until `write` is closed: its "listener" is a
    /// pipe that never has a notification.
    fn pipe_session(shared: &Arc<Shared>) -> (io::Result<u64>, OwnedFd) {
        let (read, write) = rustix::pipe::pipe().unwrap();
        (shared.supervise(read, std::process::id() as i32, &[]), write)
    }

    #[test]
    fn program_trees_are_bounded() {
        let d = Daemon::start(&DaemonConfig::default()).unwrap();
        let shared = Arc::clone(d.shared());
        let (first, w) = pipe_session(&shared);
        assert!(first.is_ok());
        assert_eq!(shared.sessions_live.load(Ordering::Relaxed), 1);
        // As if MAX_SESSIONS were live.
        shared.sessions_live.fetch_add(MAX_SESSIONS - 1, Ordering::Relaxed);
        let (refused, _w2) = pipe_session(&shared);
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::ResourceBusy);
        shared.sessions_live.fetch_sub(MAX_SESSIONS - 1, Ordering::Relaxed);
        drop(w);
        let t0 = Instant::now();
        while shared.sessions_live.load(Ordering::Relaxed) != 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "the first session did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (again, _w3) = pipe_session(&shared);
        assert!(again.is_ok(), "served again below the bound");
        d.shutdown();
    }
}
