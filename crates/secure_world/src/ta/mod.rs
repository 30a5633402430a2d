//! Trusted applications: the [`TrustedApp`] trait, the parameters a TA
//! sees, and the registry that finds a TA by UUID.
//!
//! Each session of a built-in TA gets a fresh instance from its registered
//! factory, which lives until the session is closed; host-built TAs follow
//! OP-TEE's instance rules ([`host`]). A TA sees only resolved
//! parameters ([`TaParam`]) and reaches memory only through
//! [`TaEnv::memory`].

pub mod content_decrypt;
pub mod host;
pub mod invoke_tests;
pub mod sdp_basic;
pub mod trusted_ui;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::{ParamDir, Uuid};
use crate::error::{TeeError, TeeResult};
use crate::input::SecureInput;
use crate::memref::{TaMemory, TaMemref};

/// The type of a parameter, as `TEE_PARAM_TYPE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// Unused.
    None,
    /// Value, input.
    ValueIn,
    /// Value, output.
    ValueOut,
    /// Value, both.
    ValueInOut,
    /// Memref, input.
    MemrefIn,
    /// Memref, output.
    MemrefOut,
    /// Memref, both.
    MemrefInOut,
}

/// A parameter as a TA sees it.
#[derive(Debug, Default)]
pub enum TaParam {
    /// Unused.
    #[default]
    None,
    /// Three numbers; the TA may change output values.
    Value {
        /// Direction.
        dir: ParamDir,
        /// First value.
        a: u64,
        /// Second value.
        b: u64,
        /// Third value.
        c: u64,
    },
    /// Resolved memory.
    Memref {
        /// Direction.
        dir: ParamDir,
        /// The memory.
        mem: TaMemref,
    },
}

impl TaParam {
    /// Its type.
    pub fn param_type(&self) -> ParamType {
        match self {
            TaParam::None => ParamType::None,
            TaParam::Value { dir: ParamDir::In, .. } => ParamType::ValueIn,
            TaParam::Value { dir: ParamDir::Out, .. } => ParamType::ValueOut,
            TaParam::Value { dir: ParamDir::InOut, .. } => ParamType::ValueInOut,
            TaParam::Memref { dir: ParamDir::In, .. } => ParamType::MemrefIn,
            TaParam::Memref { dir: ParamDir::Out, .. } => ParamType::MemrefOut,
            TaParam::Memref { dir: ParamDir::InOut, .. } => ParamType::MemrefInOut,
        }
    }

    /// The memref, if it is one.
    pub fn memref(&self) -> Option<&TaMemref> {
        match self {
            TaParam::Memref { mem, .. } => Some(mem),
            _ => None,
        }
    }

    /// The memref, mutably.
    pub fn memref_mut(&mut self) -> Option<&mut TaMemref> {
        match self {
            TaParam::Memref { mem, .. } => Some(mem),
            _ => None,
        }
    }

    /// `(a, b, c)` of a value.
    pub fn values(&self) -> Option<(u64, u64, u64)> {
        match *self {
            TaParam::Value { a, b, c, .. } => Some((a, b, c)),
            _ => None,
        }
    }

    /// Sets the values of an output value (no-op on other params).
    pub fn set_values(&mut self, new: (u64, u64, u64)) {
        if let TaParam::Value { dir, a, b, c } = self {
            if dir.is_output() {
                (*a, *b, *c) = new;
            }
        }
    }
}

/// Checks that `params` have exactly the types `expected` (missing slots
/// count as [`ParamType::None`], as do extra ones).
///
/// # Errors
/// BAD_PARAMETERS otherwise.
pub fn check_types(params: &[TaParam], expected: &[ParamType]) -> TeeResult {
    let n = params.len().max(expected.len());
    for i in 0..n {
        let got = params.get(i).map_or(ParamType::None, TaParam::param_type);
        let want = expected.get(i).copied().unwrap_or(ParamType::None);
        if got != want {
            return Err(TeeError::BAD_PARAMETERS);
        }
    }
    Ok(())
}

/// Two distinct memrefs of `params` by index, the second mutable.
pub(crate) fn memref_pair(params: &mut [TaParam], src: usize, dst: usize) -> TeeResult<(&TaMemref, &mut TaMemref)> {
    debug_assert!(src < dst);
    let (lo, hi) = params.split_at_mut(dst);
    match (lo.get(src).and_then(TaParam::memref), hi.first_mut().and_then(TaParam::memref_mut)) {
        (Some(s), Some(d)) => Ok((s, d)),
        _ => Err(TeeError::BAD_PARAMETERS),
    }
}

/// Who opened a session (GlobalPlatform's `gpd.client.identity`): the
/// login method and the client UUID the normal-world kernel computed for
/// it (nil for a public login). A TA may base access decisions on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `TEE_IOCTL_LOGIN_*` (GP's `TEE_LOGIN_*` values).
    pub login: u32,
    /// The client UUID.
    pub uuid: Uuid,
}

/// What the secure world gives a TA during a call.
#[derive(Debug)]
pub struct TaEnv<'a> {
    /// The client of the session.
    pub client: ClientIdentity,
    /// Memory access (as the secure CPU, through the firewall).
    pub memory: TaMemory<'a>,
    /// The secure input path.
    pub input: &'a SecureInput,
    /// The session the call belongs to (0 while opening).
    pub session: u32,
    pub(crate) cancel: &'a AtomicBool,
    /// The secure world (for TA-to-TA sessions).
    pub(crate) world: &'a dyn TaSessions,
}

/// The secure world's sessions as a TA uses them for TA-to-TA calls
/// (`TEE_OpenTASession`, `TEE_InvokeTACommand`, `TEE_CloseTASession`);
/// the world implements it, so TAs do not depend on the world module.
pub(crate) trait TaSessions: fmt::Debug + Sync {
    /// Opens a session to `uuid` for the TA `client`: the result, its
    /// origin and the session id.
    fn open_for_ta(&self, uuid: Uuid, client: ClientIdentity, params: &mut [TaParam]) -> (TeeResult, u32, u32);

    /// Invokes `func` on a session the TA opened: the result and its origin.
    fn invoke_for_ta(&self, id: u32, func: u32, params: &mut [TaParam]) -> (TeeResult, u32);

    /// Closes a session the TA opened.
    fn close_session(&self, id: u32) -> TeeResult;
}

impl TaEnv<'_> {
    /// Whether the client asked to cancel this call.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The cancellation flag, for waits that should end on cancel.
    pub fn cancel_flag(&self) -> &AtomicBool {
        self.cancel
    }
}

/// A trusted application. One instance serves one session.
pub trait TrustedApp: Send {
    /// Called when a session opens; an error refuses the session.
    ///
    /// # Errors
    /// Any GP code, reported with origin TRUSTED_APP.
    fn open_session(&mut self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        let _ = env;
        check_types(params, &[])
    }

    /// Runs command `cmd`.
    ///
    /// # Errors
    /// Any GP code, reported with origin TRUSTED_APP; the params (output
    /// sizes, output values) are returned with SHORT_BUFFER too.
    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult;

    /// Called when the session closes.
    fn close_session(&mut self, env: &TaEnv<'_>) {
        let _ = env;
    }

    /// Who reports `r`, this instance's last result (`TEEC_ORIGIN_*`): by
    /// default the TEE for TARGET_DEAD (a dead TA answers nothing), else
    /// the TA. A TA the TEE itself may refuse (a busy instance) says so.
    fn origin(&self, r: &TeeResult) -> u32 {
        default_origin(r)
    }
}

/// The TEE for TARGET_DEAD, else the TA (see [`TrustedApp::origin`]).
pub fn default_origin(r: &TeeResult) -> u32 {
    match r {
        Err(e) if *e == TeeError::TARGET_DEAD => teeheap_uapi::tee::gp::TEEC_ORIGIN_TEE,
        _ => teeheap_uapi::tee::gp::TEEC_ORIGIN_TRUSTED_APP,
    }
}

/// Makes a new TA instance for a session.
pub type TaFactory = Arc<dyn Fn() -> Box<dyn TrustedApp> + Send + Sync>;

/// The TAs the secure world can run, by UUID.
#[derive(Clone, Default)]
pub struct TaRegistry {
    tas: BTreeMap<Uuid, (&'static str, TaFactory)>,
}

impl fmt::Debug for TaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.tas.iter().map(|(u, (n, _))| (u, n))).finish()
    }
}

impl TaRegistry {
    /// Registers (or replaces) the TA `uuid`.
    pub fn register(&mut self, uuid: Uuid, name: &'static str, factory: TaFactory) {
        self.tas.insert(uuid, (name, factory));
    }

    /// A new instance of TA `uuid`.
    pub fn instantiate(&self, uuid: &Uuid) -> Option<Box<dyn TrustedApp>> {
        self.tas.get(uuid).map(|(_, f)| f())
    }

    /// `(uuid, name)` of every TA.
    pub fn list(&self) -> Vec<(Uuid, &'static str)> {
        self.tas.iter().map(|(u, (n, _))| (*u, *n)).collect()
    }
}
