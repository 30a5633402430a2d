//! OP-TEE's `invoke_tests` pseudo-TA, with its SDP commands: a TA hands it
//! memrefs and it accesses them from the core. Like OP-TEE's, it opens
//! sessions for TAs only (a normal-world client gets ACCESS_DENIED).
//!
//! | cmd | params | does |
//! |---|---|---|
//! | COPY_NSEC_TO_SEC 3 | memref in (normal), memref out (protected) | copies the input into the protected buffer |
//! | READ_MODIFY_SEC 4 | memref inout (protected) | each byte `b` becomes `(!b).wrapping_add(1)` |
//! | COPY_SEC_TO_NSEC 5 | memref in (protected), memref out (normal) | copies the protected bytes out |
//!
//! Wrong types, memory of the wrong kind or an unknown command:
//! BAD_PARAMETERS. Output smaller than the input: SHORT_BUFFER with the
//! size needed in the output memref; on success sizes are left as given
//! (OP-TEE's pseudo-TA copies the input's size and reports nothing back).

use crate::abi::Uuid;
use crate::error::{TeeError, TeeResult};
use crate::memref::TaMemref;
use crate::ta::host::LOGIN_TRUSTED_APP;
use crate::ta::sdp_basic::negate;
use crate::ta::{ParamType, TaEnv, TaParam, TrustedApp, check_types, memref_pair};

/// `d96a5b40-c3e5-21e3-8794-1002a5d5c61b`.
pub const UUID: Uuid = Uuid::from_fields(0xd96a_5b40, 0xc3e5, 0x21e3, [0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b]);

/// Copy normal → protected.
pub const CMD_COPY_NSEC_TO_SEC: u32 = 3;
/// Negate every protected byte in place.
pub const CMD_READ_MODIFY_SEC: u32 = 4;
/// Copy protected → normal.
pub const CMD_COPY_SEC_TO_NSEC: u32 = 5;

/// The pseudo-TA. Stateless.
#[derive(Debug, Default)]
pub struct InvokeTests;

fn copy(env: &TaEnv<'_>, params: &mut [TaParam], src_secure: bool) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (src, dst) = memref_pair(params, 0, 1)?;
    if dst.size() < src.size() {
        dst.set_out_size(src.size());
        return Err(TeeError::SHORT_BUFFER);
    }
    let kinds_ok = |m: &TaMemref, secure: bool| m.size() == 0 || m.is_protected() == secure;
    if !kinds_ok(src, src_secure) || !kinds_ok(dst, !src_secure) {
        return Err(TeeError::BAD_PARAMETERS);
    }
    env.memory.copy(src, 0, dst, 0, src.size())
}

fn read_modify(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefInOut])?;
    let m = params[0].memref().ok_or(TeeError::BAD_PARAMETERS)?;
    if m.size() > 0 && !m.is_protected() {
        return Err(TeeError::BAD_PARAMETERS);
    }
    negate(env, m)
}

impl TrustedApp for InvokeTests {
    fn open_session(&mut self, env: &TaEnv<'_>, _params: &mut [TaParam]) -> TeeResult {
        if env.client.login == LOGIN_TRUSTED_APP { Ok(()) } else { Err(TeeError::ACCESS_DENIED) }
    }

    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        match cmd {
            CMD_COPY_NSEC_TO_SEC => copy(env, params, false),
            CMD_READ_MODIFY_SEC => read_modify(env, params),
            CMD_COPY_SEC_TO_NSEC => copy(env, params, true),
            _ => Err(TeeError::BAD_PARAMETERS),
        }
    }
}
