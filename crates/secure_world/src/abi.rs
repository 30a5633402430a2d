//! The message ABI between the normal-world backend driver and the secure
//! world: it lives in `teeheap-optee-abi`, which both sides depend on; this
//! module re-exports it under its old path.

pub use teeheap_optee_abi::msg::{ABI_VERSION, AbiVersion, Capabilities, Command, Msg, MsgParam, ParamDir};
pub use teeheap_optee_abi::protmem::ProtmemAttr;
pub use teeheap_optee_abi::smc::{
    FUNCID_CALLS_REVISION, FUNCID_EXCHANGE_CAPABILITIES, FUNCID_GET_PROTMEM_CONFIG, FastCall, SecureMonitor, Smc,
    SmcResult,
};
pub use teeheap_optee_abi::uuid::Uuid;
