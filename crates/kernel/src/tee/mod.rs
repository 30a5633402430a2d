//! The TEE core: TEE devices (`/dev/tee<N>`, `/dev/teepriv<N>`) and the
//! protected DMA heaps that a TEE backend binds to its pools.
//!
//! A backend registers its devices here and drops them when it goes; a
//! device lives as long as anything (an open context, a heap registration
//! or a protected buffer) holds its `Arc`.

pub mod context;
pub mod driver;
pub mod heap;
pub mod login;
pub mod shm;
pub mod supp;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use teeheap_sync::Recover;

use serde::Serialize;
use teeheap_uapi::tee::TeeIoctlVersionData;

use crate::error::{Errno, Error, Result};
use crate::lifecycle::Revocable;
use crate::tee::driver::TeeDriver;
use crate::tee::shm::ShmIds;

/// What a TEE device reports in `TEE_IOC_VERSION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TeeDesc {
    /// `TEE_IMPL_ID_*` (OP-TEE = 1).
    pub impl_id: u32,
    /// Implementation-specific capabilities.
    pub impl_caps: u32,
    /// `TEE_GEN_CAP_*`.
    pub gen_caps: u32,
}

/// A TEE device node.
pub struct TeeDevice {
    name: String,
    desc: TeeDesc,
    driver: Option<Revocable<dyn TeeDriver>>,
    shm_ids: Arc<ShmIds>,
}

impl std::fmt::Debug for TeeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeeDevice").field("name", &self.name).field("desc", &self.desc).finish_non_exhaustive()
    }
}

impl TeeDevice {
    /// A device named `name` (`tee0`, `teepriv0`) describing itself as
    /// `desc`, with no driver: sessions fail with `EINVAL`.
    pub fn new(name: impl Into<String>, desc: TeeDesc) -> Arc<TeeDevice> {
        Arc::new(TeeDevice { name: name.into(), desc, driver: None, shm_ids: Arc::default() })
    }

    /// A device whose sessions are served by `driver`.
    pub fn with_driver(name: impl Into<String>, desc: TeeDesc, driver: Arc<dyn TeeDriver>) -> Arc<TeeDevice> {
        Arc::new(TeeDevice { name: name.into(), desc, driver: Some(Revocable::new(driver)), shm_ids: Arc::default() })
    }

    /// The backend driver.
    ///
    /// # Errors
    /// `EINVAL` if the device never had one (as a device without session
    /// ops). `Ok(None)` once the backend went away: callers answer with
    /// `TEEC_ERROR_TARGET_DEAD`.
    pub fn driver(&self) -> Result<Option<Arc<dyn TeeDriver>>> {
        let slot = self.driver.as_ref().ok_or(Error::new(Errno::EINVAL, "TEE device has no driver"))?;
        Ok(slot.try_access().map(|d| Arc::clone(&d)))
    }

    /// Cuts the device off its backend (driver remove): calls in flight
    /// finish, later ones get `TEEC_ERROR_TARGET_DEAD`.
    pub fn revoke_driver(&self) {
        if let Some(slot) = &self.driver {
            drop(slot.revoke());
        }
    }

    /// The device's shared-memory ids.
    pub fn shm_ids(&self) -> &Arc<ShmIds> {
        &self.shm_ids
    }

    /// Whether it is the supplicant's node (`teepriv<N>`).
    pub fn is_privileged(&self) -> bool {
        self.desc.gen_caps & teeheap_uapi::tee::TEE_GEN_CAP_PRIVILEGED != 0
    }

    /// The node name, without `/dev/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its description.
    pub fn desc(&self) -> TeeDesc {
        self.desc
    }

    /// The answer to `TEE_IOC_VERSION`.
    pub fn version(&self) -> TeeIoctlVersionData {
        TeeIoctlVersionData { impl_id: self.desc.impl_id, impl_caps: self.desc.impl_caps, gen_caps: self.desc.gen_caps }
    }
}

/// The registered TEE devices.
#[derive(Debug, Default)]
pub struct TeeRegistry {
    devices: RwLock<BTreeMap<String, Arc<TeeDevice>>>,
}

impl TeeRegistry {
    /// Makes `dev` appear under `/dev`.
    ///
    /// # Errors
    /// `EEXIST` if a device of that name is registered.
    pub fn register(&self, dev: &Arc<TeeDevice>) -> Result<()> {
        let mut devs = self.devices.write().recover();
        if devs.contains_key(dev.name()) {
            return Err(Error::new(Errno::EEXIST, "TEE device name taken"));
        }
        devs.insert(dev.name().to_owned(), Arc::clone(dev));
        tracing::info!(dev = dev.name(), "TEE device registered");
        Ok(())
    }

    /// Removes the node; holders of the device keep it until they drop it.
    pub fn unregister(&self, dev: &Arc<TeeDevice>) {
        let mut devs = self.devices.write().recover();
        if devs.get(dev.name()).is_some_and(|d| Arc::ptr_eq(d, dev)) {
            devs.remove(dev.name());
            tracing::info!(dev = dev.name(), "TEE device unregistered");
        }
    }

    /// Opens `/dev/<name>`.
    ///
    /// # Errors
    /// `ENOENT` if there is no such device.
    pub fn open(&self, name: &str) -> Result<Arc<TeeDevice>> {
        let devs = self.devices.read().recover();
        devs.get(name).cloned().ok_or(Error::new(Errno::ENOENT, "no such TEE device"))
    }

    /// Every registered device, by name.
    pub fn list(&self) -> Vec<Arc<TeeDevice>> {
        self.devices.read().recover().values().cloned().collect()
    }
}
