//! GlobalPlatform result codes as a Rust error type: [`TeeError`] and
//! [`TeeResult`] live in `teeheap-optee-abi` (a std call's `ret` is one);
//! re-exported here under their old path.

pub use teeheap_optee_abi::error::{TeeError, TeeResult};
