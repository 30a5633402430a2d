//! Requests of the secure world to tee-supplicant (OP-TEE's RPCs that the
//! normal-world driver forwards to the supplicant): the command numbers and
//! the trait through which the driver answers them. `LOAD_TA` comes in two
//! rounds, as OP-TEE's REE FS TA store asks (the size, then the bytes into
//! supplicant shared memory from `SHM_ALLOC` of type APPL, given back with
//! `SHM_FREE`).
//!
//! The call is made on the secure thread of the std call that needs it,
//! as OP-TEE suspends the thread in an RPC; no lock is held meanwhile.

use std::fmt;

use crate::msg::MsgParam;

/// `OPTEE_RPC_CMD_LOAD_TA` (`optee_rpc_cmd.h`): param 0 value in (the
/// TA's UUID as 16 octets over `a` and `b`), param 1 memref out (the TA's
/// bytes; NULL or too small: the supplicant only sets the size needed).
pub const OPTEE_RPC_CMD_LOAD_TA: u32 = 0;

/// `OPTEE_RPC_CMD_SHM_ALLOC`: shared memory for the secure world; of type
/// [`OPTEE_RPC_SHM_TYPE_APPL`] the driver asks the supplicant for it
/// (param 0 value in/out: a = type, b = size; the supplicant answers the
/// shm id of its `TEE_IOC_SHM_ALLOC` in c).
pub const OPTEE_RPC_CMD_SHM_ALLOC: u32 = 6;
/// `OPTEE_RPC_CMD_SHM_FREE`: param 0 value in: a = type, b = shm id.
pub const OPTEE_RPC_CMD_SHM_FREE: u32 = 7;
/// `OPTEE_RPC_SHM_TYPE_APPL`: memory from the supplicant's own context.
pub const OPTEE_RPC_SHM_TYPE_APPL: u64 = 0;

/// Supplicant shared memory the secure world holds
/// ([`SupplicantRpc::alloc_payload`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Its first byte (normal memory).
    pub phys: teeheap_platform::PhysAddr,
    /// Its size (at least the size asked for).
    pub size: u64,
    /// What [`SupplicantRpc::free_payload`] takes back (the shm id).
    pub cookie: u64,
}

/// The normal world's side of supplicant RPCs (the driver's
/// `optee_supp_thrd_req`).
pub trait SupplicantRpc: Send + Sync + fmt::Debug {
    /// Sends request `func` with `params` to the supplicant, waits for its
    /// answer and returns its result (`TEEC_ERROR_COMMUNICATION` if the
    /// supplicant went away); `None` if no supplicant is attached. Output
    /// values and memref sizes are updated in `params`. Memrefs are
    /// [`MsgParam::Tmem`] with physical address 0 for NULL.
    fn call(&self, func: u32, params: &mut [MsgParam]) -> Option<u32>;

    /// `thread_rpc_alloc_payload`: `size` bytes of the supplicant's shared
    /// memory (`SHM_ALLOC` of type APPL), or `None` if the supplicant is
    /// gone or refused. A memref inside it in a later [`Self::call`]
    /// reaches the supplicant as a memref of that shm.
    fn alloc_payload(&self, size: u64) -> Option<Payload>;

    /// `thread_rpc_free_payload`: gives `payload` back (`SHM_FREE`).
    fn free_payload(&self, payload: Payload);
}
