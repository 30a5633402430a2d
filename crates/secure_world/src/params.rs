//! From message parameters to TA parameters and back.
//!
//! [`resolve`] checks every memref before a TA sees it: a `Tmem` must lie in
//! DRAM and either wholly in normal memory or wholly inside one static
//! carveout (lent memory is reachable only by its cookie); an `Rmem` must
//! name a lent object and stay inside it. A violation is TEE_ERROR_SECURITY
//! from the TEE core, and the TA is not called. [`write_back`] copies output
//! values and memref sizes into the message.

use teeheap_platform::{PhysRange, Platform};

use crate::abi::MsgParam;
use crate::error::{TeeError, TeeResult};
use crate::memref::{MemKind, TaMemref};
use crate::protmem::{Place, Protmem};
use crate::ta::TaParam;

fn tmem_kind(platform: &Platform, protmem: &Protmem, range: PhysRange) -> TeeResult<MemKind> {
    if !platform.dram().contains_range(&range) {
        return Err(TeeError::SECURITY);
    }
    match protmem.place(range) {
        Place::Normal => Ok(MemKind::Normal),
        Place::Carveout(u) => Ok(MemKind::Carveout(u)),
        Place::Forbidden => Err(TeeError::SECURITY),
    }
}

/// Resolves one message parameter.
///
/// # Errors
/// SECURITY for a memref outside what it may reach.
pub(crate) fn resolve_one(platform: &Platform, protmem: &Protmem, p: &MsgParam) -> TeeResult<TaParam> {
    Ok(match *p {
        MsgParam::None => TaParam::None,
        MsgParam::Value { dir, a, b, c } => TaParam::Value { dir, a, b, c },
        MsgParam::Tmem { dir, size: 0, .. } => {
            TaParam::Memref { dir, mem: TaMemref::new(None, MemKind::Normal, dir.is_output(), None) }
        }
        MsgParam::Tmem { dir, phys, size } => {
            let range = PhysRange::new(phys, size).ok_or(TeeError::SECURITY)?;
            let kind = tmem_kind(platform, protmem, range)?;
            TaParam::Memref { dir, mem: TaMemref::new(Some(range), kind, dir.is_output(), None) }
        }
        MsgParam::Rmem { dir, cookie, offset, size } => {
            let (obj, range) = protmem.lookup(cookie, offset, size)?;
            let kind = MemKind::Lent { use_case: obj.use_case(), cookie };
            TaParam::Memref { dir, mem: TaMemref::new(range, kind, dir.is_output(), Some(obj)) }
        }
    })
}

/// Resolves every parameter of a message, or none.
///
/// # Errors
/// As [`resolve_one`], for the first bad parameter.
pub(crate) fn resolve(platform: &Platform, protmem: &Protmem, params: &[MsgParam]) -> TeeResult<Vec<TaParam>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            resolve_one(platform, protmem, p).inspect_err(|e| {
                tracing::info!(index = i, param = ?p, error = %e, "secure world: memref rejected");
            })
        })
        .collect()
}

/// Copies output values and memref sizes of `ta` into `msg`.
pub(crate) fn write_back(ta: &[TaParam], msg: &mut [MsgParam]) {
    for (t, m) in ta.iter().zip(msg.iter_mut()) {
        match (t, m) {
            (TaParam::Value { dir, a, b, c }, MsgParam::Value { a: ma, b: mb, c: mc, .. }) if dir.is_output() => {
                (*ma, *mb, *mc) = (*a, *b, *c);
            }
            (TaParam::Memref { dir, mem }, MsgParam::Tmem { size, .. } | MsgParam::Rmem { size, .. })
                if dir.is_output() =>
            {
                *size = mem.out_size();
            }
            _ => {}
        }
    }
}
