//! The SDP test TA through the message ABI, in the style of OP-TEE's
//! regression 1014, and the secure world's memref checks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sha2::{Digest, Sha256};
use teeheap_platform::{Master, PAGE_SIZE, PhysAddr, UseCase};
use teeheap_secure_world::ta::sdp_basic::{self, CMD_DIGEST, CMD_DUMP, CMD_INJECT, CMD_TRANSFORM};
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

fn regression_1014(buf: Buf, seed: u64) {
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
        let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM, len), buf.param(ParamDir::Out, offset, len)]);
        assert_eq!(m.ret, 0, "round {round}");
        assert_eq!(m.params[1].memref_size(), Some(len));
        let m = invoke(&w, s, CMD_TRANSFORM, vec![buf.param(ParamDir::InOut, offset, len)]);
        assert_eq!(m.ret, 0);
        let m = invoke(&w, s, CMD_DIGEST, vec![buf.param(ParamDir::In, offset, len), tout(SHM + 0x10_0000, 32)]);
        assert_eq!(m.ret, 0);
        assert_eq!(read(&p, Master::NsCpu, SHM + 0x10_0000, 32), Sha256::digest(negate(&data)).to_vec());
        p.fill(Master::NsCpu, range(SHM + 0x20_0000, len), 0x5a).unwrap();
        let m = invoke(&w, s, CMD_DUMP, vec![buf.param(ParamDir::In, offset, len), tout(SHM + 0x20_0000, len)]);
        assert_eq!(m.ret, 0);
        assert_eq!(m.params[1].memref_size(), Some(len));
        let out = read(&p, Master::NsCpu, SHM + 0x20_0000, len as usize);
        for (i, (got, want)) in out.iter().zip(negate(&data)).enumerate() {
            assert_eq!(*got, want, "round {round} byte {i}");
        }
    }
}

#[test]
fn inject_transform_dump_digest_on_the_carveout() {
    regression_1014(Buf::Carveout, 0x1014);
}

#[test]
fn inject_transform_dump_digest_on_lent_memory() {
    regression_1014(Buf::Lent(0xabc), 0x2014);
}

#[test]
fn short_buffers_and_wrong_types() {
    let (_p, w) = world();
    let s = open(&w, sdp_basic::UUID);
    let ta = |m: &Msg| (m.result(), m.ret_origin);
    // Secure side smaller than the input: SHORT_BUFFER, size needed reported.
    let m = invoke(&w, s, CMD_INJECT, vec![tin(SHM, 100), tout(CARVEOUT, 50)]);
    assert_eq!(ta(&m), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(m.params[1].memref_size(), Some(100));
    let m = invoke(&w, s, CMD_DUMP, vec![tin(CARVEOUT, 100), tout(SHM, 99)]);
    assert_eq!(ta(&m), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(m.params[1].memref_size(), Some(100));
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
    // "Secure" side in normal memory: SECURITY from the TA.
    for (cmd, params) in [
        (CMD_INJECT, vec![tin(SHM, 10), tout(SHM + 4096, 10)]),
        (CMD_TRANSFORM, vec![tinout(SHM, 10)]),
        (CMD_DUMP, vec![tin(SHM, 10), tout(SHM + 4096, 10)]),
        (CMD_DIGEST, vec![tin(SHM, 10), tout(SHM + 4096, 32)]),
    ] {
        let m = invoke(&w, s, cmd, params);
        assert_eq!(ta(&m), (Err(TeeError::SECURITY), TEEC_ORIGIN_TRUSTED_APP), "cmd {cmd}");
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
