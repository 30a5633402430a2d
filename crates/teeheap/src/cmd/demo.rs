//! `teeheap demo`: boots the platform, allocates from every heap, shows the
//! firewall at work, runs the three protected-memory pipelines end to end
//! (secure video playback, trusted UI, secure video recording; see
//! `teeheap_scenarios`), unbinds the backend under a live buffer and prints a
//! short report. Exits non-zero if any check does not hold.

use std::path::Path;
use std::sync::Arc;

use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_platform::{AccessError, Master, PhysRange};
use teeheap_scenarios::ns_cpu::NsCpuAttempts;
use teeheap_scenarios::{Check, secure_record, secure_video, trusted_ui};

use super::{boot, human};

/// Collects checks and prints them as they happen.
struct Report {
    failed: usize,
    passed: usize,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl AsRef<str>) {
        if ok {
            self.passed += 1;
            println!("  ok    {}", what.as_ref());
        } else {
            self.failed += 1;
            println!("  FAIL  {}", what.as_ref());
        }
    }

    /// Counts checks a pipeline printed itself.
    fn count(&mut self, checks: &[Check]) {
        for c in checks {
            if c.ok {
                self.passed += 1;
            } else {
                self.failed += 1;
            }
        }
    }
}

/// Frame-sized requests per heap: what a real pipeline would ask for.
fn request(heap: &str) -> (u64, &'static str) {
    match heap {
        "protected,secure-video" => (3840 * 2160 * 3 / 2, "one 4K NV12 frame"),
        "protected,trusted-ui" => (1920 * 1080 * 4, "one 1080p XRGB8888 framebuffer"),
        "protected,secure-video-record" => (1920 * 1080 * 3 / 2, "one 1080p NV12 camera frame"),
        _ => (1 << 20, "a 1 MiB bitstream buffer"),
    }
}

fn first_range(buf: &DmaBuf) -> PhysRange {
    buf.sg_table().ranges()[0]
}

/// Runs the demo.
pub(crate) fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let mut sys = boot(config)?;
    let kernel = Arc::clone(&sys.kernel);
    let p = Arc::clone(kernel.platform());
    let mut r = Report { failed: 0, passed: 0 };

    println!("teeheap demo — platform {:?}", p.config().name);
    println!("  DRAM {} ({}), lazily committed", p.dram(), human(p.dram().len()));
    for c in p.carveouts() {
        println!("  carveout {:<22} {} ({}) for {}", c.name, c.range, human(c.range.len()), c.use_case);
    }
    for reg in p.firewall().regions() {
        println!("  firewall {:<22} read: {}  write: {}", reg.label, reg.rights.read, reg.rights.write);
    }

    println!("\n1. Allocate from every heap (/dev/dma_heap)");
    let mut bufs = Vec::new();
    for heap in kernel.dma_heaps().list() {
        let (len, what) = request(heap.name().as_str());
        match heap.allocate(len, 0, 0) {
            Ok(b) => {
                r.check(
                    b.size().bytes() >= len,
                    format!("{:<30} {} -> {} at {}", heap.name(), what, human(b.size().bytes()), first_range(&b)),
                );
                bufs.push((heap.name().to_string(), b));
            }
            Err(e) => r.check(false, format!("{}: {e}", heap.name())),
        }
    }

    println!("\n2. The normal-world CPU and the firewall");
    let before = p.firewall().violation_count();
    let mut refused = 0;
    for (_, b) in bufs.iter().filter(|(_, b)| b.is_protected()) {
        let at = first_range(b).start();
        let mut probe = [0u8; 64];
        let read = p.read(Master::NsCpu, at, &mut probe);
        let write = p.write(Master::NsCpu, at, b"normal world was here");
        let mmap = b.mmap(&p);
        let ok = matches!(read, Err(AccessError::Denied(_)))
            && matches!(write, Err(AccessError::Denied(_)))
            && mmap.as_ref().is_err_and(|e| e.errno() == teeheap_kernel::Errno::EINVAL);
        refused += 2;
        r.check(ok, format!("buffer {} at {at}: NS CPU read and write refused, mmap EINVAL", b.id().0));
    }
    r.check(
        p.firewall().violation_count() == before + refused,
        format!("{refused} refused accesses recorded in the violation log"),
    );
    if let Some((_, system)) = bufs.iter().find(|(heap, _)| heap == "system") {
        let map = system.mmap(&p);
        let ok = map.as_ref().is_ok_and(|m| {
            let mut back = [0u8; 12];
            m.write(100, b"plain pixels").is_ok() && m.read(100, &mut back).is_ok() && &back == b"plain pixels"
        });
        r.check(ok, "system buffer: mmap, write and read back by the NS CPU");
    }

    println!("\n3. Free everything");
    let live = kernel.dma_bufs().len();
    drop(bufs);
    let after: Vec<_> = kernel.dma_heaps().list().iter().map(|h| h.info()).collect();
    r.check(
        live > 0 && kernel.dma_bufs().is_empty(),
        format!("{} released, none left", super::count(live as u64, "buffer", "buffers")),
    );
    r.check(after.iter().all(|i| i.used == 0 && i.buffers == 0), "every heap back to 0 bytes used");

    let backend = sys.backend.as_ref().ok_or_else(|| anyhow::anyhow!("no backend bound"))?;
    let mut ns_cpu = NsCpuAttempts::default();

    println!("\n4. Secure video playback: decrypt in the TEE, decode, display");
    match secure_video::run(&kernel, backend, &secure_video::SecureVideoConfig::default()) {
        Ok(v) => {
            print!("{v}");
            r.count(&v.checks());
            ns_cpu = ns_cpu.merged(v.ns_cpu);
        }
        Err(e) => r.check(false, format!("secure video playback: {e}")),
    }

    println!("\n5. Trusted UI: PIN pad in protected memory, PIN on the secure input path");
    match trusted_ui::run(&kernel, backend, &trusted_ui::TrustedUiConfig::for_platform(&p)) {
        Ok(t) => {
            print!("{t}");
            r.count(&t.checks());
            ns_cpu = ns_cpu.merged(t.ns_cpu);
        }
        Err(e) => r.check(false, format!("trusted UI: {e}")),
    }

    println!("\n6. Secure video recording: camera, protected frames, encoder with a secure-world key");
    match secure_record::run(&kernel, backend, &secure_record::SecureRecordConfig::default()) {
        Ok(s) => {
            print!("{s}");
            r.count(&s.checks());
            ns_cpu = ns_cpu.merged(s.ns_cpu);
        }
        Err(e) => r.check(false, format!("secure video recording: {e}")),
    }
    r.check(
        ns_cpu.all_refused_and_logged(),
        format!(
            "pipelines: {} of {} deliberate normal-world accesses refused ({} reads in the violation log, {} mmaps EINVAL)",
            ns_cpu.refused(),
            ns_cpu.attempts(),
            ns_cpu.reads_logged,
            ns_cpu.mmaps_refused
        ),
    );

    println!("\n7. Backend unbind with a live buffer");
    let heap = kernel.dma_heaps().open("protected,secure-video").map_err(|e| anyhow::anyhow!("{e}"))?;
    let old = heap.allocate(1 << 20, 0, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(sys.backend.take());
    let refused = heap.allocate(4096, 0, 0);
    r.check(
        refused.is_err_and(|e| e.errno() == teeheap_kernel::Errno::EINVAL),
        "after unbind: ALLOC fails with EINVAL",
    );
    let mut bytes = [0u8; 4];
    r.check(p.read(Master::SecureCpu, first_range(&old).start(), &mut bytes).is_ok(), "the old buffer still works");
    drop(old);
    r.check(
        heap.info().state.presence == teeheap_kernel::dma_heap::Presence::Unbound
            && heap.info().state.draining.is_empty()
            && heap.info().used == 0,
        "its pool is destroyed once the last buffer is gone",
    );

    println!("\nFirewall violation log ({} total):", p.firewall().violation_count());
    for v in p.firewall().violations() {
        println!("  {v}");
    }
    println!("\n{} checks passed, {} failed", r.passed, r.failed);
    anyhow::ensure!(r.failed == 0, "{} demo checks failed", r.failed);
    Ok(())
}
