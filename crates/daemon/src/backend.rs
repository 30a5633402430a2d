//! The one place that chooses the TEE backend the daemon binds, and the
//! secure world it talks to.
//!
//! The secure world ([`Host`]) lives as long as the daemon; a backend
//! ([`Backend`]) registers `tee0`/`teepriv0` and binds the protected heaps
//! for as long as it lives. Unbinding is dropping the backend (heaps unbind,
//! buffers drain into their old generation's pool); binding again probes the
//! same secure world, so memory lent by an old generation is reclaimed into
//! the world that lent it. Swapping the backend means changing [`Host`] only.

use std::sync::Arc;

use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_secure_world::{SecureWorld, SecureWorldError};

/// The secure world and what it takes to probe a backend on it.
#[derive(Debug)]
pub struct Host {
    world: Arc<SecureWorld>,
    config: OpteeConfig,
}

impl Host {
    /// Boots the secure world the platform description of `kernel` asks for.
    ///
    /// # Errors
    /// The secure world's reason if it rejects its provisioning (e.g. a
    /// bad PIN).
    pub fn boot(kernel: &Arc<Kernel>) -> Result<Host, SecureWorldError> {
        let platform = kernel.platform();
        Ok(Host { world: SecureWorld::boot(platform)?, config: OpteeConfig::for_platform(platform) })
    }

    /// The OP-TEE driver settings a probe uses.
    pub fn optee_config(&self) -> OpteeConfig {
        self.config
    }

    /// The secure world.
    pub fn world(&self) -> &Arc<SecureWorld> {
        &self.world
    }

    /// Probes a backend on `kernel` over this secure world.
    ///
    /// # Errors
    /// What the backend's probe returns (`ENODEV`, `EEXIST`, `EBUSY`, `EINVAL`).
    pub fn probe(&self, kernel: &Arc<Kernel>) -> teeheap_kernel::Result<Backend> {
        let b = OpteeBackend::probe(kernel, Arc::clone(&self.world), self.config)?;
        Ok(Backend { _driver: Box::new(b), name: "optee" })
    }
}

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
