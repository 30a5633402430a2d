//! Trusted UI end to end: the PIN pad on the display, right and wrong PIN,
//! and no PIN digit anywhere in normal memory.

mod common;

use teeheap_platform::{Master, PhysAddr};
use teeheap_scenarios::memscan::scan_normal_memory;
use teeheap_scenarios::trusted_ui::{self, TrustedUiConfig};
use teeheap_secure_world::config::DEFAULT_PIN;
use teeheap_secure_world::ta::trusted_ui::render_pin_pad;

#[test]
fn right_and_wrong_pin_and_no_digits_in_normal_memory() {
    let (kernel, backend) = common::boot();
    let cfg = TrustedUiConfig::for_platform(kernel.platform());
    assert_eq!(cfg.entries[0].digits, DEFAULT_PIN);
    assert!(!format!("{cfg:?}").contains(DEFAULT_PIN), "the config does not print the PIN");
    let r = trusted_ui::run(&kernel, &backend, &cfg).unwrap();

    let reference = crc32fast::hash(&render_pin_pad(1920, 1080, 1920 * 4));
    assert_eq!(r.pad_reference_crc, reference);
    assert_eq!(r.attempts.len(), 2);
    for a in &r.attempts {
        assert_eq!(a.display_crc, reference, "{}", a.label);
        assert!(a.complete);
        assert_eq!(a.digits_entered, 4);
    }
    assert!(r.attempts[0].accepted, "right PIN accepted");
    assert!(!r.attempts[1].accepted, "wrong PIN refused");
    assert_eq!(r.attempts[1].attempts_left, 2);
    // The framebuffer came from lent memory (an 8 MiB frame: two 4 MiB
    // granules), which is back in normal memory now.
    assert!(r.chunks_lent >= 1, "{r:?}");
    assert!(r.pool.contains("dynamic"), "{}", r.pool);
    assert!(r.ns_cpu.all_refused_and_logged(), "{:?}", r.ns_cpu);

    assert_eq!(r.scan.matches, 0, "PIN digits in normal memory");
    assert!(r.scan.normal_bytes > 3 << 30, "{:?}", r.scan);
    assert!(r.checks().iter().all(|c| c.ok), "{r}");
    common::assert_all_released(&kernel, &backend);
    let text = format!("{r}\n{r:?}\n{}", serde_json::to_string(&r).unwrap());
    assert!(!text.contains(DEFAULT_PIN), "the report does not contain the PIN: {text}");
}

#[test]
fn the_scan_finds_a_pin_that_is_in_normal_memory() {
    let (kernel, _backend) = common::boot();
    let p = kernel.platform();
    let needle = b"4711".to_vec();
    let normal = p.normal_memory();
    // Across a 1 MiB chunk boundary, and in the last bytes of normal memory.
    let at = PhysAddr(normal[0].start().raw() + (3 << 20) - 2);
    p.write(Master::NsCpu, at, &needle).unwrap();
    let last = normal.last().unwrap();
    p.write(Master::NsCpu, PhysAddr(last.end().raw() - 4), &needle).unwrap();
    let scan = scan_normal_memory(p, &[needle]);
    assert_eq!(scan.matches, 2, "{scan:?}");
    assert!(scan.bytes_read < 64 << 20, "only touched memory is read: {scan:?}");
}
