//! Secure video playback through the UAPIs, end to end, in C under
//! `teeheap run` (issue 14): an encrypted FWHT stream, the built-in
//! content-decryption TA writing protected secure-video memory (the
//! bitstream buffer registered with SHM_REGISTER_FD), the FWHT decoder
//! with protected OUTPUT and CAPTURE dma-bufs, the vkms display importing
//! the protected frames by PRIME and showing them by atomic commits; the
//! display's CRCs equal the CRCs of decoding the plaintext, and every CPU
//! mmap of a protected buffer is refused (`tests/clients/secure_playback.c`).

mod common;

use aes::cipher::{KeyIvInit, StreamCipher};
use common::{TEEHEAP, assert_all_ok, compile, teeheap_private, tmp};
use teeheap_platform::devices::fwht::{Encoder, RawFormat, RawFrame};

/// The content key the default secure world provisions as key id 1.
const KEY: [u8; 16] = *b"teeheap-demo-key";
const W: u32 = 64;
const H: u32 = 48;
const FRAMES: usize = 6;

const CHECKS: &[&str] = &[
    "samples read",
    "reference: plaintext decoded into system buffers",
    "reference frames differ",
    "open a session to the content-decryption TA",
    "SHM_REGISTER_FD of the protected bitstream buffer",
    "secure decoder with protected DMABUF queues",
    "PRIME import of the protected frames and ADDFB2 NV12",
    "decrypt, decode and show every frame",
    "each OUT_FENCE_PTR sync file signals",
    "display CRCs equal the CRCs of the decoded plaintext",
    "every CPU mmap of a protected buffer is refused",
];

/// The stream: `FRAMES` moving NV12 frames coded as FWHT (a key frame,
/// then P frames), each sample encrypted whole with AES-128-CTR under the
/// IV the client passes (frame number in byte 0).
fn write_stream(dir: &std::path::Path) {
    let frame = RawFrame::new(RawFormat::Nv12, W, H).unwrap();
    let mut enc = Encoder::new(frame, 4);
    let (mut plain, mut encrypted, mut lens) = (Vec::new(), Vec::new(), String::new());
    for n in 0..FRAMES {
        let raw: Vec<u8> = (0..frame.size()).map(|i| ((i % W as usize) * 3 + i / 64 + n * 11) as u8).collect();
        let sample = enc.encode(&raw, 4, 8).unwrap();
        let mut iv = [0u8; 16];
        iv[0] = n as u8;
        let mut c = sample.clone();
        ctr::Ctr64BE::<aes::Aes128>::new(&KEY.into(), &iv.into()).apply_keystream(&mut c);
        plain.extend_from_slice(&sample);
        encrypted.extend_from_slice(&c);
        lens.push_str(&format!("{}\n", sample.len()));
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plain.bin"), plain).unwrap();
    std::fs::write(dir.join("enc.bin"), encrypted).unwrap();
    std::fs::write(dir.join("lens.txt"), lens).unwrap();
}

#[test]
fn secure_playback_crcs_equal_the_plaintext_and_the_cpu_is_refused() {
    let dir = tmp().join(format!("secure-playback-{}", std::process::id()));
    write_stream(&dir);
    let exe = compile("secure_playback.c", "secure_playback", &["-Werror"]);
    // `teeheap crc` inside the run shows the same CRCs as debugfs did.
    let script = format!("{} {} && {TEEHEAP} crc", exe.display(), dir.display());
    let out = teeheap_private("playback").args(["run", "--", "sh", "-c", &script]).output().unwrap();
    assert_all_ok(&out, CHECKS);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reference: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("reference crc ")).collect();
    let shown: Vec<&str> = stdout.lines().filter(|l| l.starts_with("0x") && l.len() == 21).map(|l| &l[11..]).collect();
    assert_eq!(reference.len(), FRAMES, "{stdout}");
    assert_eq!(shown, reference, "teeheap crc:\n{stdout}");
}
