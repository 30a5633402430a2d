//! Host-built TAs: a `<uuid>.ta` shared object run in its own sandboxed
//! process (`teeheap-ta-host`), one process per TA instance.
//!
//! A [`HostTa`] is the secure world's side of one instance. It starts the
//! process on the first open, passes every call with its memrefs as
//! windows of platform memory (the DRAM file itself; a bounce file where a
//! program's file backs the range), serves the TA's requests (trace lines,
//! TA-to-TA sessions, the cancellation flag) while the call runs, and turns
//! a dead, panicking or overdue process into TARGET_DEAD.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use teeheap_platform::{AccessKind, Master, PAGE_SIZE, PhysRange};
use teeheap_ta_host::wire::{Channel, Down, NUM_PARAMS, Up, WireParam, ptype};

use crate::abi::{ParamDir, Uuid};
use crate::error::{TeeError, TeeResult};
use crate::memref::TaMemref;
use crate::ta::{ClientIdentity, TaEnv, TaParam, TrustedApp};

/// `TEE_ERROR_TARGET_DEAD`.
pub const TARGET_DEAD: TeeError = TeeError::TARGET_DEAD;

/// How long a TA process may take to load and greet.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
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

/// One instance of a host-built TA (see the module docs).
pub struct HostTa {
    uuid: Uuid,
    path: PathBuf,
    config: HostTaConfig,
    proc: Option<Proc>,
    dead: bool,
    /// Sessions this instance opened on other TAs.
    nested: Vec<u32>,
}

impl std::fmt::Debug for HostTa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTa").field("uuid", &self.uuid).field("path", &self.path).finish_non_exhaustive()
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

impl HostTa {
    /// An instance of the TA in `path` (not started yet).
    pub fn new(uuid: Uuid, path: PathBuf, config: HostTaConfig) -> HostTa {
        HostTa { uuid, path, config, proc: None, dead: false, nested: Vec::new() }
    }

    fn start(&mut self) -> TeeResult {
        let (ours, theirs) = Channel::pair().map_err(|_| TeeError::OUT_OF_MEMORY)?;
        let child = Command::new(&self.config.runner)
            .arg("__ta-runner")
            .arg(&self.path)
            .stdin(Stdio::from(theirs.into_fd()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env_clear()
            .spawn()
            .map_err(|e| {
                tracing::error!(uuid = %self.uuid, runner = %self.config.runner.display(), error = %e, "cannot start a TA process");
                TeeError::OUT_OF_MEMORY
            })?;
        let p = Proc { child, chan: ours };
        let hello = match p.chan.recv(Some(LOAD_TIMEOUT)) {
            Ok(Some((b, _))) => Up::decode(&b).ok(),
            _ => None,
        };
        match hello {
            Some(Up::Hello { uuid, flags, ret }) if uuid == self.uuid.0 => {
                tracing::info!(uuid = %self.uuid, pid = p.child.id(), flags = format_args!("{flags:#x}"), "TA process started");
                if ret != 0 {
                    return Err(TeeError::from_code(ret).unwrap_or(TeeError::GENERIC));
                }
                self.proc = Some(p);
                Ok(())
            }
            Some(Up::Hello { uuid, .. }) => {
                tracing::error!(path = %self.path.display(), uuid = %Uuid(uuid), "TA file does not hold the TA its name says");
                Err(TeeError::ITEM_NOT_FOUND)
            }
            _ => {
                tracing::error!(path = %self.path.display(), "TA process did not load the TA");
                Err(TeeError::ITEM_NOT_FOUND)
            }
        }
    }

    fn kill(&mut self, why: &str) -> TeeError {
        tracing::warn!(uuid = %self.uuid, why, "TA instance is dead");
        self.proc = None;
        self.dead = true;
        TARGET_DEAD
    }

    /// Runs one call: `down` with `params` as windows, serving the TA's
    /// requests until it answers.
    fn call(
        &mut self,
        env: &TaEnv<'_>,
        down: impl FnOnce([WireParam; NUM_PARAMS]) -> Down,
        params: &mut [TaParam],
    ) -> TeeResult {
        if self.dead {
            return Err(TARGET_DEAD);
        }
        let (wire, windows) = to_wire(env, params)?;
        let fds: Vec<BorrowedFd<'_>> = windows
            .iter()
            .map(|w| match &w.fd {
                OwnedFdOrDram::Dram => env.memory.platform().ram().memfd(),
                OwnedFdOrDram::Own(f) => f.as_fd(),
            })
            .collect();
        let Some(p) = self.proc.as_ref() else { return Err(TARGET_DEAD) };
        if p.chan.send(&down(wire).encode(), &fds).is_err() {
            return Err(self.kill("its socket is closed"));
        }
        drop(fds);
        let deadline = self.config.call_timeout.map(|t| Instant::now() + t);
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.kill("call timed out"));
            }
            let Some(p) = self.proc.as_ref() else { return Err(TARGET_DEAD) };
            let packet = match p.chan.recv(Some(TICK)) {
                Ok(None) => continue,
                Ok(Some((b, _))) => b,
                Err(_) => return Err(self.kill("process ended")),
            };
            let reply = match Up::decode(&packet) {
                Ok(Up::Done { ret, params: out }) => {
                    from_wire(env, params, &out, &windows);
                    return match TeeError::from_code(ret) {
                        None => Ok(()),
                        Some(e) => Err(e),
                    };
                }
                Ok(Up::Log { level, text }) => {
                    match level {
                        1 => tracing::error!(ta = %self.uuid, "{text}"),
                        2 => tracing::info!(ta = %self.uuid, "{text}"),
                        3 => tracing::debug!(ta = %self.uuid, "{text}"),
                        _ => tracing::trace!(ta = %self.uuid, "{text}"),
                    }
                    continue;
                }
                Ok(Up::Panic { code }) => {
                    tracing::warn!(ta = %self.uuid, code = format_args!("{code:#x}"), "TA panicked");
                    return Err(self.kill("TEE_Panic"));
                }
                Ok(Up::IsCancelled) => reply(0, 0, u32::from(env.is_cancelled()), [WireParam::default(); NUM_PARAMS]),
                Ok(Up::OpenTa { uuid, params: p }) => {
                    // The callee sees what this TA wrote so far, and this TA
                    // what the callee wrote.
                    sync_bounce(env, params, &windows, true);
                    let r = self.open_nested(env, Uuid(uuid), &p, params);
                    sync_bounce(env, params, &windows, false);
                    r
                }
                Ok(Up::InvokeTa { session, cmd, params: p }) => {
                    sync_bounce(env, params, &windows, true);
                    let r = self.invoke_nested(env, session, cmd, &p, params);
                    sync_bounce(env, params, &windows, false);
                    r
                }
                Ok(Up::CloseTa { session }) => {
                    if let Some(i) = self.nested.iter().position(|s| *s == session) {
                        self.nested.swap_remove(i);
                        let _ = env.world.close_session(session);
                    }
                    reply(0, 0, 0, [WireParam::default(); NUM_PARAMS])
                }
                Ok(Up::Hello { .. }) | Err(_) => return Err(self.kill("bad message")),
            };
            let Some(p) = self.proc.as_ref() else { return Err(TARGET_DEAD) };
            if p.chan.send(&reply.encode(), &[]).is_err() {
                return Err(self.kill("its socket is closed"));
            }
        }
    }

    fn open_nested(&mut self, env: &TaEnv<'_>, uuid: Uuid, w: &[WireParam; NUM_PARAMS], caller: &[TaParam]) -> Down {
        let mut params = match nested_params(w, caller) {
            Ok(p) => p,
            Err(e) => return reply(e.code(), crate::world::ORIGIN_TEE, 0, *w),
        };
        let client = ClientIdentity { login: LOGIN_TRUSTED_APP, uuid: self.uuid };
        let (r, origin, session) = env.world.open_for_ta(uuid, client, &mut params);
        if r.is_ok() {
            self.nested.push(session);
        }
        reply(r.err().map_or(0, TeeError::code), origin, session, nested_out(w, &params))
    }

    fn invoke_nested(
        &mut self,
        env: &TaEnv<'_>,
        session: u32,
        cmd: u32,
        w: &[WireParam; NUM_PARAMS],
        caller: &[TaParam],
    ) -> Down {
        if !self.nested.contains(&session) {
            return reply(TeeError::BAD_PARAMETERS.code(), crate::world::ORIGIN_TEE, 0, *w);
        }
        let mut params = match nested_params(w, caller) {
            Ok(p) => p,
            Err(e) => return reply(e.code(), crate::world::ORIGIN_TEE, 0, *w),
        };
        let (r, origin) = env.world.invoke_for_ta(session, cmd, &mut params);
        reply(r.err().map_or(0, TeeError::code), origin, 0, nested_out(w, &params))
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

/// The window of `m` (non-empty): checked by the firewall for the secure
/// CPU, then the DRAM file itself, or a bounce file where another file
/// backs the range.
fn window(env: &TaEnv<'_>, m: &TaMemref, range: PhysRange) -> TeeResult<(WireParam, Window)> {
    let platform = env.memory.platform();
    let fw = platform.firewall();
    fw.check(Master::SecureCpu, range, AccessKind::Read).map_err(|_| TeeError::ACCESS_DENIED)?;
    if m.writable() {
        fw.check(Master::SecureCpu, range, AccessKind::Write).map_err(|_| TeeError::ACCESS_DENIED)?;
    }
    let dram = platform.dram();
    let off = range.start().checked_offset_from(dram.start()).ok_or(TeeError::SECURITY)?;
    let page_offset = off % PAGE_SIZE;
    let mut w = WireParam { a: u64::from(m.is_protected()), size: m.size(), page_offset, ..WireParam::default() };
    if !platform.ram().is_backed(range) {
        w.file_offset = off - page_offset;
        return Ok((w, Window { fd: OwnedFdOrDram::Dram, bounce: None }));
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

impl TrustedApp for HostTa {
    fn open_session(&mut self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        if self.proc.is_none() && !self.dead {
            self.start()?;
        }
        self.call(env, |params| Down::Open { params }, params)
    }

    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        self.call(env, |params| Down::Invoke { cmd, params }, params)
    }

    fn close_session(&mut self, env: &TaEnv<'_>) {
        if !self.dead {
            let _ = self.call(env, |_| Down::Close, &mut []);
        }
        for s in std::mem::take(&mut self.nested) {
            let _ = env.world.close_session(s);
        }
        self.proc = None;
    }
}

/// The file of TA `uuid` in `dirs` (`<uuid>.ta`, first directory first).
pub fn find(dirs: &[PathBuf], uuid: &Uuid) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(format!("{uuid}.ta"))).find(|p| p.is_file())
}
