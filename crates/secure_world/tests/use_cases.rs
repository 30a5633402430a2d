//! Content decryption, trusted UI, the encoder key and cancellation.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes::cipher::{KeyIvInit, StreamCipher};
use common::*;
use teeheap_platform::{Master, PAGE_SIZE, PhysAddr, UseCase};
use teeheap_secure_world::config::{DEFAULT_CONTENT_KEY, DEFAULT_CONTENT_KEY_ID, DEFAULT_PIN};
use teeheap_secure_world::ta::content_decrypt::{self, CMD_DECRYPT, encode_sample_info};
use teeheap_secure_world::ta::trusted_ui::{self, CMD_CHECK, CMD_INPUT, CMD_SHOW_PIN_PAD, render_pin_pad};
use teeheap_secure_world::{KeySlot, Msg, MsgParam, ParamDir, SecureWorld, TeeError};
use teeheap_testkit::Rng;
use teeheap_uapi::tee::gp::TEEC_ORIGIN_TRUSTED_APP;

/// Encrypts like a CENC packager: AES-128-CTR over the encrypted parts only.
fn cenc_encrypt(key: &[u8; 16], iv: &[u8; 16], subsamples: &[(u32, u32)], plain: &[u8]) -> Vec<u8> {
    let mut c = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), iv.into());
    let mut out = plain.to_vec();
    let mut pos = 0;
    for &(clear, enc) in subsamples {
        pos += clear as usize;
        c.apply_keystream(&mut out[pos..pos + enc as usize]);
        pos += enc as usize;
    }
    out
}

#[test]
fn decrypts_a_multi_subsample_sample_into_protected_memory() {
    let (p, w) = world();
    let s = open(&w, content_decrypt::UUID);
    let mut rng = Rng::new(7);
    // Encrypted parts of 13, 4000 and 77 bytes: the counter must carry over
    // partial blocks between subsamples.
    let subsamples = [(5u32, 13u32), (100, 4000), (0, 77), (33, 0)];
    let len: u32 = subsamples.iter().map(|(c, e)| c + e).sum();
    let plain = rng.bytes(len as usize);
    let iv: [u8; 16] = rng.bytes(16).try_into().unwrap();
    let enc = cenc_encrypt(&DEFAULT_CONTENT_KEY, &iv, &subsamples, &plain);
    assert_ne!(enc, plain);
    let info = encode_sample_info(&iv, &subsamples);
    p.write(Master::NsCpu, PhysAddr(SHM), &info).unwrap();
    p.write(Master::NsCpu, PhysAddr(SHM + 0x1000), &enc).unwrap();
    let params = |dst_off: u64, dst: MsgParam| {
        vec![
            MsgParam::value_in(u64::from(DEFAULT_CONTENT_KEY_ID), dst_off, 0),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM), info.len() as u64),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), u64::from(len)),
            dst,
        ]
    };
    let dst = MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), 2 * PAGE_SIZE);
    let m = invoke(&w, s, CMD_DECRYPT, params(100, dst));
    assert_eq!(m.ret, 0, "{:?}", m.result());
    assert_eq!(read(&p, Master::SecureCpu, CARVEOUT + 100, len as usize), plain);
    assert!(p.read(Master::NsCpu, PhysAddr(CARVEOUT), &mut [0; 16]).is_err());

    // Into a lent object at an offset.
    assert_eq!(call(&w, Msg::lend_protmem(UseCase::SecureVideoRecord, range(LEND, 4 * PAGE_SIZE), 3)).ret, 0);
    let m = invoke(&w, s, CMD_DECRYPT, params(PAGE_SIZE, MsgParam::rmem(ParamDir::Out, 3, 0, 4 * PAGE_SIZE)));
    assert_eq!(m.ret, 0);
    assert_eq!(read(&p, Master::SecureCpu, LEND + PAGE_SIZE, len as usize), plain);

    // Errors.
    let rc = |m: Msg| (m.result(), m.ret_origin);
    let short = invoke(&w, s, CMD_DECRYPT, params(100, MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), 200)));
    assert_eq!(short.params[3].memref_size(), Some(100 + u64::from(len)));
    assert_eq!(rc(short), (Err(TeeError::SHORT_BUFFER), TEEC_ORIGIN_TRUSTED_APP));
    let normal_dst = MsgParam::tmem(ParamDir::Out, PhysAddr(SHM + 0x10_0000), 2 * PAGE_SIZE);
    assert_eq!(rc(invoke(&w, s, CMD_DECRYPT, params(0, normal_dst))).0, Err(TeeError::SECURITY));
    let mut bad_key = params(0, dst);
    bad_key[0] = MsgParam::value_in(99, 0, 0);
    assert_eq!(rc(invoke(&w, s, CMD_DECRYPT, bad_key)).0, Err(TeeError::ITEM_NOT_FOUND));
    let mut bad_map = params(0, dst);
    bad_map[2] = MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), u64::from(len) - 1);
    assert_eq!(rc(invoke(&w, s, CMD_DECRYPT, bad_map)).0, Err(TeeError::BAD_PARAMETERS));
    assert_eq!(rc(invoke(&w, s, CMD_DECRYPT, params(0, dst)[..3].to_vec())).0, Err(TeeError::BAD_PARAMETERS));
}

#[test]
fn whole_sample_encryption_without_a_subsample_map() {
    let (p, w) = world();
    let s = open(&w, content_decrypt::UUID);
    let plain = Rng::new(3).bytes(1000);
    let iv = [0x11; 16];
    let enc = cenc_encrypt(&DEFAULT_CONTENT_KEY, &iv, &[(0, 1000)], &plain);
    p.write(Master::NsCpu, PhysAddr(SHM), &iv).unwrap();
    p.write(Master::NsCpu, PhysAddr(SHM + 0x1000), &enc).unwrap();
    let m = invoke(
        &w,
        s,
        CMD_DECRYPT,
        vec![
            MsgParam::value_in(1, 0, 0),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM), 16),
            MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), 1000),
            MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), 1000),
        ],
    );
    assert_eq!(m.ret, 0);
    assert_eq!(read(&p, Master::SecureCpu, CARVEOUT, 1000), plain);
}

const W: u64 = 240;
const H: u64 = 320;
const STRIDE: u64 = W * 4;

fn show(w: &SecureWorld, s: u32) -> Msg {
    invoke(
        w,
        s,
        CMD_SHOW_PIN_PAD,
        vec![MsgParam::rmem(ParamDir::Out, 0x71, 0, STRIDE * H), MsgParam::value_in(W, H, STRIDE)],
    )
}

fn enter_and_check(w: &SecureWorld, s: u32, digits: &str) -> (u64, u64) {
    w.secure_input().type_and_enter(digits);
    let m = invoke(w, s, CMD_INPUT, vec![MsgParam::value_inout(100, 0, 0)]);
    assert_eq!(m.ret, 0);
    assert_eq!(m.params[0].values(), Some((digits.len() as u64, 1, 0)));
    let m = invoke(w, s, CMD_CHECK, vec![MsgParam::value_out()]);
    assert_eq!(m.ret, 0);
    let (ok, left, _) = m.params[0].values().unwrap();
    (ok, left)
}

#[test]
fn trusted_ui_pin_entry_leaves_no_digits_in_normal_memory() {
    let (p, w) = world();
    let fb_len = STRIDE * H;
    let lent = range(LEND, fb_len.div_ceil(PAGE_SIZE) * PAGE_SIZE);
    assert_eq!(call(&w, Msg::lend_protmem(UseCase::TrustedUi, lent, 0x71)).ret, 0);
    let s = open(&w, trusted_ui::UUID);

    // The pad is drawn into protected memory: the display can scan it out, the normal world cannot read it.
    assert_eq!(show(&w, s).ret, 0);
    let mut frame = vec![0; fb_len as usize];
    p.read(Master::Display, lent.start(), &mut frame).unwrap();
    assert_eq!(frame, render_pin_pad(W as usize, H as usize, STRIDE as usize));
    assert!(p.read(Master::NsCpu, lent.start(), &mut [0; 4]).is_err());
    // A framebuffer in secure-video memory or normal memory is refused.
    let m = invoke(
        &w,
        s,
        CMD_SHOW_PIN_PAD,
        vec![MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), fb_len), MsgParam::value_in(W, H, STRIDE)],
    );
    assert_eq!(m.result(), Err(TeeError::SECURITY));
    let m = invoke(
        &w,
        s,
        CMD_SHOW_PIN_PAD,
        vec![MsgParam::rmem(ParamDir::Out, 0x71, 0, fb_len - 1), MsgParam::value_in(W, H, STRIDE)],
    );
    assert_eq!((m.result(), m.params[0].memref_size()), (Err(TeeError::SHORT_BUFFER), Some(fb_len)));

    // CHECK before Enter.
    let m = invoke(&w, s, CMD_CHECK, vec![MsgParam::value_out()]);
    assert_eq!(m.result(), Err(TeeError::BAD_STATE));
    // Wrong, then right (with a typo corrected by backspace).
    assert_eq!(enter_and_check(&w, s, "1234"), (0, 2));
    w.secure_input().press(9);
    w.secure_input().push(teeheap_secure_world::InputEvent::Backspace);
    assert_eq!(enter_and_check(&w, s, DEFAULT_PIN), (1, 2));
    // A longer wrong PIN with the right prefix.
    assert_eq!(enter_and_check(&w, s, &format!("{DEFAULT_PIN}0")), (0, 1));
    assert_eq!(call(&w, Msg::close_session(s)).ret, 0);

    // Scan all normal memory for the PIN, as ASCII and as raw digit values.
    let ascii = DEFAULT_PIN.as_bytes().to_vec();
    let raw: Vec<u8> = ascii.iter().map(|b| b - b'0').collect();
    let mut found = 0;
    for r in p.normal_memory() {
        let mut off = 0;
        while off < r.len() {
            let n = (1 << 20).min(r.len() - off) as usize;
            // Overlap chunks so that a match across a boundary is seen.
            let n = (n + ascii.len()).min((r.len() - off) as usize);
            let chunk = read(&p, Master::SecureCpu, r.start().raw() + off, n);
            found += chunk.windows(ascii.len()).filter(|w| *w == ascii || *w == raw).count();
            off += 1 << 20;
        }
    }
    assert_eq!(found, 0);
}

#[test]
fn three_wrong_pins_lock_the_session() {
    let (_p, w) = world();
    let s = open(&w, trusted_ui::UUID);
    for left in [2, 1, 0] {
        assert_eq!(enter_and_check(&w, s, "0000"), (0, left));
    }
    assert_eq!(enter_and_check(&w, s, DEFAULT_PIN), (0, 0));
}

#[test]
fn cancel_ends_a_wait_for_input() {
    let (_p, w) = world();
    let w = Arc::new(w);
    let s = open(&w, trusted_ui::UUID);
    let w2 = Arc::clone(&w);
    let waiter = std::thread::spawn(move || {
        let mut msg = Msg::invoke(s, CMD_INPUT, vec![MsgParam::value_inout(30_000, 0, 0)]);
        msg.cancel_id = 12;
        call(&w2, msg)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(call(&w, Msg::cancel(s, 12)).ret, 0);
    let m = waiter.join().unwrap();
    assert_eq!((m.result(), m.ret_origin), (Err(TeeError::CANCEL), TEEC_ORIGIN_TRUSTED_APP));
}

struct Slot(Master, Mutex<Option<[u8; 16]>>);

impl KeySlot for Slot {
    fn owner(&self) -> Master {
        self.0
    }
    fn load_key(&self, key: &[u8; 16]) {
        *self.1.lock().unwrap() = Some(*key);
    }
}

#[test]
fn record_key_goes_only_to_the_video_encoder() {
    let (_p, w) = world();
    let display = Slot(Master::Display, Mutex::new(None));
    assert_eq!(w.program_encoder_key(&display), Err(TeeError::ACCESS_DENIED));
    assert_eq!(*display.1.lock().unwrap(), None);
    let encoder = Slot(Master::VideoEncoder, Mutex::new(None));
    assert_eq!(w.program_encoder_key(&encoder), Ok(()));
    assert_eq!(*encoder.1.lock().unwrap(), Some(teeheap_secure_world::config::DEFAULT_ENCODER_KEY));
}

/// Decrypt throughput: `cargo test --release -p teeheap-secure-world --test use_cases -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn decrypt_throughput() {
    let (p, w) = world();
    let s = open(&w, content_decrypt::UUID);
    let len: u32 = 2 << 20;
    let subsamples = [(64u32, len - 64)];
    let iv = [3; 16];
    let info = encode_sample_info(&iv, &subsamples);
    p.write(Master::NsCpu, PhysAddr(SHM), &info).unwrap();
    p.write(Master::NsCpu, PhysAddr(SHM + 0x1000), &Rng::new(1).bytes(len as usize)).unwrap();
    let params = vec![
        MsgParam::value_in(1, 0, 0),
        MsgParam::tmem(ParamDir::In, PhysAddr(SHM), info.len() as u64),
        MsgParam::tmem(ParamDir::In, PhysAddr(SHM + 0x1000), u64::from(len)),
        MsgParam::tmem(ParamDir::Out, PhysAddr(CARVEOUT), u64::from(len)),
    ];
    let n = 100;
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(invoke(&w, s, CMD_DECRYPT, params.clone()).ret, 0);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("decrypt: {n} x {} MiB in {secs:.3} s = {:.0} MiB/s", len >> 20, f64::from(n * (len >> 20)) / secs);
}
