//! Why a scenario could not run to its end.
//!
//! A scenario that runs but observes something wrong (a CRC that differs, a
//! PIN accepted that should not be) is not an error: it ends with a report
//! whose checks fail. A [`ScenarioError`] means a step of the pipeline itself
//! failed — an ioctl, a TEE call or a device.

use teeheap_platform::devices::DeviceError;

/// A step of a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A system call of the kernel model failed with an errno.
    #[error("{what}: {source}")]
    Kernel {
        /// The step.
        what: &'static str,
        /// The kernel's error.
        source: teeheap_kernel::Error,
    },
    /// A TEE call returned a GlobalPlatform error.
    #[error("{what}: TEE returned {ret:#010x} (origin {origin})")]
    Tee {
        /// The step.
        what: &'static str,
        /// `TEEC_*` return code.
        ret: u32,
        /// `TEEC_ORIGIN_*`.
        origin: u32,
    },
    /// A device operation failed.
    #[error("{what}: {source}")]
    Device {
        /// The step.
        what: &'static str,
        /// The device's error.
        source: DeviceError,
    },
    /// The platform does not offer what the scenario needs.
    #[error("{0}")]
    Setup(String),
}

/// Attaches the step to a failed kernel or device call.
pub(crate) trait Step<T> {
    /// Names the step that failed.
    fn step(self, what: &'static str) -> Result<T, ScenarioError>;
}

impl<T> Step<T> for Result<T, teeheap_kernel::Error> {
    fn step(self, what: &'static str) -> Result<T, ScenarioError> {
        self.map_err(|source| ScenarioError::Kernel { what, source })
    }
}

impl<T> Step<T> for Result<T, DeviceError> {
    fn step(self, what: &'static str) -> Result<T, ScenarioError> {
        self.map_err(|source| ScenarioError::Device { what, source })
    }
}
