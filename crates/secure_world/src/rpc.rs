//! Requests of the secure world to tee-supplicant (OP-TEE's RPCs that the
//! normal-world driver forwards to the supplicant; their numbers and the
//! driver's trait are in `teeheap-optee-abi`), and the ones teeheap
//! issues today: `LOAD_TA` for a TA that is neither built in nor in a TA
//! directory, in two rounds as OP-TEE's REE FS TA store (the size, then
//! the bytes into supplicant shared memory it allocates with
//! `SHM_ALLOC` of type `APPL` and frees with `SHM_FREE`).
//!
//! The call is made on the secure thread of the std call that needs it,
//! as OP-TEE suspends the thread in an RPC; no lock is held meanwhile.

use crate::abi::{MsgParam, ParamDir, Uuid};

pub use teeheap_optee_abi::rpc::{
    OPTEE_RPC_CMD_LOAD_TA, OPTEE_RPC_CMD_SHM_ALLOC, OPTEE_RPC_CMD_SHM_FREE, OPTEE_RPC_SHM_TYPE_APPL, Payload,
    SupplicantRpc,
};

/// The parameters of a first `LOAD_TA` for `uuid`: its octets, and a
/// NULL output memref (the supplicant answers with the size).
pub(crate) fn load_ta_size_query(uuid: &Uuid) -> [MsgParam; 2] {
    let (lo, hi) = uuid.0.split_at(8);
    let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    [
        MsgParam::Value { dir: ParamDir::In, a: word(lo), b: word(hi), c: 0 },
        MsgParam::Tmem { dir: ParamDir::Out, phys: teeheap_platform::PhysAddr(0), size: 0 },
    ]
}
