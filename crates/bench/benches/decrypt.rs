//! Issue 7 item 4: the content-decryption TA decrypting a sample from
//! normal memory into the protected carveout, against raw AES-128-CTR of
//! the same bytes with the same crates (`aes`, `ctr`), at 4 KiB, 64 KiB and
//! 1 MiB.
//!
//! The TA is invoked as the driver does, with an SMC std call carrying the
//! message; its path copies the sample out of normal memory through the
//! firewall, decrypts it, writes it through the firewall into protected
//! memory and wipes its copy. The floor decrypts a buffer in place.

use std::sync::Arc;

use aes::cipher::{KeyIvInit, StreamCipher};
use criterion::{BenchmarkId, Criterion, Throughput};
use teeheap_platform::{Master, PhysAddr, Platform, PlatformConfig, UseCase};
use teeheap_secure_world::config::{DEFAULT_CONTENT_KEY, DEFAULT_CONTENT_KEY_ID};
use teeheap_secure_world::ta::content_decrypt::{self, CMD_DECRYPT, encode_sample_info};
use teeheap_secure_world::{Msg, MsgParam, ParamDir, SecureConfig, SecureWorld, Smc, SmcResult};

const CARVEOUT: u64 = 0x43c0_0000;
/// Normal memory: sample info here, the sample one page further.
const SHM: u64 = 0x4000_0000;
const SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];
const IV: [u8; 16] = [3; 16];

type Aes128Ctr = ctr::Ctr64BE<aes::Aes128>;

fn call(w: &SecureWorld, mut msg: Msg) -> Msg {
    assert_eq!(w.smc(Smc::Std(&mut msg)), SmcResult::Done);
    msg
}

fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn main() {
    // 64 MiB of DRAM with a 4 MiB secure-video carveout at the top.
    let cfg =
        PlatformConfig::small("bench-decrypt", 64 << 20).with_carveout("sv", UseCase::SecureVideo, CARVEOUT, 4 << 20);
    let p = Arc::new(Platform::new(cfg).expect("platform"));
    let w = SecureWorld::new(Arc::clone(&p), SecureConfig::default()).expect("secure world");
    let open = call(&w, Msg::open_session(content_decrypt::UUID, 0, vec![]));
    assert_eq!(open.ret, 0, "open the content-decryption TA");
    let session = open.session;
    // The whole sample is encrypted (no subsample map).
    let info = encode_sample_info(&IV, &[]);
    p.write(Master::NsCpu, PhysAddr(SHM), &info).expect("write sample info");

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("decrypt");
    for len in SIZES {
        let plain = pattern(len);
        let mut enc = plain.clone();
        Aes128Ctr::new(&DEFAULT_CONTENT_KEY.into(), &IV.into()).apply_keystream(&mut enc);
        p.write(Master::NsCpu, PhysAddr(SHM + 0x1000), &enc).expect("write sample");
        let params = vec![
            MsgParam::value_in(u64::from(DEFAULT_CONTENT_KEY_ID), 0, 0),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM), info.len() as u64),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), len),
            MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), len),
        ];
        // The TA really decrypts into protected memory.
        assert_eq!(call(&w, Msg::invoke(session, CMD_DECRYPT, params.clone())).ret, 0);
        let mut out = vec![0; len as usize];
        p.read(Master::SecureCpu, PhysAddr(CARVEOUT), &mut out).expect("secure read");
        assert!(out == plain, "TA output is the plaintext");

        g.throughput(Throughput::Bytes(len));
        g.bench_with_input(BenchmarkId::new("TA into protected", len), &len, |b, _| {
            b.iter(|| {
                let m = call(&w, Msg::invoke(session, CMD_DECRYPT, params.clone()));
                assert_eq!(m.ret, 0);
            });
        });
        let mut buf = enc.clone();
        g.bench_with_input(BenchmarkId::new("raw AES-128-CTR", len), &len, |b, _| {
            b.iter(|| {
                Aes128Ctr::new(&DEFAULT_CONTENT_KEY.into(), &IV.into()).apply_keystream(&mut buf);
            });
        });
    }
    g.finish();
    c.final_summary();
}
