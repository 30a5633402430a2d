//! The subcommands.

pub(crate) mod bufinfo;
pub(crate) mod client;
pub(crate) mod demo;
pub(crate) mod devmem;
pub(crate) mod generate;
pub(crate) mod lifecycle;
pub(crate) mod log;
pub(crate) mod ls;
pub(crate) mod map;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod stat;
pub(crate) mod svg;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_platform::{Platform, PlatformConfig};

/// A booted platform with its kernel model and backend.
pub(crate) struct System {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) backend: Option<OpteeBackend>,
}

/// Boots the platform described by `config` (the embedded default when
/// `None`) with the OP-TEE-style backend and its secure world bound.
pub(crate) fn boot(config: Option<&Path>) -> anyhow::Result<System> {
    let cfg = match config {
        Some(path) => PlatformConfig::load(path)?,
        None => PlatformConfig::embedded_default(),
    };
    let platform = Platform::new(cfg).context("cannot boot the platform")?;
    let kernel = Kernel::boot(Arc::new(platform));
    let backend = OpteeBackend::boot(&kernel).map_err(|e| anyhow::anyhow!("backend probe failed: {e}"))?;
    Ok(System { kernel, backend: Some(backend) })
}

/// `1536 MiB`-style sizes for tables.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift {
            let v = bytes as f64 / (1u64 << shift) as f64;
            return if v.fract() == 0.0 { format!("{v:.0} {name}") } else { format!("{v:.1} {name}") };
        }
    }
    format!("{bytes} B")
}
