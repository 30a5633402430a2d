//! Requests of the secure world to tee-supplicant (OP-TEE's RPCs that the
//! normal-world driver forwards to the supplicant): the command numbers and
//! the trait through which the driver answers them.
//!
//! The call is made on the secure thread of the std call that needs it,
//! as OP-TEE suspends the thread in an RPC; no lock is held meanwhile.

use std::fmt;

use crate::msg::MsgParam;

/// `OPTEE_RPC_CMD_LOAD_TA` (`optee_rpc_cmd.h`): param 0 value in (the
/// TA's UUID as 16 octets over `a` and `b`), param 1 memref out (the TA's
/// bytes; NULL or too small: the supplicant only sets the size needed).
pub const OPTEE_RPC_CMD_LOAD_TA: u32 = 0;

/// The normal world's side of supplicant RPCs (the driver's
/// `optee_supp_thrd_req`).
pub trait SupplicantRpc: Send + Sync + fmt::Debug {
    /// Sends request `func` with `params` to the supplicant, waits for its
    /// answer and returns its result (`TEEC_ERROR_COMMUNICATION` if the
    /// supplicant went away); `None` if no supplicant is attached. Output
    /// values and memref sizes are updated in `params`. Memrefs are
    /// [`MsgParam::Tmem`] with physical address 0 for NULL.
    fn call(&self, func: u32, params: &mut [MsgParam]) -> Option<u32>;
}
