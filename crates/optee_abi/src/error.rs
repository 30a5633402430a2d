//! GlobalPlatform result codes as a Rust error type.
//!
//! A std call reports its outcome as a GP `TEE_ERROR_*` code in
//! [`Msg::ret`](crate::Msg::ret) (the same values as the client API's
//! `TEEC_ERROR_*`); [`TeeError`] carries one and [`TeeResult`] is the alias
//! the secure world and its TAs use throughout.

use std::fmt;

use teeheap_uapi::tee::gp;

/// A GlobalPlatform error code (never `TEEC_SUCCESS`).
///
/// # Invariants
/// The code is not 0.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeeError(u32);

/// Result of secure-world and TA operations.
pub type TeeResult<T = ()> = Result<T, TeeError>;

impl TeeError {
    /// Non-specific failure.
    pub const GENERIC: TeeError = TeeError(gp::TEEC_ERROR_GENERIC);
    /// Access rights are not sufficient.
    pub const ACCESS_DENIED: TeeError = TeeError(gp::TEEC_ERROR_ACCESS_DENIED);
    /// The operation was cancelled.
    pub const CANCEL: TeeError = TeeError(gp::TEEC_ERROR_CANCEL);
    /// Input data was of an invalid format.
    pub const BAD_FORMAT: TeeError = TeeError(gp::TEEC_ERROR_BAD_FORMAT);
    /// Parameters were invalid (wrong types, bad values).
    pub const BAD_PARAMETERS: TeeError = TeeError(gp::TEEC_ERROR_BAD_PARAMETERS);
    /// The operation is not valid in the current state.
    pub const BAD_STATE: TeeError = TeeError(gp::TEEC_ERROR_BAD_STATE);
    /// The requested item (TA, key, cookie) does not exist.
    pub const ITEM_NOT_FOUND: TeeError = TeeError(gp::TEEC_ERROR_ITEM_NOT_FOUND);
    /// The operation is valid but not supported here.
    pub const NOT_SUPPORTED: TeeError = TeeError(gp::TEEC_ERROR_NOT_SUPPORTED);
    /// Out of resources.
    pub const OUT_OF_MEMORY: TeeError = TeeError(gp::TEEC_ERROR_OUT_OF_MEMORY);
    /// The object is in use.
    pub const BUSY: TeeError = TeeError(gp::TEEC_ERROR_BUSY);
    /// A security rule was violated (e.g. a memref outside protected memory).
    pub const SECURITY: TeeError = TeeError(gp::TEEC_ERROR_SECURITY);
    /// An output buffer is too small; its param's size holds the size needed.
    pub const SHORT_BUFFER: TeeError = TeeError(gp::TEEC_ERROR_SHORT_BUFFER);
    /// The TA instance is gone (panicked, crashed, killed or overdue).
    pub const TARGET_DEAD: TeeError = TeeError(gp::TEEC_ERROR_TARGET_DEAD);

    /// The error with GP code `code`, or `None` for `TEEC_SUCCESS` (0).
    pub const fn from_code(code: u32) -> Option<TeeError> {
        if code == gp::TEEC_SUCCESS { None } else { Some(TeeError(code)) }
    }

    /// The GP code.
    pub const fn code(self) -> u32 {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            gp::TEEC_ERROR_GENERIC => "GENERIC",
            gp::TEEC_ERROR_ACCESS_DENIED => "ACCESS_DENIED",
            gp::TEEC_ERROR_CANCEL => "CANCEL",
            gp::TEEC_ERROR_BAD_FORMAT => "BAD_FORMAT",
            gp::TEEC_ERROR_BAD_PARAMETERS => "BAD_PARAMETERS",
            gp::TEEC_ERROR_BAD_STATE => "BAD_STATE",
            gp::TEEC_ERROR_ITEM_NOT_FOUND => "ITEM_NOT_FOUND",
            gp::TEEC_ERROR_NOT_SUPPORTED => "NOT_SUPPORTED",
            gp::TEEC_ERROR_OUT_OF_MEMORY => "OUT_OF_MEMORY",
            gp::TEEC_ERROR_BUSY => "BUSY",
            gp::TEEC_ERROR_SECURITY => "SECURITY",
            gp::TEEC_ERROR_SHORT_BUFFER => "SHORT_BUFFER",
            gp::TEEC_ERROR_TARGET_DEAD => "TARGET_DEAD",
            _ => return None,
        })
    }
}

impl fmt::Debug for TeeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "TEE_ERROR_{n}"),
            None => write!(f, "TeeError({:#010x})", self.0),
        }
    }
}

impl fmt::Display for TeeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({:#010x})", self.0)
    }
}

impl std::error::Error for TeeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(TeeError::SECURITY.code(), 0xffff_000f);
        assert_eq!(TeeError::from_code(0), None);
        assert_eq!(TeeError::from_code(0xffff_0010), Some(TeeError::SHORT_BUFFER));
        assert_eq!(format!("{:?}", TeeError::BAD_PARAMETERS), "TEE_ERROR_BAD_PARAMETERS");
        assert_eq!(format!("{:?}", TeeError::from_code(7).unwrap()), "TeeError(0x00000007)");
    }
}
