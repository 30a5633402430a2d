//! The message ABI between a normal-world TEE backend driver and the secure
//! world, modelled on OP-TEE's `optee_msg.h`, `optee_smc.h` and
//! `optee_rpc_cmd.h`.
//!
//! Both sides depend on this crate and on nothing of each other: the
//! driver (`teeheap-kernel`'s `backend::optee`) builds a [`Msg`] (a "std
//! call") or a [`FastCall`] and passes it to [`SecureMonitor::smc`]; the
//! secure world (`teeheap-secure-world`) implements [`SecureMonitor`] and
//! calls back into the driver through [`SupplicantRpc`] when a TA needs
//! tee-supplicant. Everything is a typed Rust value. The ABI is versioned by
//! [`ABI_VERSION`]; a driver checks the major number with
//! [`FastCall::GetAbiVersion`] before anything else.
#![forbid(unsafe_code)]

pub mod error;
pub mod msg;
pub mod protmem;
pub mod rpc;
pub mod smc;
pub mod uuid;

pub use error::{TeeError, TeeResult};
pub use msg::{ABI_VERSION, AbiVersion, Capabilities, Command, Msg, MsgParam, ParamDir};
pub use protmem::ProtmemAttr;
pub use rpc::{OPTEE_RPC_CMD_LOAD_TA, SupplicantRpc};
pub use smc::{
    FUNCID_CALLS_REVISION, FUNCID_EXCHANGE_CAPABILITIES, FUNCID_GET_PROTMEM_CONFIG, FastCall, SecureMonitor, Smc,
    SmcResult,
};
pub use uuid::Uuid;
