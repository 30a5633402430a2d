//! The one place that chooses the TEE backend the daemon binds at boot.
//!
//! The backend registers `tee0`/`teepriv0` and binds the protected heaps;
//! it stays bound for as long as the returned [`Backend`] lives. It is the
//! OP-TEE-style driver talking to the emulated secure world the platform
//! description provisions; swapping it means changing [`probe`] only.

use std::sync::Arc;

use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;

/// A bound backend; dropping it removes it (heaps unbind, buffers drain).
pub struct Backend {
    _driver: Box<dyn Send + Sync>,
    name: &'static str,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Backend {
    /// The backend's name, for logs and `hello`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Probes the daemon's backend on `kernel`.
///
/// # Errors
/// What the backend's probe returns (`ENODEV`, `EEXIST`, `EBUSY`, `EINVAL`).
pub fn probe(kernel: &Arc<Kernel>) -> teeheap_kernel::Result<Backend> {
    let b = OpteeBackend::boot(kernel)?;
    Ok(Backend { _driver: Box::new(b), name: "optee" })
}
