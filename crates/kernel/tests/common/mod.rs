//! Shared by the kernel model's integration tests.

use teeheap_platform::{Platform, PlatformConfig};

/// A platform with a static carveout for each use case (4 GiB of DRAM like
/// the default, plus carveouts for trusted UI and recording), so the
/// built-in backend binds all three protected heaps.
pub(crate) fn three_carveouts() -> Platform {
    three_carveouts_with(|_| {})
}

/// [`three_carveouts`] with a change to the description.
#[allow(dead_code)] // not every test binary uses it
pub(crate) fn three_carveouts_with(change: impl FnOnce(&mut PlatformConfig)) -> Platform {
    let mut cfg = PlatformConfig::embedded_default();
    cfg.carveout.extend(
        PlatformConfig::from_toml(
            r#"
            name = "extra"
            dram = { base = 0, size = 0 }
            [[carveout]]
            name = "trusted-ui"
            use_case = "trusted-ui"
            base = 0x1_5c00_0000
            size = "64 MiB"
            [[carveout]]
            name = "secure-video-record"
            use_case = "secure-video-record"
            base = 0x1_5400_0000
            size = "128 MiB"
            "#,
        )
        .unwrap()
        .carveout,
    );
    change(&mut cfg);
    Platform::new(cfg).unwrap()
}
