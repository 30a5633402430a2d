//! Bus masters: everything that issues memory accesses on the platform.
//!
//! A [`Master`] is an identity; what it may touch is decided by the firewall
//! from the rights of the region an access falls into.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Anything that issues memory accesses: the CPU in either world, or a DMA
/// device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Master {
    /// The application CPU running the normal world (Linux and its programs).
    NsCpu,
    /// The application CPU running the secure world (TEE OS and TAs).
    SecureCpu,
    /// The video decoder (reads bitstreams, writes frames).
    VideoDecoder,
    /// The display controller (scans out framebuffers).
    Display,
    /// The camera (writes captured frames).
    Camera,
    /// The video encoder (reads frames, writes bitstreams).
    VideoEncoder,
}

impl Master {
    /// Every master, in a fixed order.
    pub const ALL: [Master; 6] =
        [Master::NsCpu, Master::SecureCpu, Master::VideoDecoder, Master::Display, Master::Camera, Master::VideoEncoder];

    /// The name used in configuration files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Master::NsCpu => "ns-cpu",
            Master::SecureCpu => "secure-cpu",
            Master::VideoDecoder => "video-decoder",
            Master::Display => "display",
            Master::Camera => "camera",
            Master::VideoEncoder => "video-encoder",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a master name that is not one of [`Master::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bus master {0:?} (expected one of ns-cpu, secure-cpu, video-decoder, display, camera, video-encoder)")]
pub struct UnknownMaster(pub String);

impl FromStr for Master {
    type Err = UnknownMaster;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Master::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| UnknownMaster(s.to_owned()))
    }
}

/// A set of masters, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MasterSet(u8);

impl MasterSet {
    /// No master.
    pub const EMPTY: MasterSet = MasterSet(0);

    /// Every master.
    pub const ALL: MasterSet = MasterSet((1 << Master::ALL.len()) - 1);

    /// The set holding exactly `masters`.
    pub const fn of(masters: &[Master]) -> MasterSet {
        let mut bits = 0;
        let mut i = 0;
        while i < masters.len() {
            bits |= masters[i].bit();
            i += 1;
        }
        MasterSet(bits)
    }

    /// Whether `m` is in the set.
    pub const fn contains(self, m: Master) -> bool {
        self.0 & m.bit() != 0
    }

    /// The set with `m` added.
    pub const fn with(self, m: Master) -> MasterSet {
        MasterSet(self.0 | m.bit())
    }

    /// The members, in [`Master::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Master> {
        Master::ALL.into_iter().filter(move |m| self.contains(*m))
    }
}

impl FromIterator<Master> for MasterSet {
    fn from_iter<I: IntoIterator<Item = Master>>(iter: I) -> Self {
        iter.into_iter().fold(MasterSet::EMPTY, MasterSet::with)
    }
}

impl fmt::Display for MasterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        let names: Vec<_> = self.iter().map(Master::name).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for MasterSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for MasterSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Master>::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Master::ALL {
            assert_eq!(m.name().parse::<Master>(), Ok(m));
        }
        assert!("gpu".parse::<Master>().is_err());
    }

    #[test]
    fn sets() {
        let s = MasterSet::of(&[Master::Display, Master::SecureCpu]);
        assert!(s.contains(Master::Display) && !s.contains(Master::NsCpu));
        assert_eq!(s.to_string(), "secure-cpu,display");
        assert_eq!(MasterSet::ALL.iter().count(), Master::ALL.len());
        assert_eq!(MasterSet::EMPTY.to_string(), "-");
    }
}
