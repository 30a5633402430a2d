//! A user-space program on the kernel model: its fd table, its address
//! space, and the system calls a media pipeline makes (open, ioctl, mmap,
//! close), each through the UAPI as on a real kernel.
//!
//! Every ioctl argument is a `teeheap_uapi` struct written into the
//! program's [`SimUserMemory`] and read back from it after the call, so the
//! kernel model sees exactly what it would see from a C program. Objects
//! live as long as the fds (and mappings, and device attachments) that refer
//! to them; dropping the [`Client`] closes every fd it still holds.

use std::sync::Arc;

use teeheap_kernel::dma_buf::{Attachment, CpuMapping, DmaBuf, SgTable};
use teeheap_kernel::file::{FdTable, File};
use teeheap_kernel::tee::shm::Shm;
use teeheap_kernel::uaccess::{SimUserMemory, UserPtr};
use teeheap_kernel::{Errno, Error, Kernel};
use teeheap_platform::{Master, PhysRange, Platform};
use teeheap_uapi::dma_heap::{DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, O_CLOEXEC};
use teeheap_uapi::drm::{
    DRM_FORMAT_NV12, DRM_IOCTL_MODE_ADDFB2, DRM_IOCTL_MODE_ATOMIC, DRM_IOCTL_MODE_CREATEPROPBLOB,
    DRM_IOCTL_PRIME_FD_TO_HANDLE, DRM_IOCTL_SET_CLIENT_CAP, DrmModeAtomic, DrmModeCreateBlob, DrmModeFbCmd2,
    DrmPrimeHandle, DrmSetClientCap,
};
use teeheap_uapi::tee::gp::TEEC_SUCCESS;
use teeheap_uapi::tee::{
    TEE_IOC_CLOSE_SESSION, TEE_IOC_INVOKE, TEE_IOC_OPEN_SESSION, TEE_IOC_SHM_ALLOC, TEE_IOC_SHM_REGISTER_FD,
    TEE_IOCTL_LOGIN_PUBLIC, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, TeeIoctlBufData, TeeIoctlCloseSessionArg, TeeIoctlInvokeArg,
    TeeIoctlOpenSessionArg, TeeIoctlParam, TeeIoctlShmAllocData, TeeIoctlShmRegisterFdData,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{ScenarioError, Step};

/// `O_RDWR`.
const O_RDWR: u32 = 2;

/// An fd of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fd(i32);

impl Fd {
    /// The fd number.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

/// A shared-memory object as the program knows it: its fd and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmHandle {
    /// The fd holding it.
    pub fd: Fd,
    /// The id memrefs name it by.
    pub id: i32,
    /// Its size in bytes.
    pub size: u64,
}

/// A value parameter, input.
pub const fn value_in(a: u64, b: u64, c: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr: TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, a, b, c }
}

/// A value parameter, output.
pub const fn value_out() -> TeeIoctlParam {
    TeeIoctlParam { attr: TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, a: 0, b: 0, c: 0 }
}

/// A value parameter, input and output.
pub const fn value_inout(a: u64, b: u64, c: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr: TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, a, b, c }
}

/// A memref parameter, input: `size` bytes at `offset` of shm `shm`.
pub const fn memref_in(shm: &ShmHandle, offset: u64, size: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr: TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, a: offset, b: size, c: shm.id as u64 }
}

/// A memref parameter, output.
pub const fn memref_out(shm: &ShmHandle, offset: u64, size: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr: TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, a: offset, b: size, c: shm.id as u64 }
}

/// What an invocation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeeReply {
    /// `TEEC_*` return code.
    pub ret: u32,
    /// `TEEC_ORIGIN_*`.
    pub origin: u32,
    /// The parameters as the kernel wrote them back.
    pub params: Vec<TeeIoctlParam>,
}

impl TeeReply {
    /// `Ok` with the parameters if the TA returned `TEEC_SUCCESS`.
    ///
    /// # Errors
    /// [`ScenarioError::Tee`] with the code and origin otherwise.
    pub fn success(self, what: &'static str) -> Result<Vec<TeeIoctlParam>, ScenarioError> {
        if self.ret == TEEC_SUCCESS {
            Ok(self.params)
        } else {
            Err(ScenarioError::Tee { what, ret: self.ret, origin: self.origin })
        }
    }
}

/// An in-process program. See the module documentation.
#[derive(Debug)]
pub struct Client<'k> {
    kernel: &'k Kernel,
    mem: SimUserMemory,
    files: FdTable,
}

impl<'k> Client<'k> {
    /// A program with no open fd on `kernel`.
    pub fn new(kernel: &'k Kernel) -> Client<'k> {
        Client { kernel, mem: SimUserMemory::new(), files: FdTable::default() }
    }

    /// The platform the kernel runs on.
    pub fn platform(&self) -> &Arc<Platform> {
        self.kernel.platform()
    }

    fn install(&mut self, file: File, what: &'static str) -> Result<Fd, ScenarioError> {
        teeheap_kernel::file::Files::install(&mut self.files, file, O_RDWR | O_CLOEXEC).step(what).map(Fd)
    }

    /// `open("/dev/dma_heap/<name>", O_RDWR | O_CLOEXEC)`.
    ///
    /// # Errors
    /// `ENOENT` if there is no such heap.
    pub fn open_heap(&mut self, name: &str) -> Result<Fd, ScenarioError> {
        let file = self.kernel.dma_heap_open(name).step("open /dev/dma_heap")?;
        self.install(file, "open /dev/dma_heap")
    }

    /// `open("/dev/<name>", O_RDWR | O_CLOEXEC)` of a TEE device: a context.
    ///
    /// # Errors
    /// `ENOENT` if there is no such device.
    pub fn open_tee(&mut self, name: &str) -> Result<Fd, ScenarioError> {
        let file = self.kernel.tee_open(name).step("open /dev/tee")?;
        self.install(file, "open /dev/tee")
    }

    /// `close(fd)`.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open.
    pub fn close(&mut self, fd: Fd) -> Result<(), ScenarioError> {
        self.files.close(fd.0).step("close")
    }

    /// How many fds are open.
    pub fn open_fds(&self) -> usize {
        self.files.len()
    }

    /// `ioctl(fd, cmd, arg)` with `arg` a struct copied into the program's
    /// memory; returns the ioctl's value and the struct as the kernel left it.
    fn ioctl<T: FromBytes + IntoBytes + Immutable + KnownLayout>(
        &mut self,
        fd: Fd,
        cmd: u32,
        arg: &T,
        what: &'static str,
    ) -> Result<(i64, T), ScenarioError> {
        let ptr = self.mem.map(arg.as_bytes());
        let file = self.files.get(fd.0).step(what)?.clone();
        let ret = self.kernel.ioctl(&file, cmd, ptr, &self.mem, &mut self.files).step(what)?;
        Ok((ret, self.read_back(ptr, what)?))
    }

    fn read_back<T: FromBytes + KnownLayout + Immutable>(
        &self,
        ptr: UserPtr,
        what: &'static str,
    ) -> Result<T, ScenarioError> {
        let bytes = self.mem.contents(ptr).ok_or(Error::new(Errno::EFAULT, "argument unmapped")).step(what)?;
        T::read_from_prefix(&bytes).map(|(v, _)| v).map_err(|_| ScenarioError::Setup(format!("{what}: short argument")))
    }

    /// `DMA_HEAP_IOCTL_ALLOC` of `len` bytes on the heap open at `heap`:
    /// the new dma-buf's fd.
    ///
    /// # Errors
    /// The kernel's errno: `EINVAL` (bad length, heap not bound), `ENOMEM`.
    pub fn heap_alloc(&mut self, heap: Fd, len: u64) -> Result<Fd, ScenarioError> {
        let req = DmaHeapAllocationData { len, fd: 0, fd_flags: O_RDWR | O_CLOEXEC, heap_flags: 0 };
        let (_, out) = self.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &req, "DMA_HEAP_IOCTL_ALLOC")?;
        Ok(Fd(out.fd as i32))
    }

    /// `TEE_IOC_SHM_ALLOC` of `size` bytes on the context open at `tee`.
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn shm_alloc(&mut self, tee: Fd, size: u64) -> Result<ShmHandle, ScenarioError> {
        let req = TeeIoctlShmAllocData { size, flags: 0, id: 0 };
        let (fd, out) = self.ioctl(tee, TEE_IOC_SHM_ALLOC, &req, "TEE_IOC_SHM_ALLOC")?;
        Ok(ShmHandle { fd: Fd(fd as i32), id: out.id, size: out.size })
    }

    /// `TEE_IOC_SHM_REGISTER_FD` of the dma-buf open at `buf`.
    ///
    /// # Errors
    /// `EINVAL` if it is not a protected buffer of this TEE.
    pub fn shm_register_fd(&mut self, tee: Fd, buf: Fd) -> Result<ShmHandle, ScenarioError> {
        let req = TeeIoctlShmRegisterFdData { fd: i64::from(buf.0), size: 0, flags: 0, id: 0 };
        let (fd, out) = self.ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &req, "TEE_IOC_SHM_REGISTER_FD")?;
        Ok(ShmHandle { fd: Fd(fd as i32), id: out.id, size: out.size })
    }

    /// Lays out a header and its params in the program's memory and calls
    /// `cmd` with a `tee_ioctl_buf_data` pointing at them. Returns the
    /// header and params as the kernel left them.
    fn buf_call<H: FromBytes + IntoBytes + Immutable + KnownLayout>(
        &mut self,
        tee: Fd,
        cmd: u32,
        header: &H,
        params: &[TeeIoctlParam],
        what: &'static str,
    ) -> Result<(H, Vec<TeeIoctlParam>), ScenarioError> {
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(params.as_bytes());
        let arg = self.mem.map(&bytes);
        let data = TeeIoctlBufData { buf_ptr: arg.0, buf_len: bytes.len() as u64 };
        let ptr = self.mem.map(data.as_bytes());
        let file = self.files.get(tee.0).step(what)?.clone();
        self.kernel.ioctl(&file, cmd, ptr, &self.mem, &mut self.files).step(what)?;
        let out = self.mem.contents(arg).ok_or(Error::new(Errno::EFAULT, "argument unmapped")).step(what)?;
        let short = || ScenarioError::Setup(format!("{what}: short argument"));
        let (h, rest) = H::read_from_prefix(&out).map_err(|_| short())?;
        let params = (0..params.len())
            .map(|i| {
                let at = rest.get(i * size_of::<TeeIoctlParam>()..).ok_or_else(short)?;
                TeeIoctlParam::read_from_prefix(at).map(|(p, _)| p).map_err(|_| short())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((h, params))
    }

    /// `TEE_IOC_OPEN_SESSION` with the TA `uuid`, public login, no params.
    ///
    /// # Errors
    /// The kernel's errno; [`ScenarioError::Tee`] if the TEE or TA refused.
    pub fn open_session(&mut self, tee: Fd, uuid: [u8; 16]) -> Result<u32, ScenarioError> {
        let arg = TeeIoctlOpenSessionArg { uuid, clnt_login: TEE_IOCTL_LOGIN_PUBLIC, ..Default::default() };
        let (a, _) = self.buf_call(tee, TEE_IOC_OPEN_SESSION, &arg, &[], "TEE_IOC_OPEN_SESSION")?;
        if a.ret != TEEC_SUCCESS {
            return Err(ScenarioError::Tee { what: "TEE_IOC_OPEN_SESSION", ret: a.ret, origin: a.ret_origin });
        }
        Ok(a.session)
    }

    /// `TEE_IOC_INVOKE` of command `func` in `session` with `params`.
    ///
    /// # Errors
    /// The kernel's errno (bad params, no such session); a TA error is in
    /// the reply, not an `Err`.
    pub fn invoke(
        &mut self,
        tee: Fd,
        session: u32,
        func: u32,
        params: &[TeeIoctlParam],
    ) -> Result<TeeReply, ScenarioError> {
        let arg = TeeIoctlInvokeArg { func, session, num_params: params.len() as u32, ..Default::default() };
        let (a, params) = self.buf_call(tee, TEE_IOC_INVOKE, &arg, params, "TEE_IOC_INVOKE")?;
        Ok(TeeReply { ret: a.ret, origin: a.ret_origin, params })
    }

    /// `TEE_IOC_CLOSE_SESSION`.
    ///
    /// # Errors
    /// `EINVAL` if the session is not open in this context.
    pub fn close_session(&mut self, tee: Fd, session: u32) -> Result<(), ScenarioError> {
        self.ioctl(tee, TEE_IOC_CLOSE_SESSION, &TeeIoctlCloseSessionArg { session }, "TEE_IOC_CLOSE_SESSION").map(drop)
    }

    /// The dma-buf behind `fd`, as a driver imports it (`dma_buf_get`) when
    /// the program hands the fd to a device (e.g. queueing a DMABUF).
    ///
    /// # Errors
    /// `EBADF` if `fd` is not a dma-buf.
    pub fn dma_buf(&self, fd: Fd) -> Result<Arc<DmaBuf>, ScenarioError> {
        let file = self.files.get(fd.0).step("dma_buf_get")?;
        file.as_dma_buf().ok_or(Error::new(Errno::EBADF, "not a dma-buf")).step("dma_buf_get")
    }

    /// The device `dev` attaches to the dma-buf at `fd` and maps it: the
    /// attachment (which keeps the buffer alive) and the scatter list the
    /// device DMAs to.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not a dma-buf; what the exporter's attach or map
    /// returns.
    pub fn attach(&self, fd: Fd, dev: Master) -> Result<DeviceMapping, ScenarioError> {
        let att = self.dma_buf(fd)?.attach(dev).step("dma_buf_attach")?;
        let sg = att.map().step("dma_buf_map_attachment")?;
        Ok(DeviceMapping { att, sg })
    }

    /// `mmap` of the dma-buf at `fd` by the program.
    ///
    /// # Errors
    /// `EINVAL` for a protected buffer (its exporter has no mmap).
    pub fn mmap_dma_buf(&self, fd: Fd) -> Result<CpuMapping, teeheap_kernel::Error> {
        let file = self.files.get(fd.0)?;
        let buf = file.as_dma_buf().ok_or(Error::new(Errno::EINVAL, "not a dma-buf"))?;
        buf.mmap(self.kernel.platform())
    }

    /// `mmap` of the shared-memory fd `shm` by the program.
    ///
    /// In the model a mapping of a `SHM_ALLOC` object is its kernel pages
    /// ([`Shm::mappable_range`], which is also the kernel's check: a
    /// registered or dma-buf shm has no mmap, `EINVAL`) accessed by
    /// [`Master::NsCpu`] through the firewall — the same route a
    /// [`CpuMapping`] of a system dma-buf takes.
    ///
    /// # Errors
    /// `EINVAL` if the shm cannot be mapped, `EBADF` if `shm` is not a shm fd.
    pub fn mmap_shm(&self, shm: &ShmHandle) -> Result<ShmMapping, ScenarioError> {
        let file = self.files.get(shm.fd.0).step("mmap shm")?;
        let Some(obj) = file.downcast::<Shm>() else {
            return Err(Error::new(Errno::EBADF, "not a shm fd")).step("mmap shm");
        };
        let range = obj.mappable_range().step("mmap shm")?;
        Ok(ShmMapping { _shm: obj, range, platform: Arc::clone(self.kernel.platform()) })
    }
}

impl Client<'_> {
    /// `open("/dev/<path>", O_RDWR | O_CLOEXEC)` of a DRM card: a DRM file.
    ///
    /// # Errors
    /// `ENOENT` if there is no such card.
    pub fn open_card(&mut self, path: &str) -> Result<Fd, ScenarioError> {
        let file = self.kernel.drm_open(path).step("open /dev/dri/card")?;
        self.install(File::new(file), "open /dev/dri/card")
    }

    /// `DRM_IOCTL_SET_CLIENT_CAP`.
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn drm_set_client_cap(&mut self, card: Fd, capability: u64, value: u64) -> Result<(), ScenarioError> {
        let cap = DrmSetClientCap { capability, value };
        self.ioctl(card, DRM_IOCTL_SET_CLIENT_CAP, &cap, "DRM_IOCTL_SET_CLIENT_CAP").map(drop)
    }

    /// PRIME import of the dma-buf at `buf` (`DRM_IOCTL_PRIME_FD_TO_HANDLE`)
    /// and `DRM_IOCTL_MODE_ADDFB2` of a tightly packed `width`x`height`
    /// frame of `fourcc` (NV12: the CbCr plane right after the Y plane):
    /// the framebuffer id.
    ///
    /// # Errors
    /// The kernel's errno (`EINVAL` for a format the display lacks).
    pub fn add_framebuffer(
        &mut self,
        card: Fd,
        buf: Fd,
        fourcc: u32,
        (width, height): (u32, u32),
    ) -> Result<u32, ScenarioError> {
        let p = DrmPrimeHandle { handle: 0, flags: 0, fd: buf.0 };
        let (_, p) = self.ioctl(card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &p, "DRM_IOCTL_PRIME_FD_TO_HANDLE")?;
        let mut fb = DrmModeFbCmd2 { width, height, pixel_format: fourcc, ..Default::default() };
        fb.handles[0] = p.handle;
        if fourcc == DRM_FORMAT_NV12 {
            (fb.handles[1], fb.pitches[0], fb.pitches[1], fb.offsets[1]) = (p.handle, width, width, width * height);
        } else {
            fb.pitches[0] = width * 4;
        }
        let (_, fb) = self.ioctl(card, DRM_IOCTL_MODE_ADDFB2, &fb, "DRM_IOCTL_MODE_ADDFB2")?;
        Ok(fb.fb_id)
    }

    /// `DRM_IOCTL_MODE_CREATEPROPBLOB` of `data`: the blob id.
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn create_blob(&mut self, card: Fd, data: &[u8]) -> Result<u32, ScenarioError> {
        let ptr = self.mem.map(data);
        let b = DrmModeCreateBlob { data: ptr.0, length: data.len() as u32, blob_id: 0 };
        let (_, b) = self.ioctl(card, DRM_IOCTL_MODE_CREATEPROPBLOB, &b, "DRM_IOCTL_MODE_CREATEPROPBLOB")?;
        Ok(b.blob_id)
    }

    /// `DRM_IOCTL_MODE_ATOMIC` of `(object, property, value)` triples
    /// (grouped by object in order).
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn atomic_commit(&mut self, card: Fd, flags: u32, sets: &[(u32, u32, u64)]) -> Result<(), ScenarioError> {
        let (mut objs, mut counts) = (Vec::<u32>::new(), Vec::<u32>::new());
        for &(obj, _, _) in sets {
            if objs.last() != Some(&obj) {
                objs.push(obj);
                counts.push(0);
            }
            *counts.last_mut().expect("pushed above") += 1;
        }
        let props: Vec<u32> = sets.iter().map(|s| s.1).collect();
        let values: Vec<u64> = sets.iter().map(|s| s.2).collect();
        let a = DrmModeAtomic {
            flags,
            count_objs: objs.len() as u32,
            objs_ptr: self.mem.map(objs.as_bytes()).0,
            count_props_ptr: self.mem.map(counts.as_bytes()).0,
            props_ptr: self.mem.map(props.as_bytes()).0,
            prop_values_ptr: self.mem.map(values.as_bytes()).0,
            reserved: 0,
            user_data: 0,
        };
        self.ioctl(card, DRM_IOCTL_MODE_ATOMIC, &a, "DRM_IOCTL_MODE_ATOMIC").map(drop)
    }
}

/// A device's attachment to a dma-buf and the scatter list it maps.
#[derive(Debug)]
pub struct DeviceMapping {
    att: Attachment,
    sg: SgTable,
}

impl DeviceMapping {
    /// The physical ranges the device uses.
    pub fn sg(&self) -> &[PhysRange] {
        self.sg.ranges()
    }

    /// The buffer.
    pub fn buffer(&self) -> &Arc<DmaBuf> {
        self.att.buffer()
    }
}

impl Drop for DeviceMapping {
    fn drop(&mut self) {
        self.att.unmap(std::mem::take(&mut self.sg));
    }
}

/// A program's mapping of a `SHM_ALLOC` object. Holds the object alive, as
/// a VMA does. See [`Client::mmap_shm`].
#[derive(Debug)]
pub struct ShmMapping {
    _shm: Arc<Shm>,
    range: PhysRange,
    platform: Arc<Platform>,
}

impl ShmMapping {
    /// The program stores `data` at `offset` of the mapping.
    ///
    /// # Errors
    /// `EFAULT` past the end of the mapping or if the firewall refuses.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), teeheap_kernel::Error> {
        let r = self.range.subrange(offset, data.len() as u64).ok_or(Error::new(Errno::EFAULT, "past the mapping"))?;
        self.platform.write(Master::NsCpu, r.start(), data).map_err(|_| Error::new(Errno::EFAULT, "access refused"))
    }
}
