//! vgem: the virtual GEM provider, a DRM driver without a display whose
//! buffer objects are normal memory — the importer the kernel's
//! dmabuf-heaps selftest looks for on `/dev/dri/card*`.
//!
//! Its dumb buffers come from the `system` heap's memory, so a PRIME export
//! of one is a `system` dma-buf (mmap-able, CPU-synced) that lives as long
//! as any handle or fd of it. The vgem fence ioctls (`VGEM_FENCE_ATTACH`,
//! `VGEM_FENCE_SIGNAL`) are not modelled (`EINVAL`, as for an unknown
//! driver ioctl).

use std::sync::Arc;

use teeheap_platform::Len;

use crate::dma_buf::DmaBuf;
use crate::dma_heap::DmaHeapOps;
use crate::dma_heap::system::SystemHeap;
use crate::drm::{DriverInfo, DrmDriver};
use crate::error::Result;

/// What vgem reports in `DRM_IOCTL_VERSION` (Linux's values).
pub const VGEM_INFO: DriverInfo =
    DriverInfo { name: "vgem", date: "20120112", desc: "Virtual GEM provider", version: (1, 0, 0), modeset: false };

/// The vgem driver.
#[derive(Debug)]
pub struct Vgem {
    system: Arc<SystemHeap>,
}

impl Vgem {
    /// A vgem device whose objects come from `system`'s memory.
    pub fn new(system: Arc<SystemHeap>) -> Arc<Vgem> {
        Arc::new(Vgem { system })
    }
}

impl DrmDriver for Vgem {
    fn info(&self) -> &DriverInfo {
        &VGEM_INFO
    }

    fn dumb_create(&self, size: Len) -> Result<Arc<DmaBuf>> {
        self.system.allocate(size, 0, 0)
    }
}
