//! Shared by the scenario tests: boot the default platform with the
//! OP-TEE-style backend, and check that a scenario left nothing behind.

use std::sync::Arc;

use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::{OpteeBackend, OpteeConfig};
use teeheap_platform::{Platform, UseCase};
use teeheap_secure_world::SecureWorld;

/// The embedded default platform with its secure world bound.
pub(crate) fn boot() -> (Arc<Kernel>, OpteeBackend<SecureWorld>) {
    let kernel = Kernel::boot(Arc::new(Platform::embedded_default().unwrap()));
    let world = SecureWorld::boot(kernel.platform()).unwrap();
    let backend = OpteeBackend::probe(&kernel, world, OpteeConfig::for_platform(kernel.platform())).unwrap();
    (kernel, backend)
}

/// Every buffer released, every heap back to 0 bytes, every lent region
/// reclaimed, no session left.
pub(crate) fn assert_all_released(kernel: &Kernel, backend: &OpteeBackend<SecureWorld>) {
    assert!(kernel.dma_bufs().is_empty(), "live buffers: {:?}", kernel.dma_bufs().snapshot());
    for h in kernel.dma_heaps().list() {
        let info = h.info();
        assert_eq!((info.used, info.buffers), (0, 0), "{} still in use: {info:?}", info.name);
    }
    for uc in [UseCase::TrustedUi, UseCase::SecureVideoRecord] {
        let info = kernel.tee_heap(uc).is_some().then(|| kernel.dma_heaps().open(uc.heap_name()).unwrap().info());
        assert!(info.as_ref().is_some_and(|i| i.pool.contains("(0 B in 0 lent regions")), "{uc}: {info:?}");
    }
    let stats = backend.world().stats();
    assert_eq!(stats.lent, stats.reclaimed, "{stats:?}");
    assert_eq!(stats.outstanding, 0, "{stats:?}");
    assert!(backend.world().lent_objects().is_empty());
    assert_eq!(backend.world().session_count(), 0);
}
