//! The three pipelines in a row on one system, as the demo runs them.

mod common;

#[test]
fn run_all_passes_every_check_and_releases_everything() {
    let (kernel, backend) = common::boot();
    let t = std::time::Instant::now();
    let report = teeheap_scenarios::run_all(&kernel, &backend).unwrap();
    eprintln!("{report}\n(in {:?})", t.elapsed());
    assert!(report.failed_checks().is_empty(), "{report}");
    let ns = report.ns_cpu();
    assert_eq!(ns.refused(), ns.attempts());
    assert!(ns.attempts() >= 3 + 1 + 2);
    let text = report.to_string();
    assert!(text.contains("0 failed"), "{text}");
    common::assert_all_released(&kernel, &backend);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["secure_video"]["frames_shown"], 8);
    assert_eq!(json["trusted_ui"]["attempts"][0]["accepted"], true);
    assert!(json["secure_record"].get("recording").is_none(), "the raw recording is not serialized");
}
