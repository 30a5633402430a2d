//! Host-built TAs: a `<uuid>.ta` shared object run in its own sandboxed
//! process (`teeheap __ta-runner`), one process per TA instance, with
//! OP-TEE's instance rules.
//!
//! A [`HostInstance`] is the secure world's side of one process. It passes
//! every call with its memrefs as windows of platform memory (the DRAM
//! file itself; a bounce file where a program's file backs the range),
//! serves the TA's requests (trace lines, TA-to-TA sessions, the
//! cancellation flag) while the call runs, and turns a dead, panicking or
//! overdue process into TARGET_DEAD for every session of the instance.
//! An instance runs one call at a time: a call from another session waits
//! until the instance is free (OP-TEE's busy TA; at most the call timeout,
//! then BUSY), and a call that would
//! re-enter an instance already in a call on the same thread (a TA opening
//! a session on itself) is BUSY, as on OP-TEE.
//!
//! A [`HostTa`] is one session's hold on an instance. [`HostInstances`]
//! finds the instance for a new session: a TA with
//! `TA_FLAG_SINGLE_INSTANCE` has one instance shared by its sessions (a
//! second session without `TA_FLAG_MULTI_SESSION` while one is open is
//! BUSY, origin TEE); any other TA gets a process per session. The
//! instance ends (`TA_DestroyEntryPoint`, then the process) when its last
//! session closes, unless it is single-instance with
//! `TA_FLAG_INSTANCE_KEEP_ALIVE`.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use teeheap_platform::{AccessError, Master, PhysRange, WindowError};
use teeheap_sync::Recover;
use teeheap_ta_host::wire::{Channel, Down, NUM_PARAMS, Up, WireParam, ptype};
use teeheap_uapi::tee::gp::{TEEC_ORIGIN_TEE, TEEC_ORIGIN_TRUSTED_APP};

use crate::abi::{ParamDir, Uuid};
use crate::error::{TeeError, TeeResult};
use crate::memref::TaMemref;
use crate::ta::{ClientIdentity, TaEnv, TaParam, TrustedApp};

/// `TEE_ERROR_TARGET_DEAD`.
pub const TARGET_DEAD: TeeError = TeeError::TARGET_DEAD;

/// `TA_FLAGS` bits of `user_ta_header.h` that decide the instance rules.
pub mod flags {
    /// `TA_FLAG_SINGLE_INSTANCE`: one instance serves every session.
    pub const SINGLE_INSTANCE: u32 = 1 << 2;
    /// `TA_FLAG_MULTI_SESSION`: a single instance takes several sessions.
    pub const MULTI_SESSION: u32 = 1 << 3;
    /// `TA_FLAG_INSTANCE_KEEP_ALIVE`: a single instance outlives its last
    /// session.
    pub const INSTANCE_KEEP_ALIVE: u32 = 1 << 4;
}

/// How long a TA process may take to load and greet.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `TA_DestroyEntryPoint` may take when nobody waits for it.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a waiting call looks at its cancellation flag and deadline.
const TICK: Duration = Duration::from_millis(20);

/// Where and how host TAs run.
#[derive(Clone, Debug)]
pub struct HostTaConfig {
    /// The program that runs `__ta-runner PATH` (the `teeheap` binary).
    pub runner: PathBuf,
    /// A call (open, invoke, close) still running after this is ended:
    /// the process is killed and the client gets TARGET_DEAD.
    pub call_timeout: Option<Duration>,
}

struct Proc {
    child: Child,
    chan: Channel,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a call may change, reached only by the instance's busy holder.
struct Inner {
    proc: Option<Proc>,
    /// Sessions this instance opened on other TAs.
    nested: Vec<u32>,
}

/// Who holds the instance, and how many sessions it has.
#[derive(Default)]
struct Refs {
    sessions: usize,
    next_id: u32,
    /// Destroyed (or being destroyed): no session may join.
    gone: bool,
}

/// One TA instance: its process and its sessions (see the module docs).
pub struct HostInstance {
    uuid: Uuid,
    path: PathBuf,
    config: HostTaConfig,
    flags: u32,
    /// The process died or was ended: every call is TARGET_DEAD.
    dead: AtomicBool,
    /// The thread in a call on this instance, if any.
    busy: Mutex<Option<ThreadId>>,
    idle: Condvar,
    inner: Mutex<Inner>,
    refs: Mutex<Refs>,
}

impl std::fmt::Debug for HostInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostInstance")
            .field("uuid", &self.uuid)
            .field("path", &self.path)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// The instance is free again when dropped.
struct Busy<'a>(&'a HostInstance);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().recover() = None;
        self.0.idle.notify_one();
    }
}

/// A memref window: what goes down, and a bounce file to copy back from.
struct Window {
    fd: OwnedFdOrDram,
    bounce: Option<(usize, u64)>,
}

enum OwnedFdOrDram {
    Dram,
    Own(OwnedFd),
}

/// An error and who reports it (`TEE_ORIGIN_*`).
type Failure = (TeeError, u32);

fn tee_dead() -> Failure {
    (TARGET_DEAD, TEEC_ORIGIN_TEE)
}

impl HostInstance {
    /// Starts the TA in `path` in a process of its own and waits for it to
    /// load (`TA_CreateEntryPoint` included).
    ///
    /// # Errors
    /// ITEM_NOT_FOUND if the process does not load the TA `uuid`;
    /// OUT_OF_MEMORY if it cannot start; the create entry point's error.
    fn start(uuid: Uuid, file: TaFile, config: HostTaConfig) -> TeeResult<Arc<HostInstance>> {
        let (ours, theirs) = Channel::pair().map_err(|_| TeeError::OUT_OF_MEMORY)?;
        // An image is the process's standard output (sealed: writes to it
        // fail), loaded from /proc/self/fd/1.
        let (path, stdout) = match file {
            TaFile::Path(p) => (p, Stdio::null()),
            TaFile::Image(fd) => (PathBuf::from("/proc/self/fd/1"), Stdio::from(fd)),
        };
        let child = Command::new(&config.runner)
            .arg("__ta-runner")
            .arg(&path)
            .stdin(Stdio::from(theirs.into_fd()))
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .env_clear()
            .spawn()
            .map_err(|e| {
                tracing::error!(%uuid, runner = %config.runner.display(), error = %e, "cannot start a TA process");
                TeeError::OUT_OF_MEMORY
            })?;
        let p = Proc { child, chan: ours };
        let deadline = Instant::now() + LOAD_TIMEOUT;
        let hello = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.chan.recv(Some(left)).ok().flatten().map(|(b, _)| Up::decode(&b)) {
                Some(Ok(Up::Log { level, text })) if !left.is_zero() => log(&uuid, level, &text),
                Some(Ok(hello @ Up::Hello { .. })) => break Some(hello),
                _ => break None,
            }
        };
        match hello {
            Some(Up::Hello { uuid: got, flags, ret }) if got == uuid.0 => {
                tracing::info!(%uuid, pid = p.child.id(), flags = format_args!("{flags:#x}"), "TA process started");
                if ret != 0 {
                    return Err(TeeError::from_code(ret).unwrap_or(TeeError::GENERIC));
                }
                Ok(Arc::new(HostInstance {
                    uuid,
                    path,
                    config,
                    flags,
                    dead: AtomicBool::new(false),
                    busy: Mutex::new(None),
                    idle: Condvar::new(),
                    inner: Mutex::new(Inner { proc: Some(p), nested: Vec::new() }),
                    refs: Mutex::new(Refs::default()),
                }))
            }
            Some(Up::Hello { uuid: got, .. }) => {
                tracing::error!(path = %path.display(), uuid = %Uuid(got), "TA file does not hold the TA its name says");
                Err(TeeError::ITEM_NOT_FOUND)
            }
            _ => {
                tracing::error!(path = %path.display(), "TA process did not load the TA");
                Err(TeeError::ITEM_NOT_FOUND)
            }
        }
    }

    /// The TA's `TA_FLAGS`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    fn keep_alive(&self) -> bool {
        let both = flags::SINGLE_INSTANCE | flags::INSTANCE_KEEP_ALIVE;
        self.flags & both == both
    }

    /// Adds a session: its id in the instance, or `None` if the instance
    /// is gone (start another).
    ///
    /// # Errors
    /// BUSY for a second session of a TA without MULTI_SESSION.
    fn join(&self) -> TeeResult<Option<u32>> {
        let mut r = self.refs.lock().recover();
        if r.gone {
            return Ok(None);
        }
        if self.flags & flags::MULTI_SESSION == 0 && r.sessions > 0 {
            return Err(TeeError::BUSY);
        }
        r.sessions += 1;
        r.next_id = r.next_id.wrapping_add(1).max(1);
        Ok(Some(r.next_id))
    }

    /// Removes a session; true if that was the last and the instance is to
    /// end (then no session can join any more).
    fn leave(&self) -> bool {
        let mut r = self.refs.lock().recover();
        r.sessions = r.sessions.saturating_sub(1);
        if r.sessions == 0 && !self.keep_alive() {
            r.gone = true;
        }
        r.gone
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Waits until no call runs on the instance and takes it. The wait is
    /// bounded by the call timeout, so that two instances calling each
    /// other from two threads cannot hold both calls for ever.
    ///
    /// # Errors
    /// BUSY if this thread is in a call on the instance already, or the
    /// instance stayed busy for the whole call timeout.
    fn take(&self) -> TeeResult<Busy<'_>> {
        let me = std::thread::current().id();
        let deadline = self.config.call_timeout.map(|t| Instant::now() + t);
        let mut b = self.busy.lock().recover();
        if *b == Some(me) {
            return Err(TeeError::BUSY);
        }
        while b.is_some() {
            b = match deadline {
                None => self.idle.wait(b).recover(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        tracing::warn!(uuid = %self.uuid, "TA instance busy for the whole call timeout");
                        return Err(TeeError::BUSY);
                    }
                    self.idle.wait_timeout(b, left).recover().0
                }
            };
        }
        *b = Some(me);
        Ok(Busy(self))
    }

    fn kill(&self, inner: &mut Inner, why: &str) -> Failure {
        tracing::warn!(uuid = %self.uuid, why, "TA instance is dead");
        inner.proc = None;
        self.dead.store(true, Ordering::SeqCst);
        tee_dead()
    }

    /// Runs one call: `down` with `params` as windows, serving the TA's
    /// requests until it answers.
    fn call(
        &self,
        env: &TaEnv<'_>,
        down: impl FnOnce([WireParam; NUM_PARAMS]) -> Down,
        params: &mut [TaParam],
    ) -> Result<(), Failure> {
        let _busy = self.take().map_err(|e| (e, TEEC_ORIGIN_TEE))?;
        let mut inner = self.inner.lock().recover();
        let inner = &mut *inner;
        if self.is_dead() {
            return Err(tee_dead());
        }
        let (wire, windows) = to_wire(env, params).map_err(|e| (e, TEEC_ORIGIN_TEE))?;
        let fds: Vec<BorrowedFd<'_>> = windows
            .iter()
            .map(|w| match &w.fd {
                OwnedFdOrDram::Dram => env.memory.platform().window_file(),
                OwnedFdOrDram::Own(f) => f.as_fd(),
            })
            .collect();
        let Some(p) = inner.proc.as_ref() else { return Err(tee_dead()) };
        if p.chan.send(&down(wire).encode(), &fds).is_err() {
            return Err(self.kill(inner, "its socket is closed"));
        }
        drop(fds);
        let deadline = self.config.call_timeout.map(|t| Instant::now() + t);
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.kill(inner, "call timed out"));
            }
            let Some(p) = inner.proc.as_ref() else { return Err(tee_dead()) };
            let packet = match p.chan.recv(Some(TICK)) {
                Ok(None) => continue,
                Ok(Some((b, _))) => b,
                Err(_) => return Err(self.kill(inner, "process ended")),
            };
            let reply = match Up::decode(&packet) {
                Ok(Up::Done { ret, params: out }) => {
                    from_wire(env, params, &out, &windows);
                    return match TeeError::from_code(ret) {
                        None => Ok(()),
                        Some(e) => Err((e, TEEC_ORIGIN_TRUSTED_APP)),
                    };
                }
                Ok(Up::Log { level, text }) => {
                    log(&self.uuid, level, &text);
                    continue;
                }
                Ok(Up::Panic { code }) => {
                    tracing::warn!(ta = %self.uuid, code = format_args!("{code:#x}"), "TA panicked");
                    return Err(self.kill(inner, "TEE_Panic"));
                }
                Ok(Up::IsCancelled) => reply(0, 0, u32::from(env.is_cancelled()), [WireParam::default(); NUM_PARAMS]),
                Ok(Up::ClientIdentity) => {
                    let u = env.client.uuid.0;
                    let mut p = [WireParam::default(); NUM_PARAMS];
                    p[0].a = u64::from_be_bytes([u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]]);
                    p[0].b = u64::from_be_bytes([u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]]);
                    reply(0, 0, env.client.login, p)
                }
                Ok(Up::OpenTa { uuid, params: p }) => {
                    // The callee sees what this TA wrote so far, and this TA
                    // what the callee wrote.
                    sync_bounce(env, params, &windows, true);
                    let r = self.open_nested(env, inner, Uuid(uuid), &p, params);
                    sync_bounce(env, params, &windows, false);
                    r
                }
                Ok(Up::InvokeTa { session, cmd, params: p }) => {
                    sync_bounce(env, params, &windows, true);
                    let r = invoke_nested(env, inner, session, cmd, &p, params);
                    sync_bounce(env, params, &windows, false);
                    r
                }
                Ok(Up::CloseTa { session }) => {
                    if let Some(i) = inner.nested.iter().position(|s| *s == session) {
                        inner.nested.swap_remove(i);
                        let _ = env.world.close_session(session);
                    }
                    reply(0, 0, 0, [WireParam::default(); NUM_PARAMS])
                }
                Ok(Up::Hello { .. }) | Err(_) => return Err(self.kill(inner, "bad message")),
            };
            let Some(p) = inner.proc.as_ref() else { return Err(tee_dead()) };
            if p.chan.send(&reply.encode(), &[]).is_err() {
                return Err(self.kill(inner, "its socket is closed"));
            }
        }
    }

    /// Ends the instance: `TA_DestroyEntryPoint` (served as a call when
    /// `env` is there, else given [`DESTROY_TIMEOUT`] with only its trace
    /// lines read), the sessions it opened on other TAs, the process.
    fn destroy(&self, env: Option<&TaEnv<'_>>) {
        match env {
            Some(env) => {
                let _ = self.call(env, |_| Down::Destroy, &mut []);
            }
            None => {
                let Ok(_busy) = self.take() else { return };
                let inner = self.inner.lock().recover();
                if let Some(p) = inner.proc.as_ref().filter(|_| !self.is_dead()) {
                    if p.chan.send(&Down::Destroy.encode(), &[]).is_ok() {
                        let deadline = Instant::now() + DESTROY_TIMEOUT;
                        while let Ok(Some((b, _))) =
                            p.chan.recv(Some(deadline.saturating_duration_since(Instant::now())))
                        {
                            match Up::decode(&b) {
                                Ok(Up::Log { level, text }) => log(&self.uuid, level, &text),
                                _ => break,
                            }
                        }
                    }
                }
            }
        }
        let _busy = self.take();
        let mut inner = self.inner.lock().recover();
        inner.proc = None;
        let nested = std::mem::take(&mut inner.nested);
        drop(inner);
        match env {
            Some(env) => {
                for s in nested {
                    let _ = env.world.close_session(s);
                }
            }
            None if !nested.is_empty() => tracing::warn!(uuid = %self.uuid, "sessions a TA opened stay open"),
            None => {}
        }
        tracing::info!(uuid = %self.uuid, "TA instance ended");
    }

    fn open_nested(
        &self,
        env: &TaEnv<'_>,
        inner: &mut Inner,
        uuid: Uuid,
        w: &[WireParam; NUM_PARAMS],
        caller: &[TaParam],
    ) -> Down {
        let mut params = match nested_params(w, caller) {
            Ok(p) => p,
            Err(e) => return reply(e.code(), TEEC_ORIGIN_TEE, 0, *w),
        };
        let client = ClientIdentity { login: LOGIN_TRUSTED_APP, uuid: self.uuid };
        let (r, origin, session) = env.world.open_for_ta(uuid, client, &mut params);
        if r.is_ok() {
            inner.nested.push(session);
        }
        reply(r.err().map_or(0, TeeError::code), origin, session, nested_out(w, &params))
    }
}

fn log(uuid: &Uuid, level: u32, text: &str) {
    match level {
        1 => tracing::error!(ta = %uuid, "{text}"),
        2 => tracing::info!(ta = %uuid, "{text}"),
        3 => tracing::debug!(ta = %uuid, "{text}"),
        _ => tracing::trace!(ta = %uuid, "{text}"),
    }
}

fn invoke_nested(
    env: &TaEnv<'_>,
    inner: &Inner,
    session: u32,
    cmd: u32,
    w: &[WireParam; NUM_PARAMS],
    caller: &[TaParam],
) -> Down {
    if !inner.nested.contains(&session) {
        return reply(TeeError::BAD_PARAMETERS.code(), TEEC_ORIGIN_TEE, 0, *w);
    }
    let mut params = match nested_params(w, caller) {
        Ok(p) => p,
        Err(e) => return reply(e.code(), TEEC_ORIGIN_TEE, 0, *w),
    };
    let (r, origin) = env.world.invoke_for_ta(session, cmd, &mut params);
    reply(r.err().map_or(0, TeeError::code), origin, 0, nested_out(w, &params))
}

/// Where a host TA's shared object is.
#[derive(Debug)]
pub enum TaFile {
    /// `<uuid>.ta` in a TA directory.
    Path(PathBuf),
    /// An image fetched through tee-supplicant, in a sealed memfd
    /// (crate::ta_load).
    Image(OwnedFd),
}

/// The host TAs' instances by UUID: for each, its flags once loaded and
/// the single instance of a single-instance TA.
#[derive(Default)]
pub(crate) struct HostInstances {
    slots: Mutex<BTreeMap<Uuid, Arc<Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    flags: Option<u32>,
    single: Option<Arc<HostInstance>>,
}

impl HostInstances {
    /// A new session's hold on an instance of TA `uuid` (in `path`): the
    /// running single instance of a single-instance TA, else a new process
    /// (while a TA's first instance loads, other opens of it wait).
    ///
    /// # Errors
    /// BUSY for a second session of a single-instance TA without
    /// MULTI_SESSION; the loading's errors.
    pub(crate) fn session(&self, uuid: Uuid, file: TaFile, config: &HostTaConfig) -> TeeResult<HostTa> {
        let slot = Arc::clone(self.slots.lock().recover().entry(uuid).or_default());
        let mut s = slot.lock().recover();
        if s.flags.is_some_and(|f| f & flags::SINGLE_INSTANCE == 0) {
            drop(s);
            let inst = HostInstance::start(uuid, file, config.clone())?;
            return HostTa::first(inst, None);
        }
        if let Some(inst) = s.single.clone() {
            if !inst.is_dead() {
                if let Some(id) = inst.join()? {
                    drop(s);
                    return Ok(HostTa { inst, id, slot: Some(slot), released: false, origin: TEEC_ORIGIN_TEE });
                }
            }
            s.single = None;
        }
        let inst = HostInstance::start(uuid, file, config.clone())?;
        s.flags = Some(inst.flags);
        if inst.flags & flags::SINGLE_INSTANCE == 0 {
            drop(s);
            return HostTa::first(inst, None);
        }
        s.single = Some(Arc::clone(&inst));
        drop(s);
        HostTa::first(inst, Some(slot))
    }
}

/// One session of a host-built TA: its hold on the instance.
pub struct HostTa {
    inst: Arc<HostInstance>,
    /// The session's id in the instance.
    id: u32,
    slot: Option<Arc<Mutex<Slot>>>,
    released: bool,
    /// Who reported the last call's error.
    origin: u32,
}

impl std::fmt::Debug for HostTa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTa").field("instance", &self.inst).field("id", &self.id).finish_non_exhaustive()
    }
}

impl HostTa {
    fn first(inst: Arc<HostInstance>, slot: Option<Arc<Mutex<Slot>>>) -> TeeResult<HostTa> {
        let id = inst.join()?.ok_or(TeeError::ITEM_NOT_FOUND)?;
        Ok(HostTa { inst, id, slot, released: false, origin: TEEC_ORIGIN_TEE })
    }

    /// The instance this session runs on.
    pub fn instance(&self) -> &Arc<HostInstance> {
        &self.inst
    }

    fn run(
        &mut self,
        env: &TaEnv<'_>,
        down: impl FnOnce([WireParam; NUM_PARAMS]) -> Down,
        params: &mut [TaParam],
    ) -> TeeResult {
        let r = self.inst.call(env, down, params);
        self.origin = r.map_or_else(|(_, o)| o, |()| TEEC_ORIGIN_TRUSTED_APP);
        r.map_err(|(e, _)| e)
    }

    /// This session leaves the instance; the last one ends it.
    fn release(&mut self, env: Option<&TaEnv<'_>>) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        if !self.inst.leave() {
            return;
        }
        if let Some(slot) = &self.slot {
            let mut s = slot.lock().recover();
            if s.single.as_ref().is_some_and(|i| Arc::ptr_eq(i, &self.inst)) {
                s.single = None;
            }
        }
        self.inst.destroy(env);
    }
}

impl Drop for HostTa {
    fn drop(&mut self) {
        self.release(None);
    }
}

impl TrustedApp for HostTa {
    fn open_session(&mut self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        let id = self.id;
        let r = self.run(env, |params| Down::Open { session: id, params }, params);
        if r.is_err() {
            self.release(Some(env));
        }
        r
    }

    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        let id = self.id;
        self.run(env, |params| Down::Invoke { session: id, cmd, params }, params)
    }

    fn close_session(&mut self, env: &TaEnv<'_>) {
        if !self.inst.is_dead() {
            let id = self.id;
            let _ = self.run(env, |_| Down::Close { session: id }, &mut []);
        }
        self.release(Some(env));
    }

    fn origin(&self, r: &TeeResult) -> u32 {
        if r.is_ok() { TEEC_ORIGIN_TRUSTED_APP } else { self.origin }
    }
}

/// `TEE_LOGIN_TRUSTED_APP`.
pub const LOGIN_TRUSTED_APP: u32 = 0xf000_0000;

fn reply(ret: u32, origin: u32, handle: u32, params: [WireParam; NUM_PARAMS]) -> Down {
    Down::Reply { ret, origin, handle, params }
}

fn ptype_of(p: &TaParam) -> u32 {
    match p {
        TaParam::None => ptype::NONE,
        TaParam::Value { dir: ParamDir::In, .. } => ptype::VALUE_INPUT,
        TaParam::Value { dir: ParamDir::Out, .. } => ptype::VALUE_OUTPUT,
        TaParam::Value { dir: ParamDir::InOut, .. } => ptype::VALUE_INOUT,
        TaParam::Memref { dir: ParamDir::In, .. } => ptype::MEMREF_INPUT,
        TaParam::Memref { dir: ParamDir::Out, .. } => ptype::MEMREF_OUTPUT,
        TaParam::Memref { dir: ParamDir::InOut, .. } => ptype::MEMREF_INOUT,
    }
}

fn dir_of(t: u32) -> Option<ParamDir> {
    match t {
        ptype::VALUE_INPUT | ptype::MEMREF_INPUT => Some(ParamDir::In),
        ptype::VALUE_OUTPUT | ptype::MEMREF_OUTPUT => Some(ParamDir::Out),
        ptype::VALUE_INOUT | ptype::MEMREF_INOUT => Some(ParamDir::InOut),
        _ => None,
    }
}

/// The window of `m` (non-empty): the platform's window for the secure CPU
/// (checked by the firewall; [`Platform::window`](teeheap_platform::Platform::window)),
/// or a bounce file where another file backs the range.
fn window(env: &TaEnv<'_>, m: &TaMemref, range: PhysRange) -> TeeResult<(WireParam, Window)> {
    let mut w = WireParam { a: u64::from(m.is_protected()), size: m.size(), ..WireParam::default() };
    match env.memory.platform().window(Master::SecureCpu, range, m.writable()) {
        Ok(win) => {
            (w.file_offset, w.page_offset) = (win.file_offset, win.page_offset);
            return Ok((w, Window { fd: OwnedFdOrDram::Dram, bounce: None }));
        }
        Err(WindowError::Access(AccessError::Denied(_))) => return Err(TeeError::ACCESS_DENIED),
        Err(WindowError::Access(_)) => return Err(TeeError::SECURITY),
        Err(WindowError::Backed(_)) => {}
    }
    // A program's file backs (part of) the range: bounce through a file of
    // our own, copied in now and out after the call.
    let len = usize::try_from(m.size()).map_err(|_| TeeError::OUT_OF_MEMORY)?;
    let fd = rustix::fs::memfd_create("teeheap-ta-bounce", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|_| TeeError::OUT_OF_MEMORY)?;
    rustix::fs::ftruncate(&fd, m.size()).map_err(|_| TeeError::OUT_OF_MEMORY)?;
    let bytes = env.memory.read_vec(m, 0, m.size())?;
    let mut done = 0;
    while done < len {
        done += rustix::io::pwrite(&fd, &bytes[done..], done as u64).map_err(|_| TeeError::OUT_OF_MEMORY)?;
    }
    w.page_offset = 0;
    Ok((w, Window { fd: OwnedFdOrDram::Own(fd), bounce: Some((len, 0)) }))
}

type Windows = Vec<(usize, Window)>;

fn to_wire(env: &TaEnv<'_>, params: &[TaParam]) -> TeeResult<([WireParam; NUM_PARAMS], Vec<Window>)> {
    let mut out = [WireParam::default(); NUM_PARAMS];
    let mut windows: Windows = Vec::new();
    for (i, p) in params.iter().enumerate().take(NUM_PARAMS) {
        out[i].ptype = ptype_of(p);
        match p {
            TaParam::None => {}
            TaParam::Value { a, b, .. } => (out[i].a, out[i].b) = (*a, *b),
            TaParam::Memref { mem, .. } => match mem.range() {
                None => out[i].size = 0,
                Some(r) => {
                    let (w, win) = window(env, mem, r)?;
                    out[i] = WireParam { ptype: out[i].ptype, ..w };
                    windows.push((i, win));
                }
            },
        }
    }
    // Windows travel in parameter order; remember which param each is.
    let wins = windows
        .into_iter()
        .map(|(i, mut w)| {
            if let Some((len, _)) = w.bounce {
                w.bounce = Some((len, i as u64));
            }
            w
        })
        .collect();
    Ok((out, wins))
}

/// Copies the writable bounce windows of a call into memory (`to_memory`)
/// or memory into them.
fn sync_bounce(env: &TaEnv<'_>, params: &[TaParam], windows: &[Window], to_memory: bool) {
    for w in windows {
        let (Some((len, idx)), OwnedFdOrDram::Own(fd)) = (w.bounce, &w.fd) else { continue };
        let Some(m) = params.get(idx as usize).and_then(TaParam::memref) else { continue };
        if !m.writable() {
            continue;
        }
        if to_memory {
            let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
            if rustix::io::pread(fd, &mut buf[..], 0).is_ok_and(|n| n == len) {
                let _ = env.memory.write(m, 0, &buf);
            }
        } else if let Ok(buf) = env.memory.read_vec(m, 0, len as u64) {
            let _ = rustix::io::pwrite(fd, &buf, 0);
        }
    }
}

fn from_wire(env: &TaEnv<'_>, params: &mut [TaParam], out: &[WireParam; NUM_PARAMS], windows: &[Window]) {
    sync_bounce(env, params, windows, true);
    for (p, w) in params.iter_mut().zip(out.iter()) {
        match p {
            TaParam::Value { dir, .. } if dir.is_output() => p.set_values((w.a & 0xffff_ffff, w.b & 0xffff_ffff, 0)),
            TaParam::Memref { dir, mem } if dir.is_output() => mem.set_out_size(w.size),
            _ => {}
        }
    }
}

/// The params of a TA-to-TA call: values as given, memrefs as parts of the
/// calling TA's own memrefs (with their protection).
fn nested_params(w: &[WireParam; NUM_PARAMS], caller: &[TaParam]) -> TeeResult<Vec<TaParam>> {
    let mut out = Vec::with_capacity(NUM_PARAMS);
    for p in w {
        let Some(dir) = dir_of(p.ptype) else {
            if p.ptype != ptype::NONE {
                return Err(TeeError::BAD_PARAMETERS);
            }
            out.push(TaParam::None);
            continue;
        };
        if ptype::is_value(p.ptype) {
            out.push(TaParam::Value { dir, a: p.a & 0xffff_ffff, b: p.b & 0xffff_ffff, c: 0 });
            continue;
        }
        let mem = if p.size == 0 {
            TaMemref::null(dir.is_output())
        } else {
            let parent = usize::try_from(p.page_offset)
                .ok()
                .and_then(|i| caller.get(i))
                .and_then(TaParam::memref)
                .ok_or(TeeError::BAD_PARAMETERS)?;
            parent.sub_memref(p.file_offset, p.size, dir.is_output())?
        };
        out.push(TaParam::Memref { dir, mem });
    }
    Ok(out)
}

fn nested_out(w: &[WireParam; NUM_PARAMS], params: &[TaParam]) -> [WireParam; NUM_PARAMS] {
    let mut out = *w;
    for (o, p) in out.iter_mut().zip(params) {
        match p {
            TaParam::Value { a, b, .. } => (o.a, o.b) = (*a, *b),
            TaParam::Memref { mem, .. } => o.size = mem.out_size(),
            TaParam::None => {}
        }
    }
    out
}

/// The file of TA `uuid` in `dirs` (`<uuid>.ta`, first directory first).
pub fn find(dirs: &[PathBuf], uuid: &Uuid) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(format!("{uuid}.ta"))).find(|p| p.is_file())
}
