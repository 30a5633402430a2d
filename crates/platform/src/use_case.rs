//! Protected-memory use cases: which pipeline a protected range serves.
//!
//! The numbers are the kernel's TEE DMA heap ids, which OP-TEE also receives
//! as the use case of a protected-memory request.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::master::{Master, MasterSet};

/// A use case of protected memory, one per TEE protected heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseCase {
    /// Secure video playback: decrypt, decode and display (`protected,secure-video`).
    SecureVideo = 1,
    /// Trusted user interface: framebuffer drawn by the secure world (`protected,trusted-ui`).
    TrustedUi = 2,
    /// Secure video recording: camera to encoder (`protected,secure-video-record`).
    SecureVideoRecord = 3,
}

impl UseCase {
    /// Every use case, by id.
    pub const ALL: [UseCase; 3] = [UseCase::SecureVideo, UseCase::TrustedUi, UseCase::SecureVideoRecord];

    /// The kernel's heap id / OP-TEE's use case number.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The use case with kernel heap id `id`, if any (0 is reserved).
    pub const fn from_id(id: u32) -> Option<UseCase> {
        match id {
            1 => Some(UseCase::SecureVideo),
            2 => Some(UseCase::TrustedUi),
            3 => Some(UseCase::SecureVideoRecord),
            _ => None,
        }
    }

    /// Short name used in configuration (`secure-video`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            UseCase::SecureVideo => "secure-video",
            UseCase::TrustedUi => "trusted-ui",
            UseCase::SecureVideoRecord => "secure-video-record",
        }
    }

    /// The name of the DMA heap the kernel registers for this use case.
    pub const fn heap_name(self) -> &'static str {
        match self {
            UseCase::SecureVideo => "protected,secure-video",
            UseCase::TrustedUi => "protected,trusted-ui",
            UseCase::SecureVideoRecord => "protected,secure-video-record",
        }
    }

    /// Masters that may read memory of this use case by default: exactly
    /// what the pipeline needs, never the normal-world CPU.
    pub const fn default_readers(self) -> MasterSet {
        match self {
            UseCase::SecureVideo => MasterSet::of(&[Master::SecureCpu, Master::VideoDecoder, Master::Display]),
            UseCase::TrustedUi => MasterSet::of(&[Master::SecureCpu, Master::Display]),
            UseCase::SecureVideoRecord => MasterSet::of(&[Master::SecureCpu, Master::VideoEncoder]),
        }
    }

    /// Masters that may write memory of this use case by default.
    pub const fn default_writers(self) -> MasterSet {
        match self {
            UseCase::SecureVideo => MasterSet::of(&[Master::SecureCpu, Master::VideoDecoder]),
            UseCase::TrustedUi => MasterSet::of(&[Master::SecureCpu]),
            UseCase::SecureVideoRecord => MasterSet::of(&[Master::SecureCpu, Master::Camera]),
        }
    }
}

impl fmt::Display for UseCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a use case name that is not one of [`UseCase::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown use case {0:?} (expected secure-video, trusted-ui or secure-video-record)")]
pub struct UnknownUseCase(pub String);

impl FromStr for UseCase {
    type Err = UnknownUseCase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UseCase::ALL.into_iter().find(|u| u.name() == s).ok_or_else(|| UnknownUseCase(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        for u in UseCase::ALL {
            assert_eq!(UseCase::from_id(u.id()), Some(u));
            assert_eq!(u.name().parse::<UseCase>(), Ok(u));
            assert!(u.heap_name().ends_with(u.name()));
            assert!(!u.default_readers().contains(Master::NsCpu));
            assert!(!u.default_writers().contains(Master::NsCpu));
        }
        assert_eq!(UseCase::from_id(0), None);
        assert_eq!(UseCase::from_id(4), None);
    }
}
