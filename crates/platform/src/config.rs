//! The platform description: DRAM, protected carveouts and firewall
//! settings, read from TOML. One default is embedded in the binary.
//!
//! A [`PlatformConfig`] is only data; [`crate::Platform::new`] validates it
//! (ranges inside DRAM, aligned, disjoint) before anything is built.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::master::MasterSet;
use crate::use_case::UseCase;

/// The TOML text of the built-in default platform.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// Errors of reading a platform description.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read platform file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The host's error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or missing keys.
    #[error("invalid platform description: {0}")]
    Parse(#[from] toml::de::Error),
    /// The description is well-formed but inconsistent.
    #[error("invalid platform description: {0}")]
    Invalid(String),
}

/// A byte count, written in TOML as an integer or a string such as
/// `"512 MiB"` (units B, KiB, MiB, GiB, TiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"512 MiB"`, `"4GiB"`, `"4096"`.
    ///
    /// # Errors
    /// A message naming the bad text, for an unknown unit or an overflow.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '_')).unwrap_or(s.len());
        let (num, unit) = s.split_at(digits_end);
        let num: u64 = num.replace('_', "").parse().map_err(|_| format!("bad size {s:?}"))?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" | "K" => 10,
            "MiB" | "M" => 20,
            "GiB" | "G" => 30,
            "TiB" | "T" => 40,
            u => return Err(format!("bad unit {u:?} in size {s:?} (use B, KiB, MiB, GiB or TiB)")),
        };
        num.checked_mul(1 << shift).map(ByteSize).ok_or_else(|| format!("size {s:?} overflows"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
        for (name, shift) in UNITS {
            if self.0 >= 1 << shift && self.0 % (1 << shift) == 0 {
                return write!(f, "{} {name}", self.0 >> shift);
            }
        }
        write!(f, "{} B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// The DRAM of the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramConfig {
    /// First physical address.
    pub base: u64,
    /// Size in bytes.
    pub size: ByteSize,
}

/// A protected carveout: a physical range reserved at boot for one use case
/// and locked by the firewall from boot on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarveoutConfig {
    /// Name in reports.
    pub name: String,
    /// The use case whose heap allocates from it.
    pub use_case: UseCase,
    /// First physical address (page aligned).
    pub base: u64,
    /// Size in bytes (page aligned).
    pub size: ByteSize,
    /// Masters that may read it; defaults to the use case's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<MasterSet>,
    /// Masters that may write it; defaults to the use case's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<MasterSet>,
}

/// Firewall settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallConfig {
    /// How many violations the log keeps.
    #[serde(default = "default_log_capacity")]
    pub log_capacity: usize,
}

fn default_log_capacity() -> usize {
    crate::firewall::DEFAULT_LOG_CAPACITY
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig { log_capacity: default_log_capacity() }
    }
}

/// The TEE: how protected memory is provided where no carveout exists,
/// and the secrets the emulated secure world is provisioned with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeConfig {
    /// Use cases without a carveout get protected memory lent on demand in
    /// chunks of this size (the granularity the secure world reports).
    #[serde(default = "default_chunk")]
    pub dynamic_chunk: ByteSize,
    /// Cap on the memory lent per such use case.
    #[serde(default = "default_dynamic_max")]
    pub dynamic_max: ByteSize,
    /// The PIN the trusted-UI TA checks (4 to 12 digits).
    #[serde(default = "default_pin")]
    pub trusted_ui_pin: String,
    /// Registering a use case again while buffers of its previous
    /// registration are alive: `upstream` refuses (EBUSY) as Linux does,
    /// `generations` binds a new generation at once.
    #[serde(default)]
    pub rebind: Rebind,
    /// Directories searched for host-built trusted applications
    /// (`<uuid>.ta`), after the built-in ones (`teeheap run --ta-dir` adds
    /// one).
    #[serde(default)]
    pub ta_dirs: Vec<std::path::PathBuf>,
    /// A host-built TA's call (open, invoke, close) still running after
    /// this many milliseconds is ended: the TA process is killed and the
    /// client gets TARGET_DEAD. 0: never.
    #[serde(default = "default_ta_call_timeout_ms")]
    pub ta_call_timeout_ms: u64,
    /// Secure threads: how many std calls the secure world runs at once
    /// (OP-TEE's `CFG_NUM_THREADS`); more wait in the driver's call queue.
    #[serde(default = "default_threads")]
    pub threads: u32,
    /// Largest TA image the secure world fetches through tee-supplicant
    /// (`LOAD_TA`): a bigger size answered is refused before any memory is
    /// allocated for it (TEE_ERROR_OUT_OF_MEMORY).
    #[serde(default = "default_max_ta_size")]
    pub max_ta_size: ByteSize,
}

fn default_max_ta_size() -> ByteSize {
    ByteSize(16 << 20)
}

fn default_ta_call_timeout_ms() -> u64 {
    60_000
}

/// See [`TeeConfig::rebind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rebind {
    /// As Linux: EBUSY until the old buffers are gone.
    Upstream,
    /// A new generation binds at once; the old one drains.
    #[default]
    Generations,
}

fn default_chunk() -> ByteSize {
    ByteSize(4 << 20)
}

fn default_dynamic_max() -> ByteSize {
    ByteSize(256 << 20)
}

fn default_threads() -> u32 {
    2
}

fn default_pin() -> String {
    "4711".to_owned()
}

impl Default for TeeConfig {
    fn default() -> Self {
        TeeConfig {
            dynamic_chunk: default_chunk(),
            dynamic_max: default_dynamic_max(),
            trusted_ui_pin: default_pin(),
            rebind: Rebind::default(),
            ta_dirs: Vec::new(),
            ta_call_timeout_ms: default_ta_call_timeout_ms(),
            threads: default_threads(),
            max_ta_size: default_max_ta_size(),
        }
    }
}

/// A cap on what one client process may hold: bytes and/or buffers.
/// An absent field is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Most bytes of dma-bufs the process may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<ByteSize>,
    /// Most dma-bufs the process may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffers: Option<u64>,
}

/// Per-client accounting limits (`[limits]`), enforced by the daemon at
/// `DMA_HEAP_IOCTL_ALLOC`: an allocation that would take the calling
/// process over a cap fails with `ENOMEM`, as a memcg limit would. What a
/// process holds is every dma-buf it has an fd to, a mapping of, or a TEE
/// registration fd of (see docs/observability.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Cap per process over all heaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Limit>,
    /// Caps per process within one heap, by heap name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub heap: std::collections::BTreeMap<String, Limit>,
}

impl LimitsConfig {
    /// Whether no cap is set at all.
    pub fn is_empty(&self) -> bool {
        self.process.is_none() && self.heap.is_empty()
    }
}

/// A whole platform description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Name in reports.
    pub name: String,
    /// The DRAM.
    pub dram: DramConfig,
    /// Protected carveouts inside DRAM.
    #[serde(default)]
    pub carveout: Vec<CarveoutConfig>,
    /// Firewall settings.
    #[serde(default)]
    pub firewall: FirewallConfig,
    /// TEE settings.
    #[serde(default)]
    pub tee: TeeConfig,
    /// Per-client limits; none by default.
    #[serde(default, skip_serializing_if = "LimitsConfig::is_empty")]
    pub limits: LimitsConfig,
    /// Faults a daemon on this platform injects (`[[inject]]`,
    /// docs/fault-injection.md); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inject: Vec<InjectConfig>,
}

/// One `[[inject]]` table: a fault spec (docs/fault-injection.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectConfig {
    /// The spec, e.g. `alloc:protected,secure-video:nth=3:ENOMEM`.
    pub spec: crate::fault::spec::Spec,
}

impl PlatformConfig {
    /// Parses a TOML description.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for malformed TOML, unknown keys or bad values.
    pub fn from_toml(text: &str) -> Result<PlatformConfig, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses the TOML file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if it cannot be read, else as [`Self::from_toml`].
    pub fn load(path: &Path) -> Result<PlatformConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        PlatformConfig::from_toml(&text)
    }

    /// The built-in default platform.
    pub fn embedded_default() -> PlatformConfig {
        PlatformConfig::from_toml(DEFAULT_TOML).expect("the embedded default platform parses")
    }

    /// A small platform as tests and benches describe one: `dram_size`
    /// bytes of DRAM at [`SMALL_DRAM_BASE`], no carveout, defaults for the
    /// rest. Add carveouts with [`Self::with_carveout`]; the result is
    /// checked when a `Platform` is made of it, as a parsed file is.
    ///
    /// ```
    /// use teeheap_platform::{Platform, PlatformConfig, UseCase};
    /// let cfg = PlatformConfig::small("t", 64 << 20).with_carveout("sv", UseCase::SecureVideo, 0x43c0_0000, 4 << 20);
    /// assert_eq!(PlatformConfig::from_toml(&cfg.to_toml()).unwrap(), cfg);
    /// Platform::new(cfg).unwrap();
    /// ```
    pub fn small(name: &str, dram_size: u64) -> PlatformConfig {
        PlatformConfig {
            name: name.to_owned(),
            dram: DramConfig { base: SMALL_DRAM_BASE, size: ByteSize(dram_size) },
            carveout: Vec::new(),
            firewall: FirewallConfig::default(),
            tee: TeeConfig::default(),
            limits: LimitsConfig::default(),
            inject: Vec::new(),
        }
    }

    /// Adds a carveout of `size` bytes at `base` for `use_case`, with the
    /// use case's default access rights.
    #[must_use]
    pub fn with_carveout(mut self, name: &str, use_case: UseCase, base: u64, size: u64) -> PlatformConfig {
        self.carveout.push(CarveoutConfig {
            name: name.to_owned(),
            use_case,
            base,
            size: ByteSize(size),
            read: None,
            write: None,
        });
        self
    }

    /// The description as TOML that [`Self::from_toml`] reads back equal
    /// (e.g. for a `--config` file).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a platform description serialises")
    }
}

/// Where [`PlatformConfig::small`] puts DRAM.
pub const SMALL_DRAM_BASE: u64 = 0x4000_0000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::Master;

    #[test]
    fn sizes() {
        for (text, value) in
            [("512 MiB", 512 << 20), ("4GiB", 4 << 30), ("4_096", 4096), ("7 B", 7), ("1 TiB", 1 << 40)]
        {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(value)), "{text}");
        }
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("99999999999 TiB").is_err());
        assert!(ByteSize::parse("MiB").is_err());
        assert_eq!(ByteSize(512 << 20).to_string(), "512 MiB");
        assert_eq!(ByteSize(4097).to_string(), "4097 B");
    }

    #[test]
    fn default_parses() {
        let c = PlatformConfig::embedded_default();
        assert_eq!(c.dram.base, 0x8000_0000);
        assert_eq!(c.dram.size, ByteSize(4 << 30));
        assert_eq!(c.carveout.len(), 1);
        assert_eq!(c.carveout[0].use_case, UseCase::SecureVideo);
        assert_eq!(c.carveout[0].size, ByteSize(512 << 20));
        assert_eq!(c.tee.dynamic_chunk, ByteSize(4 << 20));
        assert_eq!(c.tee.dynamic_max, ByteSize(256 << 20));
    }

    #[test]
    fn overrides_and_unknown_keys() {
        let text = r#"
            name = "t"
            dram = { base = 0x1000_0000, size = 1048576 }
            [[carveout]]
            name = "c"
            use_case = "trusted-ui"
            base = 0x1000_0000
            size = "64 KiB"
            read = ["display", "secure-cpu"]
        "#;
        let c = PlatformConfig::from_toml(text).unwrap();
        assert_eq!(c.carveout[0].read, Some(MasterSet::of(&[Master::Display, Master::SecureCpu])));
        assert_eq!(c.firewall.log_capacity, crate::firewall::DEFAULT_LOG_CAPACITY);
        assert!(PlatformConfig::from_toml(&format!("{text}\nbogus = 1")).is_err());
        assert!(PlatformConfig::from_toml(&text.replace("trusted-ui", "gpu")).is_err());
        assert!(PlatformConfig::from_toml(&text.replace("\"display\"", "\"gpu\"")).is_err());
    }

    #[test]
    fn limits() {
        let mut text = DEFAULT_TOML.to_owned();
        text.push_str(
            "\n[limits.process]\nbytes = \"64 MiB\"\n[limits.heap.\"protected,secure-video\"]\nbuffers = 2\nbytes = \"8 MiB\"\n",
        );
        let c = PlatformConfig::from_toml(&text).unwrap();
        assert_eq!(c.limits.process, Some(Limit { bytes: Some(ByteSize(64 << 20)), buffers: None }));
        assert_eq!(c.limits.heap["protected,secure-video"], Limit { bytes: Some(ByteSize(8 << 20)), buffers: Some(2) });
        assert_eq!(PlatformConfig::from_toml(&toml::to_string(&c).unwrap()).unwrap(), c);
        assert!(PlatformConfig::embedded_default().limits.is_empty());
        assert!(PlatformConfig::from_toml(&format!("{text}\nbogus = 1\n")).is_err());
    }

    #[test]
    fn inject_tables_are_typed_specs() {
        let text = format!(
            "{DEFAULT_TOML}\n[[inject]]\nspec = \"alloc:system:nth=2:ENOMEM\"\n[[inject]]\nspec = \"backend:unbind:after=2s\"\n"
        );
        let c = PlatformConfig::from_toml(&text).unwrap();
        assert_eq!(c.inject.len(), 2);
        assert_eq!(c.inject[1].spec.to_string(), "backend:unbind:after=2s");
        assert_eq!(PlatformConfig::from_toml(&toml::to_string(&c).unwrap()).unwrap(), c);
        let e = PlatformConfig::from_toml(&text.replace("nth=2", "nth=0")).unwrap_err().to_string();
        assert!(e.contains("nth=0") && e.contains("count"), "{e}");
    }

    #[test]
    fn round_trips_through_toml() {
        let c = PlatformConfig::embedded_default();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(PlatformConfig::from_toml(&text).unwrap(), c);
    }
}
