//! TEE contexts: one per open of a TEE device, with its sessions, and the
//! TEE ioctls (`tee_ioctl`) with the kernel's validation order and errno.
//!
//! A context lives in an `Arc` shared by its open fd ([`TeeFile`]) and its
//! shared-memory objects. When the last fd to it closes, its sessions are
//! closed (as `tee_release`); its shm objects stay until their own fds close.
//! Each session keeps the driver that opened it, so that closing it reaches
//! the secure world even after the backend was unbound (upstream cannot get
//! there: driver removal waits for every context to close).

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use teeheap_sync::Recover;

use teeheap_platform::Platform;
use teeheap_uapi::tee::*;

use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{Backing, File, FileKind, FileOps, Files};
use crate::mm::NormalMemory;
use crate::tee::TeeDevice;
use crate::tee::driver::{Dir, TeeDriver, TeeParam};
use crate::tee::shm::{ContextId, Shm, ShmBacking};
use crate::uaccess::{UserMemory, UserPtr, put_field, read_obj, write_obj};

static NEXT_CTX: AtomicU64 = AtomicU64::new(1);

/// A TEE context. See the module documentation.
#[derive(Debug)]
pub struct TeeContext {
    id: ContextId,
    dev: Arc<TeeDevice>,
    platform: Arc<Platform>,
    heap: Arc<NormalMemory>,
    sessions: Mutex<BTreeMap<u32, Opener>>,
}

/// The driver that opened a session: the one that must close it.
#[derive(Clone)]
struct Opener(Arc<dyn TeeDriver>);

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

/// An open TEE device fd. Closing the last one closes the context's sessions.
#[derive(Debug)]
pub struct TeeFile {
    ctx: Arc<TeeContext>,
}

impl TeeFile {
    /// Opens `dev`: a new context. On the supplicant's node of a driver
    /// with a supplicant queue, the context becomes the supplicant.
    ///
    /// # Errors
    /// `EBUSY` if the supplicant's node is open already (`optee_open`).
    pub fn open(dev: Arc<TeeDevice>, platform: Arc<Platform>, heap: Arc<NormalMemory>) -> Result<Arc<TeeFile>> {
        let id = ContextId(NEXT_CTX.fetch_add(1, Ordering::Relaxed));
        if dev.is_privileged()
            && let Ok(Some(d)) = dev.driver()
            && let Some(supp) = d.supplicant()
        {
            supp.claim(id)?;
        }
        Ok(Arc::new(TeeFile { ctx: Arc::new(TeeContext { id, dev, platform, heap, sessions: Mutex::default() }) }))
    }

    /// The context.
    pub fn context(&self) -> &Arc<TeeContext> {
        &self.ctx
    }
}

/// An open TEE device: the context's ioctls; no mmap, no llseek.
impl FileOps for TeeFile {
    fn kind(&self) -> FileKind {
        FileKind::TEE_CONTEXT
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        self.ctx.ioctl(cmd, arg, mem, files)
    }

    fn backing(&self) -> Backing {
        Backing::Pages { name: "tee_ctx", size: 4096, cpu: None }
    }
}

impl Drop for TeeFile {
    fn drop(&mut self) {
        self.ctx.release();
    }
}

/// The device's driver: `Ok(None)` once the backend is gone.
fn driver(dev: &TeeDevice) -> Result<Option<Arc<dyn TeeDriver>>> {
    dev.driver()
}

const PARAM_SIZE: u64 = size_of::<TeeIoctlParam>() as u64;

impl TeeContext {
    /// Its id.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// Its device.
    pub fn device(&self) -> &Arc<TeeDevice> {
        &self.dev
    }

    /// The open sessions.
    pub fn sessions(&self) -> Vec<u32> {
        self.sessions.lock().recover().keys().copied().collect()
    }

    fn release(&self) {
        if self.dev.is_privileged()
            && let Ok(Some(d)) = self.dev.driver()
            && let Some(supp) = d.supplicant()
        {
            supp.release(self.id);
        }
        // Closed through the driver that opened each one, bound or not:
        // the secure world keeps a session until it is told to close it.
        let sessions = std::mem::take(&mut *self.sessions.lock().recover());
        for (s, Opener(d)) in sessions {
            if let Err(e) = d.close_session(s) {
                tracing::warn!(session = s, error = %e, "closing a session on context release failed");
            }
        }
    }

    /// An ioctl on the context's fd. Returns the ioctl's value: 0, or the
    /// new fd for the SHM ioctls.
    ///
    /// # Errors
    /// The kernel's errno: `EINVAL` for an unknown request or bad argument,
    /// `EFAULT` for unreadable or unwritable memory, ... (see each request).
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        match cmd {
            TEE_IOC_VERSION => self.version(arg, mem),
            TEE_IOC_SHM_ALLOC => self.shm_alloc(arg, mem, files),
            TEE_IOC_SHM_REGISTER => self.shm_register(arg, mem, files),
            TEE_IOC_SHM_REGISTER_FD => self.shm_register_fd(arg, mem, files),
            // The supplicant's ops (`optee_supp_ops`) have no session
            // ops: the core refuses before reading the argument.
            TEE_IOC_OPEN_SESSION | TEE_IOC_INVOKE | TEE_IOC_CANCEL | TEE_IOC_CLOSE_SESSION
                if self.dev.is_privileged() =>
            {
                Err(einval("the supplicant's node has no session ops"))
            }
            TEE_IOC_OPEN_SESSION => self.open_session(arg, mem),
            TEE_IOC_INVOKE => self.invoke(arg, mem),
            TEE_IOC_CANCEL => self.cancel(arg, mem),
            TEE_IOC_CLOSE_SESSION => self.close_session(arg, mem),
            TEE_IOC_SUPPL_RECV if self.dev.is_privileged() => self.supp_recv(arg, mem, files),
            TEE_IOC_SUPPL_SEND if self.dev.is_privileged() => self.supp_send(arg, mem),
            // The client node's ops (`optee_clnt_ops`) have no supplicant
            // ops: the core refuses before reading the argument.
            TEE_IOC_SUPPL_RECV | TEE_IOC_SUPPL_SEND => Err(einval("not the supplicant's node")),
            _ => Err(einval("unknown TEE ioctl")),
        }
    }

    /// The driver's supplicant queue, or `EINVAL` as a device without
    /// `supp_recv`/`supp_send`.
    fn supp(&self) -> Result<Arc<dyn TeeDriver>> {
        match driver(&self.dev)? {
            Some(d) if d.supplicant().is_some() => Ok(d),
            _ => Err(einval("no supplicant ops")),
        }
    }

    /// `tee_ioctl_supp_recv`.
    fn supp_recv(&self, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let d = self.supp()?;
        let buf: TeeIoctlBufData = read_obj(mem, arg)?;
        let header = size_of::<TeeIoclSuppRecvArg>() as u64;
        if buf.buf_len > TEE_MAX_ARG_SIZE as u64 || buf.buf_len < header {
            return Err(einval("bad buf_len"));
        }
        let uarg = UserPtr(buf.buf_ptr);
        let num_params: u32 = read_obj(mem, uarg.checked_add(4).ok_or(efault("overflow"))?)?;
        if header + PARAM_SIZE * u64::from(num_params) != buf.buf_len {
            return Err(einval("buf_len does not match num_params"));
        }
        let uparams = uarg.checked_add(header).ok_or(efault("overflow"))?;
        let params = self.params_from_user(uparams, num_params, mem)?;
        let supp = d.supplicant().ok_or(einval("no supplicant ops"))?;
        let (func, out) = supp.recv(&params, &|| files.gave_up())?;
        put_field(mem, uarg, offset_of!(TeeIoclSuppRecvArg, func), &func)?;
        put_field(mem, uarg, offset_of!(TeeIoclSuppRecvArg, num_params), &(out.len() as u32))?;
        self.params_to_supp(uparams, &out, mem)?;
        Ok(0)
    }

    /// `params_to_supp`: every parameter with its attribute; a NULL memref
    /// has shm id -1.
    fn params_to_supp(&self, uparams: UserPtr, params: &[TeeParam], mem: &dyn UserMemory) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            let up = uparams.checked_add(i as u64 * PARAM_SIZE).ok_or(efault("overflow"))?;
            let attr = p.attr();
            let ip = match p {
                TeeParam::None { .. } => TeeIoctlParam { attr, ..TeeIoctlParam::default() },
                TeeParam::Value { a, b, c, .. } => TeeIoctlParam { attr, a: *a, b: *b, c: *c },
                TeeParam::Memref { shm, offset, size, .. } => TeeIoctlParam {
                    attr,
                    a: *offset,
                    b: *size,
                    c: shm.as_ref().map_or(TEE_MEMREF_NULL, |s| s.id() as u64),
                },
            };
            write_obj(mem, up, &ip)?;
        }
        Ok(())
    }

    /// `tee_ioctl_supp_send`.
    fn supp_send(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        let d = self.supp()?;
        let buf: TeeIoctlBufData = read_obj(mem, arg)?;
        let header = size_of::<TeeIoclSuppSendArg>() as u64;
        if buf.buf_len > TEE_MAX_ARG_SIZE as u64 || buf.buf_len < header {
            return Err(einval("bad buf_len"));
        }
        let uarg = UserPtr(buf.buf_ptr);
        let h: TeeIoclSuppSendArg = read_obj(mem, uarg)?;
        // The kernel checks only that the parameters fit.
        if header + PARAM_SIZE * u64::from(h.num_params) > buf.buf_len {
            return Err(einval("num_params past buf_len"));
        }
        let uparams = uarg.checked_add(header).ok_or(efault("overflow"))?;
        let mut params = Vec::with_capacity(h.num_params as usize);
        for i in 0..u64::from(h.num_params) {
            let ip: TeeIoctlParam = read_obj(mem, uparams.checked_add(i * PARAM_SIZE).ok_or(efault("overflow"))?)?;
            if ip.attr & !TEE_IOCTL_PARAM_ATTR_MASK != 0 {
                return Err(einval("unknown param attribute bits"));
            }
            // params_from_supp: only output values and output memref sizes;
            // anything else (an unknown type too) carries nothing back.
            params.push(match TeeParam::decode(ip.attr) {
                Some(TeeParam::Value { dir, meta, .. }) if dir.is_output() => {
                    TeeParam::Value { dir, meta, a: ip.a, b: ip.b, c: ip.c }
                }
                Some(TeeParam::Memref { dir, meta, .. }) if dir.is_output() => {
                    TeeParam::Memref { dir, meta, shm: None, offset: 0, size: ip.b }
                }
                _ => TeeParam::None { meta: ip.attr & TEE_IOCTL_PARAM_ATTR_META != 0 },
            });
        }
        d.supplicant().ok_or(einval("no supplicant ops"))?.send(h.ret, &params)?;
        Ok(0)
    }

    fn version(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        write_obj(mem, arg, &self.dev.version())?;
        Ok(0)
    }

    fn install_shm(&self, shm: Arc<Shm>, files: &mut dyn Files) -> Result<i64> {
        files.install(File::new(shm), O_RDWR_CLOEXEC).map(i64::from)
    }

    fn shm_alloc(&self, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let mut data: TeeIoctlShmAllocData = read_obj(mem, arg)?;
        if data.flags != 0 {
            return Err(einval("SHM_ALLOC takes no input flags"));
        }
        let shm = Shm::alloc(self.dev.shm_ids(), self.id, data.size, &self.heap)?;
        // Linux leaves `flags` as the client passed it (0).
        data.id = shm.id();
        data.size = shm.size();
        write_obj(mem, arg, &data)?;
        self.install_shm(shm, files)
    }

    fn shm_register(&self, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let mut data: TeeIoctlShmRegisterData = read_obj(mem, arg)?;
        if data.flags != 0 {
            return Err(einval("SHM_REGISTER takes no input flags"));
        }
        let shm = Shm::register_user(self.dev.shm_ids(), self.id, UserPtr(data.addr), data.length, mem, &self.heap)?;
        data.id = shm.id();
        data.length = shm.size();
        data.flags = shm.flags();
        write_obj(mem, arg, &data)?;
        self.install_shm(shm, files)
    }

    fn shm_register_fd(&self, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let mut data: TeeIoctlShmRegisterFdData = read_obj(mem, arg)?;
        if data.flags != 0 {
            return Err(einval("SHM_REGISTER_FD takes no input flags"));
        }
        // Every failure to register is EINVAL, as in Linux, which passes
        // the 64-bit `fd` on as an `int`.
        let Some(buf) = files.lookup(i64::from(data.fd as i32)).ok().and_then(|f| f.as_dma_buf()) else {
            return Err(einval("not a dma-buf fd"));
        };
        let shm = Shm::register_dma_buf(self.dev.shm_ids(), self.id, buf, &self.dev)
            .map_err(|_| einval("not a protected buffer of this TEE"))?;
        data.id = shm.id();
        data.flags = shm.flags();
        data.size = shm.size();
        write_obj(mem, arg, &data)?;
        self.install_shm(shm, files)
    }

    /// Reads and validates a `tee_ioctl_buf_data` request: returns the user
    /// pointer of the argument struct and its fixed header.
    fn read_buf<H: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &self,
        arg: UserPtr,
        mem: &dyn UserMemory,
        num_params: impl Fn(&H) -> u32,
    ) -> Result<(UserPtr, H)> {
        let buf: TeeIoctlBufData = read_obj(mem, arg)?;
        let header = size_of::<H>() as u64;
        if buf.buf_len > TEE_MAX_ARG_SIZE as u64 || buf.buf_len < header {
            return Err(einval("bad buf_len"));
        }
        let uarg = UserPtr(buf.buf_ptr);
        let h: H = read_obj(mem, uarg)?;
        if header + PARAM_SIZE * u64::from(num_params(&h)) != buf.buf_len {
            return Err(einval("buf_len does not match num_params"));
        }
        Ok((uarg, h))
    }

    /// `params_from_user`.
    fn params_from_user(&self, uparams: UserPtr, n: u32, mem: &dyn UserMemory) -> Result<Vec<TeeParam>> {
        let mut params = Vec::with_capacity(n as usize);
        for i in 0..u64::from(n) {
            let ip: TeeIoctlParam = read_obj(mem, uparams.checked_add(i * PARAM_SIZE).ok_or(efault("overflow"))?)?;
            if ip.attr & !TEE_IOCTL_PARAM_ATTR_MASK != 0 {
                return Err(einval("unknown param attribute bits"));
            }
            // Decoded here, once; everything after matches on the enum.
            let mut p = TeeParam::decode(ip.attr).ok_or(einval("unknown param type"))?;
            match &mut p {
                TeeParam::None { .. } => {}
                // An output value starts zeroed.
                TeeParam::Value { dir: Dir::Out, .. } => {}
                TeeParam::Value { a, b, c, .. } => (*a, *b, *c) = (ip.a, ip.b, ip.c),
                TeeParam::Memref { shm, offset, size, .. } => {
                    if ip.c != TEE_MEMREF_NULL {
                        // cap_memref_null: the secure world accepts NULL
                        // memrefs. tee_shm_get_from_id takes an `int` id.
                        let found = self.dev.shm_ids().get(self.id, i64::from(ip.c as i32))?;
                        match ip.a.checked_add(ip.b) {
                            Some(end) if end <= found.size() => {}
                            _ => return Err(einval("memref outside its shm")),
                        }
                        *shm = Some(found);
                    }
                    (*offset, *size) = (ip.a, ip.b);
                }
            }
            params.push(p);
        }
        Ok(params)
    }

    /// `params_to_user`.
    fn params_to_user(&self, uparams: UserPtr, params: &[TeeParam], mem: &dyn UserMemory) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            let up = uparams.checked_add(i as u64 * PARAM_SIZE).ok_or(efault("overflow"))?;
            match p {
                // A META parameter is not copied back.
                TeeParam::Value { dir, meta: false, a, b, c } if dir.is_output() => {
                    put_field(mem, up, offset_of!(TeeIoctlParam, a), a)?;
                    put_field(mem, up, offset_of!(TeeIoctlParam, b), b)?;
                    put_field(mem, up, offset_of!(TeeIoctlParam, c), c)?;
                }
                TeeParam::Memref { dir, meta: false, size, .. } if dir.is_output() => {
                    put_field(mem, up, offset_of!(TeeIoctlParam, b), size)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Mirrors registered client memory in (before) a call.
    fn sync_registered(&self, params: &[TeeParam], mem: &dyn UserMemory, out: bool) -> Result<()> {
        for p in params {
            if let TeeParam::Memref { shm: Some(shm), offset, size, .. } = p
                && matches!(shm.backing(), ShmBacking::User { .. })
            {
                if out {
                    if p.is_output() {
                        shm.sync_out(&self.platform, mem, *offset, *size)?;
                    }
                } else {
                    shm.sync_in(&self.platform, mem, *offset, *size)?;
                }
            }
        }
        Ok(())
    }

    fn open_session(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        let d = driver(&self.dev)?;
        let (uarg, mut a) = self.read_buf(arg, mem, |h: &TeeIoctlOpenSessionArg| h.num_params)?;
        let uparams = uarg.checked_add(size_of::<TeeIoctlOpenSessionArg>() as u64).ok_or(efault("overflow"))?;
        let mut params = self.params_from_user(uparams, a.num_params, mem)?;
        if (TEE_IOCTL_LOGIN_REE_KERNEL_MIN..=TEE_IOCTL_LOGIN_REE_KERNEL_MAX).contains(&a.clnt_login) {
            return Err(Error::new(Errno::EPERM, "kernel login methods are not for user space"));
        }
        self.sync_registered(&params, mem, false)?;
        let orig: Vec<u64> = params.iter().map(memref_size).collect();
        match &d {
            Some(d) => d.open_session(&mut a, &mut params, &mem.credentials()?)?,
            None => target_dead(&mut a.ret, &mut a.ret_origin),
        }
        let opened = match &d {
            Some(d) if a.ret == teeheap_uapi::tee::gp::TEEC_SUCCESS => Some(Opener(Arc::clone(d))),
            _ => None,
        };
        if let Some(o) = &opened {
            self.sessions.lock().recover().insert(a.session, o.clone());
        }
        let reply = (|| {
            put_field(mem, uarg, offset_of!(TeeIoctlOpenSessionArg, session), &a.session)?;
            put_field(mem, uarg, offset_of!(TeeIoctlOpenSessionArg, ret), &a.ret)?;
            put_field(mem, uarg, offset_of!(TeeIoctlOpenSessionArg, ret_origin), &a.ret_origin)?;
            self.sync_out_windows(&params, &orig, mem)?;
            self.params_to_user(uparams, &params, mem)
        })();
        if reply.is_err()
            && let Some(Opener(d)) = opened
        {
            // The client can never learn of the session: close it again.
            self.sessions.lock().recover().remove(&a.session);
            let _ = d.close_session(a.session);
        }
        reply.map(|()| 0)
    }

    /// Copies registered client windows back with their original sizes.
    fn sync_out_windows(&self, params: &[TeeParam], orig: &[u64], mem: &dyn UserMemory) -> Result<()> {
        let restored: Vec<TeeParam> = params
            .iter()
            .zip(orig)
            .map(|(p, &orig)| {
                let mut p = p.clone();
                if let TeeParam::Memref { size, .. } = &mut p {
                    *size = orig;
                }
                p
            })
            .collect();
        self.sync_registered(&restored, mem, true)
    }

    fn invoke(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        let d = driver(&self.dev)?;
        let (uarg, mut a) = self.read_buf(arg, mem, |h: &TeeIoctlInvokeArg| h.num_params)?;
        let uparams = uarg.checked_add(size_of::<TeeIoctlInvokeArg>() as u64).ok_or(efault("overflow"))?;
        let mut params = self.params_from_user(uparams, a.num_params, mem)?;
        if !self.sessions.lock().recover().contains_key(&a.session) {
            return Err(einval("no such session in this context"));
        }
        self.sync_registered(&params, mem, false)?;
        let orig: Vec<u64> = params.iter().map(memref_size).collect();
        match &d {
            Some(d) => d.invoke(&mut a, &mut params)?,
            None => target_dead(&mut a.ret, &mut a.ret_origin),
        }
        put_field(mem, uarg, offset_of!(TeeIoctlInvokeArg, ret), &a.ret)?;
        put_field(mem, uarg, offset_of!(TeeIoctlInvokeArg, ret_origin), &a.ret_origin)?;
        self.sync_out_windows(&params, &orig, mem)?;
        self.params_to_user(uparams, &params, mem)?;
        Ok(0)
    }

    fn cancel(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        let d = driver(&self.dev)?;
        let a: TeeIoctlCancelArg = read_obj(mem, arg)?;
        if !self.sessions.lock().recover().contains_key(&a.session) {
            return Err(einval("no such session in this context"));
        }
        if let Some(d) = d {
            d.cancel(a.cancel_id, a.session)?;
        }
        Ok(0)
    }

    fn close_session(&self, arg: UserPtr, mem: &dyn UserMemory) -> Result<i64> {
        driver(&self.dev)?;
        let a: TeeIoctlCloseSessionArg = read_obj(mem, arg)?;
        let opener = self.sessions.lock().recover().remove(&a.session);
        let Opener(d) = opener.ok_or(einval("no such session in this context"))?;
        // Reaches the secure world also after an unbind (see the module doc).
        d.close_session(a.session)?;
        Ok(0)
    }
}

/// The answer of a call after the backend went away.
fn target_dead(ret: &mut u32, origin: &mut u32) {
    *ret = teeheap_uapi::tee::gp::TEEC_ERROR_TARGET_DEAD;
    *origin = teeheap_uapi::tee::gp::TEEC_ORIGIN_COMMS;
}

fn memref_size(p: &TeeParam) -> u64 {
    match p {
        TeeParam::Memref { size, .. } => *size,
        _ => 0,
    }
}

/// `O_RDWR | O_CLOEXEC`: how the TEE core opens shm fds.
const O_RDWR_CLOEXEC: u32 = 2 | teeheap_uapi::dma_heap::O_CLOEXEC;
