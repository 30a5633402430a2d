//! OP-TEE's xtest regression 1014 (secure data path) in-process, through
//! the TEE and dma-heap ioctls, the OP-TEE-style backend and the real
//! secure world with its `sdp_basic` TA: a 17000-byte protected buffer is
//! registered with SHM_REGISTER_FD (its dma-buf fd closed right after),
//! then inject → transform → dump at random windows with every byte
//! checked, then out-of-bounds memrefs that must never reach the TA. Runs
//! on the static secure-video heap and on the dynamic trusted-UI heap, and
//! (as xtest 1014's other parts) with the SDP TA handing the work to a
//! second instance of itself (commands 3–5) and to the `invoke_tests`
//! pseudo-TA (commands 6–8).

mod tee_client;

use tee_client::{CMD_DUMP, CMD_INJECT, CMD_TRANSFORM, Client, MEM_IN, MEM_INOUT, MEM_OUT, SDP_UUID, memref};
use teeheap_kernel::Errno;
use teeheap_kernel::tee::shm::ShmBacking;
use teeheap_kernel::tee::shm::flags::TEE_SHM_DMA_BUF;
use teeheap_platform::{Master, UseCase};
use teeheap_secure_world::SecureWorld;
use teeheap_testkit::Rng;
use teeheap_uapi::tee::gp::*;

/// The buffer size of xtest 1014.
const SIZE: u64 = 17000;
/// Random inject → transform → dump rounds.
const ROUNDS: usize = 50;
const OK: (u32, u32) = (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP);

/// One SDP client: a session to the SDP TA, the registered protected
/// buffer and a normal SHM_ALLOC buffer, and what the protected bytes must
/// hold.
struct Sdp {
    c: Client,
    ctx: i32,
    session: u32,
    /// The command of INJECT: 0 direct, 3 TA to TA, 6 TA to pseudo-TA.
    base: u32,
    secure: i32,
    secure_size: u64,
    normal_fd: i32,
    normal: i32,
    model: Vec<u8>,
}

impl Sdp {
    fn inject(&mut self, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        self.c.shm_write(self.normal_fd, 0, data);
        let p = [memref(MEM_IN, self.normal, 0, len), memref(MEM_OUT, self.secure, offset, len)];
        let (outcome, back) = self.c.call(self.ctx, self.session, self.base + CMD_INJECT, &p);
        assert_eq!(outcome, OK, "inject {len} bytes at {offset}");
        assert_eq!(back[1].b, len);
        self.model[offset as usize..][..data.len()].copy_from_slice(data);
    }

    fn transform(&mut self, offset: u64, len: u64) {
        let (outcome, back) = self.c.call(
            self.ctx,
            self.session,
            self.base + CMD_TRANSFORM,
            &[memref(MEM_INOUT, self.secure, offset, len)],
        );
        assert_eq!(outcome, OK, "transform {len} bytes at {offset}");
        assert_eq!(back[0].b, len);
        self.model[offset as usize..][..len as usize].iter_mut().for_each(|b| *b = b.wrapping_neg());
    }

    /// Dumps `[offset, offset + len)` and checks every byte against the model.
    fn dump_and_check(&mut self, offset: u64, len: u64) {
        let p = [memref(MEM_IN, self.secure, offset, len), memref(MEM_OUT, self.normal, 0, len)];
        let (outcome, back) = self.c.call(self.ctx, self.session, self.base + CMD_DUMP, &p);
        assert_eq!(outcome, OK, "dump {len} bytes at {offset}");
        assert_eq!(back[1].b, len);
        let got = self.c.shm_read(self.normal_fd, 0, len as usize);
        let want = &self.model[offset as usize..][..len as usize];
        if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
            panic!("byte {} of the protected buffer: {:#x}, want {:#x}", offset as usize + i, got[i], want[i]);
        }
    }

    /// Runs `func` with `params` and checks that it was refused before any
    /// TA ran: EINVAL from the TEE core, or GENERIC / BAD_PARAMETERS from
    /// the TEE itself (as xtest 1014 accepts), never a TA's answer.
    fn rejected(&mut self, what: &str, func: u32, params: &[teeheap_uapi::tee::TeeIoctlParam]) {
        match self.c.invoke(self.ctx, self.session, func, params) {
            Err(e) => assert_eq!(e, Errno::EINVAL, "{what}: the core's errno"),
            Ok((a, _)) => {
                assert!(matches!(a.ret, TEEC_ERROR_GENERIC | TEEC_ERROR_BAD_PARAMETERS), "{what}: ret {:#x}", a.ret);
                assert_ne!(a.ret_origin, TEEC_ORIGIN_TRUSTED_APP, "{what}: the TA saw it");
            }
        }
    }
}

/// xtest 1014 on `heap`, the SDP commands from `base`; returns the
/// backend for end-of-test checks.
fn regression_1014(heap: UseCase, seed: u64, base: u32) -> teeheap_kernel::backend::optee::OpteeBackend<SecureWorld> {
    let (kernel, backend) = tee_client::boot_with(|_| {});
    let mut c = Client::new(&kernel);
    let baseline = kernel.normal_memory().pages_used();

    // Allocate from the protected heap, register, close the dma-buf fd.
    let heap_fd = c.open_heap(heap.heap_name());
    let buf = c.heap_alloc(heap_fd, SIZE).unwrap();
    assert_eq!(c.files.flags(buf).unwrap(), tee_client::O_RDWR | teeheap_uapi::dma_heap::O_CLOEXEC);
    let ctx = c.open_tee("tee0");
    let (reg, registered) = c.register_fd(ctx, buf.into()).unwrap();
    // The kernel's own TEE_SHM_DMA_BUF, as 6.18 copies it out.
    assert_eq!(registered.flags, TEE_SHM_DMA_BUF);
    assert_eq!(registered.size, SIZE.next_multiple_of(4096), "the dma-buf's page-rounded size");
    c.close(buf);
    c.close(heap_fd);
    let session = c.session(ctx, SDP_UUID);
    let (normal_fd, normal) = c.shm_alloc(ctx, SIZE).unwrap();
    let mut t = Sdp {
        c,
        ctx,
        session,
        base,
        secure: registered.id,
        secure_size: registered.size,
        normal_fd,
        normal: normal.id,
        model: vec![0; SIZE as usize],
    };
    let mut rng = Rng::new(seed);

    // A known state first: the pool does not promise zeroed memory.
    let fill = rng.bytes(SIZE as usize);
    t.inject(0, &fill);
    t.dump_and_check(0, SIZE);

    for _ in 0..ROUNDS {
        let offset = rng.below(SIZE);
        let len = 1 + rng.below(SIZE - offset);
        let data = rng.bytes(len as usize);
        t.inject(offset, &data);
        t.transform(offset, len);
        t.dump_and_check(offset, len);
    }
    t.dump_and_check(0, SIZE);

    // The normal world never reads the protected bytes.
    let shm = t.c.shm(reg);
    let ShmBacking::DmaBuf { buf, .. } = shm.backing() else { panic!("not a dma-buf shm") };
    let start = buf.sg_table().ranges()[0].start();
    drop(shm);
    assert!(kernel.platform().read(Master::NsCpu, start, &mut [0; 16]).is_err());

    // Out of bounds of the registered size, in every command and position.
    let r = t.secure_size;
    let oob: [(&str, u64, u64); 7] = [
        ("offset at the end", r, 1),
        ("last byte plus one", r - 1, 2),
        ("size one past the end", 0, r + 1),
        ("offset 1, full size", 1, r),
        ("offset far past the end", r + 4096, 0),
        ("offset + size overflows", u64::MAX, 2),
        ("offset past the end, size wraps to the end", r + 1, u64::MAX - r),
    ];
    for (what, offset, size) in oob {
        let n = size.min(SIZE);
        let inject = [memref(MEM_IN, t.normal, 0, n), memref(MEM_OUT, t.secure, offset, size)];
        t.rejected(&format!("inject: {what}"), CMD_INJECT, &inject);
        t.rejected(&format!("transform: {what}"), CMD_TRANSFORM, &[memref(MEM_INOUT, t.secure, offset, size)]);
        let dump = [memref(MEM_IN, t.secure, offset, size), memref(MEM_OUT, t.normal, 0, n)];
        t.rejected(&format!("dump: {what}"), CMD_DUMP, &dump);
    }
    // The edges themselves are fine.
    let edge = rng.bytes(1);
    t.model.resize(r as usize, 0);
    t.inject(r - 1, &edge);
    t.transform(r - 1, 1);
    t.dump_and_check(r - 1, 1);
    // Nothing the rejected calls named was touched.
    t.dump_and_check(0, SIZE);

    // Teardown: the registration held the buffer; closing it frees it.
    assert_eq!(t.c.close_session(ctx, session), Ok(0));
    t.c.close(reg);
    t.c.close(normal_fd);
    t.c.close(ctx);
    assert_eq!(kernel.dma_heaps().open(heap.heap_name()).unwrap().info().used, 0);
    assert_eq!(kernel.normal_memory().pages_used(), baseline);
    assert_eq!(backend.world().session_count(), 0);
    backend
}

#[test]
fn regression_1014_static_secure_video() {
    let backend = regression_1014(UseCase::SecureVideo, 0x1014, CMD_INJECT);
    assert_eq!(backend.world().stats().lent, 0, "a carveout: nothing lent");
}

#[test]
fn regression_1014_dynamic_trusted_ui() {
    let backend = regression_1014(UseCase::TrustedUi, 0x1014_0002, CMD_INJECT);
    let stats = backend.world().stats();
    assert_eq!((stats.lent, stats.reclaimed, stats.outstanding), (1, 1, 0), "one chunk lent and reclaimed");
    assert!(backend.world().lent_objects().is_empty());
}

#[test]
fn regression_1014_sdp_ta_invokes_sdp_ta() {
    regression_1014(UseCase::SecureVideo, 0x1014_0003, 3);
}

#[test]
fn regression_1014_sdp_ta_invokes_test_pseudo_ta() {
    regression_1014(UseCase::TrustedUi, 0x1014_0006, 6);
}
