//! A TEE client for the integration tests, in the manner of libteec: every
//! request goes through `Kernel::ioctl` with its argument laid out in a
//! simulated address space exactly as a C program lays it out (the
//! `tee_ioctl_buf_data` in one place, the argument header followed by its
//! params in another), against the real secure world and the OP-TEE-style
//! backend. Each test binary uses a subset of it.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::file::{FdTable, Files};
use teeheap_kernel::tee::shm::Shm;
use teeheap_kernel::uaccess::{SimUserMemory, UserPtr};
use teeheap_kernel::{Errno, Kernel};
use teeheap_platform::{Master, PhysAddr, Platform};
use teeheap_secure_world::{SecureConfig, SecureWorld};
use teeheap_uapi::dma_heap::{DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, O_CLOEXEC};
use teeheap_uapi::tee::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `O_RDWR`.
pub const O_RDWR: u32 = 2;
/// One MiB.
pub const MIB: u64 = 1 << 20;

/// `12345678-5b69-11e4-9dbb-101f74f00099` (OP-TEE's `sdp_basic` TA) as the
/// 16 octets a client puts into `tee_ioctl_open_session_arg.uuid`.
pub const SDP_UUID: [u8; 16] =
    [0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4, 0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99];
/// `TA_SDP_BASIC_CMD_INJECT`.
pub const CMD_INJECT: u32 = 0;
/// `TA_SDP_BASIC_CMD_TRANSFORM`.
pub const CMD_TRANSFORM: u32 = 1;
/// `TA_SDP_BASIC_CMD_DUMP`.
pub const CMD_DUMP: u32 = 2;
/// teeheap's DIGEST command of the SDP TA.
pub const CMD_DIGEST: u32 = 9;

/// Memref attribute types, short.
pub const MEM_IN: u64 = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT;
/// See [`MEM_IN`].
pub const MEM_OUT: u64 = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT;
/// See [`MEM_IN`].
pub const MEM_INOUT: u64 = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT;

/// Boots the default platform with its secure world (after `provision`
/// ran on it, e.g. to install a TA or a scrub observer) and probes the
/// OP-TEE-style backend on it.
pub fn boot_with(provision: impl FnOnce(&SecureWorld)) -> (Arc<Kernel>, OpteeBackend<SecureWorld>) {
    let platform = Arc::new(Platform::embedded_default().unwrap());
    let kernel = Kernel::boot(Arc::clone(&platform));
    let world = SecureWorld::new(Arc::clone(&platform), SecureConfig::for_platform(&platform)).unwrap();
    provision(&world);
    let config = OpteeConfig { dynamic_max: platform.config().tee.dynamic_max.0 };
    let backend = OpteeBackend::probe(&kernel, Arc::new(world), config).unwrap();
    (kernel, backend)
}

/// A `tee_ioctl_param` value.
pub fn value(attr: u64, a: u64, b: u64, c: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr, a, b, c }
}

/// A `tee_ioctl_param` memref: `size` bytes at `offset` of shm `id`.
pub fn memref(attr: u64, id: i32, offset: u64, size: u64) -> TeeIoctlParam {
    TeeIoctlParam { attr, a: offset, b: size, c: id as u64 }
}

/// `(ret, ret_origin)` of a finished call.
pub type Outcome = (u32, u32);

/// One client process: its address space and fd table.
pub struct Client {
    pub kernel: Arc<Kernel>,
    pub mem: SimUserMemory,
    pub files: FdTable,
}

impl Client {
    pub fn new(kernel: &Arc<Kernel>) -> Client {
        Client { kernel: Arc::clone(kernel), mem: SimUserMemory::new(), files: FdTable::default() }
    }

    /// `ioctl(fd, cmd, arg)`.
    pub fn ioctl(&mut self, fd: i32, cmd: u32, arg: UserPtr) -> Result<i64, Errno> {
        let file = self.files.get(fd).map_err(|e| e.errno())?.clone();
        self.kernel.ioctl(&file, cmd, arg, &self.mem, &mut self.files).map_err(|e| e.errno())
    }

    /// Maps `v`, runs `cmd` on it, and returns the result and `v` as the
    /// kernel left it.
    pub fn ioctl_obj<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        fd: i32,
        cmd: u32,
        v: &T,
    ) -> (Result<i64, Errno>, T) {
        let ptr = self.mem.map(v.as_bytes());
        let r = self.ioctl(fd, cmd, ptr);
        (r, T::read_from_bytes(&self.mem.contents(ptr).unwrap()).unwrap())
    }

    /// `open("/dev/<name>", O_RDWR)` of a TEE node.
    pub fn open_tee(&mut self, name: &str) -> i32 {
        let f = self.kernel.tee_open(name).unwrap();
        self.files.install(f, O_RDWR).unwrap()
    }

    /// `open("/dev/dma_heap/<name>", O_RDWR | O_CLOEXEC)`.
    pub fn open_heap(&mut self, name: &str) -> i32 {
        let f = self.kernel.dma_heap_open(name).unwrap();
        self.files.install(f, O_RDWR | O_CLOEXEC).unwrap()
    }

    /// `close(fd)`.
    pub fn close(&mut self, fd: i32) {
        self.files.close(fd).unwrap();
    }

    /// `DMA_HEAP_IOCTL_ALLOC` of `len` bytes with `O_RDWR | O_CLOEXEC`.
    pub fn heap_alloc(&mut self, heap: i32, len: u64) -> Result<i32, Errno> {
        let req = DmaHeapAllocationData { len, fd: 0, fd_flags: O_RDWR | O_CLOEXEC, heap_flags: 0 };
        let (r, out) = self.ioctl_obj(heap, DMA_HEAP_IOCTL_ALLOC, &req);
        r.map(|_| out.fd as i32)
    }

    /// The dma-buf behind `fd`.
    pub fn dma_buf(&self, fd: i32) -> Arc<DmaBuf> {
        self.files.get(fd).unwrap().as_dma_buf().expect("a dma-buf fd")
    }

    /// The shm behind `fd`.
    pub fn shm(&self, fd: i32) -> Arc<Shm> {
        let f = self.files.get(fd).unwrap();
        f.downcast::<Shm>().unwrap_or_else(|| panic!("fd {fd} is not a shm: {f:?}"))
    }

    /// `TEE_IOC_SHM_ALLOC` of `size` bytes: the new fd and the struct back.
    pub fn shm_alloc(&mut self, ctx: i32, size: u64) -> Result<(i32, TeeIoctlShmAllocData), Errno> {
        let (r, out) = self.ioctl_obj(ctx, TEE_IOC_SHM_ALLOC, &TeeIoctlShmAllocData { size, flags: 0, id: -1 });
        r.map(|fd| (fd as i32, out))
    }

    /// `TEE_IOC_SHM_REGISTER_FD` of `fd`: the new fd and the struct back.
    pub fn register_fd(&mut self, ctx: i32, fd: i64) -> Result<(i32, TeeIoctlShmRegisterFdData), Errno> {
        let arg = TeeIoctlShmRegisterFdData { fd, size: 0, flags: 0, id: -1 };
        let (r, out) = self.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER_FD, &arg);
        r.map(|fd| (fd as i32, out))
    }

    /// What the client would write through its `mmap` of a SHM_ALLOC fd:
    /// the normal-world CPU writes the shm's pages.
    pub fn shm_write(&self, fd: i32, offset: u64, data: &[u8]) {
        let start = self.shm(fd).mappable_range().unwrap().start();
        self.kernel.platform().write(Master::NsCpu, at(start, offset), data).unwrap();
    }

    /// Reads through the client's `mmap` of a SHM_ALLOC fd.
    pub fn shm_read(&self, fd: i32, offset: u64, len: usize) -> Vec<u8> {
        let start = self.shm(fd).mappable_range().unwrap().start();
        let mut v = vec![0; len];
        self.kernel.platform().read(Master::NsCpu, at(start, offset), &mut v).unwrap();
        v
    }

    /// A session-style request (`OPEN_SESSION`, `INVOKE`): `arg` (header
    /// and params, contiguous) is mapped, a `tee_ioctl_buf_data` pointing
    /// at it with `buf_len` is mapped elsewhere. Returns the result and the
    /// argument bytes afterwards.
    pub fn buf_call(&mut self, ctx: i32, cmd: u32, arg: &[u8], buf_len: u64) -> (Result<i64, Errno>, Vec<u8>) {
        let ptr = self.mem.map(arg);
        let buf = TeeIoctlBufData { buf_ptr: ptr.0, buf_len };
        let (r, _) = self.ioctl_obj(ctx, cmd, &buf);
        (r, self.mem.contents(ptr).unwrap())
    }

    /// `TEE_IOC_OPEN_SESSION` with `arg` (its `num_params` set from
    /// `params`) and an exact `buf_len`.
    pub fn open_session_with(
        &mut self,
        ctx: i32,
        mut arg: TeeIoctlOpenSessionArg,
        params: &[TeeIoctlParam],
    ) -> Result<(TeeIoctlOpenSessionArg, Vec<TeeIoctlParam>), Errno> {
        arg.num_params = params.len() as u32;
        let bytes = [arg.as_bytes(), params.as_bytes()].concat();
        let (r, out) = self.buf_call(ctx, TEE_IOC_OPEN_SESSION, &bytes, bytes.len() as u64);
        r.map(|_| split(&out))
    }

    /// `TEE_IOC_OPEN_SESSION` with public login.
    pub fn open_session(
        &mut self,
        ctx: i32,
        uuid: [u8; 16],
        params: &[TeeIoctlParam],
    ) -> Result<(TeeIoctlOpenSessionArg, Vec<TeeIoctlParam>), Errno> {
        let arg = TeeIoctlOpenSessionArg { uuid, clnt_login: TEE_IOCTL_LOGIN_PUBLIC, ..Default::default() };
        self.open_session_with(ctx, arg, params)
    }

    /// Opens a session that must succeed; returns its id.
    pub fn session(&mut self, ctx: i32, uuid: [u8; 16]) -> u32 {
        let (a, _) = self.open_session(ctx, uuid, &[]).unwrap();
        assert_eq!((a.ret, a.ret_origin), (0, gp::TEEC_ORIGIN_TRUSTED_APP), "open session");
        a.session
    }

    /// `TEE_IOC_INVOKE` of `func` in `session` with an exact `buf_len`.
    pub fn invoke(
        &mut self,
        ctx: i32,
        session: u32,
        func: u32,
        params: &[TeeIoctlParam],
    ) -> Result<(TeeIoctlInvokeArg, Vec<TeeIoctlParam>), Errno> {
        let arg = TeeIoctlInvokeArg { func, session, num_params: params.len() as u32, ..Default::default() };
        let bytes = [arg.as_bytes(), params.as_bytes()].concat();
        let (r, out) = self.buf_call(ctx, TEE_IOC_INVOKE, &bytes, bytes.len() as u64);
        r.map(|_| split(&out))
    }

    /// `TEE_IOC_INVOKE` that the core must accept: `(ret, origin)` and the
    /// params as written back.
    pub fn call(
        &mut self,
        ctx: i32,
        session: u32,
        func: u32,
        params: &[TeeIoctlParam],
    ) -> (Outcome, Vec<TeeIoctlParam>) {
        let (a, p) = self.invoke(ctx, session, func, params).unwrap();
        ((a.ret, a.ret_origin), p)
    }

    /// `TEE_IOC_CLOSE_SESSION`.
    pub fn close_session(&mut self, ctx: i32, session: u32) -> Result<i64, Errno> {
        self.ioctl_obj(ctx, TEE_IOC_CLOSE_SESSION, &TeeIoctlCloseSessionArg { session }).0
    }

    /// `TEE_IOC_CANCEL`.
    pub fn cancel(&mut self, ctx: i32, session: u32, cancel_id: u32) -> Result<i64, Errno> {
        self.ioctl_obj(ctx, TEE_IOC_CANCEL, &TeeIoctlCancelArg { cancel_id, session }).0
    }
}

fn at(start: PhysAddr, offset: u64) -> PhysAddr {
    start.checked_add(offset).unwrap()
}

/// Splits argument bytes into the header `H` and the params after it.
pub fn split<H: FromBytes>(bytes: &[u8]) -> (H, Vec<TeeIoctlParam>) {
    let (h, rest) = H::read_from_prefix(bytes).unwrap();
    let params = rest.chunks_exact(size_of::<TeeIoctlParam>()).map(|p| TeeIoctlParam::read_from_bytes(p).unwrap());
    (h, params.collect())
}
