//! The emulated SoC under teeheap: physical memory, the memory firewall and
//! the bus masters that access memory through it.
//!
//! A [`Platform`] owns its DRAM and its [`Firewall`]; every access by any
//! master (CPU in either world, DMA devices) goes through [`Platform::read`],
//! [`Platform::write`], [`Platform::copy`] or [`Platform::fill`], which ask
//! the firewall first. Nothing else can reach the memory.
//!
//! ```
//! use teeheap_platform::{Master, PhysAddr, Platform, PlatformConfig};
//!
//! let p = Platform::new(PlatformConfig::embedded_default()).unwrap();
//! let carveout = p.carveouts()[0].range;
//! let mut buf = [0u8; 16];
//! // The normal-world CPU is refused on a protected carveout, and it is logged ...
//! assert!(p.read(Master::NsCpu, carveout.start(), &mut buf).is_err());
//! assert_eq!(p.firewall().violation_count(), 1);
//! // ... while the secure world may read it, and normal memory is open.
//! assert!(p.read(Master::SecureCpu, carveout.start(), &mut buf).is_ok());
//! assert!(p.write(Master::NsCpu, PhysAddr(0x8000_0000), b"hi").is_ok());
//! ```

pub mod addr;
pub mod config;
pub mod devices;
pub mod fault;
pub mod firewall;
pub mod master;
pub mod memory;
pub mod use_case;
pub mod window;

pub use addr::{Len, PAGE_SIZE, PhysAddr, PhysRange, page_align_up};
use std::sync::Arc;

pub use config::{ByteSize, ConfigError, InjectConfig, Limit, LimitsConfig, PlatformConfig};
pub use firewall::{AccessKind, Firewall, FirewallError, Region, RegionId, Rights, Violation};
pub use master::{Master, MasterSet};
pub use memory::{Ram, RamError};
pub use use_case::UseCase;
pub use window::{DramWindow, WindowError};

use crate::fault::{Fault, Faults, Point};

/// Why an access by a master did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The firewall refused it (and logged it).
    #[error("firewall: {0}")]
    Denied(Violation),
    /// The range is not backed by DRAM (a bus error on real hardware), or it
    /// wraps the address space.
    #[error("bus error: {master} {kind} at {addr}+{len:#x} is outside DRAM")]
    Unmapped {
        /// Who tried.
        master: Master,
        /// Read or write.
        kind: AccessKind,
        /// Start of the access.
        addr: PhysAddr,
        /// Its length.
        len: u64,
    },
}

/// Errors of building a platform from its description.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The description is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The DRAM could not be mapped.
    #[error(transparent)]
    Ram(#[from] RamError),
}

/// A protected carveout as booted: locked by the firewall from boot on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carveout {
    /// Name in reports.
    pub name: String,
    /// The use case it serves.
    pub use_case: UseCase,
    /// The physical range (page aligned).
    pub range: PhysRange,
    /// Its firewall region.
    pub region: RegionId,
}

/// The emulated SoC. See the crate documentation.
#[derive(Debug)]
pub struct Platform {
    config: PlatformConfig,
    ram: Ram,
    firewall: Firewall,
    carveouts: Vec<Carveout>,
    faults: Arc<Faults>,
}

impl Platform {
    /// Boots the platform described by `config`: maps DRAM and locks every
    /// carveout in the firewall with its use case's rights.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] if DRAM or a carveout is empty, unaligned,
    /// outside DRAM or overlapping another, or `[limits.heap]` names no
    /// heap; [`RamError`] if DRAM cannot be
    /// mapped.
    pub fn new(config: PlatformConfig) -> Result<Platform, PlatformError> {
        let invalid = |msg: String| PlatformError::Config(ConfigError::Invalid(msg));
        let heaps: Vec<&str> = UseCase::ALL.iter().map(|u| u.heap_name()).chain(["system"]).collect();
        if let Some(name) = config.limits.heap.keys().find(|k| !heaps.contains(&k.as_str())) {
            return Err(invalid(format!("[limits.heap.{name:?}]: no such heap; the heaps are {}", heaps.join(", "))));
        }
        let ram = Ram::new(PhysAddr(config.dram.base), config.dram.size.0)?;
        let firewall = Firewall::with_log_capacity(config.firewall.log_capacity);
        let mut carveouts: Vec<Carveout> = Vec::new();
        for c in &config.carveout {
            let range =
                PhysRange::new(PhysAddr(c.base), c.size.0).filter(|r| r.is_page_aligned()).ok_or_else(|| {
                    invalid(format!(
                        "carveout {:?}: range {:#x}+{} is empty, wraps or is not page aligned",
                        c.name, c.base, c.size
                    ))
                })?;
            if !ram.range().contains_range(&range) {
                return Err(invalid(format!("carveout {:?} {range} is outside DRAM {}", c.name, ram.range())));
            }
            if let Some(other) = carveouts.iter().find(|o| o.use_case == c.use_case) {
                return Err(invalid(format!(
                    "carveouts {:?} and {:?} serve the same use case {}",
                    other.name, c.name, c.use_case
                )));
            }
            let rights = Rights {
                read: c.read.unwrap_or(c.use_case.default_readers()),
                write: c.write.unwrap_or(c.use_case.default_writers()),
            };
            let region = firewall
                .add_region(range, rights, format!("carveout {}", c.name))
                .map_err(|e| invalid(format!("carveout {:?}: {e}", c.name)))?;
            carveouts.push(Carveout { name: c.name.clone(), use_case: c.use_case, range, region });
        }
        tracing::info!(name = %config.name, dram = %ram.range(), carveouts = carveouts.len(), "platform booted");
        Ok(Platform { config, ram, firewall, carveouts, faults: Arc::default() })
    }

    /// Boots the built-in default platform.
    ///
    /// # Errors
    /// [`RamError`] if its 4 GiB of (lazily committed) DRAM cannot be mapped.
    pub fn embedded_default() -> Result<Platform, PlatformError> {
        Platform::new(PlatformConfig::embedded_default())
    }

    /// The description this platform was booted from.
    pub fn config(&self) -> &PlatformConfig {
        &self.config
    }

    /// The physical range of DRAM.
    pub fn dram(&self) -> PhysRange {
        self.ram.range()
    }

    /// The DRAM itself (for its memfd and statistics; not for access).
    pub fn ram(&self) -> &Ram {
        &self.ram
    }

    /// The protected carveouts reserved at boot.
    pub fn carveouts(&self) -> &[Carveout] {
        &self.carveouts
    }

    /// The carveout for `use_case`, if the platform has one.
    pub fn carveout(&self, use_case: UseCase) -> Option<&Carveout> {
        self.carveouts.iter().find(|c| c.use_case == use_case)
    }

    /// DRAM outside every carveout: what the normal world may use, by address.
    pub fn normal_memory(&self) -> Vec<PhysRange> {
        let mut reserved: Vec<PhysRange> = self.carveouts.iter().map(|c| c.range).collect();
        reserved.sort();
        let mut out = Vec::new();
        let mut cursor = self.dram().start();
        for r in reserved {
            if let Some(gap) = r.start().checked_offset_from(cursor).and_then(|len| PhysRange::new(cursor, len)) {
                out.push(gap);
            }
            cursor = r.end();
        }
        if let Some(tail) = self.dram().end().checked_offset_from(cursor).and_then(|len| PhysRange::new(cursor, len)) {
            out.push(tail);
        }
        out
    }

    /// The firewall, to program regions (secure world only) and read the log.
    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    /// The fault-injection slot every layer on this platform asks.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// As [`Self::checked`], and first a fault point: an injected fault is
    /// refused and logged as the firewall refuses. Scrubbing ([`Self::fill`])
    /// is no fault point: a failed scrub would keep memory protected for ever.
    fn checked_access(
        &self,
        master: Master,
        kind: AccessKind,
        addr: PhysAddr,
        len: u64,
    ) -> Result<Option<PhysRange>, AccessError> {
        if len > 0
            && let Some(range) = PhysRange::new(addr, len)
            && let Some(Fault::Fail) = self.faults.at(&Point::Access { master })
        {
            return Err(AccessError::Denied(self.firewall.refuse(master, range, kind, "an injected fault".into())));
        }
        self.checked(master, kind, addr, len)
    }

    fn checked(
        &self,
        master: Master,
        kind: AccessKind,
        addr: PhysAddr,
        len: u64,
    ) -> Result<Option<PhysRange>, AccessError> {
        if len == 0 {
            return Ok(None);
        }
        let unmapped = AccessError::Unmapped { master, kind, addr, len };
        let range = PhysRange::new(addr, len).ok_or(unmapped.clone())?;
        self.firewall.check(master, range, kind).map_err(AccessError::Denied)?;
        if !self.dram().contains_range(&range) {
            return Err(unmapped);
        }
        Ok(Some(range))
    }

    /// `master` reads `buf.len()` bytes at `addr`.
    ///
    /// # Errors
    /// [`AccessError::Denied`] if the firewall refuses (logged);
    /// [`AccessError::Unmapped`] outside DRAM. `buf` is untouched then.
    pub fn read(&self, master: Master, addr: PhysAddr, buf: &mut [u8]) -> Result<(), AccessError> {
        if self.checked_access(master, AccessKind::Read, addr, buf.len() as u64)?.is_some() {
            let done = self.ram.read(addr, buf);
            debug_assert!(done, "checked range must be in DRAM");
        }
        Ok(())
    }

    /// `master` writes `data` at `addr`.
    ///
    /// # Errors
    /// As [`Self::read`]; memory is untouched then.
    pub fn write(&self, master: Master, addr: PhysAddr, data: &[u8]) -> Result<(), AccessError> {
        if self.checked_access(master, AccessKind::Write, addr, data.len() as u64)?.is_some() {
            let done = self.ram.write(addr, data);
            debug_assert!(done, "checked range must be in DRAM");
        }
        Ok(())
    }

    /// `master` copies `len` bytes from `src` to `dst` (a DMA transfer): it
    /// needs read rights on the source and write rights on the destination.
    ///
    /// # Errors
    /// As [`Self::read`]; nothing is copied then.
    pub fn copy(&self, master: Master, src: PhysAddr, dst: PhysAddr, len: u64) -> Result<(), AccessError> {
        self.checked_access(master, AccessKind::Read, src, len)?;
        if self.checked(master, AccessKind::Write, dst, len)?.is_some() {
            let done = self.ram.copy(src, dst, len);
            debug_assert!(done, "checked ranges must be in DRAM");
        }
        Ok(())
    }

    /// `master` sets every byte of `range` to `value` (zeroing is how memory
    /// is scrubbed before its protection is dropped).
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn fill(&self, master: Master, range: PhysRange, value: u8) -> Result<(), AccessError> {
        self.checked(master, AccessKind::Write, range.start(), range.len())?;
        let done = self.ram.fill(range, value);
        debug_assert!(done, "checked range must be in DRAM");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(carveout: &str) -> PlatformConfig {
        PlatformConfig::from_toml(&format!(
            r#"
            name = "small"
            dram = {{ base = 0x4000_0000, size = "16 MiB" }}
            {carveout}
            "#
        ))
        .unwrap()
    }

    const ONE: &str = r#"[[carveout]]
        name = "sv"
        use_case = "secure-video"
        base = 0x40f0_0000
        size = "1 MiB""#;

    #[test]
    fn bad_carveouts_are_rejected() {
        for bad in [
            ONE.replace("0x40f0_0000", "0x40f0_0001"),
            ONE.replace("0x40f0_0000", "0x4100_0000"),
            ONE.replace("1 MiB", "0"),
            ONE.replace("1 MiB", "2 MiB"),
            format!("{ONE}\n{}", ONE.replace("\"sv\"", "\"sv2\"")),
        ] {
            assert!(matches!(Platform::new(small(&bad)), Err(PlatformError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn limits_name_existing_heaps() {
        let limit = |heap: &str| format!("[limits.heap.\"{heap}\"]\nbytes = \"1 MiB\"");
        assert!(Platform::new(small(&limit("protected,trusted-ui"))).is_ok());
        assert!(Platform::new(small(&limit("system"))).is_ok());
        let Err(e) = Platform::new(small(&limit("gpu"))) else { panic!("a cap on no heap accepted") };
        let msg = e.to_string();
        assert!(msg.contains("\"gpu\"") && msg.contains("protected,secure-video, ") && msg.contains("system"), "{msg}");
    }

    #[test]
    fn an_injected_fault_is_refused_and_logged_as_the_firewall_refuses() {
        #[derive(Debug)]
        struct SecondDecoderAccess(std::sync::atomic::AtomicU32);
        impl fault::Injector for SecondDecoderAccess {
            fn at(&self, p: &Point<'_>) -> Option<Fault> {
                let hit = matches!(p, Point::Access { master: Master::VideoDecoder })
                    && self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1;
                hit.then_some(Fault::Fail)
            }
        }
        let p = Platform::new(small(ONE)).unwrap();
        assert!(p.faults().install(Arc::new(SecondDecoderAccess(0.into()))));
        let (normal, cv) = (PhysAddr(0x4000_0000), p.carveouts()[0].range.start());
        p.copy(Master::VideoDecoder, normal, cv, 4).unwrap();
        let Err(AccessError::Denied(v)) = p.copy(Master::VideoDecoder, normal, cv, 4) else { panic!("not refused") };
        assert_eq!((v.master, v.region.as_str()), (Master::VideoDecoder, "an injected fault"));
        p.copy(Master::VideoDecoder, normal, cv, 4).unwrap();
        // Scrubbing is no fault point.
        p.fill(Master::SecureCpu, p.carveouts()[0].range, 0).unwrap();
        assert_eq!(p.firewall().violation_count(), 1);
    }

    #[test]
    fn normal_memory_excludes_carveouts() {
        let p = Platform::new(small(ONE)).unwrap();
        let normal = p.normal_memory();
        assert_eq!(normal.len(), 1);
        assert_eq!(normal[0], PhysRange::new(PhysAddr(0x4000_0000), 15 << 20).unwrap());
        let d = Platform::embedded_default().unwrap();
        let total: u64 = d.normal_memory().iter().map(PhysRange::len).sum::<u64>()
            + d.carveouts().iter().map(|c| c.range.len()).sum::<u64>();
        assert_eq!(total, d.dram().len());
    }

    #[test]
    fn access_through_the_firewall() {
        let p = Platform::new(small(ONE)).unwrap();
        let cv = p.carveouts()[0].range.start();
        let normal = PhysAddr(0x4000_0000);
        let mut buf = [0u8; 4];
        assert!(matches!(p.write(Master::NsCpu, cv, b"evil"), Err(AccessError::Denied(_))));
        assert!(matches!(p.read(Master::NsCpu, cv, &mut buf), Err(AccessError::Denied(_))));
        assert!(matches!(p.copy(Master::NsCpu, normal, cv, 4), Err(AccessError::Denied(_))));
        // A device may DMA into the carveout, the secure CPU reads it back.
        p.write(Master::NsCpu, normal, b"data").unwrap();
        p.copy(Master::VideoDecoder, normal, cv, 4).unwrap();
        p.read(Master::SecureCpu, cv, &mut buf).unwrap();
        assert_eq!(&buf, b"data");
        // The camera may not write secure-video memory.
        assert!(p.copy(Master::Camera, normal, cv, 4).is_err());
        assert_eq!(p.firewall().violation_count(), 4);
        // Bus errors are not firewall violations.
        assert!(matches!(p.read(Master::NsCpu, PhysAddr(0x10), &mut buf), Err(AccessError::Unmapped { .. })));
        assert!(matches!(p.read(Master::NsCpu, PhysAddr(u64::MAX), &mut buf), Err(AccessError::Unmapped { .. })));
        assert_eq!(p.firewall().violation_count(), 4);
        // Scrubbing.
        p.fill(Master::SecureCpu, p.carveouts()[0].range, 0).unwrap();
        p.read(Master::SecureCpu, cv, &mut buf).unwrap();
        assert_eq!(buf, [0; 4]);
        // Empty accesses always succeed.
        p.read(Master::NsCpu, cv, &mut []).unwrap();
    }
}
