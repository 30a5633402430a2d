//! Secure video playback end to end: encrypted samples decrypted into
//! protected memory, decoded, displayed; the normal world refused.

mod common;

use teeheap_platform::Master;
use teeheap_scenarios::secure_video::{self, SecureVideoConfig, package};
use teeheap_secure_world::config::DEFAULT_CONTENT_KEY;

#[test]
fn every_display_crc_equals_the_plaintext_reference_and_the_ns_cpu_is_refused() {
    let (kernel, backend) = common::boot();
    let violations_before = kernel.platform().firewall().violation_count();
    let cfg = SecureVideoConfig::default();
    let r = secure_video::run(&kernel, &backend, &cfg).unwrap();

    assert_eq!(r.samples, 8);
    assert_eq!((r.frames_decoded, r.frames_shown), (8, 8));
    assert_eq!(r.frames.len(), 8);
    for (n, f) in r.frames.iter().enumerate() {
        assert_eq!(f.frame_no, n as u32);
        // The reference is computed here again, independently of the report.
        let plain = teeheap_platform::devices::encode_test_stream(f.frame_no, cfg.frame);
        let header = teeheap_platform::devices::TbsHeader::parse(&plain).unwrap();
        let reference = crc32fast::hash(&teeheap_platform::devices::render_reference(&header));
        assert_eq!(f.display_crc, reference, "frame {n}");
        assert_eq!(f.reference_crc, reference);
    }
    let distinct: std::collections::BTreeSet<u32> = r.frames.iter().map(|f| f.display_crc).collect();
    assert_eq!(distinct.len(), 8, "every frame differs");

    // Bitstream + 2 frame buffers: each sg entry read, each buffer mmapped.
    let ns = r.ns_cpu;
    assert!(ns.reads >= 3 && ns.mmaps == 3, "{ns:?}");
    assert_eq!((ns.reads_refused, ns.reads_logged, ns.mmaps_refused), (ns.reads, ns.reads, ns.mmaps));
    assert!(ns.all_refused_and_logged());
    let log = kernel.platform().firewall().violations();
    let ns_reads = log.iter().filter(|v| v.master == Master::NsCpu && v.seq >= violations_before).count() as u64;
    assert_eq!(ns_reads, ns.reads, "every refused read is in the violation log");
    assert_eq!(kernel.platform().firewall().violation_count() - violations_before, ns.reads, "nothing else refused");

    assert!(r.after.is_clean(), "{:?}", r.after);
    assert!(r.checks().iter().all(|c| c.ok), "{r}");
    common::assert_all_released(&kernel, &backend);
    // Play again on the same system: the pools are reusable.
    let again = secure_video::run(&kernel, &backend, &SecureVideoConfig { samples: 2, ..cfg }).unwrap();
    assert_eq!(again.frames[1].display_crc, r.frames[1].display_crc);
    common::assert_all_released(&kernel, &backend);
}

#[test]
fn samples_are_cenc_encrypted_with_a_clear_header() {
    let s = package(3, SecureVideoConfig::default().frame, &DEFAULT_CONTENT_KEY);
    let plain = teeheap_platform::devices::encode_test_stream(3, SecureVideoConfig::default().frame);
    assert_eq!(s.data.len(), plain.len());
    assert_eq!(s.subsamples, [(24, plain.len() as u32 - 24)]);
    assert_eq!(s.data[..24], plain[..24], "header in clear");
    assert_ne!(s.data[24..], plain[24..], "body encrypted");
}
