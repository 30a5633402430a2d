//! Shared by the kernel model's integration tests.

use std::sync::Arc;

use teeheap_kernel::Kernel;
use teeheap_kernel::backend::builtin::BuiltinBackend;
use teeheap_kernel::file::FdTable;
use teeheap_kernel::uaccess::SimUserMemory;
use teeheap_platform::{Platform, PlatformConfig, UseCase};

/// A platform with a static carveout for each use case (4 GiB of DRAM like
/// the default, plus carveouts for trusted UI and recording), so the
/// built-in backend binds all three protected heaps.
pub(crate) fn three_carveouts() -> Platform {
    three_carveouts_with(|_| {})
}

/// [`three_carveouts`] with a change to the description.
#[allow(dead_code)] // not every test binary uses it
pub(crate) fn three_carveouts_with(change: impl FnOnce(&mut PlatformConfig)) -> Platform {
    let mut cfg = PlatformConfig::embedded_default()
        .with_carveout("trusted-ui", UseCase::TrustedUi, 0x1_5c00_0000, 64 << 20)
        .with_carveout("secure-video-record", UseCase::SecureVideoRecord, 0x1_5400_0000, 128 << 20);
    change(&mut cfg);
    Platform::new(cfg).unwrap()
}

/// A kernel booted on [`three_carveouts`] with the built-in backend bound,
/// a simulated caller memory and an fd table: what the ioctl tests drive.
#[allow(dead_code)] // not every test binary uses it
pub(crate) struct Setup {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) _backend: BuiltinBackend,
    pub(crate) mem: SimUserMemory,
    pub(crate) files: FdTable,
}

/// A fresh [`Setup`].
#[allow(dead_code)] // not every test binary uses it
pub(crate) fn setup() -> Setup {
    let kernel = Kernel::boot(Arc::new(three_carveouts()));
    let backend = BuiltinBackend::probe(&kernel).unwrap();
    Setup { kernel, _backend: backend, mem: SimUserMemory::new(), files: FdTable::default() }
}

/// A [`Setup`] with a DRM card node opened (`dri/card0` vkms, `dri/card1`
/// vgem): what the DRM tests drive.
#[allow(dead_code)] // not every test binary uses it
pub(crate) struct DrmSetup {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) _backend: BuiltinBackend,
    pub(crate) mem: SimUserMemory,
    pub(crate) files: FdTable,
    pub(crate) card: Arc<teeheap_kernel::drm::DrmFile>,
}

/// A fresh [`setup`] with the card at `path` opened.
#[allow(dead_code)] // not every test binary uses it
pub(crate) fn drm_setup(path: &str) -> DrmSetup {
    let Setup { kernel, _backend, mem, files } = setup();
    let card = kernel.drm_open(path).unwrap();
    DrmSetup { kernel, _backend, mem, files, card }
}

#[allow(dead_code)] // not every test binary uses it
impl DrmSetup {
    /// Runs `cmd` on the card with `arg` in the caller's memory; the
    /// result and the struct as the kernel left it.
    pub(crate) fn ioctl<T: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        cmd: u32,
        arg: T,
    ) -> (Result<i64, teeheap_kernel::Errno>, T) {
        let ptr = self.mem.map(arg.as_bytes());
        let r = self.card.ioctl(cmd, ptr, &self.mem, &mut self.files).map_err(|e| e.errno());
        (r, T::read_from_bytes(&self.mem.contents(ptr).unwrap()).unwrap())
    }
}
