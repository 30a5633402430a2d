//! The secure data path test TA, with the UUID, commands and answers of
//! OP-TEE's `sdp_basic` test TA (optee_test), so that existing SDP test
//! clients such as xtest 1014 work unchanged.
//!
//! | cmd | params | does |
//! |---|---|---|
//! | INJECT 0 | memref in (normal), memref out (secure) | copies the secure memref's size from the input |
//! | TRANSFORM 1 | memref inout (secure) | each byte `b` becomes `(!b).wrapping_add(1)` |
//! | DUMP 2 | memref in (secure), memref out (normal) | copies the secure bytes out |
//! | INVOKE_INJECT/TRANSFORM/DUMP 3–5 | as 0–2 | the same, done by a second instance of this TA (TA to TA) |
//! | PTA_INJECT/TRANSFORM/DUMP 6–8 | as 0–2 | the same, done by the `invoke_tests` pseudo-TA |
//! | DIGEST 9 | memref in (secure), memref out (≥ 32 bytes) | SHA-256 of the secure bytes (teeheap's addition) |
//!
//! As OP-TEE's TA: wrong parameter types or an unknown command →
//! BAD_PARAMETERS; the output smaller than the input → SHORT_BUFFER, with
//! the sizes left as given (the TA writes no size back); a memref of the
//! wrong kind → `TEE_CheckMemoryAccessRights`' ACCESS_DENIED; INJECT copies
//! the *secure* memref's size, so an input shorter than that is read past
//! its end as far as the TA's page-granular mapping of it goes, and beyond
//! that the TA faults (TARGET_DEAD, origin TEE, and the session stays
//! dead). Commands 3–8 keep one session per target for the life of the
//! session and drop it after a failed call, as OP-TEE's TA does; the
//! callee's answer is this TA's answer (origin TRUSTED_APP, a peer's
//! TARGET_DEAD included), but an invoke error the TEE itself reports
//! (other than OUT_OF_MEMORY and TARGET_DEAD) kills this TA, as OP-TEE's
//! libutee panics it.

use sha2::{Digest, Sha256};
use teeheap_uapi::tee::gp::{TEEC_ORIGIN_TEE, TEEC_ORIGIN_TRUSTED_APP};

use crate::abi::Uuid;
use crate::error::{TeeError, TeeResult};
use crate::memref::{AccessRights as R, TaMemref};
use crate::ta::host::LOGIN_TRUSTED_APP;
use crate::ta::{ClientIdentity, ParamType, TaEnv, TaParam, TrustedApp, check_types, invoke_tests, memref_pair};

/// `12345678-5b69-11e4-9dbb-101f74f00099`.
pub const UUID: Uuid = Uuid::from_fields(0x1234_5678, 0x5b69, 0x11e4, [0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99]);

/// Copy normal → secure.
pub const CMD_INJECT: u32 = 0;
/// Negate every secure byte in place.
pub const CMD_TRANSFORM: u32 = 1;
/// Copy secure → normal.
pub const CMD_DUMP: u32 = 2;
/// INJECT through a second instance of this TA.
pub const CMD_INVOKE_INJECT: u32 = 3;
/// TRANSFORM through a second instance of this TA.
pub const CMD_INVOKE_TRANSFORM: u32 = 4;
/// DUMP through a second instance of this TA.
pub const CMD_INVOKE_DUMP: u32 = 5;
/// INJECT through the `invoke_tests` pseudo-TA (its COPY_NSEC_TO_SEC).
pub const CMD_PTA_INJECT: u32 = 6;
/// TRANSFORM through the pseudo-TA (its READ_MODIFY_SEC).
pub const CMD_PTA_TRANSFORM: u32 = 7;
/// DUMP through the pseudo-TA (its COPY_SEC_TO_NSEC).
pub const CMD_PTA_DUMP: u32 = 8;
/// SHA-256 of a secure range (teeheap's addition).
pub const CMD_DIGEST: u32 = 9;

/// Bytes processed at a time by TRANSFORM and DIGEST.
const CHUNK: u64 = 64 << 10;

/// The SDP test TA: one instance per session (multi-instance, as OP-TEE's).
#[derive(Debug, Default)]
pub struct SdpBasic {
    /// The session on a second instance of this TA (commands 3–5).
    peer: Option<u32>,
    /// The session on the pseudo-TA (commands 6–8).
    pta: Option<u32>,
    /// The instance faulted: every later call is TARGET_DEAD.
    dead: bool,
}

fn inject(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (ns, sec) = memref_pair(params, 0, 1)?;
    if sec.size() < ns.size() {
        return Err(TeeError::SHORT_BUFFER);
    }
    ns.check_access_rights(R::ANY_OWNER | R::READ | R::NONSECURE)?;
    sec.check_access_rights(R::ANY_OWNER | R::WRITE | R::SECURE)?;
    env.memory.copy_as_mapped(ns, sec, sec.size())
}

fn transform(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefInOut])?;
    let m = params[0].memref().ok_or(TeeError::BAD_PARAMETERS)?;
    m.check_access_rights(R::ANY_OWNER | R::READ | R::WRITE | R::SECURE)?;
    negate(env, m)
}

/// Negates (two's complement) every byte of `m` in place, a chunk at a
/// time: the body of TRANSFORM and of invoke_tests' READ_MODIFY_SEC.
pub(super) fn negate(env: &TaEnv<'_>, m: &TaMemref) -> TeeResult {
    let mut off = 0;
    while off < m.size() {
        let n = CHUNK.min(m.size() - off);
        let mut buf = env.memory.read_vec(m, off, n)?;
        buf.iter_mut().for_each(|b| *b = (!*b).wrapping_add(1));
        env.memory.write(m, off, &buf)?;
        off += n;
    }
    Ok(())
}

fn dump(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (sec, ns) = memref_pair(params, 0, 1)?;
    if ns.size() < sec.size() {
        return Err(TeeError::SHORT_BUFFER);
    }
    ns.check_access_rights(R::ANY_OWNER | R::WRITE | R::NONSECURE)?;
    sec.check_access_rights(R::ANY_OWNER | R::READ | R::SECURE)?;
    env.memory.copy(sec, 0, ns, 0, sec.size())
}

fn digest(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (src, dst) = memref_pair(params, 0, 1)?;
    src.check_access_rights(R::ANY_OWNER | R::READ | R::SECURE)?;
    if dst.size() < 32 {
        dst.set_out_size(32);
        return Err(TeeError::SHORT_BUFFER);
    }
    let mut h = Sha256::new();
    let mut off = 0;
    while off < src.size() {
        let n = CHUNK.min(src.size() - off);
        h.update(env.memory.read_vec(src, off, n)?);
        off += n;
    }
    env.memory.write(dst, 0, &h.finalize())?;
    dst.set_out_size(32);
    Ok(())
}

/// Runs `cmd` of TA `uuid` with this call's own params, on the session in
/// `slot` (opened first if there is none, with no params, logged in as
/// this TA); a failed call closes it, as OP-TEE's test TA does.
///
/// # Errors
/// The callee's error; [`Fault`] where OP-TEE's libutee panics the
/// caller: an invoke error the TEE reports (not the called TA) other than
/// OUT_OF_MEMORY or TARGET_DEAD.
fn forward(env: &TaEnv<'_>, slot: &mut Option<u32>, uuid: Uuid, cmd: u32, params: &mut [TaParam]) -> Result<(), Fault> {
    let id = match *slot {
        Some(id) => id,
        None => {
            let me = ClientIdentity { login: LOGIN_TRUSTED_APP, uuid: UUID };
            let (r, origin, id) = env.world.open_for_ta(uuid, me, &mut []);
            if let Err(e) = r {
                tracing::error!(%uuid, code = format_args!("{:#x}", e.code()), origin, "sdp_basic: open session failed");
                return Err(Fault::Returned(e));
            }
            *slot = Some(id);
            id
        }
    };
    let (r, origin) = env.world.invoke_for_ta(id, cmd, params);
    let Err(e) = r else { return Ok(()) };
    tracing::error!(%uuid, cmd, code = format_args!("{:#x}", e.code()), origin, "sdp_basic: invoke failed");
    let _ = env.world.close_session(id);
    *slot = None;
    if origin != TEEC_ORIGIN_TRUSTED_APP && e != TeeError::OUT_OF_MEMORY && e != TeeError::TARGET_DEAD {
        return Err(Fault::Died);
    }
    Err(Fault::Returned(e))
}

/// How a call of this TA failed.
enum Fault {
    /// The TA returned this error.
    Returned(TeeError),
    /// The TA died (a fault, or a panic of the API on its behalf).
    Died,
}

impl From<TeeError> for Fault {
    fn from(e: TeeError) -> Fault {
        Fault::Returned(e)
    }
}

impl TrustedApp for SdpBasic {
    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        if self.dead {
            return Err(TeeError::TARGET_DEAD);
        }
        let r = match cmd {
            // Its own read past the input's mapping is the TA's fault.
            CMD_INJECT => inject(env, params).map_err(|e| match e {
                TeeError::TARGET_DEAD => Fault::Died,
                e => Fault::Returned(e),
            }),
            CMD_TRANSFORM => transform(env, params).map_err(Fault::from),
            CMD_DUMP => dump(env, params).map_err(Fault::from),
            CMD_INVOKE_INJECT..=CMD_INVOKE_DUMP => {
                forward(env, &mut self.peer, UUID, cmd - CMD_INVOKE_INJECT + CMD_INJECT, params)
            }
            CMD_PTA_INJECT..=CMD_PTA_DUMP => forward(
                env,
                &mut self.pta,
                invoke_tests::UUID,
                cmd - CMD_PTA_INJECT + invoke_tests::CMD_COPY_NSEC_TO_SEC,
                params,
            ),
            CMD_DIGEST => digest(env, params).map_err(Fault::from),
            _ => Err(Fault::Returned(TeeError::BAD_PARAMETERS)),
        };
        match r {
            Ok(()) => Ok(()),
            Err(Fault::Returned(e)) => Err(e),
            Err(Fault::Died) => {
                tracing::warn!("sdp_basic: the TA instance died");
                self.dead = true;
                Err(TeeError::TARGET_DEAD)
            }
        }
    }

    fn close_session(&mut self, env: &TaEnv<'_>) {
        for id in [self.peer.take(), self.pta.take()].into_iter().flatten() {
            let _ = env.world.close_session(id);
        }
    }

    /// The TEE reports a dead instance; anything else (a peer's
    /// TARGET_DEAD included) is this TA's own answer.
    fn origin(&self, r: &TeeResult) -> u32 {
        if self.dead && r.is_err() { TEEC_ORIGIN_TEE } else { TEEC_ORIGIN_TRUSTED_APP }
    }
}
