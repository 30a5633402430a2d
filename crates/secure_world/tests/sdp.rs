//! The SDP test TA through the message ABI, in the style of OP-TEE's
//! regression 1014 (normal world to the TA, TA to TA, TA to the
//! `invoke_tests` pseudo-TA), its answers as OP-TEE's test TA gives them,
//! and the secure world's memref checks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sha2::{Digest, Sha256};
use teeheap_platform::{Master, PAGE_SIZE, PhysAddr, UseCase};
use teeheap_secure_world::ta::sdp_basic::{
    self, CMD_DIGEST, CMD_DUMP, CMD_INJECT, CMD_INVOKE_INJECT, CMD_PTA_INJECT, CMD_TRANSFORM,
};
use teeheap_secure_world::ta::{TaEnv, TaParam, TrustedApp};
use teeheap_secure_world::{Msg, MsgParam, ParamDir, TeeError, TeeResult, Uuid};
use teeheap_testkit::Rng;
use teeheap_uapi::tee::gp::{TEEC_ORIGIN_TEE, TEEC_ORIGIN_TRUSTED_APP};

const SIZE: u64 = 17000;

fn tin(addr: u64, size: u64) -> MsgParam {
    MsgParam::tmem(ParamDir::In, PhysAddr(addr), size)
}
fn tout(addr: u64, size: u64) -> MsgParam {
    MsgParam::tmem(ParamDir::Out, PhysAddr(addr), size)
}
fn tinout(addr: u64, size: u64) -> MsgParam {
    MsgParam::tmem(ParamDir::InOut, PhysAddr(addr), size)
}

fn negate(v: &[u8]) -> Vec<u8> {
    v.iter().map(|b| (!b).wrapping_add(1)).collect()
}

/// Where the protected buffer is, as a memref factory: static carveout or lent object.
#[derive(Clone, Copy)]
enum Buf {
    Carveout,
    Lent(u64),
}

impl Buf {
    fn param(self, dir: ParamDir, offset: u64, size: u64) -> MsgParam {
        match self {
            Buf::Carveout => MsgParam::tmem(dir, PhysAddr(CARVEOUT + offset), size),
            Buf::Lent(cookie) => MsgParam::rmem(dir, cookie, offset, size),
        }
    }
}

/// Inject, transform, digest (always directly) and dump at random offsets;
/// `base` picks the path of the three SDP commands: 0 to the TA, 3 TA to
/// TA, 6 TA to pseudo-TA.
fn regression_1014(buf: Buf, seed: u64, base: u32) {
    let (p, w) = world();
    if let Buf::Lent(cookie) = buf {
        let m = call(&w, Msg::lend_protmem(UseCase::SecureVideoRecord, range(LEND, 8 * PAGE_SIZE), cookie));
        assert_eq!(m.ret, 0);
    }
    let s = open(&w, sdp_basic::UUID);
    let mut rng = Rng::new(seed);
    for round in 0..20 {
        let offset = rng.below(SIZE);
        let len = 1 + rng.below(SIZE - offset);
        let data = rng.bytes(len as usize);
        p.write(Master::NsCpu, PhysAddr(SHM), &data).unwrap();
        let m = invoke(&w, s, base + CMD_INJECT, vec![tin(SHM, len), buf.param(ParamDir::Out, offset, len)]);
        assert_eq!(m.ret, 0, "round {round}");
        assert_eq!(m.params[1].memref_size(), Some(len));
        let m = invoke(&w, s, base + CMD_TRANSFORM, vec![buf.param(ParamDir::InOut, offset, len)]);
        assert_eq!(m.ret, 0);
        let m = invoke(&w, s, CMD_DIGEST, vec![buf.param(ParamDir::In, offset, len), tout(SHM + 0x10_0000, 32)]);
        assert_eq!(m.ret, 0);
        assert_eq!(read(&p, Master::NsCpu, SHM + 0x10_0000, 32), Sha256::digest(negate(&data)).to_vec());
        p.fill(Master::NsCpu, range(SHM + 0x20_0000, len), 0x5a).unwrap();
        let m = invoke(&w, s, base + CMD_DUMP, vec![buf.param(ParamDir::In, offset, len), tout(SHM + 0x20_0000, len)]);
        assert_eq!(m.ret, 0);
        assert_eq!(m.params[1].memref_size(), Some(len));
        let out = read(&p, Master::NsCpu, SHM + 0x20_0000, len as usize);
        for (i, (got, want)) in out.iter().zip(negate(&data)).enumerate() {
            assert_eq!(*got, want, "round {round} byte {i}");
        }
    }
    assert_eq!(call(&w, Msg::close_session(s)).result(), Ok(()));
    assert_eq!(w.session_count(), 0, "the TA's own sessions close with its session");
}

#[test]
fn inject_transform_dump_digest_on_the_carveout() {
    regression_1014(Buf::Carveout, 0x1014, CMD_INJECT);
}

#[test]
fn inject_transform_dump_digest_on_lent_memory() {
    regression_1014(Buf::Lent(0xabc), 0x2014, CMD_INJECT);
}

#[test]
fn sdp_ta_invokes_sdp_ta() {
    regression_1014(Buf::Carveout, 0x3014, CMD_INVOKE_INJECT);
    regression_1014(Buf::Lent(0xabd), 0x4014, CMD_INVOKE_INJECT);
}

#[test]
fn sdp_ta_invokes_the_test_pseudo_ta() {
    regression_1014(Buf::Carveout, 0x5014, CMD_PTA_INJECT);
    regression_1014(Buf::Lent(0xabe), 0x6014, CMD_PTA_INJECT);
}

/// The three differences OP-TEE's test TA has from a tidier one: rights
/// checks answer ACCESS_DENIED, SHORT_BUFFER reports no size, and INJECT
/// copies the secure memref's size (reading past a shorter input as far
/// as its page goes, and faulting past that).
#[test]
fn answers_as_optee_test_ta() {
    let (p, w) = world();
    let s = open(&w, sdp_basic::UUID);
    let ta = |m: &Msg| (m.result(), m.ret_origin);
    // A shorter input: the rest of its page is read too.
    let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i * 3 + 1) as u8).collect();
    p.write(Master::NsCpu, PhysAddr(SHM), &page).unwrap();
    let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM + 100, 10), tout(CARVEOUT, 300)]);
    assert_eq!(ta(&m), (Ok(()), TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!((m.params[0].memref_size(), m.params[1].memref_size()), (Some(10), Some(300)));
    assert_eq!(read(&p, Master::SecureCpu, CARVEOUT, 300), page[100..400]);
    // Up to the end of the input's page exactly: fine.
    let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM + PAGE_SIZE - 16, 1), tout(CARVEOUT, 16)]);
    assert_eq!(ta(&m), (Ok(()), TEEC_ORIGIN_TRUSTED_APP));
    // Rights: the secure side in normal memory, the normal side in
    // protected memory, an input where output is needed.
    for (cmd, params) in [
        (CMD_INJECT, vec![tin(SHM, 10), tout(SHM + 4096, 10)]),
        (CMD_INJECT, vec![tin(CARVEOUT, 10), tout(CARVEOUT + 4096, 10)]),
        (CMD_TRANSFORM, vec![tinout(SHM, 10)]),
        (CMD_DUMP, vec![tin(SHM, 10), tout(SHM + 4096, 10)]),
        (CMD_DUMP, vec![tin(CARVEOUT, 10), tout(CARVEOUT + 4096, 10)]),
        (CMD_DIGEST, vec![tin(SHM, 10), tout(SHM + 4096, 32)]),
    ] {
        let m = invoke(&w, s, cmd, params);
        assert_eq!(ta(&m), (Err(TeeError::ACCESS_DENIED), TEEC_ORIGIN_TRUSTED_APP), "cmd {cmd}");
    }
    // Empty memrefs pass the rights check (size 0), whatever they point to.
    let m = invoke(&w, s, CMD_DUMP, vec![tin(SHM, 0), tout(CARVEOUT, 0)]);
    assert_eq!(ta(&m), (Ok(()), TEEC_ORIGIN_TRUSTED_APP));
    // Past the input's page, or from a NULL input: the TA faults and its
    // instance is dead for good (OP-TEE: a data abort in the TA).
    let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM + PAGE_SIZE - 16, 1), tout(CARVEOUT, 17)]);
    assert_eq!(ta(&m), (Err(TeeError::TARGET_DEAD), TEEC_ORIGIN_TEE));
    let m = invoke(&w, s, CMD_TRANSFORM, vec![tinout(CARVEOUT, 16)]);
    assert_eq!(ta(&m), (Err(TeeError::TARGET_DEAD), TEEC_ORIGIN_TEE), "the session stays dead");
    let s2 = open(&w, sdp_basic::UUID);
    let m = invoke(&w, s2, CMD_INJECT, vec![tin(0, 0), tout(CARVEOUT, 16)]);
    assert_eq!(ta(&m), (Err(TeeError::TARGET_DEAD), TEEC_ORIGIN_TEE), "NULL input, 16 secure bytes");
    // Through a peer instance the peer dies, not this one.
    let s3 = open(&w, sdp_basic::UUID);
    let m = invoke(&w, s3, CMD_INVOKE_INJECT, vec![tin(0, 0), tout(CARVEOUT, 16)]);
    assert_eq!(ta(&m), (Err(TeeError::TARGET_DEAD), TEEC_ORIGIN_TRUSTED_APP), "the peer's answer, from this TA");
    let m = invoke(&w, s3, CMD_INVOKE_INJECT, vec![tin(SHM, 16), tout(CARVEOUT, 16)]);
    assert_eq!(ta(&m), (Ok(()), TEEC_ORIGIN_TRUSTED_APP), "a new peer after the failed call");
    // The pseudo-TA's own answers, through the TA: wrong kinds are
    // BAD_PARAMETERS, a short output reports the size needed.
    let m = invoke(&w, s3, CMD_PTA_INJECT, vec![tin(SHM, 16), tout(SHM + 4096, 16)]);
    assert_eq!(ta(&m), (Err(TeeError::BAD_PARAMETERS), TEEC_ORIGIN_TRUSTED_APP));
    let m = invoke(&w, s3, CMD_PTA_INJECT, vec![tin(SHM, 16), tout(CARVEOUT, 8)]);
    assert_eq!((ta(&m), m.params[1].memref_size()), ((Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP), Some(16)));
    for id in [s, s2, s3] {
        assert_eq!(call(&w, Msg::close_session(id)).result(), Ok(()));
    }
    assert_eq!(w.session_count(), 0);
}

#[test]
fn short_buffers_and_wrong_types() {
    let (_p, w) = world();
    let s = open(&w, sdp_basic::UUID);
    let ta = |m: &Msg| (m.result(), m.ret_origin);
    // Output smaller than the input: SHORT_BUFFER, sizes left as given (as
    // OP-TEE's test TA; checked before the memory's kind).
    let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM, 100), tout(CARVEOUT, 50)]);
    assert_eq!(ta(&m), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(m.params[1].memref_size(), Some(50));
    let m = invoke(&w, s, CMD_DUMP, vec![tin(CARVEOUT, 100), tout(SHM, 99)]);
    assert_eq!(ta(&m), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(m.params[1].memref_size(), Some(99));
    let m = invoke(&w, s, CMD_DUMP, vec![tin(SHM, 100), tout(CARVEOUT, 99)]);
    assert_eq!(ta(&m), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    let m = invoke(&w, s, CMD_DIGEST, vec![tin(CARVEOUT, 100), tout(SHM, 0)]);
    assert_eq!(m.params[1].memref_size(), Some(32));
    // Wrong parameter types.
    for (cmd, params) in [
        (CMD_INJECT, vec![tout(SHM, 10), tout(CARVEOUT, 10)]),
        (CMD_INJECT, vec![tin(SHM, 10), tinout(CARVEOUT, 10)]),
        (CMD_INJECT, vec![tin(SHM, 10), tout(CARVEOUT, 10), MsgParam::value_in(0, 0, 0)]),
        (CMD_TRANSFORM, vec![tin(CARVEOUT, 10)]),
        (CMD_TRANSFORM, vec![]),
        (CMD_DUMP, vec![MsgParam::value_in(1, 2, 3), tout(SHM, 10)]),
        (CMD_DIGEST, vec![tin(CARVEOUT, 10)]),
        (77, vec![]),
    ] {
        let m = invoke(&w, s, cmd, params);
        assert_eq!(ta(&m), (Err(TeeError::BAD_PARAMETERS), TEEC_ORIGIN_TRUSTED_APP), "cmd {cmd}");
    }
    // Unknown session / TA.
    assert_eq!(ta(&invoke(&w, 999, CMD_TRANSFORM, vec![])), (Err(TeeError::BAD_PARAMETERS), TEEC_ORIGIN_TEE));
    let m = call(&w, Msg::open_session(Uuid([9; 16]), 0, vec![]));
    assert_eq!(ta(&m), (Err(TeeError::ITEM_NOT_FOUND), TEEC_ORIGIN_TEE));
    // Too many params never reach the TA.
    let m = invoke(&w, s, CMD_TRANSFORM, vec![MsgParam::None; 5]);
    assert_eq!(ta(&m), (Err(TeeError::BAD_PARAMETERS), TEEC_ORIGIN_TEE));
    assert_eq!(call(&w, Msg::close_session(s)).result(), Ok(()));
    assert_eq!(call(&w, Msg::close_session(s)).result(), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(w.session_count(), 0);
}

/// Counts invocations.
struct Probe(Arc<AtomicUsize>);

impl TrustedApp for Probe {
    fn invoke(&mut self, _env: &TaEnv<'_>, _cmd: u32, _params: &mut [TaParam]) -> TeeResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn memrefs_outside_protected_objects_never_reach_the_ta() {
    let (_p, w) = world();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let uuid = Uuid([0x77; 16]);
    w.register_ta(uuid, "probe", Arc::new(move || Box::new(Probe(Arc::clone(&c)))));
    assert_eq!(call(&w, Msg::lend_protmem(UseCase::TrustedUi, range(LEND, 2 * PAGE_SIZE), 1)).result(), Ok(()));
    let s = open(&w, uuid);
    let bad = [
        // Past the end of the carveout, straddling its start, wrapping.
        tin(CARVEOUT + CARVEOUT_SIZE - 10, 11),
        tin(CARVEOUT - 10, 20),
        MsgParam::tmem(ParamDir::In, PhysAddr(u64::MAX - 5), 10),
        // Outside DRAM.
        tin(0x1000, 16),
        // Lent memory by address instead of by cookie.
        tin(LEND + 100, 16),
        tin(LEND - 8, 16),
        // Past the end of the lent object, overflowing, unknown cookie.
        MsgParam::rmem(ParamDir::In, 1, 2 * PAGE_SIZE - 10, 11),
        MsgParam::rmem(ParamDir::In, 1, 2 * PAGE_SIZE + 1, 0),
        MsgParam::rmem(ParamDir::In, 1, u64::MAX, 2),
        MsgParam::rmem(ParamDir::In, 2, 0, 1),
    ];
    for p in bad {
        let m = invoke(&w, s, 0, vec![MsgParam::value_in(0, 0, 0), p]);
        assert_eq!((m.result(), m.ret_origin), (Err(TeeError::SECURITY), TEEC_ORIGIN_TEE), "{p:?}");
        let m = call(&w, Msg::open_session(uuid, 0, vec![p]));
        assert_eq!((m.result(), m.ret_origin), (Err(TeeError::SECURITY), TEEC_ORIGIN_TEE), "{p:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The edges themselves are fine.
    for p in [
        tin(CARVEOUT + CARVEOUT_SIZE - 10, 10),
        MsgParam::rmem(ParamDir::In, 1, 2 * PAGE_SIZE - 10, 10),
        MsgParam::rmem(ParamDir::In, 1, 2 * PAGE_SIZE, 0),
        tin(LEND - 8, 8),
        tin(0, 0),
    ] {
        assert_eq!(invoke(&w, s, 0, vec![p]).ret, 0, "{p:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}
