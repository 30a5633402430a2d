//! The secure data path test TA, with the UUID and commands of OP-TEE's
//! `sdp_basic` test TA so that existing SDP test clients work unchanged.
//!
//! | cmd | params | does |
//! |---|---|---|
//! | INJECT 0 | memref in (any), memref out (protected) | copies the input into the protected buffer |
//! | TRANSFORM 1 | memref inout (protected) | each byte `b` becomes `(!b).wrapping_add(1)` |
//! | DUMP 2 | memref in (protected), memref out (any) | copies the protected bytes out |
//! | DIGEST 9 | memref in (protected), memref out (≥ 32 bytes) | SHA-256 of the protected bytes |
//!
//! Wrong parameter types: BAD_PARAMETERS. A "protected" memref that points
//! to normal memory: SECURITY (both with origin TRUSTED_APP). Output too
//! small: SHORT_BUFFER with the size needed in the output memref. DIGEST is
//! teeheap's addition (3–8 are taken by OP-TEE's TA-to-TA and pseudo-TA
//! variants, which are not provided).

use sha2::{Digest, Sha256};

use crate::abi::Uuid;
use crate::error::{TeeError, TeeResult};
use crate::memref::TaMemref;
use crate::ta::{ParamType, TaEnv, TaParam, TrustedApp, check_types, memref_pair};

/// `12345678-5b69-11e4-9dbb-101f74f00099`.
pub const UUID: Uuid = Uuid::from_fields(0x1234_5678, 0x5b69, 0x11e4, [0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99]);

/// Copy normal → protected.
pub const CMD_INJECT: u32 = 0;
/// Negate every protected byte in place.
pub const CMD_TRANSFORM: u32 = 1;
/// Copy protected → normal.
pub const CMD_DUMP: u32 = 2;
/// SHA-256 of a protected range.
pub const CMD_DIGEST: u32 = 9;

/// Bytes processed at a time by TRANSFORM and DIGEST.
const CHUNK: u64 = 64 << 10;

/// The SDP test TA. Stateless.
#[derive(Debug, Default)]
pub struct SdpBasic;

fn protected(m: &TaMemref) -> TeeResult {
    if m.is_protected() { Ok(()) } else { Err(TeeError::SECURITY) }
}

/// Copies all of `src` into the start of `dst` (SHORT_BUFFER with the size
/// needed if `dst` is smaller): the body of INJECT and DUMP.
pub(super) fn copy_all(env: &TaEnv<'_>, src: &TaMemref, dst: &mut TaMemref) -> TeeResult {
    if dst.size() < src.size() {
        dst.set_out_size(src.size());
        return Err(TeeError::SHORT_BUFFER);
    }
    env.memory.copy(src, 0, dst, 0, src.size())?;
    dst.set_out_size(src.size());
    Ok(())
}

fn inject(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (src, dst) = memref_pair(params, 0, 1)?;
    protected(dst)?;
    copy_all(env, src, dst)
}

fn transform(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefInOut])?;
    let m = params[0].memref().ok_or(TeeError::BAD_PARAMETERS)?;
    protected(m)?;
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
    let (src, dst) = memref_pair(params, 0, 1)?;
    protected(src)?;
    copy_all(env, src, dst)
}

fn digest(env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
    check_types(params, &[ParamType::MemrefIn, ParamType::MemrefOut])?;
    let (src, dst) = memref_pair(params, 0, 1)?;
    protected(src)?;
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

impl TrustedApp for SdpBasic {
    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        match cmd {
            CMD_INJECT => inject(env, params),
            CMD_TRANSFORM => transform(env, params),
            CMD_DUMP => dump(env, params),
            CMD_DIGEST => digest(env, params),
            _ => Err(TeeError::BAD_PARAMETERS),
        }
    }
}
