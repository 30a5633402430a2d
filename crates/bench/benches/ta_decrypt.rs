//! Issue 13: the host-built content-decryption TA (`examples/ta/decrypt`,
//! C, built with the dev kit) decrypting a sample from normal memory into
//! the protected carveout through its memref windows (AES-128-CTR with the
//! GP cipher API, one pass), against the built-in Rust TA doing the same
//! and raw AES-128-CTR (`ctr::Ctr128BE<aes::Aes128>`, the crates the TA
//! API uses) of the same bytes in place, at 4 KiB, 64 KiB and 1 MiB. The
//! 4 KiB rows are the INVOKE round trip with a 4 KiB memref to a host-built
//! TA vs a built-in one.
//!
//! Both TAs are invoked as the driver does, with an SMC std call. The
//! bench binary is the host TA's process too (`__ta-runner`, as the
//! `teeheap` binary is), so it is built with the same optimisation.
//! Before measuring, the bench checks that each TA's output, read back by
//! the secure CPU, is the plaintext, and that the host TA refuses a
//! destination in normal memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use aes::cipher::{KeyIvInit, StreamCipher};
use criterion::{BenchmarkId, Criterion, Throughput};
use teeheap_platform::{Master, PhysAddr, Platform, PlatformConfig, UseCase};
use teeheap_secure_world::config::{DEFAULT_CONTENT_KEY, DEFAULT_CONTENT_KEY_ID};
use teeheap_secure_world::ta::content_decrypt::{self, CMD_DECRYPT, encode_sample_info};
use teeheap_secure_world::{Msg, MsgParam, ParamDir, SecureConfig, SecureWorld, Smc, SmcResult, Uuid};

const CARVEOUT: u64 = 0x43c0_0000;
/// Normal memory: sample info here, the sample one page further.
const SHM: u64 = 0x4000_0000;
/// Normal memory a destination must not be.
const NORMAL_DST: u64 = 0x4100_0000;
const SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];
const IV: [u8; 16] = [3; 16];
const HOST_UUID: &str = "7eaf5d5c-8d11-4d8e-9a3c-7b1e5a1d0c02";
const HOST_TA: Uuid = Uuid::from_fields(0x7eaf_5d5c, 0x8d11, 0x4d8e, [0x9a, 0x3c, 0x7b, 0x1e, 0x5a, 0x1d, 0x0c, 0x02]);
const SET_KEY: u32 = 0;
const DECRYPT: u32 = 1;
const NO_SUCH_COMMAND: u32 = 99;
const ACCESS_DENIED: u32 = 0xffff_0001;

/// The counter of both TAs: the built-in one counts in 64 bits, the GP
/// AES-CTR in 128; with this IV and at most 1 MiB they give the same
/// keystream.
type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

fn call(w: &SecureWorld, mut msg: Msg) -> Msg {
    assert_eq!(w.smc(Smc::Std(&mut msg)), SmcResult::Done);
    msg
}

fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Two value params holding 16 bytes, big-endian 32-bit words.
fn words(b: &[u8; 16]) -> [MsgParam; 2] {
    let w = |i: usize| u64::from(u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    [MsgParam::value_in(w(0), w(4), 0), MsgParam::value_in(w(8), w(12), 0)]
}

/// Builds the example TA with the dev kit into `dir/<uuid>.ta`.
fn build_ta(dir: &Path) {
    let kit = dir.join("kit");
    teeheap_ta_host::devkit::install(&kit).expect("write the dev kit");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ta/decrypt");
    let out = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC"])
        .args(teeheap_ta_host::devkit::cflags(&kit).split_whitespace())
        .arg("-I")
        .arg(src.join("include"))
        .arg(src.join("ta.c"))
        .arg(teeheap_ta_host::devkit::link(&kit))
        .arg("-o")
        .arg(dir.join(format!("{HOST_UUID}.ta")))
        .output()
        .expect("cc (a C compiler is needed)");
    assert!(out.status.success(), "building the TA: {}", String::from_utf8_lossy(&out.stderr));
}

fn main() {
    // The host TA's process is this binary.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__ta-runner") {
        let ta = PathBuf::from(args.next().expect("TA path"));
        teeheap_ta_host::runner::run(&ta);
    }
    std::hint::black_box(teeheap_ta_host::exports());

    let tadir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-ta-decrypt-{}", std::process::id()));
    std::fs::create_dir_all(&tadir).expect("TA directory");
    build_ta(&tadir);

    // 64 MiB of DRAM with a 4 MiB secure-video carveout at the top.
    let cfg = PlatformConfig::small("bench-ta-decrypt", 64 << 20).with_carveout(
        "sv",
        UseCase::SecureVideo,
        CARVEOUT,
        4 << 20,
    );
    let p = Arc::new(Platform::new(cfg).expect("platform"));
    let config = SecureConfig {
        ta_dirs: vec![tadir.clone()],
        ta_runner: Some(std::env::current_exe().expect("this binary")),
        ..SecureConfig::default()
    };
    let w = SecureWorld::new(Arc::clone(&p), config).expect("secure world");
    let builtin = call(&w, Msg::open_session(content_decrypt::UUID, 0, vec![]));
    assert_eq!(builtin.ret, 0, "open the built-in content-decryption TA");
    let host = call(&w, Msg::open_session(HOST_TA, 0, vec![]));
    assert_eq!(host.ret, 0, "open the host-built decrypt TA");
    let key = words(&DEFAULT_CONTENT_KEY);
    let set = call(&w, Msg::invoke(host.session, SET_KEY, key.to_vec()));
    assert_eq!(set.ret, 0, "set the key");
    let info = encode_sample_info(&IV, &[]);
    p.write(Master::NsCpu, PhysAddr(SHM), &info).expect("write sample info");
    let iv = words(&IV);

    // Interleaved medians first: on a shared machine the load changes
    // while criterion measures one row after another, so the ratios come
    // from rounds that time each of the three once, in turn.
    let test_mode = std::env::args().any(|a| a == "--test");
    let rounds = if test_mode { 3 } else { 300 };
    println!("interleaved medians over {rounds} rounds:");
    println!(
        "| sample | host C TA | host C TA, windows only | built-in TA | raw AES-128-CTR | raw / host | raw / built-in |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("ta_decrypt");
    for len in SIZES {
        let plain = pattern(len);
        let mut enc = plain.clone();
        Aes128Ctr::new(&DEFAULT_CONTENT_KEY.into(), &IV.into()).apply_keystream(&mut enc);
        p.write(Master::NsCpu, PhysAddr(SHM + 0x1000), &enc).expect("write sample");
        let host_params = |dst: u64| {
            vec![
                MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), len),
                MsgParam::tmem(ParamDir::Out, PhysAddr(dst), len),
                iv[0],
                iv[1],
            ]
        };
        let builtin_params = vec![
            MsgParam::value_in(u64::from(DEFAULT_CONTENT_KEY_ID), 0, 0),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM), info.len() as u64),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), len),
            MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), len),
        ];
        // Both TAs really decrypt into protected memory.
        for (name, session, cmd, params) in [
            ("host", host.session, DECRYPT, host_params(CARVEOUT)),
            ("built-in", builtin.session, CMD_DECRYPT, builtin_params.clone()),
        ] {
            p.write(Master::SecureCpu, PhysAddr(CARVEOUT), &vec![0; len as usize]).expect("clear");
            assert_eq!(call(&w, Msg::invoke(session, cmd, params)).ret, 0, "{name} TA decrypts");
            let mut out = vec![0; len as usize];
            p.read(Master::SecureCpu, PhysAddr(CARVEOUT), &mut out).expect("secure read");
            assert!(out == plain, "{name} TA output is the plaintext");
        }
        let refused = call(&w, Msg::invoke(host.session, DECRYPT, host_params(NORMAL_DST)));
        assert_eq!(refused.ret, ACCESS_DENIED, "the host TA writes plaintext to secure memory only");

        let hp = host_params(CARVEOUT);
        let mut buf = enc.clone();
        let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..rounds {
            let t = Instant::now();
            assert_eq!(call(&w, Msg::invoke(host.session, DECRYPT, hp.clone())).ret, 0);
            times[0].push(t.elapsed());
            let t = Instant::now();
            assert_eq!(call(&w, Msg::invoke(builtin.session, CMD_DECRYPT, builtin_params.clone())).ret, 0);
            times[1].push(t.elapsed());
            let t = Instant::now();
            Aes128Ctr::new(&DEFAULT_CONTENT_KEY.into(), &IV.into()).apply_keystream(std::hint::black_box(&mut buf));
            times[2].push(t.elapsed());
            let t = Instant::now();
            assert_ne!(call(&w, Msg::invoke(host.session, NO_SUCH_COMMAND, hp.clone())).ret, 0);
            times[3].push(t.elapsed());
        }
        let [h, b, r, o] = times.map(|mut v| {
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1e6
        });
        println!(
            "| {} KiB | {h:.1} µs | {o:.1} µs | {b:.1} µs | {r:.1} µs | **{:.2}** | {:.2} |",
            len >> 10,
            r / h,
            r / b
        );

        g.throughput(Throughput::Bytes(len));
        g.bench_with_input(BenchmarkId::new("host C TA into protected", len), &len, |b, _| {
            b.iter(|| assert_eq!(call(&w, Msg::invoke(host.session, DECRYPT, hp.clone())).ret, 0));
        });
        // The same call to a command the TA does not have: the round trip
        // and the windows, without the decryption.
        g.bench_with_input(BenchmarkId::new("host C TA, windows only", len), &len, |b, _| {
            b.iter(|| assert_ne!(call(&w, Msg::invoke(host.session, NO_SUCH_COMMAND, hp.clone())).ret, 0));
        });
        g.bench_with_input(BenchmarkId::new("built-in TA into protected", len), &len, |b, _| {
            b.iter(|| assert_eq!(call(&w, Msg::invoke(builtin.session, CMD_DECRYPT, builtin_params.clone())).ret, 0));
        });
        g.bench_with_input(BenchmarkId::new("raw AES-128-CTR", len), &len, |b, _| {
            b.iter(|| Aes128Ctr::new(&DEFAULT_CONTENT_KEY.into(), &IV.into()).apply_keystream(&mut buf));
        });
    }
    g.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&tadir);
}
