//! Protected-memory commands: fast calls, GET_PROTMEM_CONFIG, lend and reclaim.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use teeheap_platform::{Master, MasterSet, PAGE_SIZE, PhysAddr, UseCase};
use teeheap_secure_world::abi::{ProtmemAttr, Smc, SmcResult};
use teeheap_secure_world::ta::{TaEnv, TaParam, TrustedApp};
use teeheap_secure_world::{
    ABI_VERSION, Capabilities, FastCall, Msg, MsgParam, ParamDir, ProtmemKind, TeeError, TeeResult, Uuid,
};
use teeheap_uapi::tee::gp::{TEEC_ERROR_SHORT_BUFFER, TEEC_ORIGIN_TEE};

#[test]
fn fast_calls() {
    let (_p, w) = world();
    assert_eq!(w.smc(Smc::Fast(FastCall::GetAbiVersion)), SmcResult::AbiVersion(ABI_VERSION));
    let SmcResult::Capabilities(caps) =
        w.smc(Smc::Fast(FastCall::ExchangeCapabilities { normal_world: Capabilities::default() }))
    else {
        panic!("no capabilities");
    };
    assert!(caps.contains(Capabilities::PROTMEM) && caps.contains(Capabilities::DYNAMIC_PROTMEM));
    assert_eq!(
        w.smc(Smc::Fast(FastCall::GetProtmemConfig { use_case: UseCase::SecureVideo })),
        SmcResult::StaticProtmem { range: range(CARVEOUT, CARVEOUT_SIZE), pa_width: 32 }
    );
    assert_eq!(w.smc(Smc::Fast(FastCall::GetProtmemConfig { use_case: UseCase::TrustedUi })), SmcResult::NotAvailable);
    assert!(matches!(w.protmem_kind(UseCase::TrustedUi), ProtmemKind::Dynamic(_)));
}

#[test]
fn get_protmem_config_short_buffer_then_success() {
    let (p, w) = world();
    // No buffer: SHORT_BUFFER and the size needed.
    let m = call(&w, Msg::get_protmem_config(UseCase::TrustedUi, PhysAddr(0), 0));
    assert_eq!((m.ret, m.ret_origin), (TEEC_ERROR_SHORT_BUFFER, TEEC_ORIGIN_TEE));
    let needed = m.params[1].memref_size().unwrap();
    // Trusted UI: secure CPU reads and writes, display reads.
    assert_eq!(needed, 2 * ProtmemAttr::SIZE as u64);
    // Too small by one byte: still short.
    let m = call(&w, Msg::get_protmem_config(UseCase::TrustedUi, PhysAddr(SHM), needed - 1));
    assert_eq!(m.ret, TEEC_ERROR_SHORT_BUFFER);
    // Enough.
    let m = call(&w, Msg::get_protmem_config(UseCase::TrustedUi, PhysAddr(SHM), 64));
    assert_eq!(m.ret, 0);
    assert_eq!(m.params[0].values(), Some((4 << 20, PAGE_SIZE, 32)));
    assert_eq!(m.params[1].memref_size(), Some(needed));
    let attrs = ProtmemAttr::decode_all(&read(&p, Master::NsCpu, SHM, needed as usize));
    assert_eq!(
        attrs,
        [
            ProtmemAttr { master: Master::SecureCpu, read: true, write: true },
            ProtmemAttr { master: Master::Display, read: true, write: false },
        ]
    );
    // The static use case reports its carveout's rights.
    let m = call(&w, Msg::get_protmem_config(UseCase::SecureVideo, PhysAddr(SHM), 64));
    assert_eq!(m.ret, 0);
    let attrs = ProtmemAttr::decode_all(&read(&p, Master::NsCpu, SHM, m.params[1].memref_size().unwrap() as usize));
    assert!(attrs.iter().any(|a| a.master == Master::VideoDecoder && a.read && a.write));
    assert!(attrs.iter().all(|a| a.master != Master::NsCpu));
    // The attribute buffer may not be protected memory.
    let m = call(&w, Msg::get_protmem_config(UseCase::TrustedUi, PhysAddr(CARVEOUT), 64));
    assert_eq!(m.result(), Err(TeeError::BAD_PARAMETERS));
    // Bad use case.
    let mut msg = Msg::get_protmem_config(UseCase::TrustedUi, PhysAddr(SHM), 64);
    msg.params[0] = MsgParam::value_inout(0, 0, 0);
    assert_eq!(call(&w, msg).result(), Err(TeeError::BAD_PARAMETERS));
}

#[test]
fn lend_protects_and_reclaim_scrubs_before_unprotect() {
    let (p, w) = world();
    let chunk = range(LEND, 4 << 20);
    p.write(Master::NsCpu, chunk.start(), b"normal world data").unwrap();
    let m = call(&w, Msg::lend_protmem(UseCase::TrustedUi, chunk, 0xc0c0));
    assert_eq!((m.ret, m.ret_origin), (0, TEEC_ORIGIN_TEE));

    let region = p.firewall().region_containing(chunk).expect("region programmed");
    assert_eq!(region.range, chunk);
    assert_eq!(region.rights.read, MasterSet::of(&[Master::SecureCpu, Master::Display]));
    assert_eq!(region.rights.write, MasterSet::of(&[Master::SecureCpu]));
    assert!(p.read(Master::NsCpu, chunk.start(), &mut [0; 8]).is_err());
    assert!(p.write(Master::Camera, chunk.start(), &[0; 8]).is_err());
    // The secure world writes a secret into it.
    p.write(Master::SecureCpu, chunk.start().checked_add(4096).unwrap(), b"secret").unwrap();
    assert_eq!(w.stats().lent, 1);
    assert_eq!(w.stats().outstanding_bytes, 4 << 20);

    // Between scrub and unprotect: zero for the secure CPU, still refused to the normal world.
    let seen = Arc::new(Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    w.set_scrub_observer(Some(Box::new(move |p, ev| {
        let mut buf = vec![0xaa; ev.range.len() as usize];
        p.read(Master::SecureCpu, ev.range.start(), &mut buf).unwrap();
        let still_protected = p.read(Master::NsCpu, ev.range.start(), &mut [0; 1]).is_err();
        *seen2.lock().unwrap() = Some((ev.cookie, buf.iter().all(|&b| b == 0), still_protected));
    })));
    let m = call(&w, Msg::reclaim_protmem(0xc0c0));
    assert_eq!(m.ret, 0);
    assert_eq!(*seen.lock().unwrap(), Some((0xc0c0, true, true)));
    assert!(p.firewall().region_containing(chunk).is_none());
    assert!(read(&p, Master::NsCpu, chunk.start().raw(), 8192).iter().all(|&b| b == 0));
    let s = w.stats();
    assert_eq!((s.lent, s.reclaimed, s.bytes_scrubbed, s.outstanding), (1, 1, 4 << 20, 0));
    // Reclaiming again: unknown cookie.
    assert_eq!(call(&w, Msg::reclaim_protmem(0xc0c0)).result(), Err(TeeError::ITEM_NOT_FOUND));
}

#[test]
fn bad_lends_are_refused() {
    let (p, w) = world();
    let lend = |uc, start, len, cookie| call(&w, Msg::lend_protmem(uc, range(start, len), cookie)).result();
    // Carveout memory, straddling it, unaligned start or size, outside DRAM.
    assert_eq!(lend(UseCase::TrustedUi, CARVEOUT, 1 << 20, 1), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(lend(UseCase::TrustedUi, CARVEOUT - PAGE_SIZE, 2 * PAGE_SIZE, 1), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(lend(UseCase::TrustedUi, LEND + 1, PAGE_SIZE, 1), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(lend(UseCase::TrustedUi, LEND, PAGE_SIZE + 1, 1), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(lend(UseCase::TrustedUi, 0x1000_0000, PAGE_SIZE, 1), Err(TeeError::BAD_PARAMETERS));
    // A static use case is not lent to.
    assert_eq!(lend(UseCase::SecureVideo, LEND, PAGE_SIZE, 1), Err(TeeError::NOT_SUPPORTED));
    // Overlapping an object already lent, or reusing its cookie.
    assert_eq!(lend(UseCase::TrustedUi, LEND, 4 * PAGE_SIZE, 1), Ok(()));
    assert_eq!(lend(UseCase::SecureVideoRecord, LEND + 3 * PAGE_SIZE, 4 * PAGE_SIZE, 2), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(lend(UseCase::TrustedUi, LEND + 8 * PAGE_SIZE, PAGE_SIZE, 1), Err(TeeError::BAD_PARAMETERS));
    // Overlapping registered shared memory.
    assert_eq!(call(&w, Msg::register_shm(9, range(LEND + 0x10_0000, 100))).result(), Ok(()));
    assert_eq!(lend(UseCase::SecureVideoRecord, LEND + 0x10_0000, PAGE_SIZE, 3), Err(TeeError::BAD_PARAMETERS));
    assert_eq!(call(&w, Msg::unregister_shm(9)).result(), Ok(()));
    assert_eq!(lend(UseCase::SecureVideoRecord, LEND + 0x10_0000, PAGE_SIZE, 3), Ok(()));
    // Shared memory may not be registered over lent memory either.
    assert_eq!(call(&w, Msg::register_shm(10, range(LEND, 16))).result(), Err(TeeError::BAD_PARAMETERS));
    // Record memory: camera writes, encoder reads.
    let r = p.firewall().region_containing(range(LEND + 0x10_0000, PAGE_SIZE)).unwrap();
    assert!(r.rights.write.contains(Master::Camera) && r.rights.read.contains(Master::VideoEncoder));
    assert!(!r.rights.read.contains(Master::Camera));
    assert_eq!(w.stats().lend_refused, 9);
    assert_eq!(w.lent_objects().len(), 2);
}

/// A TA that keeps the first memref it is given (as a TA holding a buffer would).
#[derive(Default)]
struct Keeper(Option<TaParam>);

impl TrustedApp for Keeper {
    fn invoke(&mut self, _env: &TaEnv<'_>, _cmd: u32, params: &mut [TaParam]) -> TeeResult {
        self.0 = Some(std::mem::take(&mut params[0]));
        Ok(())
    }
}

#[test]
fn reclaim_is_refused_while_a_session_holds_the_object() {
    let (_p, w) = world();
    let uuid = Uuid([0x42; 16]);
    w.register_ta(uuid, "keeper", Arc::new(|| Box::new(Keeper::default())));
    assert_eq!(call(&w, Msg::lend_protmem(UseCase::SecureVideoRecord, range(LEND, 1 << 20), 5)).result(), Ok(()));
    let s = open(&w, uuid);
    let m = invoke(&w, s, 0, vec![MsgParam::rmem(ParamDir::In, 5, 0, 16)]);
    assert_eq!(m.ret, 0);
    assert!(w.lent_objects()[0].in_use);
    assert_eq!(call(&w, Msg::reclaim_protmem(5)).result(), Err(TeeError::BUSY));
    assert_eq!(w.stats().reclaim_busy, 1);
    assert_eq!(call(&w, Msg::close_session(s)).result(), Ok(()));
    assert_eq!(call(&w, Msg::reclaim_protmem(5)).result(), Ok(()));
    assert_eq!(w.stats().reclaimed, 1);
}

mod bounds {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// An Rmem reaches the TA exactly when `offset + size` fits the object.
        #[test]
        fn rmem_is_accepted_iff_inside_the_object(offset in 0u64..3 * PAGE_SIZE, size in 0u64..3 * PAGE_SIZE,
                                                  huge in any::<bool>()) {
            let (_p, w) = world();
            let len = 2 * PAGE_SIZE;
            prop_assert_eq!(call(&w, Msg::lend_protmem(UseCase::TrustedUi, range(LEND, len), 1)).ret, 0);
            let s = open(&w, teeheap_secure_world::ta::sdp_basic::UUID);
            let offset = if huge { u64::MAX - offset } else { offset };
            let m = invoke(&w, s, teeheap_secure_world::ta::sdp_basic::CMD_TRANSFORM,
                           vec![MsgParam::rmem(ParamDir::InOut, 1, offset, size)]);
            let inside = offset.checked_add(size).is_some_and(|end| end <= len);
            if inside {
                prop_assert_eq!(m.result(), Ok(()));
            } else {
                prop_assert_eq!((m.result(), m.ret_origin), (Err(TeeError::SECURITY), TEEC_ORIGIN_TEE));
            }
        }
    }
}
