//! vkms: the virtual kernel mode-setting driver — a display with one CRTC,
//! a primary plane and a virtual connector (see [`super::kms`]), whose
//! dumb buffers are normal memory from the `system` heap and whose frames
//! are scanned out by the platform's display controller through the
//! firewall, with a CRC of each frame.

use std::sync::Arc;

use teeheap_platform::{Len, Platform};

use crate::dma_buf::DmaBuf;
use crate::dma_heap::DmaHeapOps;
use crate::dma_heap::system::SystemHeap;
use crate::drm::kms::KmsDevice;
use crate::drm::{DriverInfo, DrmDriver};
use crate::error::Result;

/// What vkms reports in `DRM_IOCTL_VERSION` (Linux's values).
pub const VKMS_INFO: DriverInfo = DriverInfo {
    name: "vkms",
    date: "20180514",
    desc: "Virtual Kernel Mode Setting",
    version: (1, 0, 0),
    modeset: true,
};

/// The vkms driver.
#[derive(Debug)]
pub struct Vkms {
    system: Arc<SystemHeap>,
    kms: Arc<KmsDevice>,
}

impl Vkms {
    /// A vkms device on `platform` whose dumb buffers come from `system`.
    pub fn new(platform: Arc<Platform>, system: Arc<SystemHeap>) -> Arc<Vkms> {
        Arc::new(Vkms { system, kms: KmsDevice::new(platform) })
    }
}

impl DrmDriver for Vkms {
    fn info(&self) -> &DriverInfo {
        &VKMS_INFO
    }

    fn dumb_create(&self, size: Len) -> Result<Arc<DmaBuf>> {
        self.system.allocate(size, 0, 0)
    }

    fn kms(&self) -> Option<&Arc<KmsDevice>> {
        Some(&self.kms)
    }
}
