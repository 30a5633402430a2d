//! GlobalPlatform TEE Client API values carried in `ret` and `ret_origin`.
//!
//! These are not defined by `linux/tee.h`; the TEE and libteec agree on them.

/// The operation succeeded.
pub const TEEC_SUCCESS: u32 = 0x0000_0000;
/// Non-specific failure.
pub const TEEC_ERROR_GENERIC: u32 = 0xffff_0000;
/// Access privileges are not sufficient.
pub const TEEC_ERROR_ACCESS_DENIED: u32 = 0xffff_0001;
/// The operation was cancelled.
pub const TEEC_ERROR_CANCEL: u32 = 0xffff_0002;
/// Concurrent accesses caused a conflict.
pub const TEEC_ERROR_ACCESS_CONFLICT: u32 = 0xffff_0003;
/// Too much data for the requested operation.
pub const TEEC_ERROR_EXCESS_DATA: u32 = 0xffff_0004;
/// Input data was of an invalid format.
pub const TEEC_ERROR_BAD_FORMAT: u32 = 0xffff_0005;
/// Input parameters were invalid.
pub const TEEC_ERROR_BAD_PARAMETERS: u32 = 0xffff_0006;
/// The operation is not valid in the current state.
pub const TEEC_ERROR_BAD_STATE: u32 = 0xffff_0007;
/// The requested data item was not found.
pub const TEEC_ERROR_ITEM_NOT_FOUND: u32 = 0xffff_0008;
/// The operation exists but is not yet implemented.
pub const TEEC_ERROR_NOT_IMPLEMENTED: u32 = 0xffff_0009;
/// The operation is valid but not supported here.
pub const TEEC_ERROR_NOT_SUPPORTED: u32 = 0xffff_000a;
/// Expected data was missing.
pub const TEEC_ERROR_NO_DATA: u32 = 0xffff_000b;
/// System ran out of resources.
pub const TEEC_ERROR_OUT_OF_MEMORY: u32 = 0xffff_000c;
/// The system is busy working on something else.
pub const TEEC_ERROR_BUSY: u32 = 0xffff_000d;
/// Communication with a remote party failed.
pub const TEEC_ERROR_COMMUNICATION: u32 = 0xffff_000e;
/// A security fault was detected.
pub const TEEC_ERROR_SECURITY: u32 = 0xffff_000f;
/// The supplied buffer is too short for the output.
pub const TEEC_ERROR_SHORT_BUFFER: u32 = 0xffff_0010;
/// The trusted application has panicked; its sessions are dead.
pub const TEEC_ERROR_TARGET_DEAD: u32 = 0xffff_3024;

/// Origin: the client API (libteec) itself.
pub const TEEC_ORIGIN_API: u32 = 1;
/// Origin: the communication stack between the client and the TEE.
pub const TEEC_ORIGIN_COMMS: u32 = 2;
/// Origin: the TEE core.
pub const TEEC_ORIGIN_TEE: u32 = 3;
/// Origin: the trusted application.
pub const TEEC_ORIGIN_TRUSTED_APP: u32 = 4;
