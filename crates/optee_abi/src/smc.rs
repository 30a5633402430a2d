//! The SMC conduit: fast calls answered at once, std calls carrying a
//! [`Msg`], and [`SecureMonitor`], the one trait a secure world implements
//! and a normal-world driver calls (OP-TEE's `invoke_fn`).

use std::fmt;
use std::sync::Arc;

use teeheap_platform::{PhysRange, UseCase};

use crate::msg::{AbiVersion, Capabilities, Msg};
use crate::rpc::SupplicantRpc;

/// SMC function id of [`FastCall::GetAbiVersion`] (`OPTEE_SMC_FUNCID_CALLS_REVISION`).
pub const FUNCID_CALLS_REVISION: u32 = 0xff03;
/// SMC function id of [`FastCall::ExchangeCapabilities`].
pub const FUNCID_EXCHANGE_CAPABILITIES: u32 = 9;
/// SMC function id of [`FastCall::GetProtmemConfig`].
pub const FUNCID_GET_PROTMEM_CONFIG: u32 = 20;

/// A fast call: answered at once, no session, no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FastCall {
    /// Returns [`SmcResult::AbiVersion`].
    GetAbiVersion,
    /// Tells the normal world's capabilities; returns
    /// [`SmcResult::Capabilities`] with the secure world's.
    ExchangeCapabilities {
        /// What the normal world supports (no bits are defined yet).
        normal_world: Capabilities,
    },
    /// The static carveout of a use case (OP-TEE's function 20 reports one
    /// carveout; we take the use case as an argument): returns
    /// [`SmcResult::StaticProtmem`], or [`SmcResult::NotAvailable`] if the
    /// use case has no static protected memory.
    GetProtmemConfig {
        /// Which use case.
        use_case: UseCase,
    },
}

impl FastCall {
    /// The OP-TEE SMC function id.
    pub const fn function_id(self) -> u32 {
        match self {
            FastCall::GetAbiVersion => FUNCID_CALLS_REVISION,
            FastCall::ExchangeCapabilities { .. } => FUNCID_EXCHANGE_CAPABILITIES,
            FastCall::GetProtmemConfig { .. } => FUNCID_GET_PROTMEM_CONFIG,
        }
    }
}

/// A call into the secure world.
#[derive(Debug)]
pub enum Smc<'a> {
    /// A fast call.
    Fast(FastCall),
    /// A std call; the message is updated in place.
    Std(&'a mut Msg),
}

/// What an SMC returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcResult {
    /// A std call completed; its outcome is in the message's `ret`.
    Done,
    /// Answer of [`FastCall::GetAbiVersion`].
    AbiVersion(AbiVersion),
    /// Answer of [`FastCall::ExchangeCapabilities`].
    Capabilities(Capabilities),
    /// Answer of [`FastCall::GetProtmemConfig`].
    StaticProtmem {
        /// The carveout.
        range: PhysRange,
        /// Width of physical addresses in bits.
        pa_width: u32,
    },
    /// The fast call has no answer (`OPTEE_SMC_RETURN_ENOTAVAIL`).
    NotAvailable,
    /// Every secure thread is busy (`OPTEE_SMC_RETURN_ETHREAD_LIMIT`): the
    /// std call did not start and its message is untouched; the normal
    /// world waits until a call returns and tries again.
    ThreadLimit,
}

/// A secure world as the normal world sees it: one entry point for fast
/// and std calls, and the hook through which it asks tee-supplicant for
/// help (OP-TEE returns an RPC from the SMC; here the secure thread calls
/// the hook and waits). The secure world implements it; a backend driver
/// depends on it only, never on the secure world's implementation.
pub trait SecureMonitor: Send + Sync + fmt::Debug {
    /// Runs `call`: a fast call, or a std call whose message is updated in
    /// place (`ret`, `ret_origin`, output params, the session of an open).
    /// A std call that finds every secure thread busy does not start
    /// ([`SmcResult::ThreadLimit`]).
    fn smc(&self, call: Smc<'_>) -> SmcResult;

    /// Attaches (or with `None` detaches) the normal world's supplicant
    /// RPC path; a driver does at probe and undoes at remove.
    fn set_supplicant_rpc(&self, rpc: Option<Arc<dyn SupplicantRpc>>);
}
