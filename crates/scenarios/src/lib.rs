//! teeheap's three protected-memory pipelines, run end to end as a user-space
//! program on a real kernel would run them: every step through the UAPI
//! (`DMA_HEAP_IOCTL_ALLOC`, the TEE ioctls), devices driven through dma-buf
//! attachments, the secure world reached only through the TEE.
//!
//! - [`secure_video`]: encrypted samples → content-decryption TA → protected
//!   bitstream → video decoder → protected frame → display (CRC).
//! - [`trusted_ui`]: the trusted-UI TA draws a PIN pad into a protected
//!   framebuffer, the user types on the secure input path, only the outcome
//!   comes back; no PIN digit ever reaches normal memory.
//! - [`secure_record`]: camera → protected frames → video encoder with a key
//!   the secure world programmed → encrypted recording in normal memory.
//!
//! Each returns a typed report with the numbers and its [`Check`]s; every
//! object a scenario made is released when it returns, which its report's
//! [`Cleanup`] confirms. [`run_all`] runs the three in a row.
//!
//! ```no_run
//! use std::sync::Arc;
//! use teeheap_kernel::Kernel;
//! use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
//! use teeheap_platform::Platform;
//! use teeheap_secure_world::SecureWorld;
//!
//! let kernel = Kernel::boot(Arc::new(Platform::embedded_default().unwrap()));
//! let world = SecureWorld::boot(kernel.platform()).unwrap();
//! let backend = OpteeBackend::probe(&kernel, world, OpteeConfig::for_platform(kernel.platform())).unwrap();
//! let report = teeheap_scenarios::run_all(&kernel, &backend).unwrap();
//! assert!(report.failed_checks().is_empty(), "{report}");
//! println!("{report}");
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod key_slot;
pub mod memscan;
pub mod ns_cpu;
pub mod secure_record;
pub mod secure_video;
pub mod trusted_ui;

use std::fmt;

use serde::Serialize;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_secure_world::SecureWorld;

pub use error::ScenarioError;

/// One thing a scenario verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, in words.
    pub what: String,
    /// Whether it held.
    pub ok: bool,
}

impl Check {
    /// A check of `what` that held if `ok`.
    pub fn new(ok: bool, what: impl Into<String>) -> Check {
        Check { what: what.into(), ok }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", if self.ok { "ok  " } else { "FAIL" }, self.what)
    }
}

/// What is left once a scenario has returned and dropped everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    /// dma-bufs still alive in the kernel.
    pub live_dma_bufs: usize,
    /// Bytes still used in any heap.
    pub heap_bytes_used: u64,
    /// Objects lent to the secure world since boot.
    pub lent_total: u64,
    /// Objects reclaimed from it since boot.
    pub reclaimed_total: u64,
    /// Objects lent right now.
    pub lent_now: usize,
    /// Sessions open in the secure world.
    pub sessions_open: usize,
}

impl Cleanup {
    /// Measures the kernel and the secure world now.
    pub fn measure(kernel: &Kernel, backend: &OpteeBackend<SecureWorld>) -> Cleanup {
        let stats = backend.world().stats();
        Cleanup {
            live_dma_bufs: kernel.dma_bufs().len(),
            heap_bytes_used: kernel.dma_heaps().list().iter().map(|h| h.info().used).sum(),
            lent_total: stats.lent,
            reclaimed_total: stats.reclaimed,
            lent_now: backend.world().lent_objects().len(),
            sessions_open: backend.world().session_count(),
        }
    }

    /// Whether nothing is left: no buffer, no heap usage, every lent chunk
    /// reclaimed, no session.
    pub fn is_clean(&self) -> bool {
        self.live_dma_bufs == 0
            && self.heap_bytes_used == 0
            && self.lent_total == self.reclaimed_total
            && self.lent_now == 0
            && self.sessions_open == 0
    }

    /// The check that everything was released.
    pub fn check(&self) -> Check {
        Check::new(
            self.is_clean(),
            format!(
                "all released: {} dma-bufs, {} bytes in heaps, {} of {} lent regions reclaimed, {} sessions",
                self.live_dma_bufs, self.heap_bytes_used, self.reclaimed_total, self.lent_total, self.sessions_open
            ),
        )
    }
}

/// The three pipelines' reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Secure video playback.
    pub secure_video: secure_video::SecureVideoReport,
    /// Trusted UI.
    pub trusted_ui: trusted_ui::TrustedUiReport,
    /// Secure video recording.
    pub secure_record: secure_record::SecureRecordReport,
}

impl Report {
    /// Every check of the three pipelines.
    pub fn checks(&self) -> Vec<Check> {
        let mut v = self.secure_video.checks();
        v.extend(self.trusted_ui.checks());
        v.extend(self.secure_record.checks());
        v
    }

    /// The checks that did not hold.
    pub fn failed_checks(&self) -> Vec<Check> {
        self.checks().into_iter().filter(|c| !c.ok).collect()
    }

    /// Normal-world CPU accesses tried on purpose, over all pipelines.
    pub fn ns_cpu(&self) -> ns_cpu::NsCpuAttempts {
        self.secure_video.ns_cpu.merged(self.trusted_ui.ns_cpu).merged(self.secure_record.ns_cpu)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.secure_video)?;
        writeln!(f, "{}", self.trusted_ui)?;
        writeln!(f, "{}", self.secure_record)?;
        let ns = self.ns_cpu();
        let checks = self.checks();
        let failed = checks.iter().filter(|c| !c.ok).count();
        write!(
            f,
            "normal-world CPU: {} of {} deliberate accesses refused ({} reads logged by the firewall, {} mmaps EINVAL)\n\
             pipelines: {} checks, {} failed",
            ns.refused(),
            ns.attempts(),
            ns.reads_logged,
            ns.mmaps_refused,
            checks.len(),
            failed
        )
    }
}

/// Writes `checks` one per line, indented.
pub(crate) fn write_checks(f: &mut fmt::Formatter<'_>, checks: &[Check]) -> fmt::Result {
    for c in checks {
        writeln!(f, "  {c}")?;
    }
    Ok(())
}

/// Runs the three pipelines with their default settings on `kernel` with
/// `backend` bound: secure video, then trusted UI (whose memory scan thus
/// also covers what playback left in normal memory), then recording.
///
/// # Errors
/// The first [`ScenarioError`]: a step of a pipeline failed.
pub fn run_all(kernel: &Kernel, backend: &OpteeBackend<SecureWorld>) -> Result<Report, ScenarioError> {
    let secure_video = secure_video::run(kernel, backend, &secure_video::SecureVideoConfig::default())?;
    let trusted_ui = trusted_ui::run(kernel, backend, &trusted_ui::TrustedUiConfig::for_platform(kernel.platform()))?;
    let secure_record = secure_record::run(kernel, backend, &secure_record::SecureRecordConfig::default())?;
    Ok(Report { secure_video, trusted_ui, secure_record })
}
