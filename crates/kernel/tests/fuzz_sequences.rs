//! Sequence fuzzer of the kernel model's entry points (issue 11): seeded
//! random sequences of operations over a small fd table — heap and TEE
//! opens, ALLOC with hostile sizes and flags, close, dup, mmap and CPU
//! access, device attachments, dma-buf and sync-file ioctls, every TEE
//! ioctl with hostile arguments, raw ioctls, backend unbind/bind and heap
//! rm/add — against the real secure world and OP-TEE-style backend.
//!
//! Checked after every operation: live buffers are pairwise disjoint, the
//! normal-world CPU cannot touch a protected one, and an operation that
//! failed changed nothing (fds, mappings, buffers, shm ids, sessions,
//! normal memory, lent chunks, firewall regions, bindings, heap nodes).
//! Checked after every sequence, once everything is closed: no panic, no
//! buffer, no shm, no session, every lent chunk reclaimed, the firewall
//! regions exactly the boot set, normal memory at its baseline.
//!
//! A second test runs rounds of [`CONCURRENT`] sequences at once, as
//! separate processes racing on the shared heaps, pools, TEE device,
//! binding and heap nodes (a watchdog aborts on a deadlock).
//!
//! CI runs [`SMOKE_SEQUENCES`] sequences and [`SMOKE_ROUNDS`] rounds (debug,
//! ~10-20 s each on 2 cores). The environment drives the other modes (see
//! docs/fuzzing.md):
//! - `TEEHEAP_FUZZ_SEQUENCES=N`, `TEEHEAP_FUZZ_ROUNDS=N`: run N sequences
//!   or rounds (the long runs, `--release`);
//! - `TEEHEAP_FUZZ_THREADS=T`: sequences on T threads, each with its own
//!   platform;
//! - `TEEHEAP_FUZZ_BASE=S`: another family of seeds;
//! - `TEEHEAP_FUZZ_SEED=S`: replay the one sequence a failure printed,
//!   with its operations and results logged; `TEEHEAP_FUZZ_ROUND=S`: the
//!   round a failure printed (20 times: interleavings vary).
//!
//! A failing sequence is shrunk (chunks of operations dropped while it
//! still fails, on fresh platforms) and printed with its seed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_kernel::dma_buf::{Attachment, CpuMapping, SgTable};
use teeheap_kernel::file::{FdTable, File, FileKind, Files};
use teeheap_kernel::uaccess::{SimUserMemory, UserMemory, UserPtr};
use teeheap_kernel::{Errno, Kernel};
use teeheap_platform::firewall::{AccessKind, Region};
use teeheap_platform::{Master, PhysRange, Platform, UseCase};
use teeheap_secure_world::ta::{content_decrypt, sdp_basic, trusted_ui};
use teeheap_secure_world::{SecureConfig, SecureWorld};
use teeheap_uapi::dma_buf::{DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B, DmaBufSync};
use teeheap_uapi::dma_heap::{DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData};
use teeheap_uapi::tee::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Sequences of the CI smoke run.
const SMOKE_SEQUENCES: u64 = 30_000;
/// Seeds of the CI run and the default of the long run.
const DEFAULT_BASE: u64 = 0x7ee4_eab0_f0ee_d5ed;
/// Most operations in one sequence.
const MAX_OPS: u64 = 40;
/// fds the operations name: 3.. up to this many, plus hostile numbers.
const FD_SLOTS: u64 = 12;
/// The fd table's size (EMFILE beyond).
const FD_LIMIT: usize = 10;
/// Cap on the bytes the dynamic pools may lend.
const DYNAMIC_MAX: u64 = 64 << 20;

/// Deterministic pseudo-random choices of one sequence (`fastrand`,
/// seeded), with the shapes the fuzzer draws.
struct Rng(fastrand::Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(splitmix(seed)))
    }

    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }

    /// A length: mostly small and page-ish, sometimes hostile.
    fn len(&mut self) -> u64 {
        match self.below(10) {
            0..=3 => (1 + self.below(16)) * 4096,
            4 => self.below(3 * 4096),
            5 => self.pick(&[0, 1, 4095, 4096, 4097, 2 << 20, 8 << 20, 63 << 20]),
            6 => self.pick(&[
                64 << 20,
                (64 << 20) + 1,
                1 << 30,
                1 << 32,
                1 << 40,
                1 << 62,
                1 << 63,
                u64::MAX,
                u64::MAX - 4095,
                u64::MAX - 4096,
                i64::MAX as u64,
                u32::MAX as u64,
            ]),
            7 => 1 << self.below(64),
            8 => self.next(),
            _ => self.below(64 << 10),
        }
    }

    /// An offset into something: mostly small, sometimes hostile.
    fn offset(&mut self) -> u64 {
        match self.below(8) {
            0..=3 => 0,
            4 | 5 => self.below(3 * 4096),
            _ => self.len(),
        }
    }

    /// Flags: mostly the valid ones, sometimes any bits.
    fn flags32(&mut self, valid: &[u32]) -> u32 {
        match self.below(6) {
            0 => self.next() as u32,
            1 => 1 << self.below(32),
            _ => self.pick(valid),
        }
    }

    /// An fd: mostly an open one of `kind`, sometimes any open one, a
    /// number in the table's range or a hostile number.
    fn fd(&mut self, kind: Kind) -> FdRef {
        let i = self.below(8) as usize;
        match self.below(16) {
            0 => FdRef::Raw(self.pick(&[
                -1,
                0,
                1,
                2,
                1023,
                i32::MAX as i64,
                i32::MIN as i64,
                1 << 32,
                i64::MIN,
                i64::MAX,
            ])),
            1 => FdRef::Raw(3 + self.below(FD_SLOTS) as i64),
            2 | 3 => FdRef::Open(Kind::Any, i),
            _ => FdRef::Open(kind, i),
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What kind of open file an [`FdRef`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Any,
    Heap,
    Buf,
    Tee,
    Sync,
}

/// An fd an operation names, resolved when it runs (so that a sequence
/// mostly names files it opened, yet stays a pure function of its seed).
#[derive(Clone, Copy, Debug)]
enum FdRef {
    /// This number, open or not.
    Raw(i64),
    /// The i-th open fd of the kind (mod their number); fd 3 if none.
    Open(Kind, usize),
}

/// Heap names an open may ask for.
const HEAPS: [&str; 6] =
    ["system", "protected,secure-video", "protected,trusted-ui", "protected,secure-video-record", "nope", ""];
/// TEE nodes an open may ask for.
const TEE_NODES: [&str; 3] = ["tee0", "teepriv0", "tee1"];
/// Trusted applications a session may ask for: the three real ones and one
/// that does not exist.
const TAS: [[u8; 16]; 4] = [sdp_basic::UUID.0, content_decrypt::UUID.0, trusted_ui::UUID.0, [0x42; 16]];
/// Index of the trusted-UI TA in [`TAS`]: its INPUT command waits for
/// events up to the time in value `a`, which the fuzzer keeps short.
const TRUSTED_UI: usize = 2;

/// A `tee_ioctl_param` as the fuzzer describes it: memref ids name shms the
/// sequence learnt (or a raw id), values are raw.
#[derive(Clone, Debug)]
struct Param {
    attr: u64,
    a: u64,
    b: u64,
    /// `Ok(i)`: the i-th shm id learnt (mod their number); `Err(c)`: raw.
    c: std::result::Result<usize, u64>,
}

/// Where a session request's header goes.
#[derive(Clone, Copy, Debug)]
enum BufShape {
    /// `buf_len` matching `num_params`.
    Exact,
    /// `buf_len` off by this many bytes.
    Off(i64),
    /// `num_params` claims this many params, `buf_len` agrees, the memory
    /// holds only the given params.
    Claims(u32),
    /// The `tee_ioctl_buf_data` points at unmapped memory.
    BadPtr,
}

/// One operation of a sequence.
#[derive(Clone, Debug)]
enum Op {
    OpenHeap(usize),
    OpenTee(usize),
    Close(FdRef),
    Dup(FdRef),
    Alloc {
        fd: FdRef,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
        bad_ptr: bool,
    },
    Mmap(FdRef),
    Munmap(usize),
    CpuAccess {
        map: usize,
        write: bool,
        offset: u64,
        len: usize,
    },
    Attach {
        fd: FdRef,
        master: usize,
    },
    DeviceMap(usize),
    Detach(usize),
    Sync {
        fd: FdRef,
        flags: u64,
    },
    SetName {
        fd: FdRef,
        name: Vec<u8>,
        b: bool,
    },
    RawIoctl {
        fd: FdRef,
        cmd: u32,
        arg: u64,
        bytes: Vec<u8>,
    },
    /// EXPORT_SYNC_FILE (0), IMPORT_SYNC_FILE (1), SYNC_IOC_MERGE (2) or
    /// SYNC_IOC_FILE_INFO (3) on `fd`, with `other` as the imported file or
    /// the merge's `fd2`, `flags` as the flags (export/import) or
    /// `num_fences` (info); each checks what a success gives.
    SyncFile {
        what: u8,
        fd: FdRef,
        other: FdRef,
        flags: u32,
    },
    Version(FdRef),
    ShmAlloc {
        fd: FdRef,
        size: u64,
        flags: u32,
    },
    ShmRegister {
        fd: FdRef,
        map_len: usize,
        offset: u64,
        length: u64,
        flags: u32,
    },
    ShmRegisterFd {
        fd: FdRef,
        target: FdRef,
        flags: u32,
    },
    OpenSession {
        fd: FdRef,
        ta: usize,
        login: u32,
        params: Vec<Param>,
        shape: BufShape,
    },
    Invoke {
        session: usize,
        fd: Option<FdRef>,
        raw_session: Option<u32>,
        func: u32,
        params: Vec<Param>,
        shape: BufShape,
    },
    CloseSession {
        session: usize,
        fd: Option<FdRef>,
        raw: Option<u32>,
    },
    Cancel {
        session: usize,
        cancel_id: u32,
    },
    Unbind,
    Bind,
    HeapRm(usize),
    HeapAdd(usize),
}

fn gen_params(rng: &mut Rng) -> Vec<Param> {
    let n = match rng.below(10) {
        0 => 0,
        9 => rng.below(9),
        _ => 1 + rng.below(4),
    };
    (0..n)
        .map(|_| {
            let attr = match rng.below(24) {
                0 => rng.next(),
                1 => rng.below(0x200),
                2 => TEE_IOCTL_PARAM_ATTR_META | rng.pick(&[1, 5, 6, 7]),
                3..=5 => rng.pick(&[1, 2, 3]),
                _ => rng.pick(&[5, 6, 7]),
            };
            let c = match rng.below(8) {
                0 => Err(TEE_MEMREF_NULL),
                1 => {
                    let r = rng.next();
                    Err(rng.pick(&[0, 1, u32::MAX as u64, 1 << 32, r]))
                }
                _ => Ok(rng.below(8) as usize),
            };
            let (a, b) = match rng.below(4) {
                0 => (rng.offset(), rng.len()),
                _ => (rng.pick(&[0, 0, 16, 4096]), rng.pick(&[0, 1, 16, 64, 100, 4096])),
            };
            Param { attr, a, b, c }
        })
        .collect()
}

fn gen_shape(rng: &mut Rng) -> BufShape {
    match rng.below(16) {
        0 => BufShape::Off(rng.pick(&[-32, -1, 1, 8, 32, i64::MAX, i64::MIN])),
        1 => BufShape::Claims(rng.pick(&[1, 5, 100, 0x1_0000, u32::MAX])),
        2 => BufShape::BadPtr,
        _ => BufShape::Exact,
    }
}

fn gen_op(rng: &mut Rng) -> Op {
    match rng.below(100) {
        0..=9 => Op::OpenHeap(rng.below(HEAPS.len() as u64) as usize),
        10..=14 => Op::OpenTee(rng.below(TEE_NODES.len() as u64) as usize),
        15..=21 => Op::Close(rng.fd(Kind::Any)),
        22..=24 => Op::Dup(rng.fd(Kind::Any)),
        25..=39 => Op::Alloc {
            fd: rng.fd(Kind::Heap),
            len: rng.len(),
            fd_flags: rng.flags32(&[0o2_000_002, 0o2_000_000, 2, 0, 0o2_000_003, 3]),
            heap_flags: if rng.chance(8) { rng.next() } else { 0 },
            bad_ptr: rng.chance(20),
        },
        40..=43 => Op::Mmap(rng.fd(Kind::Buf)),
        44 | 45 => Op::Munmap(rng.below(8) as usize),
        46..=49 => Op::CpuAccess {
            map: rng.below(8) as usize,
            write: rng.chance(2),
            offset: rng.offset(),
            len: {
                let most = if rng.chance(8) { 3 * 4096 } else { 64 };
                rng.below(most) as usize
            },
        },
        50 | 51 => Op::Attach { fd: rng.fd(Kind::Buf), master: rng.below(Master::ALL.len() as u64) as usize },
        52 => Op::DeviceMap(rng.below(8) as usize),
        53 => Op::Detach(rng.below(8) as usize),
        54 => Op::Sync { fd: rng.fd(Kind::Buf), flags: if rng.chance(3) { rng.next() & 0xf } else { rng.below(8) } },
        55 => {
            let n = rng.pick(&[0, 1, 8, 31, 32, 33, 64]);
            let name = (0..n).map(|_| if rng.chance(40) { 0 } else { b'a' + rng.below(26) as u8 }).collect();
            Op::SetName { fd: rng.fd(Kind::Buf), name, b: rng.chance(2) }
        }
        56 => {
            let what = rng.below(4) as u8;
            let fd = rng.fd(if what < 2 { Kind::Buf } else { Kind::Sync });
            let flags = if rng.chance(4) { rng.next() as u32 } else { rng.below(4) as u32 };
            Op::SyncFile { what, fd, other: rng.fd(Kind::Sync), flags }
        }
        57 | 58 => {
            let cmd = match rng.below(4) {
                0 => rng.next() as u32,
                1 => teeheap_uapi::ioc::ioc(
                    rng.below(4) as u32,
                    rng.pick(&[b'H', b'b', b'>', 0xa4]),
                    rng.below(12) as u8,
                    rng.below(0x4000) as usize,
                ),
                _ => rng.pick(&[
                    DMA_HEAP_IOCTL_ALLOC,
                    DMA_BUF_IOCTL_SYNC,
                    DMA_BUF_SET_NAME_A,
                    DMA_BUF_SET_NAME_B,
                    teeheap_uapi::dma_buf::DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
                    teeheap_uapi::dma_buf::DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                    teeheap_uapi::sync_file::SYNC_IOC_MERGE,
                    teeheap_uapi::sync_file::SYNC_IOC_FILE_INFO,
                    teeheap_uapi::sync_file::SYNC_IOC_SET_DEADLINE,
                    TEE_IOC_VERSION,
                    TEE_IOC_SHM_ALLOC,
                    TEE_IOC_SHM_REGISTER,
                    TEE_IOC_SHM_REGISTER_FD,
                    TEE_IOC_OPEN_SESSION,
                    TEE_IOC_INVOKE,
                    TEE_IOC_CANCEL,
                    TEE_IOC_CLOSE_SESSION,
                    TEE_IOC_SUPPL_RECV,
                    TEE_IOC_SUPPL_SEND,
                ]),
            };
            let bytes = (0..rng.pick(&[0, 4, 16, 24, 48])).map(|_| rng.next() as u8).collect();
            let arg = if rng.chance(3) { rng.pick(&[0, 0x10, u64::MAX, 0xffff_8000_0000_0000]) } else { 1 };
            Op::RawIoctl { fd: rng.fd(Kind::Any), cmd, arg, bytes }
        }
        59 | 60 => Op::Version(rng.fd(Kind::Tee)),
        61..=66 => Op::ShmAlloc {
            fd: rng.fd(Kind::Tee),
            size: rng.len(),
            flags: if rng.chance(10) { rng.next() as u32 } else { 0 },
        },
        67..=70 => Op::ShmRegister {
            fd: rng.fd(Kind::Tee),
            map_len: rng.pick(&[4096, 8192, 3 * 4096 + 17, 100]),
            offset: if rng.chance(3) { rng.offset() } else { 0 },
            length: if rng.chance(3) { rng.len() } else { rng.pick(&[4096, 8192, 100, 1]) },
            flags: if rng.chance(10) { rng.next() as u32 } else { 0 },
        },
        71..=75 => Op::ShmRegisterFd {
            fd: rng.fd(Kind::Tee),
            target: rng.fd(Kind::Buf),
            flags: if rng.chance(10) { rng.next() as u32 } else { 0 },
        },
        76..=80 => Op::OpenSession {
            fd: rng.fd(Kind::Tee),
            ta: rng.below(TAS.len() as u64) as usize,
            login: if rng.chance(6) { rng.pick(&[1, 2, 4, 0x8000_0000, 0xbfff_ffff, 0xc000_0000, 7]) } else { 0 },
            params: if rng.chance(3) { gen_params(rng) } else { Vec::new() },
            shape: gen_shape(rng),
        },
        81..=90 => Op::Invoke {
            session: rng.below(8) as usize,
            fd: rng.chance(10).then(|| rng.fd(Kind::Tee)),
            raw_session: rng.chance(12).then(|| rng.next() as u32),
            func: if rng.chance(8) { rng.next() as u32 } else { rng.pick(&[0, 1, 2, 3, 4, 9]) },
            params: gen_params(rng),
            shape: gen_shape(rng),
        },
        91 | 92 => Op::CloseSession {
            session: rng.below(8) as usize,
            fd: rng.chance(8).then(|| rng.fd(Kind::Tee)),
            raw: rng.chance(8).then(|| rng.next() as u32),
        },
        93 => Op::Cancel { session: rng.below(8) as usize, cancel_id: rng.next() as u32 },
        94 if rng.chance(2) => Op::Unbind,
        94..=96 => Op::Bind,
        97 if rng.chance(2) => Op::HeapRm(rng.below(4) as usize),
        _ => Op::HeapAdd(rng.below(4) as usize),
    }
}

/// The operations of sequence `seed`.
fn gen_sequence(seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let n = 1 + rng.below(MAX_OPS);
    // Most sequences start with what most operations need.
    let mut ops = Vec::new();
    if !rng.chance(5) {
        ops.push(Op::OpenTee(rng.below(2) as usize));
    }
    for _ in 0..rng.below(3) {
        ops.push(Op::OpenHeap(rng.below(4) as usize));
    }
    ops.extend((0..n).map(|_| gen_op(&mut rng)));
    ops
}

/// One platform with its kernel, secure world and backend, reused by many
/// sequences: each sequence must leave it as it found it.
struct Machine {
    platform: Arc<Platform>,
    kernel: Arc<Kernel>,
    world: Arc<SecureWorld>,
    /// Taken by Unbind, put back by Bind; operations of concurrent
    /// sequences serialize on it.
    backend: Mutex<Option<OpteeBackend<SecureWorld>>>,
    /// Normal memory in use with the backend bound and nothing open.
    pages_bound: u64,
    /// The firewall regions at boot (the static carveouts).
    regions: Vec<(PhysRange, String)>,
}

impl Machine {
    fn boot() -> Machine {
        let platform = Arc::new(Platform::embedded_default().unwrap());
        let kernel = Kernel::boot(Arc::clone(&platform));
        let world = Arc::new(SecureWorld::new(Arc::clone(&platform), SecureConfig::for_platform(&platform)).unwrap());
        let regions = region_set(&platform.firewall().regions());
        let mut m = Machine { platform, kernel, world, backend: Mutex::new(None), pages_bound: 0, regions };
        *m.backend.get_mut().unwrap() = Some(m.probe().unwrap());
        m.pages_bound = m.kernel.normal_memory().pages_used();
        m
    }

    fn probe(&self) -> teeheap_kernel::Result<OpteeBackend<SecureWorld>> {
        OpteeBackend::probe(&self.kernel, Arc::clone(&self.world), OpteeConfig { dynamic_max: DYNAMIC_MAX })
    }
}

fn region_set(regions: &[Region]) -> Vec<(PhysRange, String)> {
    let mut v: Vec<_> = regions.iter().map(|r| (r.range, r.label.clone())).collect();
    v.sort_by_key(|(r, _)| r.start());
    v
}

/// The state a failed operation must not change ("bad input changes
/// nothing").
#[derive(Debug, PartialEq, Eq)]
struct State {
    fds: usize,
    maps: usize,
    attachments: usize,
    buffers: usize,
    shm_ids: Option<usize>,
    sessions: usize,
    normal_pages: u64,
    lent_outstanding: u64,
    regions: usize,
    bound: bool,
    removed: usize,
}

/// What one sequence holds: its fd table, address space, mappings,
/// attachments, and the shm ids and sessions it learnt.
struct Proc<'m> {
    m: &'m Machine,
    /// Alone on the machine: global state is this sequence's alone.
    solo: bool,
    files: FdTable,
    mem: SimUserMemory,
    maps: Vec<CpuMapping>,
    attachments: Vec<(Attachment, Option<SgTable>)>,
    shm_ids: Vec<u64>,
    /// (context fd, session id, TA index).
    sessions: Vec<(i64, u32, usize)>,
    log: bool,
}

type Res = std::result::Result<i64, Errno>;

impl Proc<'_> {
    /// The number `r` names now.
    fn fd(&self, r: FdRef) -> i64 {
        let (kind, i) = match r {
            FdRef::Raw(n) => return n,
            FdRef::Open(kind, i) => (kind, i),
        };
        let open: Vec<i64> = (3..3 + FD_SLOTS as i32)
            .filter(|&fd| match (kind, self.files.get(fd)) {
                (_, Err(_)) => false,
                (Kind::Any, Ok(_)) => true,
                (Kind::Heap, Ok(f)) => f.kind() == FileKind::DMA_HEAP,
                (Kind::Buf, Ok(f)) => f.kind() == FileKind::DMA_BUF,
                (Kind::Tee, Ok(f)) => f.kind() == FileKind::TEE_CONTEXT,
                (Kind::Sync, Ok(f)) => f.kind() == FileKind::SYNC_FILE,
            })
            .map(i64::from)
            .collect();
        if open.is_empty() { 3 } else { open[i % open.len()] }
    }

    fn file(&self, fd: i64) -> std::result::Result<File, Errno> {
        self.files.lookup(fd).map_err(|e| e.errno())
    }

    fn ioctl(&mut self, fd: i64, cmd: u32, arg: UserPtr) -> Res {
        let file = self.file(fd)?;
        self.m.kernel.ioctl(&file, cmd, arg, &self.mem, &mut self.files).map_err(|e| e.errno())
    }

    fn ioctl_obj<T: FromBytes + IntoBytes + Immutable>(&mut self, fd: i64, cmd: u32, v: &T) -> (Res, T) {
        let ptr = self.mem.map(v.as_bytes());
        let r = self.ioctl(fd, cmd, ptr);
        (r, T::read_from_bytes(&self.mem.contents(ptr).unwrap()).unwrap())
    }

    /// [`Op::SyncFile`]: every success hands out a sync file that is
    /// signalled (no device leaves work pending in the model).
    fn sync_file(&mut self, what: u8, fd: i64, other: i64, flags: u32) -> Res {
        use teeheap_uapi::dma_buf::{
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DmaBufExportSyncFile, DmaBufImportSyncFile,
        };
        use teeheap_uapi::sync_file::{SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE, SyncFileInfo, SyncMergeData};
        let signalled =
            |me: &Self, n: i32| match me.files.get(n).map(|f| f.downcast::<teeheap_kernel::sync_file::SyncFile>()) {
                Ok(Some(s)) => assert!(s.is_signalled() && s.status() == 1, "sync file {n} not signalled"),
                other => panic!("fd {n} is not a sync file: {other:?}"),
            };
        let other32 = other as i32;
        match what {
            0 => {
                let (r, out) =
                    self.ioctl_obj(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &DmaBufExportSyncFile { flags, fd: -1 });
                if r.is_ok() {
                    assert!((1..=3).contains(&flags), "EXPORT with flags {flags:#x} succeeded");
                    signalled(self, out.fd);
                }
                r
            }
            1 => self.ioctl_obj(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &DmaBufImportSyncFile { flags, fd: other32 }).0,
            2 => {
                let arg = SyncMergeData { name: [b'm'; 32], fd2: other32, fence: -1, flags: flags & 1, pad: 0 };
                let (r, out) = self.ioctl_obj(fd, SYNC_IOC_MERGE, &arg);
                if r.is_ok() {
                    signalled(self, out.fence);
                }
                r
            }
            _ => {
                let room = self.mem.map_zeroed(80 * 4);
                let arg = SyncFileInfo { num_fences: flags, sync_fence_info: room.0, ..SyncFileInfo::default() };
                let (r, out) = self.ioctl_obj(fd, SYNC_IOC_FILE_INFO, &arg);
                if r.is_ok() {
                    assert_eq!(out.status, 1, "FILE_INFO of a signalled file");
                    assert!(out.num_fences >= 1);
                }
                r
            }
        }
    }

    fn install(&mut self, f: teeheap_kernel::Result<File>) -> Res {
        let f = f.map_err(|e| e.errno())?;
        self.files.install(f, 2).map(i64::from).map_err(|e| e.errno())
    }

    fn learn_shm(&mut self, id: i32) {
        self.shm_ids.push(id as u32 as u64);
    }

    fn params(&self, params: &[Param], ta: Option<usize>) -> Vec<TeeIoctlParam> {
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = match p.c {
                    Ok(i) if !self.shm_ids.is_empty() => self.shm_ids[i % self.shm_ids.len()],
                    Ok(_) => TEE_MEMREF_NULL,
                    Err(c) => c,
                };
                let mut a = p.a;
                if ta == Some(TRUSTED_UI) && i == 0 {
                    a %= 3; // INPUT waits up to `a` ms for an event
                }
                TeeIoctlParam { attr: p.attr, a, b: p.b, c }
            })
            .collect()
    }

    /// A `tee_ioctl_buf_data` request of header `h` with `params`.
    fn buf_call<H: IntoBytes + Immutable + FromBytes>(
        &mut self,
        fd: i64,
        cmd: u32,
        h: &H,
        params: &[TeeIoctlParam],
        shape: BufShape,
    ) -> (Res, H) {
        let bytes = [h.as_bytes(), params.as_bytes()].concat();
        let ptr = self.mem.map(&bytes);
        let buf_len = match shape {
            BufShape::Exact | BufShape::Claims(_) => bytes.len() as u64,
            BufShape::Off(d) => (bytes.len() as u64).wrapping_add_signed(d),
            BufShape::BadPtr => bytes.len() as u64,
        };
        let buf_ptr = if matches!(shape, BufShape::BadPtr) { 0x10 } else { ptr.0 };
        let (r, _) = self.ioctl_obj(fd, cmd, &TeeIoctlBufData { buf_ptr, buf_len });
        let out = self.mem.contents(ptr).unwrap();
        (r, H::read_from_prefix(&out).unwrap().0)
    }

    fn session(&self, i: usize) -> Option<(i64, u32, usize)> {
        (!self.sessions.is_empty()).then(|| self.sessions[i % self.sessions.len()])
    }

    fn run(&mut self, op: &Op) -> Res {
        let k = Arc::clone(&self.m.kernel);
        match op {
            Op::OpenHeap(i) => self.install(k.dma_heap_open(HEAPS[*i])),
            Op::OpenTee(i) => self.install(k.tee_open(TEE_NODES[*i])),
            Op::Close(fd) => {
                let fd = self.fd(*fd);
                let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
                self.files.close(fd).map(|()| 0).map_err(|e| e.errno())
            }
            Op::Dup(fd) => {
                let fd = self.fd(*fd);
                let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
                self.files.dup(fd).map(i64::from).map_err(|e| e.errno())
            }
            Op::Alloc { fd, len, fd_flags, heap_flags, bad_ptr } => {
                let fd = self.fd(*fd);
                let req = DmaHeapAllocationData { len: *len, fd: 0, fd_flags: *fd_flags, heap_flags: *heap_flags };
                let r = if *bad_ptr {
                    self.ioctl(fd, DMA_HEAP_IOCTL_ALLOC, UserPtr(0x10))
                } else {
                    let (r, out) = self.ioctl_obj(fd, DMA_HEAP_IOCTL_ALLOC, &req);
                    if r.is_ok() {
                        let f = self.file(i64::from(out.fd)).expect("ALLOC returned an open fd");
                        let b = f.as_dma_buf().expect("ALLOC returned a dma-buf");
                        assert!(b.size().bytes() >= *len, "buffer smaller than asked");
                    }
                    r
                };
                if r.is_ok() && (*heap_flags != 0 || *len == 0) {
                    panic!("ALLOC accepted len {len} heap_flags {heap_flags:#x}");
                }
                r
            }
            Op::Mmap(fd) => {
                let fd = self.fd(*fd);
                let Some(b) = self.file(fd)?.as_dma_buf() else {
                    return Err(Errno::ENODEV);
                };
                let r = b.mmap(&self.m.platform).map_err(|e| e.errno());
                if b.is_protected() {
                    assert!(r.is_err(), "mmap of a protected buffer succeeded");
                }
                let map = r?;
                self.maps.push(map);
                Ok(0)
            }
            Op::Munmap(i) => {
                if self.maps.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let i = i % self.maps.len();
                drop(self.maps.swap_remove(i));
                Ok(0)
            }
            Op::CpuAccess { map, write, offset, len } => {
                if self.maps.is_empty() {
                    return Err(Errno::EFAULT);
                }
                let m = &self.maps[map % self.maps.len()];
                let r = if *write {
                    m.write(*offset, &vec![0xa5; *len])
                } else {
                    let mut v = vec![0; *len];
                    m.read(*offset, &mut v)
                };
                r.map(|()| 0).map_err(|e| e.errno())
            }
            Op::Attach { fd, master } => {
                let fd = self.fd(*fd);
                let Some(b) = self.file(fd)?.as_dma_buf() else {
                    return Err(Errno::EINVAL);
                };
                let a = b.attach(Master::ALL[*master]).map_err(|e| e.errno())?;
                self.attachments.push((a, None));
                Ok(0)
            }
            Op::DeviceMap(i) => {
                if self.attachments.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let n = self.attachments.len();
                let (a, sgt) = &mut self.attachments[i % n];
                match sgt.take() {
                    Some(s) => {
                        a.unmap(s);
                        Ok(0)
                    }
                    None => {
                        let s = a.map().map_err(|e| e.errno())?;
                        assert_eq!(s.len(), a.buffer().size().bytes(), "a device mapping covers the buffer");
                        *sgt = Some(s);
                        Ok(1)
                    }
                }
            }
            Op::Detach(i) => {
                if self.attachments.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let i = i % self.attachments.len();
                let (a, sgt) = self.attachments.swap_remove(i);
                if let Some(s) = sgt {
                    a.unmap(s);
                }
                Ok(0)
            }
            Op::Sync { fd, flags } => self.ioctl_obj(self.fd(*fd), DMA_BUF_IOCTL_SYNC, &DmaBufSync { flags: *flags }).0,
            Op::SetName { fd, name, b } => {
                let fd = self.fd(*fd);
                let ptr = self.mem.map(name);
                self.ioctl(fd, if *b { DMA_BUF_SET_NAME_B } else { DMA_BUF_SET_NAME_A }, ptr)
            }
            Op::RawIoctl { fd, cmd, arg, bytes } => {
                let fd = self.fd(*fd);
                let ptr = if *arg == 1 { self.mem.map(bytes) } else { UserPtr(*arg) };
                self.ioctl(fd, *cmd, ptr)
            }
            Op::SyncFile { what, fd, other, flags } => self.sync_file(*what, self.fd(*fd), self.fd(*other), *flags),
            Op::Version(fd) => {
                let fd = self.fd(*fd);
                let (r, v) = self.ioctl_obj(fd, TEE_IOC_VERSION, &TeeIoctlVersionData::default());
                if r.is_ok() {
                    assert_eq!(v.impl_id, TEE_IMPL_ID_OPTEE);
                }
                r
            }
            Op::ShmAlloc { fd, size, flags } => {
                let fd = self.fd(*fd);
                let (r, out) =
                    self.ioctl_obj(fd, TEE_IOC_SHM_ALLOC, &TeeIoctlShmAllocData { size: *size, flags: *flags, id: -1 });
                if r.is_ok() {
                    assert!(out.size >= *size && *flags == 0, "SHM_ALLOC {size} {flags:#x} -> {out:?}");
                    self.learn_shm(out.id);
                }
                r
            }
            Op::ShmRegister { fd, map_len, offset, length, flags } => {
                let fd = self.fd(*fd);
                let region = self.mem.map_zeroed(*map_len);
                let addr = region.0.wrapping_add(*offset);
                let arg = TeeIoctlShmRegisterData { addr, length: *length, flags: *flags, id: -1 };
                let (r, out) = self.ioctl_obj(fd, TEE_IOC_SHM_REGISTER, &arg);
                if r.is_ok() {
                    let mapped = usize::try_from(*length)
                        .ok()
                        .filter(|&n| n <= 1 << 20)
                        .is_some_and(|n| self.mem.read(UserPtr(addr), &mut vec![0; n]).is_ok());
                    assert!(mapped && *flags == 0, "SHM_REGISTER of unmapped memory accepted: {arg:?}");
                    self.learn_shm(out.id);
                }
                r
            }
            Op::ShmRegisterFd { fd, target, flags } => {
                let fd = self.fd(*fd);
                let target = self.fd(*target);
                let arg = TeeIoctlShmRegisterFdData { fd: target, size: 0, flags: *flags, id: -1 };
                let (r, out) = self.ioctl_obj(fd, TEE_IOC_SHM_REGISTER_FD, &arg);
                if r.is_ok() {
                    let b = self.file(target).ok().and_then(|f| f.as_dma_buf());
                    assert!(b.is_some_and(|b| b.is_protected()), "SHM_REGISTER_FD of a non-protected fd");
                    self.learn_shm(out.id);
                }
                r
            }
            Op::OpenSession { fd, ta, login, params, shape } => {
                let fd = self.fd(*fd);
                let mut p = self.params(params, Some(*ta));
                let mut h = TeeIoctlOpenSessionArg { uuid: TAS[*ta], clnt_login: *login, ..Default::default() };
                h.num_params = p.len() as u32;
                if let BufShape::Claims(n) = shape {
                    h.num_params = *n;
                    p.truncate(*n as usize);
                }
                let (r, out) = self.buf_call(fd, TEE_IOC_OPEN_SESSION, &h, &p, *shape);
                if r.is_ok() && out.ret == gp::TEEC_SUCCESS {
                    self.sessions.push((fd, out.session, *ta));
                }
                r
            }
            Op::Invoke { session, fd, raw_session, func, params, shape } => {
                let (sfd, sid, ta) = self.session(*session).unwrap_or((3, 0, 0));
                let mut p = self.params(params, Some(ta));
                let mut h = TeeIoctlInvokeArg {
                    func: *func,
                    session: raw_session.unwrap_or(sid),
                    num_params: p.len() as u32,
                    ..Default::default()
                };
                if let BufShape::Claims(n) = shape {
                    h.num_params = *n;
                    p.truncate(*n as usize);
                }
                self.buf_call(fd.map_or(sfd, |f| self.fd(f)), TEE_IOC_INVOKE, &h, &p, *shape).0
            }
            Op::CloseSession { session, fd, raw } => {
                let (sfd, sid, _) = self.session(*session).unwrap_or((3, 0, 0));
                let arg = TeeIoctlCloseSessionArg { session: raw.unwrap_or(sid) };
                let r = self.ioctl_obj(fd.map_or(sfd, |f| self.fd(f)), TEE_IOC_CLOSE_SESSION, &arg).0;
                if r.is_ok() {
                    self.sessions.retain(|&(_, s, _)| s != arg.session);
                }
                r
            }
            Op::Cancel { session, cancel_id } => {
                let (sfd, sid, _) = self.session(*session).unwrap_or((3, 0, 0));
                self.ioctl_obj(sfd, TEE_IOC_CANCEL, &TeeIoctlCancelArg { cancel_id: *cancel_id, session: sid }).0
            }
            Op::Unbind => {
                let b = self.m.backend.lock().unwrap().take().ok_or(Errno::ENODEV)?;
                drop(b); // outside the lock: unbinding calls into the secure world
                Ok(0)
            }
            Op::Bind => {
                let mut backend = self.m.backend.lock().unwrap();
                if backend.is_some() {
                    assert_eq!(self.m.probe().map(drop).map_err(|e| e.errno()), Err(Errno::EEXIST));
                    return Err(Errno::EEXIST);
                }
                *backend = Some(self.m.probe().map_err(|e| e.errno())?);
                Ok(0)
            }
            Op::HeapRm(i) => k.dma_heap_remove(HEAPS[*i]).map(|()| 0).map_err(|e| e.errno()),
            Op::HeapAdd(i) => k.dma_heap_readd(HEAPS[*i]).map(|()| 0).map_err(|e| e.errno()),
        }
    }

    /// What a failed operation must leave as it was.
    fn state(&self) -> State {
        let backend = self.m.backend.lock().unwrap();
        State {
            fds: self.files.len(),
            maps: self.maps.len(),
            attachments: self.attachments.len(),
            buffers: self.m.kernel.dma_bufs().len(),
            shm_ids: backend.as_ref().map(|b| b.device().shm_ids().len()),
            sessions: self.m.world.session_count(),
            normal_pages: self.m.kernel.normal_memory().pages_used(),
            lent_outstanding: self.m.world.stats().outstanding,
            regions: self.m.platform.firewall().regions().len(),
            bound: backend.is_some(),
            removed: self.m.kernel.removed_dma_heaps().len(),
        }
    }

    /// After every operation: live buffers pairwise disjoint; the
    /// normal-world CPU may touch no protected one.
    fn check_live(&self) -> std::result::Result<(), String> {
        let bufs = self.m.kernel.dma_bufs().snapshot();
        if let Some((a, b)) = teeheap_kernel::dma_buf::overlapping_buffers(&bufs) {
            return Err(format!("buffers {a:?} and {b:?} share memory: {bufs:?}"));
        }
        let fw = self.m.platform.firewall();
        // Others' buffers may be freed (and their memory unprotected) once
        // the snapshot is taken: with company, only the ones held here.
        let held: Vec<_> = (3..3 + FD_SLOTS as i32)
            .filter_map(|fd| self.files.get(fd).ok().and_then(|f| f.as_dma_buf()).map(|b| b.id()))
            .chain(self.attachments.iter().map(|(a, _)| a.buffer().id()))
            .collect();
        for b in bufs.iter().filter(|b| b.protected && (self.solo || held.contains(&b.id))) {
            for r in &b.ranges {
                for kind in [AccessKind::Read, AccessKind::Write] {
                    if fw.check(Master::NsCpu, *r, kind).is_ok() {
                        return Err(format!("normal-world CPU may {kind:?} protected buffer {:?} at {r:?}", b.id));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Everything closed: the machine must be as it was before the sequence.
fn check_quiescent(m: &mut Machine) -> std::result::Result<(), String> {
    for name in HEAPS {
        let _ = m.kernel.dma_heap_readd(name);
    }
    if !m.kernel.removed_dma_heaps().is_empty() {
        return Err(format!("heaps stay removed: {:?}", m.kernel.removed_dma_heaps()));
    }
    let mut errs = Vec::new();
    if !m.kernel.dma_bufs().is_empty() {
        errs.push(format!("{} buffers left: {:?}", m.kernel.dma_bufs().len(), m.kernel.dma_bufs().snapshot()));
    }
    // Unbind: every generation must drain and every lent chunk come back.
    drop(m.backend.get_mut().unwrap().take());
    for uc in UseCase::ALL {
        if let Some(h) = m.kernel.tee_heap(uc)
            && !h.generations().is_empty()
        {
            errs.push(format!("{uc}: generations left {:?}", h.generations()));
        }
    }
    let s = m.world.stats();
    if s.lent != s.reclaimed || !m.world.lent_objects().is_empty() {
        errs.push(format!("lent {} reclaimed {}: {:?}", s.lent, s.reclaimed, m.world.lent_objects()));
    }
    if m.world.session_count() != 0 {
        errs.push(format!("{} secure-world sessions left", m.world.session_count()));
    }
    let regions = region_set(&m.platform.firewall().regions());
    if regions != m.regions {
        errs.push(format!("firewall regions {regions:?}, at boot {:?}", m.regions));
    }
    match m.probe() {
        Ok(b) => *m.backend.get_mut().unwrap() = Some(b),
        Err(e) => errs.push(format!("rebind failed: {e}")),
    }
    let pages = m.kernel.normal_memory().pages_used();
    if pages != m.pages_bound {
        errs.push(format!("normal memory {pages} bytes in use, baseline {}", m.pages_bound));
    }
    if let Some(b) = m.backend.get_mut().unwrap()
        && !b.device().shm_ids().is_empty()
    {
        errs.push(format!("{} shm ids left", b.device().shm_ids().len()));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

/// Counters over a run.
#[derive(Default)]
struct Tally {
    sequences: AtomicU64,
    ops: AtomicU64,
    ok: AtomicU64,
    /// (operation, outcome) -> count.
    outcomes: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

fn op_name(op: &Op) -> String {
    let d = format!("{op:?}");
    d.split([' ', '(']).next().unwrap_or_default().to_owned()
}

/// Runs `ops` on `m`, then checks that it is as before; `Err` names the
/// first broken invariant (a panic included). `m` must be rebooted after
/// an `Err`.
fn run_ops(m: &mut Machine, ops: &[Op], log: bool, tally: Option<&Tally>) -> std::result::Result<(), String> {
    run_proc(m, ops, true, log, tally)?;
    catch_unwind(AssertUnwindSafe(|| check_quiescent(m))).unwrap_or_else(|_| Err("panic while checking".into()))
}

/// Runs `ops` as one process on `m` (`solo`: alone) and closes all it
/// holds; `Err` names the first broken invariant (a panic included).
fn run_proc(m: &Machine, ops: &[Op], solo: bool, log: bool, tally: Option<&Tally>) -> std::result::Result<(), String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut p = Proc {
            m,
            solo,
            files: FdTable::with_limit(FD_LIMIT),
            mem: SimUserMemory::new(),
            maps: Vec::new(),
            attachments: Vec::new(),
            shm_ids: Vec::new(),
            sessions: Vec::new(),
            log,
        };
        let mut ok = 0;
        let mut outcomes = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let before = p.state();
            let r = p.run(op);
            ok += u64::from(r.is_ok());
            if r.is_err() && p.solo {
                let after = p.state();
                if after != before {
                    return Err(format!("op {i} {op:?} failed with {r:?} but changed {before:?} -> {after:?}"));
                }
            }
            if tally.is_some() {
                outcomes.push((op_name(op), r.map_or_else(|e| format!("{e:?}"), |_| "ok".to_owned())));
            }
            if p.log {
                println!("{i:3} {op:?} -> {r:?}");
            }
            p.check_live().map_err(|e| format!("after op {i} {op:?}: {e}"))?;
        }
        if let Some(t) = tally {
            t.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
            t.ok.fetch_add(ok, Ordering::Relaxed);
            let mut o = t.outcomes.lock().unwrap();
            for k in outcomes {
                *o.entry(k).or_default() += 1;
            }
        }
        let Proc { files, maps, attachments, .. } = p;
        drop((maps, attachments, files));
        Ok(())
    }));
    match r {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
    }
}

/// Drops chunks of `ops` while the sequence still fails on a fresh machine.
fn shrink(mut ops: Vec<Op>) -> (Vec<Op>, String) {
    let fails = |ops: &[Op]| run_ops(&mut Machine::boot(), ops, false, None).err();
    let mut err = fails(&ops).unwrap_or_else(|| "(did not fail again on a fresh machine)".into());
    let mut chunk = ops.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        while i < ops.len() {
            let mut fewer = ops.clone();
            fewer.drain(i..(i + chunk).min(ops.len()));
            match fails(&fewer) {
                Some(e) => {
                    ops = fewer;
                    err = e;
                }
                None => i += chunk,
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    (ops, err)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    Some(match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{name}={v}")),
        None => v.parse().unwrap_or_else(|_| panic!("{name}={v}")),
    })
}

/// The seed of sequence `i` of family `base`.
fn seed_of(base: u64, i: u64) -> u64 {
    splitmix(base ^ splitmix(i))
}

fn report_failure(seed: u64, err: &str) -> String {
    let (ops, shrunk_err) = shrink(gen_sequence(seed));
    let mut s = format!(
        "sequence seed {seed:#x} failed: {err}\nreplay: TEEHEAP_FUZZ_SEED={seed:#x} cargo test -p teeheap-kernel \
         --test fuzz_sequences -- --exact sequences_keep_the_invariants --nocapture\nshrunk to {} ops \
         ({shrunk_err}):\n",
        ops.len()
    );
    for op in &ops {
        s.push_str(&format!("  {op:?}\n"));
    }
    s
}

#[test]
fn sequences_keep_the_invariants() {
    if let Some(seed) = env_u64("TEEHEAP_FUZZ_SEED") {
        let ops = gen_sequence(seed);
        let r = run_ops(&mut Machine::boot(), &ops, true, None);
        if let Err(e) = r {
            panic!("{}", report_failure(seed, &e));
        }
        return;
    }
    let total = env_u64("TEEHEAP_FUZZ_SEQUENCES").unwrap_or(SMOKE_SEQUENCES);
    let threads = env_u64("TEEHEAP_FUZZ_THREADS").unwrap_or(1).max(1);
    let base = env_u64("TEEHEAP_FUZZ_BASE").unwrap_or(DEFAULT_BASE);
    let tally = Tally::default();
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut m = Machine::boot();
                    let mut failures = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let seed = seed_of(base, i);
                        if let Err(e) = run_ops(&mut m, &gen_sequence(seed), false, Some(&tally)) {
                            failed.store(true, Ordering::Relaxed);
                            failures.push(report_failure(seed, &e));
                            m = Machine::boot();
                        }
                        let done = tally.sequences.fetch_add(1, Ordering::Relaxed) + 1;
                        if total > SMOKE_SEQUENCES && done % 100_000 == 0 {
                            let secs = start.elapsed().as_secs_f64();
                            eprintln!("{done} sequences in {secs:.0} s ({:.0}/s)", done as f64 / secs);
                        }
                    }
                    failures
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz: base {base:#x}, {} sequences, {} operations ({} succeeded), {threads} threads, {secs:.1} s",
        tally.sequences.load(Ordering::Relaxed),
        tally.ops.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
    );
    for ((op, outcome), n) in tally.outcomes.lock().unwrap().iter() {
        println!("  {op:14} {outcome:8} {n}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        tally.ok.load(Ordering::Relaxed) * 3 > tally.ops.load(Ordering::Relaxed),
        "at least a third of the operations succeed"
    );
}

/// Rounds of the CI run of [`concurrent_sequences_keep_the_invariants`].
const SMOKE_ROUNDS: u64 = 5000;
/// Processes racing in one round.
const CONCURRENT: u64 = 3;

/// Rounds of [`CONCURRENT`] sequences at once on one machine, as separate
/// processes: each has its own fds and memory; heaps, pools, the TEE
/// device, the binding and the heap nodes are shared, and their operations
/// race. After every round the machine must be as before, as after a
/// sequence alone. The interleavings vary from run to run; a failing
/// round's seed replays its operation streams (`TEEHEAP_FUZZ_ROUND=S`, run
/// 20 times). `TEEHEAP_FUZZ_ROUNDS=N` for long runs.
#[test]
fn concurrent_sequences_keep_the_invariants() {
    let rounds = env_u64("TEEHEAP_FUZZ_ROUNDS").unwrap_or(SMOKE_ROUNDS);
    let base = env_u64("TEEHEAP_FUZZ_BASE").unwrap_or(DEFAULT_BASE) ^ 0xc0c0_c0c0;
    let seeds: Vec<u64> = match env_u64("TEEHEAP_FUZZ_ROUND") {
        Some(s) => vec![s; 20],
        None => (0..rounds).map(|i| seed_of(base, i)).collect(),
    };
    let mut m = Machine::boot();
    let tally = Tally::default();
    let current = AtomicU64::new(0);
    let (beat, heartbeats) = std::sync::mpsc::channel::<()>();
    let start = Instant::now();
    let failure = std::thread::scope(|s| {
        // A round that hangs is a deadlock: say which and stop.
        let current = &current;
        s.spawn(move || {
            use std::sync::mpsc::RecvTimeoutError::{Disconnected, Timeout};
            loop {
                match heartbeats.recv_timeout(std::time::Duration::from_secs(60)) {
                    Ok(()) => {}
                    Err(Disconnected) => return,
                    Err(Timeout) => {
                        eprintln!("round seed {:#x} hangs (deadlock?)", current.load(Ordering::Relaxed));
                        std::process::abort();
                    }
                }
            }
        });
        for &round in &seeds {
            current.store(round, Ordering::Relaxed);
            beat.send(()).unwrap();
            let together = std::sync::Barrier::new(CONCURRENT as usize);
            let errs: Vec<String> = std::thread::scope(|s| {
                let procs: Vec<_> = (0..CONCURRENT)
                    .map(|t| {
                        let ops = gen_sequence(seed_of(round, t));
                        let (m, tally, together) = (&m, &tally, &together);
                        s.spawn(move || {
                            together.wait();
                            run_proc(m, &ops, false, false, Some(tally))
                        })
                    })
                    .collect();
                procs.into_iter().filter_map(|p| p.join().unwrap().err()).collect()
            });
            let r = if errs.is_empty() {
                catch_unwind(AssertUnwindSafe(|| check_quiescent(&mut m)))
                    .unwrap_or_else(|_| Err("panic while checking".into()))
            } else {
                Err(errs.join("; "))
            };
            if let Err(e) = r {
                return Some(format!(
                    "round seed {round:#x} failed: {e}\nreplay (interleavings vary): TEEHEAP_FUZZ_ROUND={round:#x} \
                     cargo test -p teeheap-kernel --test fuzz_sequences -- --exact \
                     concurrent_sequences_keep_the_invariants --nocapture"
                ));
            }
            tally.sequences.fetch_add(CONCURRENT, Ordering::Relaxed);
        }
        drop(beat);
        None
    });
    println!(
        "concurrent fuzz: base {base:#x}, {} rounds of {CONCURRENT}, {} operations ({} succeeded), {:.1} s",
        seeds.len(),
        tally.ops.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    if let Some(f) = failure {
        panic!("{f}");
    }
    assert!(tally.ok.load(Ordering::Relaxed) * 3 > tally.ops.load(Ordering::Relaxed), "a third of them succeed");
}
