//! Secure video recording end to end: camera to protected frames to the
//! encoder; the recording decrypts (with the test key) to the camera frames.

mod common;

use aes::cipher::{KeyIvInit, StreamCipher};
use teeheap_platform::devices::{EncodedHeader, Frame, capture_reference};
use teeheap_scenarios::secure_record::{self, SecureRecordConfig};
use teeheap_secure_world::config::DEFAULT_ENCODER_KEY;

#[test]
fn the_recording_decrypts_to_the_camera_frames_and_raw_frames_stay_protected() {
    let (kernel, backend) = common::boot();
    let cfg = SecureRecordConfig { playback_key: None, ..SecureRecordConfig::default() };
    let r = secure_record::run(&kernel, &backend, &cfg).unwrap();
    let frame = Frame::FHD_NV12;
    assert_eq!((r.frames_captured, r.frames_encoded), (4, 4));
    assert_eq!(r.recorded_bytes, 4 * (48 + frame.byte_size()));
    assert_eq!(r.recording.len() as u64, r.recorded_bytes);

    // Decrypt here with the test key, independently of the library.
    let mut rest = &r.recording[..];
    for n in 0..4u32 {
        let h = EncodedHeader::parse(rest).unwrap();
        assert_eq!((h.frame_no, h.frame), (n, frame));
        let mut payload = rest[EncodedHeader::LEN..h.output_len() as usize].to_vec();
        let reference = capture_reference(n, frame);
        assert_ne!(payload, reference, "frame {n} is not stored in clear");
        ctr::Ctr128BE::<aes::Aes128>::new((&DEFAULT_ENCODER_KEY).into(), (&h.iv).into()).apply_keystream(&mut payload);
        assert!(payload == reference, "frame {n} decrypts to the camera frame");
        rest = &rest[h.output_len() as usize..];
    }
    assert!(rest.is_empty());

    // The raw frames: every NS CPU read and mmap refused and logged.
    assert!(r.ns_cpu.reads >= 2 && r.ns_cpu.mmaps == 2, "{:?}", r.ns_cpu);
    assert!(r.ns_cpu.all_refused_and_logged(), "{:?}", r.ns_cpu);
    // Two 1080p frames in 4 MiB granules: memory was lent, and is back.
    assert!(r.chunks_lent >= 2, "{r:?}");
    assert!(r.after.is_clean(), "{:?}", r.after);
    common::assert_all_released(&kernel, &backend);

    // The library's own verification agrees.
    let verified = secure_record::run(&kernel, &backend, &SecureRecordConfig::default()).unwrap();
    assert_eq!(verified.frames_verified, Some(4));
    assert!(!verified.plaintext_in_recording);
    assert!(verified.checks().iter().all(|c| c.ok), "{verified}");
    common::assert_all_released(&kernel, &backend);
}
