//! A minimal built-in backend: registers `tee0`/`teepriv0` and binds one
//! protected heap per platform carveout to a static carveout pool, with no
//! secure world behind it.
//!
//! The backend owns its devices; [`BuiltinBackend::remove`] (or dropping
//! it) unbinds its heaps and unregisters the devices, like a driver's
//! remove: buffers that are still alive drain into their pools.

use std::sync::Arc;

use teeheap_uapi::tee::{
    TEE_GEN_CAP_GP, TEE_GEN_CAP_MEMREF_NULL, TEE_GEN_CAP_PRIVILEGED, TEE_GEN_CAP_REG_MEM, TEE_IMPL_ID_OPTEE,
};

use crate::Kernel;
use crate::error::Result;
use crate::pool::carveout::CarveoutPool;
use crate::tee::{TeeDesc, TeeDevice};

/// The built-in backend. See the module documentation.
#[derive(Debug)]
pub struct BuiltinBackend {
    kernel: Arc<Kernel>,
    devices: Vec<Arc<TeeDevice>>,
}

impl BuiltinBackend {
    /// Probes: registers the devices and binds a heap per carveout.
    ///
    /// # Errors
    /// `EEXIST` if TEE devices are already registered, `EBUSY` if a use case
    /// is still held by an earlier backend, `EINVAL` for an unaligned
    /// carveout. Whatever was registered is undone then.
    pub fn probe(kernel: &Arc<Kernel>) -> Result<BuiltinBackend> {
        let client = TeeDevice::new(
            "tee0",
            TeeDesc {
                impl_id: TEE_IMPL_ID_OPTEE,
                impl_caps: 0,
                gen_caps: TEE_GEN_CAP_GP | TEE_GEN_CAP_REG_MEM | TEE_GEN_CAP_MEMREF_NULL,
            },
        );
        let supplicant = TeeDevice::new(
            "teepriv0",
            TeeDesc {
                impl_id: TEE_IMPL_ID_OPTEE,
                impl_caps: 0,
                gen_caps: TEE_GEN_CAP_PRIVILEGED | TEE_GEN_CAP_REG_MEM,
            },
        );
        let mut backend = BuiltinBackend { kernel: Arc::clone(kernel), devices: Vec::new() };
        for dev in [client, supplicant] {
            kernel.tee().register(&dev)?;
            backend.devices.push(dev);
        }
        for c in kernel.platform().carveouts() {
            let pool = CarveoutPool::over(kernel.carveout_space(&c.name, c.range)?);
            kernel.tee_register_dma_heap(&backend.devices[0], c.use_case, Box::new(pool))?;
        }
        Ok(backend)
    }

    /// The client device (`tee0`).
    pub fn device(&self) -> &Arc<TeeDevice> {
        &self.devices[0]
    }

    /// Removes the backend (same as dropping it).
    pub fn remove(self) {}
}

impl Drop for BuiltinBackend {
    fn drop(&mut self) {
        for dev in &self.devices {
            self.kernel.tee_unregister_dma_heaps(dev);
            self.kernel.tee().unregister(dev);
        }
    }
}
