//! Every validation path of the TEE ioctls (`tee_core.c`), driven through
//! `Kernel::ioctl` against the real secure world and OP-TEE-style backend:
//! the errno of each rejected request and that it changed nothing, and the
//! GlobalPlatform `ret` / `ret_origin` of the requests that reach the TEE.

mod tee_client;

use std::sync::Arc;

use tee_client::{CMD_DIGEST, CMD_INJECT, Client, MEM_IN, MEM_INOUT, MEM_OUT, SDP_UUID, boot_with, memref, value};
use teeheap_kernel::Errno;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_kernel::tee::shm::flags::{TEE_SHM_DMA_BUF, TEE_SHM_DYNAMIC, TEE_SHM_USER_MAPPED};
use teeheap_kernel::uaccess::{Credentials, UserMemory, UserPtr};
use teeheap_secure_world::SecureWorld;
use teeheap_secure_world::ta::sdp_basic;
use teeheap_secure_world::{TaEnv, TaParam, TeeError, TeeResult, TrustedApp, Uuid};
use teeheap_uapi::ioc;
use teeheap_uapi::tee::gp::*;
use teeheap_uapi::tee::*;
use zerocopy::IntoBytes;

const EINVAL: Errno = Errno::EINVAL;
const EFAULT: Errno = Errno::EFAULT;

/// A TA installed for these tests only, to observe what reaches a TA.
const PROBE_UUID: [u8; 16] = *b"teeheap probe TA";
/// A value input `a` that makes the probe TA refuse the session.
const REFUSE: u64 = 0xdead;
/// Adds 0x10/0x20/0x30 to `a`/`b`/`c` of every output value.
const CMD_VALUES: u32 = 0;
/// Param 0 any memref, param 1 value out: (is NULL, size, is protected).
const CMD_DESCRIBE: u32 = 1;
/// Fails with the GP code in value param 0 `a`.
const CMD_FAIL: u32 = 2;
/// Param 0 memref out, param 1 value in: reports size `a` (SHORT_BUFFER if larger).
const CMD_OUT_SIZE: u32 = 3;
/// Param 0 value out: the session's client login and UUID (`a`, and the
/// UUID's two halves big-endian in `b`, `c`).
const CMD_IDENTITY: u32 = 4;

struct ProbeTa;

impl TrustedApp for ProbeTa {
    fn open_session(&mut self, _env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        match params.first().and_then(TaParam::values) {
            Some((REFUSE, _, _)) => Err(TeeError::ACCESS_DENIED),
            _ => Ok(()),
        }
    }

    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        let bad = TeeError::BAD_PARAMETERS;
        match cmd {
            CMD_IDENTITY => {
                let u = env.client.uuid.0;
                let half = |i: usize| u64::from_be_bytes(u[i..i + 8].try_into().unwrap());
                params.first_mut().ok_or(bad)?.set_values((u64::from(env.client.login), half(0), half(8)));
                Ok(())
            }
            CMD_VALUES => {
                for p in params.iter_mut() {
                    if let Some((a, b, c)) = p.values() {
                        p.set_values((a + 0x10, b + 0x20, c + 0x30));
                    }
                }
                Ok(())
            }
            CMD_DESCRIBE => {
                let m = params.first().and_then(TaParam::memref).ok_or(bad)?;
                let d = (u64::from(m.range().is_none()), m.size(), u64::from(m.is_protected()));
                params.get_mut(1).ok_or(bad)?.set_values(d);
                Ok(())
            }
            CMD_FAIL => {
                let code = params.first().and_then(TaParam::values).map_or(0, |(a, _, _)| a as u32);
                Err(TeeError::from_code(code).unwrap_or(TeeError::GENERIC))
            }
            CMD_OUT_SIZE => {
                let (want, _, _) = params.get(1).and_then(TaParam::values).ok_or(bad)?;
                let m = params.first_mut().and_then(TaParam::memref_mut).ok_or(bad)?;
                m.set_out_size(want);
                if want > m.size() { Err(TeeError::SHORT_BUFFER) } else { Ok(()) }
            }
            _ => Err(TeeError::NOT_SUPPORTED),
        }
    }
}

fn boot() -> (Client, OpteeBackend<SecureWorld>) {
    let (kernel, backend) = boot_with(|w| w.register_ta(Uuid(PROBE_UUID), "probe", Arc::new(|| Box::new(ProbeTa))));
    (Client::new(&kernel), backend)
}

/// What a rejected request must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct State {
    fds: usize,
    shm_ids: usize,
    normal_pages: u64,
    dma_bufs: usize,
    sessions: usize,
}

fn state(c: &Client, b: &OpteeBackend<SecureWorld>) -> State {
    State {
        fds: c.files.len(),
        shm_ids: b.device().shm_ids().len(),
        normal_pages: c.kernel.normal_memory().pages_used(),
        dma_bufs: c.kernel.dma_bufs().len(),
        sessions: b.world().session_count(),
    }
}

/// An address nothing is mapped at.
const BAD_PTR: UserPtr = UserPtr(0x10);

#[test]
fn sdp_uuid_octets_match_the_secure_world() {
    assert_eq!(SDP_UUID, sdp_basic::UUID.0);
}

#[test]
fn version_reports_optee_on_both_nodes() {
    let (mut c, _b) = boot();
    let common = TEE_GEN_CAP_GP | TEE_GEN_CAP_REG_MEM | TEE_GEN_CAP_MEMREF_NULL;
    for (node, gen_caps) in [("tee0", common), ("teepriv0", common | TEE_GEN_CAP_PRIVILEGED)] {
        let ctx = c.open_tee(node);
        let (r, v) = c.ioctl_obj(ctx, TEE_IOC_VERSION, &TeeIoctlVersionData::default());
        assert_eq!(r, Ok(0), "{node}");
        // As optee_get_version (SMC ABI) plus PRIVILEGED on the supplicant node.
        assert_eq!(
            v,
            TeeIoctlVersionData { impl_id: TEE_IMPL_ID_OPTEE, impl_caps: TEE_OPTEE_CAP_TZ, gen_caps },
            "{node}"
        );
        assert_eq!(c.ioctl(ctx, TEE_IOC_VERSION, BAD_PTR), Err(EFAULT), "{node}");
        let short = c.mem.map_zeroed(8);
        assert_eq!(c.ioctl(ctx, TEE_IOC_VERSION, short), Err(EFAULT), "{node}: 12 bytes into 8");
    }
}

#[test]
fn unknown_requests_are_einval_and_shm_fds_have_no_ioctls() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let arg = c.mem.map_zeroed(64);
    let before = state(&c, &b);
    for cmd in [
        ioc::ior(TEE_IOC_MAGIC, 10, 16), // nr past the table
        ioc::iowr(TEE_IOC_MAGIC, 1, 24), // SHM_ALLOC with a wrong size
        ioc::iowr(TEE_IOC_MAGIC, 0, 12), // VERSION with a wrong direction
        ioc::iowr(b'H', 0, 24),          // a dma-heap request
        ioc::ior(TEE_IOC_MAGIC, 6, 16),  // SUPPL_RECV on a client node
        ioc::ior(TEE_IOC_MAGIC, 7, 16),  // SUPPL_SEND on a client node
        0,
    ] {
        assert_eq!(c.ioctl(ctx, cmd, arg), Err(EINVAL), "cmd {cmd:#x}");
    }
    assert_eq!(state(&c, &b), before);
    let (shm, _) = c.shm_alloc(ctx, 4096).unwrap();
    assert_eq!(c.ioctl(shm, TEE_IOC_VERSION, arg), Err(Errno::ENOTTY));
}

#[test]
fn shm_alloc() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let before = state(&c, &b);
    for (what, arg) in [
        ("input flags", TeeIoctlShmAllocData { size: 4096, flags: 1, id: 0 }),
        ("DMA_BUF flag", TeeIoctlShmAllocData { size: 4096, flags: TEE_IOCTL_SHM_DMA_BUF, id: 0 }),
    ] {
        assert_eq!(c.ioctl_obj(ctx, TEE_IOC_SHM_ALLOC, &arg).0, Err(EINVAL), "{what}");
    }
    // Size 0: Linux has no check; OP-TEE's pool asks alloc_pages_exact for
    // no pages, which fails: ENOMEM. A size that does not round up to
    // whole pages fails the same way.
    for size in [0, u64::MAX, u64::MAX - 4094] {
        let arg = TeeIoctlShmAllocData { size, flags: 0, id: 0 };
        assert_eq!(c.ioctl_obj(ctx, TEE_IOC_SHM_ALLOC, &arg).0, Err(Errno::ENOMEM), "size {size:#x}");
    }
    assert_eq!(c.ioctl(ctx, TEE_IOC_SHM_ALLOC, BAD_PTR), Err(EFAULT));
    assert_eq!(state(&c, &b), before);

    let (fd, a) = c.shm_alloc(ctx, 100).unwrap();
    let (fd2, a2) = c.shm_alloc(ctx, 3 * 4096).unwrap();
    assert!(a.id > 0 && a2.id > 0 && a.id != a2.id);
    // OP-TEE's pool hands out whole pages and reports their size; flags
    // come back as passed (tee_ioctl_shm_alloc does not set them).
    assert_eq!((a.size, a2.size), (4096, 3 * 4096));
    assert_eq!((a.flags, a2.flags), (0, 0));
    let shm = c.shm(fd);
    assert_eq!((shm.id(), shm.size()), (a.id, a.size));
    assert_eq!(c.files.flags(fd).unwrap(), O_RDWR_CLOEXEC);
    assert_eq!(b.device().shm_ids().len(), 2);
    assert_eq!(c.kernel.normal_memory().pages_used(), before.normal_pages + 4 * 4096);
    // Zeroed, and mappable by the client.
    assert_eq!(c.shm_read(fd, 0, 4096), vec![0; 4096]);
    drop(shm);
    c.close(fd);
    c.close(fd2);
    assert_eq!(state(&c, &b), before, "closing the fds frees ids and pages");
}

const O_RDWR_CLOEXEC: u32 = 2 | teeheap_uapi::dma_heap::O_CLOEXEC;

#[test]
fn shm_register() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let region = c.mem.map(&[7; 3 * 4096]);
    let before = state(&c, &b);
    let reg = |addr: UserPtr, length: u64, flags: u32| TeeIoctlShmRegisterData { addr: addr.0, length, flags, id: 0 };
    for (what, arg, errno) in [
        ("input flags", reg(region, 4096, 1), EINVAL),
        ("unmapped range", reg(BAD_PTR, 4096, 0), EFAULT),
        // Only some pages could be pinned: ENOMEM, as register_shm_helper.
        ("running off the mapping", reg(region, 4 * 4096, 0), Errno::ENOMEM),
        ("length 0: no pages to pin", reg(region, 0, 0), Errno::ENOMEM),
        // Pinned for writing (FOLL_WRITE): a read-only mapping faults.
        ("a read-only mapping", reg(c.mem.map_read_only(&[1; 4096]), 4096, 0), EFAULT),
    ] {
        assert_eq!(c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER, &arg).0, Err(errno), "{what}");
    }
    assert_eq!(c.ioctl(ctx, TEE_IOC_SHM_REGISTER, BAD_PTR), Err(EFAULT));
    assert_eq!(state(&c, &b), before);

    let (r, out) = c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER, &reg(region.checked_add(100).unwrap(), 5000, 0));
    let fd = r.unwrap() as i32;
    assert!(out.id > 0);
    assert_eq!(out.length, 5000);
    // The shm's own flags, as tee_ioctl_shm_register copies them out.
    assert_eq!(out.flags, TEE_SHM_USER_MAPPED | TEE_SHM_DYNAMIC);
    assert_eq!(out.flags, 3);
    assert_eq!((c.shm(fd).id(), c.shm(fd).size()), (out.id, 5000));
    assert_eq!(c.shm(fd).mappable_range().unwrap_err().errno(), EINVAL, "registered memory has no mmap");
    c.close(fd);
    assert_eq!(state(&c, &b), before);
}

/// Issue 11, finding 2: a length from the client sizes nothing before it
/// is bounded. Each answer is `tee_shm_register_user_buf`'s: `access_ok`
/// (EFAULT) first, then the page array's `kcalloc` (ENOMEM past 2 GiB), then
/// the pin (EFAULT if nothing, ENOMEM if a part could be pinned).
#[test]
fn shm_register_bounds_untrusted_lengths() {
    use teeheap_kernel::tee::shm::MAX_REGISTER_PAGES;
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let region = c.mem.map(&[7; 4096]);
    // Low in user space, nothing mapped there.
    let low = UserPtr(0x1000_0000);
    let before = state(&c, &b);
    let reg = |addr: UserPtr, length: u64| TeeIoctlShmRegisterData { addr: addr.0, length, flags: 0, id: 0 };
    let cap = MAX_REGISTER_PAGES * 4096;
    for (what, arg, errno) in [
        ("1 TiB past the end of user space", reg(region, 1 << 40), EFAULT),
        ("1 TiB low in user space: too many pages", reg(low, 1 << 40), Errno::ENOMEM),
        ("2^62", reg(region, 0x4000_0000_0000_0000), EFAULT),
        ("2^63", reg(region, 1 << 63), EFAULT),
        ("addr + length wraps", reg(region, u64::MAX - 100), EFAULT),
        ("u64::MAX at 0", reg(UserPtr(0), u64::MAX), EFAULT),
        ("one page past the cap", reg(low, cap + 4096), Errno::ENOMEM),
        ("4 GiB after a mapped page", reg(region, 4 << 30), Errno::ENOMEM),
        // At the cap the pin decides: nothing mapped at the start.
        ("the cap, unmapped", reg(low, cap), EFAULT),
        // The cap counts pages spanned: one byte more than the cap across
        // a page boundary needs one page too many.
        ("the cap's bytes, unaligned", reg(UserPtr(low.0 + 1), cap), Errno::ENOMEM),
        ("the cap, mapped only at the start", reg(region, cap), Errno::ENOMEM),
    ] {
        assert_eq!(c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER, &arg).0, Err(errno), "{what}");
        assert_eq!(state(&c, &b), before, "{what}: nothing changed");
    }
}

/// A registration larger than the copy chunk goes to the TA and back whole.
#[test]
fn large_registered_memory_is_copied_in_chunks() {
    const LEN: u64 = 300 << 10;
    let (mut c, _b) = boot();
    let ctx = c.open_tee("tee0");
    let sdp = c.session(ctx, SDP_UUID);
    let heap = c.open_heap("protected,secure-video");
    let buf = c.heap_alloc(heap, LEN).unwrap();
    let (_reg, secure) = c.register_fd(ctx, buf.into()).unwrap();
    let data: Vec<u8> = (0..LEN as u32).map(|i| (i * 13 + i / 4096) as u8).collect();
    let src = c.mem.map(&data);
    let dst = c.mem.map_zeroed(LEN as usize);
    let mut register = |addr: UserPtr| {
        let arg = TeeIoctlShmRegisterData { addr: addr.0, length: LEN, flags: 0, id: 0 };
        let (r, out) = c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER, &arg);
        r.unwrap();
        out.id
    };
    let (src_id, dst_id) = (register(src), register(dst));
    let ok = (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP);
    let inject = [memref(MEM_IN, src_id, 0, LEN), memref(MEM_OUT, secure.id, 0, LEN)];
    assert_eq!(c.call(ctx, sdp, CMD_INJECT, &inject).0, ok);
    let dump = [memref(MEM_IN, secure.id, 0, LEN), memref(MEM_OUT, dst_id, 0, LEN)];
    assert_eq!(c.call(ctx, sdp, tee_client::CMD_DUMP, &dump).0, ok);
    assert!(c.mem.contents(dst).unwrap() == data, "every chunk arrived");
}

#[test]
fn shm_register_fd() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let sys = c.open_heap("system");
    let sys_buf = c.heap_alloc(sys, 8192).unwrap();
    let prot = c.open_heap("protected,secure-video");
    let buf = c.heap_alloc(prot, 17000).unwrap();
    let (shm_fd, _) = c.shm_alloc(ctx, 4096).unwrap();
    let before = state(&c, &b);

    let arg = |fd: i32, flags: u32| TeeIoctlShmRegisterFdData { fd: fd.into(), size: 0, flags, id: 0 };
    for (what, a) in [
        ("input flags", arg(buf, 1)),
        ("DMA_BUF as input flag", arg(buf, TEE_IOCTL_SHM_DMA_BUF)),
        ("fd not open", arg(999, 0)),
        ("negative fd", arg(-1, 0)),
        ("the TEE context fd", arg(ctx, 0)),
        ("a heap node fd", arg(prot, 0)),
        ("a TEE shm fd", arg(shm_fd, 0)),
        ("a system dma-buf", arg(sys_buf, 0)),
    ] {
        assert_eq!(c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER_FD, &a).0, Err(EINVAL), "{what}");
    }
    assert_eq!(c.ioctl(ctx, TEE_IOC_SHM_REGISTER_FD, BAD_PTR), Err(EFAULT));
    // A protected buffer of this TEE, registered through another TEE device
    // (the supplicant node): not of the same device, EINVAL.
    let supp = c.open_tee("teepriv0");
    assert_eq!(c.register_fd(supp, buf.into()).unwrap_err(), EINVAL);
    c.close(supp);
    assert_eq!(state(&c, &b), before);

    let dmabuf = c.dma_buf(buf);
    let (reg, out) = c.register_fd(ctx, buf.into()).unwrap();
    assert!(out.id > 0);
    // 6.18 copies the shm's own flags out: the kernel's TEE_SHM_DMA_BUF
    // (BIT(4)), not the UAPI's TEE_IOCTL_SHM_DMA_BUF (0x2).
    assert_eq!((out.flags, out.size), (TEE_SHM_DMA_BUF, 5 * 4096));
    assert_eq!(out.flags, 0x10);
    // The fd is an `int` to the kernel: the upper 32 bits are dropped.
    let (reg2, out2) = c.register_fd(ctx, (1 << 32) | i64::from(buf)).unwrap();
    assert_ne!(out2.id, out.id);
    c.close(reg2);
    assert_eq!(c.register_fd(ctx, (1 << 32) | 999).unwrap_err(), EINVAL, "fd 999 is not open");
    assert_eq!(c.files.flags(reg).unwrap(), O_RDWR_CLOEXEC);
    assert_eq!(c.shm(reg).mappable_range().unwrap_err().errno(), EINVAL, "no mmap of a registered dma-buf");
    let weak = Arc::downgrade(&dmabuf);
    drop(dmabuf);
    let live = c.kernel.dma_bufs().len();
    c.close(buf);
    assert!(weak.upgrade().is_some(), "the registration keeps the dma-buf alive");
    assert_eq!(c.kernel.dma_bufs().len(), live);
    c.close(reg);
    assert!(weak.upgrade().is_none(), "released with the shm fd");
    assert_eq!(c.kernel.dma_bufs().len(), live - 1);
    let heap = c.kernel.dma_heaps().open("protected,secure-video").unwrap();
    assert_eq!(heap.info().used, 0);
}

/// Bytes of a session request with `num_params` in the header but
/// `params` after it, for buf_len checks.
fn open_bytes(login: u32, num_params: u32, params: &[TeeIoctlParam]) -> Vec<u8> {
    let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: login, num_params, ..Default::default() };
    [arg.as_bytes(), params.as_bytes()].concat()
}

fn invoke_bytes(session: u32, func: u32, num_params: u32, params: &[TeeIoctlParam]) -> Vec<u8> {
    let arg = TeeIoctlInvokeArg { func, session, num_params, ..Default::default() };
    [arg.as_bytes(), params.as_bytes()].concat()
}

/// Params with the META bit, which the OP-TEE driver refuses with EINVAL.
fn meta_params(own: i32) -> Vec<(&'static str, TeeIoctlParam)> {
    let meta = TEE_IOCTL_PARAM_ATTR_META;
    vec![
        ("NONE | META", value(TEE_IOCTL_PARAM_ATTR_TYPE_NONE | meta, 0, 0, 0)),
        ("VALUE_INPUT | META", value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT | meta, 0, 0, 0)),
        ("VALUE_OUTPUT | META", value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT | meta, 0, 0, 0)),
        ("MEMREF_INOUT | META", memref(MEM_INOUT | meta, own, 0, 16)),
    ]
}

/// Param lists the core must refuse with EINVAL, given a shm `own` of
/// this context (4096 bytes) and a shm `foreign` of another context.
fn bad_params(own: i32, foreign: i32) -> Vec<(&'static str, TeeIoctlParam)> {
    vec![
        ("unknown attr bit", value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT | 0x200, 0, 0, 0)),
        ("high attr bit", value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT | 1 << 63, 0, 0, 0)),
        ("param type 4", value(4, 0, 0, 0)),
        ("param type 8", value(8, 0, 0, 0)),
        ("param type 0xff", value(0xff, 0, 0, 0)),
        ("shm of another context", memref(MEM_IN, foreign, 0, 16)),
        ("no such shm", memref(MEM_IN, 4242, 0, 16)),
        ("shm id 0", memref(MEM_IN, 0, 0, 16)),
        ("offset + size past the shm", memref(MEM_IN, own, 4000, 100)),
        ("size past the shm", memref(MEM_OUT, own, 0, 4097)),
        ("offset past the shm", memref(MEM_INOUT, own, 4097, 0)),
        ("offset + size overflows", memref(MEM_IN, own, u64::MAX, 2)),
        ("offset + size overflows to 0", memref(MEM_IN, own, 1 << 63, 1 << 63)),
    ]
}

#[test]
fn open_session_validation() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let other = c.open_tee("tee0");
    let (_own_fd, own) = c.shm_alloc(ctx, 4096).unwrap();
    let (_foreign_fd, foreign) = c.shm_alloc(other, 4096).unwrap();
    let before = state(&c, &b);
    let p = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, 1, 2, 3);
    let header = size_of::<TeeIoctlOpenSessionArg>() as u64;
    assert_eq!(header, 56);

    // buf_len.
    let thirty_one = vec![p; 31];
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("buf_len past TEE_MAX_ARG_SIZE", open_bytes(0, 31, &thirty_one), header + 31 * 32),
        ("buf_len 1025 (max + 1)", open_bytes(0, 0, &[]), 1025),
        ("buf_len below the header", open_bytes(0, 0, &[]), header - 1),
        ("buf_len 0", open_bytes(0, 0, &[]), 0),
        ("num_params 1, no param in buf_len", open_bytes(0, 1, &[p]), header),
        ("num_params 0, one param in buf_len", open_bytes(0, 0, &[p]), header + 32),
        ("buf_len not a whole param", open_bytes(0, 1, &[p]), header + 31),
        ("num_params huge", open_bytes(0, u32::MAX, &[p]), header + 32),
    ];
    for (what, bytes, buf_len) in cases {
        assert_eq!(c.buf_call(ctx, TEE_IOC_OPEN_SESSION, &bytes, buf_len).0, Err(EINVAL), "{what}");
    }
    // 30 params is the most that fits buf_len; the OP-TEE driver takes at
    // most MAX_ARG_PARAM_COUNT (6) per message, two of which an open
    // session uses for the identities: 5 client params or more are EINVAL
    // (optee_get_msg_arg), before the secure world is asked.
    let thirty = vec![p; 30];
    let bytes = open_bytes(0, 30, &thirty);
    assert_eq!(bytes.len(), 1016);
    assert_eq!(c.buf_call(ctx, TEE_IOC_OPEN_SESSION, &bytes, 1016).0, Err(EINVAL));
    assert_eq!(c.open_session(ctx, PROBE_UUID, &[p; 5]).unwrap_err(), EINVAL, "5 params");
    // META is the driver's own marker: optee_to_msg_param refuses it on
    // any user parameter.
    for (what, meta) in meta_params(own.id) {
        assert_eq!(c.open_session(ctx, PROBE_UUID, &[meta]).unwrap_err(), EINVAL, "{what}");
    }
    assert_eq!(state(&c, &b), before);

    // Params.
    for (what, bad) in bad_params(own.id, foreign.id) {
        let r = c.open_session(ctx, PROBE_UUID, &[p, bad]);
        assert_eq!(r.unwrap_err(), EINVAL, "{what}");
        // The params are checked before the login.
        let arg =
            TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: TEE_IOCTL_LOGIN_REE_KERNEL, ..Default::default() };
        assert_eq!(c.open_session_with(ctx, arg, &[bad]).unwrap_err(), EINVAL, "{what} with a kernel login");
    }
    // Kernel login methods are not for user space.
    for login in [TEE_IOCTL_LOGIN_REE_KERNEL_MIN, TEE_IOCTL_LOGIN_REE_KERNEL, TEE_IOCTL_LOGIN_REE_KERNEL_MAX] {
        let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: login, ..Default::default() };
        assert_eq!(c.open_session_with(ctx, arg, &[p]).unwrap_err(), Errno::EPERM, "login {login:#x}");
    }
    // EFAULT: the buf_data, then the argument it points to.
    assert_eq!(c.ioctl(ctx, TEE_IOC_OPEN_SESSION, BAD_PTR), Err(EFAULT));
    let buf = TeeIoctlBufData { buf_ptr: BAD_PTR.0, buf_len: header };
    assert_eq!(c.ioctl_obj(ctx, TEE_IOC_OPEN_SESSION, &buf).0, Err(EFAULT));
    let short = c.mem.map(&open_bytes(0, 1, &[])); // header only, param missing
    let buf = TeeIoctlBufData { buf_ptr: short.0, buf_len: header + 32 };
    assert_eq!(c.ioctl_obj(ctx, TEE_IOC_OPEN_SESSION, &buf).0, Err(EFAULT), "params not mapped");
    assert_eq!(state(&c, &b), before);

    // An unknown TA: the call succeeds, the TEE reports it, no session.
    let (a, _) = c.open_session(ctx, *b"no such TA here!", &[]).unwrap();
    assert_eq!((a.ret, a.ret_origin), (TEEC_ERROR_ITEM_NOT_FOUND, TEEC_ORIGIN_TEE));
    // A TA refusing the session: its code, origin TRUSTED_APP, no session.
    let (a, _) =
        c.open_session(ctx, PROBE_UUID, &[value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, REFUSE, 0, 0)]).unwrap();
    assert_eq!((a.ret, a.ret_origin), (TEEC_ERROR_ACCESS_DENIED, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(state(&c, &b), before);

    // Accepted: 4 params (the most), TEE_MEMREF_NULL, memrefs exactly up
    // to the end of the shm.
    let null = TeeIoctlParam { attr: MEM_IN, a: 0, b: 0, c: TEE_MEMREF_NULL };
    let edge = memref(MEM_IN, own.id, 4096, 0);
    let whole = memref(MEM_INOUT, own.id, 0, 4096);
    c.mem.set_credentials(Credentials::new(1000, 0));
    let logins = [TEE_IOCTL_LOGIN_PUBLIC, TEE_IOCTL_LOGIN_USER, TEE_IOCTL_LOGIN_GROUP];
    for (i, login) in logins.into_iter().enumerate() {
        // clnt_uuid zero: the group of GROUP is gid 0, the caller's.
        let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: login, ..Default::default() };
        let (a, _) = c.open_session_with(ctx, arg, &[null, p, edge, whole]).unwrap();
        assert_eq!((a.ret, a.ret_origin), (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP), "login {login}");
        assert_ne!(a.session, 0);
        assert_eq!(b.world().session_count(), before.sessions + i + 1);
    }
}

/// The client identity a TA sees is computed from the caller's credentials
/// as Linux's tee_session_calc_client_uuid does; the caller's clnt_uuid
/// bytes never reach the TA.
#[test]
fn client_identity_is_computed_by_the_kernel() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    c.mem.set_credentials(Credentials { euid: 1000, egid: 100, groups: vec![27, 100], gid_map: None });
    let out = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 0, 0, 0);
    let claimed = *b"I am root, trust";
    let group = |gid: u32| {
        let mut u = [0xee; 16];
        u[..4].copy_from_slice(&gid.to_ne_bytes());
        u
    };
    // (login, clnt_uuid, the UUID the TA must see) from Python's uuid5.
    let cases = [
        (TEE_IOCTL_LOGIN_PUBLIC, claimed, 0u128),
        (TEE_IOCTL_LOGIN_USER, claimed, 0xfc34275c_d8dd_5ba7_968b_504718363b87),
        (TEE_IOCTL_LOGIN_GROUP, group(100), 0xd32f761e_b364_519b_be12_ed54ba663b0a),
    ];
    for (login, clnt_uuid, want) in cases {
        let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: login, clnt_uuid, ..Default::default() };
        let (a, _) = c.open_session_with(ctx, arg, &[]).unwrap();
        assert_eq!(a.ret, TEEC_SUCCESS, "login {login}");
        let ((ret, _), params) = c.call(ctx, a.session, CMD_IDENTITY, &[out]);
        assert_eq!(ret, TEEC_SUCCESS);
        let seen = (u128::from(params[0].b) << 64) | u128::from(params[0].c);
        assert_eq!((params[0].a, seen), (u64::from(login), want), "login {login}: {seen:#034x}");
    }
    // A supplementary group is the caller's too.
    let arg = TeeIoctlOpenSessionArg {
        uuid: PROBE_UUID,
        clnt_login: TEE_IOCTL_LOGIN_GROUP,
        clnt_uuid: group(27),
        ..Default::default()
    };
    assert_eq!(c.open_session_with(ctx, arg, &[]).unwrap().0.ret, TEEC_SUCCESS);

    let before = state(&c, &b);
    // GROUP of a group the caller is not in: EPERM; unknown methods EINVAL.
    for gid in [0, 5, u32::MAX] {
        let arg = TeeIoctlOpenSessionArg {
            uuid: PROBE_UUID,
            clnt_login: TEE_IOCTL_LOGIN_GROUP,
            clnt_uuid: group(gid),
            ..Default::default()
        };
        assert_eq!(c.open_session_with(ctx, arg, &[]).unwrap_err(), Errno::EPERM, "gid {gid}");
    }
    for login in [
        3,
        TEE_IOCTL_LOGIN_APPLICATION,
        TEE_IOCTL_LOGIN_USER_APPLICATION,
        TEE_IOCTL_LOGIN_GROUP_APPLICATION,
        0x7fff_ffff,
        0xc000_0000,
        u32::MAX,
    ] {
        let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: login, ..Default::default() };
        assert_eq!(c.open_session_with(ctx, arg, &[]).unwrap_err(), EINVAL, "login {login:#x}");
    }
    // The parameter count is checked first (optee_get_msg_arg).
    let arg = TeeIoctlOpenSessionArg { uuid: PROBE_UUID, clnt_login: 3, ..Default::default() };
    let p = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, 0, 0, 0);
    assert_eq!(c.open_session_with(ctx, arg, &[p; 5]).unwrap_err(), EINVAL);
    assert_eq!(state(&c, &b), before, "a refused login opens nothing");
}

#[test]
fn invoke_validation() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let other = c.open_tee("tee0");
    let (_own_fd, own) = c.shm_alloc(ctx, 4096).unwrap();
    let (_foreign_fd, foreign) = c.shm_alloc(other, 4096).unwrap();
    let s = c.session(ctx, PROBE_UUID);
    let theirs = c.session(other, PROBE_UUID);
    let before = state(&c, &b);
    let p = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, 1, 2, 3);
    let header = size_of::<TeeIoctlInvokeArg>() as u64;
    assert_eq!(header, 24);

    let thirty_two = vec![p; 32];
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("buf_len past TEE_MAX_ARG_SIZE", invoke_bytes(s, 0, 32, &thirty_two), header + 32 * 32),
        ("buf_len 1025", invoke_bytes(s, 0, 0, &[]), 1025),
        ("buf_len below the header", invoke_bytes(s, 0, 0, &[]), header - 1),
        ("num_params 2, one param in buf_len", invoke_bytes(s, 0, 2, &[p, p]), header + 32),
        ("num_params 0, one param in buf_len", invoke_bytes(s, 0, 0, &[p]), header + 32),
        ("buf_len not a whole param", invoke_bytes(s, 0, 1, &[p]), header + 33),
    ];
    for (what, bytes, buf_len) in cases {
        assert_eq!(c.buf_call(ctx, TEE_IOC_INVOKE, &bytes, buf_len).0, Err(EINVAL), "{what}");
    }
    for (what, bad) in bad_params(own.id, foreign.id).into_iter().chain(meta_params(own.id)) {
        assert_eq!(c.invoke(ctx, s, CMD_VALUES, &[p, bad]).unwrap_err(), EINVAL, "{what}");
    }
    // MAX_ARG_PARAM_COUNT: 7 params are EINVAL from the driver; 6 reach
    // the secure world, which takes at most 4 (TEE_NUM_PARAMS).
    assert_eq!(c.invoke(ctx, s, CMD_VALUES, &[p; 7]).unwrap_err(), EINVAL, "7 params");
    let ((ret, origin), _) = c.call(ctx, s, CMD_VALUES, &[p; 6]);
    assert_eq!((ret, origin), (TEEC_ERROR_BAD_PARAMETERS, TEEC_ORIGIN_TEE), "6 params");
    assert_eq!(c.invoke(ctx, 0, CMD_VALUES, &[]).unwrap_err(), EINVAL, "session 0");
    assert_eq!(c.invoke(ctx, s + 1000, CMD_VALUES, &[]).unwrap_err(), EINVAL, "no such session");
    assert_eq!(c.invoke(ctx, theirs, CMD_VALUES, &[]).unwrap_err(), EINVAL, "session of another context");
    assert_eq!(c.ioctl(ctx, TEE_IOC_INVOKE, BAD_PTR), Err(EFAULT));
    let buf = TeeIoctlBufData { buf_ptr: BAD_PTR.0, buf_len: header };
    assert_eq!(c.ioctl_obj(ctx, TEE_IOC_INVOKE, &buf).0, Err(EFAULT));
    assert_eq!(state(&c, &b), before);
    // The other context's session still works for its owner.
    let ((ret, _), _) = c.call(other, theirs, CMD_VALUES, &[]);
    assert_eq!(ret, TEEC_SUCCESS);
}

/// `/dev/teepriv0` is the supplicant's node: its ops have no session ops,
/// so the core answers EINVAL before it reads the argument.
#[test]
fn session_ops_on_the_supplicant_node_are_einval() {
    let (mut c, b) = boot();
    let supp = c.open_tee("teepriv0");
    let client = c.open_tee("tee0");
    let s = c.session(client, PROBE_UUID);
    let before = state(&c, &b);
    assert_eq!(c.open_session(supp, PROBE_UUID, &[]).unwrap_err(), EINVAL, "OPEN_SESSION");
    assert_eq!(c.invoke(supp, s, CMD_VALUES, &[]).unwrap_err(), EINVAL, "INVOKE of a session of tee0");
    let cancel = TeeIoctlCancelArg { cancel_id: 0, session: s };
    assert_eq!(c.ioctl_obj(supp, TEE_IOC_CANCEL, &cancel).0, Err(EINVAL), "CANCEL");
    let close = TeeIoctlCloseSessionArg { session: s };
    assert_eq!(c.ioctl_obj(supp, TEE_IOC_CLOSE_SESSION, &close).0, Err(EINVAL), "CLOSE_SESSION");
    for cmd in [TEE_IOC_OPEN_SESSION, TEE_IOC_INVOKE, TEE_IOC_CANCEL, TEE_IOC_CLOSE_SESSION] {
        assert_eq!(c.ioctl(supp, cmd, BAD_PTR), Err(EINVAL), "{cmd:#x}: EINVAL before EFAULT");
    }
    assert_eq!(state(&c, &b), before);
    // Shared memory still works there (the supplicant registers memory).
    assert!(c.shm_alloc(supp, 4096).is_ok());
    let ((ret, _), _) = c.call(client, s, CMD_VALUES, &[]);
    assert_eq!(ret, TEEC_SUCCESS, "the session on tee0 is untouched");
}

#[test]
fn invoke_results_and_write_back() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let s = c.session(ctx, PROBE_UUID);

    // TA error codes come back in ret with origin TRUSTED_APP.
    for code in [TEEC_ERROR_GENERIC, TEEC_ERROR_ACCESS_DENIED, TEEC_ERROR_OUT_OF_MEMORY, 0x8000_0042] {
        let (outcome, _) = c.call(ctx, s, CMD_FAIL, &[value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, code.into(), 0, 0)]);
        assert_eq!(outcome, (code, TEEC_ORIGIN_TRUSTED_APP));
    }
    let (outcome, _) = c.call(ctx, s, 77, &[]);
    assert_eq!(outcome, (TEEC_ERROR_NOT_SUPPORTED, TEEC_ORIGIN_TRUSTED_APP));

    // Values: only OUTPUT and INOUT are written back; an OUTPUT value
    // reaches the TA as zeroes whatever the client left in it.
    let vin = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, 1, 2, 3);
    let vout = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 0xaaaa, 0xbbbb, 0xcccc);
    let vinout = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 100, 200, 300);
    let none = value(TEE_IOCTL_PARAM_ATTR_TYPE_NONE, 9, 9, 9);
    let (outcome, back) = c.call(ctx, s, CMD_VALUES, &[vin, vout, vinout, none]);
    assert_eq!(outcome, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(back[0], vin);
    assert_eq!(back[1], value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 0x10, 0x20, 0x30));
    assert_eq!(back[2], value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 100 + 0x10, 200 + 0x20, 300 + 0x30));
    assert_eq!(back[3], none);

    // TEE_MEMREF_NULL reaches the TA as a NULL buffer.
    let vres = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 0, 0, 0);
    let null = TeeIoctlParam { attr: MEM_IN, a: 0, b: 0, c: TEE_MEMREF_NULL };
    let (outcome, back) = c.call(ctx, s, CMD_DESCRIBE, &[null, vres]);
    assert_eq!(outcome.0, TEEC_SUCCESS);
    assert_eq!((back[1].a, back[1].b, back[1].c), (1, 0, 0));

    // Memref out sizes are written back, for SHORT_BUFFER too; an input
    // memref's size is left alone.
    let (shm_fd, shm) = c.shm_alloc(ctx, 4096).unwrap();
    let want = |n: u64| value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, n, 0, 0);
    let (outcome, back) = c.call(ctx, s, CMD_OUT_SIZE, &[memref(MEM_OUT, shm.id, 16, 64), want(10)]);
    assert_eq!(outcome, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(back[0], memref(MEM_OUT, shm.id, 16, 10));
    let (outcome, back) = c.call(ctx, s, CMD_OUT_SIZE, &[memref(MEM_INOUT, shm.id, 0, 64), want(1000)]);
    assert_eq!(outcome, (TEEC_ERROR_SHORT_BUFFER, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(back[0].b, 1000);

    // A memref's `c` is an `int` shm id to the kernel (tee_shm_get_from_id):
    // the upper 32 bits are dropped; only the full u64 TEE_MEMREF_NULL is NULL.
    let wide = TeeIoctlParam { attr: MEM_IN, a: 0, b: 16, c: (7 << 32) | u64::from(shm.id as u32) };
    let (outcome, back) = c.call(ctx, s, CMD_DESCRIBE, &[wide, vres]);
    assert_eq!(outcome.0, TEEC_SUCCESS);
    assert_eq!((back[1].a, back[1].b, back[1].c), (0, 16, 0), "a 16-byte window of the shm");
    let minus_one = TeeIoctlParam { attr: MEM_IN, a: 0, b: 0, c: 0xffff_ffff };
    assert_eq!(c.invoke(ctx, s, CMD_DESCRIBE, &[minus_one, vres]).unwrap_err(), EINVAL, "id -1, not NULL");
    let (outcome, back) = c.call(ctx, s, CMD_OUT_SIZE, &[memref(MEM_IN, shm.id, 0, 64), want(10)]);
    assert_eq!(outcome.0, TEEC_SUCCESS);
    assert_eq!(back[0].b, 64, "input memrefs are not written back");

    // Through the SDP TA: DIGEST writes 32 bytes into a 64-byte window and
    // reports 32; with 8 bytes it asks for 32.
    let sdp = c.session(ctx, SDP_UUID);
    let heap = c.open_heap("protected,secure-video");
    let buf = c.heap_alloc(heap, 4096).unwrap();
    let (reg, secure) = c.register_fd(ctx, buf.into()).unwrap();
    c.shm_write(shm_fd, 0, &[0x5a; 64]);
    let (outcome, _) =
        c.call(ctx, sdp, CMD_INJECT, &[memref(MEM_IN, shm.id, 0, 64), memref(MEM_OUT, secure.id, 0, 64)]);
    assert_eq!(outcome, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP));
    let (outcome, back) =
        c.call(ctx, sdp, CMD_DIGEST, &[memref(MEM_IN, secure.id, 0, 64), memref(MEM_OUT, shm.id, 128, 64)]);
    assert_eq!(outcome, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(back[1].b, 32);
    let digest = c.shm_read(shm_fd, 128, 32);
    assert_ne!(digest, vec![0; 32]);
    let (outcome, back) =
        c.call(ctx, sdp, CMD_DIGEST, &[memref(MEM_IN, secure.id, 0, 64), memref(MEM_OUT, shm.id, 0, 8)]);
    assert_eq!(outcome, (TEEC_ERROR_SHORT_BUFFER, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(back[1].b, 32);
    // Wrong parameter types for the SDP TA.
    let (outcome, _) = c.call(ctx, sdp, CMD_INJECT, &[memref(MEM_IN, shm.id, 0, 64)]);
    assert_eq!(outcome, (TEEC_ERROR_BAD_PARAMETERS, TEEC_ORIGIN_TRUSTED_APP));
    c.close(reg);
    c.close(buf);
    assert_eq!(b.world().session_count(), 2);
}

#[test]
fn registered_client_memory_round_trips_through_a_ta() {
    let (mut c, _b) = boot();
    let ctx = c.open_tee("tee0");
    let sdp = c.session(ctx, SDP_UUID);
    let heap = c.open_heap("protected,secure-video");
    let buf = c.heap_alloc(heap, 8192).unwrap();
    let (_reg, secure) = c.register_fd(ctx, buf.into()).unwrap();
    let data: Vec<u8> = (0..6000u32).map(|i| (i * 7 + 3) as u8).collect();
    let src = c.mem.map(&data);
    let dst = c.mem.map_zeroed(6000);
    let mut register = |addr: UserPtr| {
        let arg = TeeIoctlShmRegisterData { addr: addr.0, length: 6000, flags: 0, id: 0 };
        let (r, out) = c.ioctl_obj(ctx, TEE_IOC_SHM_REGISTER, &arg);
        r.unwrap();
        out.id
    };
    let (src_id, dst_id) = (register(src), register(dst));
    let ok = (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP);
    let inject = [memref(MEM_IN, src_id, 0, 6000), memref(MEM_OUT, secure.id, 100, 6000)];
    assert_eq!(c.call(ctx, sdp, CMD_INJECT, &inject).0, ok);
    assert_eq!(c.call(ctx, sdp, tee_client::CMD_TRANSFORM, &[memref(MEM_INOUT, secure.id, 100, 6000)]).0, ok);
    let dump = [memref(MEM_IN, secure.id, 100, 5000), memref(MEM_OUT, dst_id, 1000, 5000)];
    let (outcome, back) = c.call(ctx, sdp, tee_client::CMD_DUMP, &dump);
    assert_eq!(outcome, ok);
    assert_eq!(back[1].b, 5000);
    let got = c.mem.contents(dst).unwrap();
    assert_eq!(got[..1000], [0; 1000], "bytes outside the window are untouched");
    let want: Vec<u8> = data[..5000].iter().map(|b| b.wrapping_neg()).collect();
    assert_eq!(got[1000..], want[..]);
    // The client's source memory is not written (input only).
    let mut again = vec![0; 6000];
    c.mem.read(src, &mut again).unwrap();
    assert_eq!(again, data);
}

#[test]
fn cancel_and_close_session() {
    let (mut c, b) = boot();
    let ctx = c.open_tee("tee0");
    let other = c.open_tee("tee0");
    let s = c.session(ctx, PROBE_UUID);
    let theirs = c.session(other, PROBE_UUID);
    let before = state(&c, &b);

    for (what, session) in [("no such session", s + 1000), ("session 0", 0), ("another context's", theirs)] {
        assert_eq!(c.cancel(ctx, session, 1), Err(EINVAL), "cancel: {what}");
        assert_eq!(c.close_session(ctx, session), Err(EINVAL), "close: {what}");
    }
    assert_eq!(c.ioctl(ctx, TEE_IOC_CANCEL, BAD_PTR), Err(EFAULT));
    assert_eq!(c.ioctl(ctx, TEE_IOC_CLOSE_SESSION, BAD_PTR), Err(EFAULT));
    assert_eq!(state(&c, &b), before, "the other context's session survived");

    assert_eq!(c.cancel(ctx, s, 7), Ok(0), "nothing in flight to cancel is fine");
    assert_eq!(c.close_session(ctx, s), Ok(0));
    assert_eq!(b.world().session_count(), before.sessions - 1);
    assert_eq!(c.close_session(ctx, s), Err(EINVAL), "closed twice");
    assert_eq!(c.cancel(ctx, s, 7), Err(EINVAL), "cancel on a closed session");
    assert_eq!(c.invoke(ctx, s, CMD_VALUES, &[]).unwrap_err(), EINVAL, "invoke on a closed session");
    assert_eq!(c.close_session(other, theirs), Ok(0));
    assert_eq!(b.world().session_count(), before.sessions - 2);
}

#[test]
fn closing_the_context_closes_its_sessions_but_not_its_shm() {
    let (mut c, b) = boot();
    let world = Arc::clone(b.world());
    let keep = c.open_tee("tee0");
    let kept = c.session(keep, PROBE_UUID);
    let ctx = c.open_tee("tee0");
    let sessions: Vec<u32> = (0..3).map(|_| c.session(ctx, SDP_UUID)).collect();
    let (shm_fd, shm) = c.shm_alloc(ctx, 8192).unwrap();
    c.shm_write(shm_fd, 0, b"still here");
    assert_eq!(world.session_count(), 4);

    // A dup keeps the context open.
    let dup = c.files.dup(ctx).unwrap();
    c.close(ctx);
    assert_eq!(world.session_count(), 4);
    let ((ret, _), _) = c.call(dup, sessions[0], CMD_INJECT, &[]);
    assert_eq!(ret, TEEC_ERROR_BAD_PARAMETERS, "session usable through the dup");
    c.close(dup);
    assert_eq!(world.session_count(), 1, "its three sessions closed; the other context's kept");

    // The shm fd stays valid until closed: its id and memory are alive.
    assert_eq!(c.shm(shm_fd).id(), shm.id);
    assert_eq!(c.shm_read(shm_fd, 0, 10), b"still here");
    assert_eq!(b.device().shm_ids().len(), 1);
    // But no other context may use it.
    let vres = value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 0, 0, 0);
    assert_eq!(c.invoke(keep, kept, CMD_DESCRIBE, &[memref(MEM_IN, shm.id, 0, 16), vres]).unwrap_err(), EINVAL);
    let pages = c.kernel.normal_memory().pages_used();
    c.close(shm_fd);
    assert_eq!(b.device().shm_ids().len(), 0);
    assert_eq!(c.kernel.normal_memory().pages_used(), pages - 8192);
    // The kept context's session was untouched all along.
    assert_eq!(c.close_session(keep, kept), Ok(0));
    assert_eq!(world.session_count(), 0);
}
