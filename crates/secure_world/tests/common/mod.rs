//! Shared helpers of the integration tests: a small platform, a secure
//! world on it, and message plumbing.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use teeheap_platform::{Master, PhysAddr, PhysRange, Platform, PlatformConfig, UseCase};
use teeheap_secure_world::abi::{Msg, MsgParam, Smc, SmcResult};
use teeheap_secure_world::{SecureConfig, SecureWorld, Uuid};

pub const CARVEOUT: u64 = 0x43c0_0000;
pub const CARVEOUT_SIZE: u64 = 4 << 20;
/// Normal memory used as the normal world's shared buffers.
pub const SHM: u64 = 0x4000_0000;
/// Normal memory lent in tests.
pub const LEND: u64 = 0x4100_0000;

/// 64 MiB of DRAM at 0x4000_0000 with a 4 MiB secure-video carveout at the top.
pub fn platform() -> Arc<Platform> {
    let cfg =
        PlatformConfig::small("sw-test", 64 << 20).with_carveout("sv", UseCase::SecureVideo, CARVEOUT, CARVEOUT_SIZE);
    Arc::new(Platform::new(cfg).unwrap())
}

pub fn world() -> (Arc<Platform>, SecureWorld) {
    let p = platform();
    let w = SecureWorld::new(Arc::clone(&p), SecureConfig::default()).unwrap();
    (p, w)
}

pub fn range(start: u64, len: u64) -> PhysRange {
    PhysRange::new(PhysAddr(start), len).unwrap()
}

/// Runs a std call and returns the updated message.
pub fn call(w: &SecureWorld, mut msg: Msg) -> Msg {
    assert_eq!(w.smc(Smc::Std(&mut msg)), SmcResult::Done);
    msg
}

pub fn open(w: &SecureWorld, uuid: Uuid) -> u32 {
    let m = call(w, Msg::open_session(uuid, 0, vec![]));
    assert_eq!(m.ret, 0, "open {uuid}: {:#x}", m.ret);
    m.session
}

pub fn invoke(w: &SecureWorld, session: u32, func: u32, params: Vec<MsgParam>) -> Msg {
    call(w, Msg::invoke(session, func, params))
}

pub fn read(p: &Platform, m: Master, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    p.read(m, PhysAddr(addr), &mut v).unwrap();
    v
}
