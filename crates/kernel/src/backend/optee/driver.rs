//! The OP-TEE-style driver's session ops: TEE core parameters become
//! message parameters, the message goes through the SMC, results come back.
//!
//! Memrefs are translated by where the shared memory lives: normal pages
//! and static carveouts by physical address (`Tmem`), lent protected memory
//! by the lend cookie plus offset (`Rmem`). The driver never touches secure
//! state; it only sends messages.

use std::sync::Arc;

use teeheap_secure_world::{Msg, MsgParam, ParamDir, Uuid};
use teeheap_uapi::tee::{
    TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, TeeIoctlInvokeArg,
    TeeIoctlOpenSessionArg,
};

use crate::backend::optee::call_queue::SmcPort;
use crate::error::{Result, einval};
use crate::pool::ProtMemRef;
use crate::tee::driver::{TeeDriver, TeeParam};
use crate::tee::login::{self, Credentials};
use crate::tee::shm::ShmBacking;

/// The driver of an OP-TEE-style backend. See the module documentation.
#[derive(Debug)]
pub struct OpteeDriver {
    port: Arc<SmcPort>,
}

impl OpteeDriver {
    /// A driver talking through `port`.
    pub fn new(port: Arc<SmcPort>) -> OpteeDriver {
        OpteeDriver { port }
    }

    fn call(&self, msg: &mut Msg) -> Result<()> {
        self.port.std(msg)
    }
}

fn dir_of(kind: u64) -> ParamDir {
    match kind {
        TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT => ParamDir::In,
        TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT => ParamDir::Out,
        _ => ParamDir::InOut,
    }
}

/// `MAX_ARG_PARAM_COUNT` of the OP-TEE driver: the most parameters one
/// message carries (an open session uses two of them for the TA's and the
/// client's identity).
pub const MAX_ARG_PARAM_COUNT: usize = 6;

/// Parameters an open session adds before the client's (`optee_open_session`).
const OPEN_SESSION_META_PARAMS: usize = 2;

/// `optee_get_msg_arg`: a message holds at most [`MAX_ARG_PARAM_COUNT`].
fn check_count(n: usize) -> Result<()> {
    if n > MAX_ARG_PARAM_COUNT {
        return Err(einval("more parameters than an OP-TEE message holds"));
    }
    Ok(())
}

/// A core parameter as a message parameter (`optee_to_msg_param`, which
/// switches on the whole attribute: META, or any other bit beside the type,
/// is `EINVAL`).
fn to_msg(p: &TeeParam) -> Result<MsgParam> {
    if p.attr() != p.kind() {
        return Err(einval("META is not for user parameters"));
    }
    Ok(match p {
        TeeParam::None { .. } => MsgParam::None,
        TeeParam::Value { a, b, c, .. } => MsgParam::Value { dir: dir_of(p.kind()), a: *a, b: *b, c: *c },
        TeeParam::Memref { shm: None, .. } => {
            MsgParam::Tmem { dir: dir_of(p.kind()), phys: teeheap_platform::PhysAddr(0), size: 0 }
        }
        TeeParam::Memref { shm: Some(shm), offset, size, .. } => {
            let dir = dir_of(p.kind());
            let at = |base: teeheap_platform::PhysAddr| base.checked_add(*offset).ok_or(einval("memref overflow"));
            match shm.backing() {
                ShmBacking::Pages { range, .. } => MsgParam::Tmem { dir, phys: at(range.start())?, size: *size },
                ShmBacking::User { mirror, .. } => MsgParam::Tmem { dir, phys: at(mirror.start())?, size: *size },
                ShmBacking::DmaBuf { protmem: ProtMemRef::Phys(base), .. } => {
                    MsgParam::Tmem { dir, phys: at(*base)?, size: *size }
                }
                ShmBacking::DmaBuf { protmem: ProtMemRef::Lent { cookie, offset: chunk_off }, .. } => {
                    let offset = chunk_off.checked_add(*offset).ok_or(einval("memref overflow"))?;
                    MsgParam::Rmem { dir, cookie: *cookie, offset, size: *size }
                }
            }
        }
    })
}

fn to_msgs(params: &[TeeParam]) -> Result<Vec<MsgParam>> {
    params.iter().map(to_msg).collect()
}

/// Copies the outputs of `msg` back into the core parameters.
fn from_msgs(params: &mut [TeeParam], msgs: &[MsgParam]) {
    for (p, m) in params.iter_mut().zip(msgs) {
        let kind = p.kind();
        match p {
            TeeParam::Value { a, b, c, .. }
                if kind == TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT || kind == TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT =>
            {
                if let Some((ma, mb, mc)) = m.values() {
                    (*a, *b, *c) = (ma, mb, mc);
                }
            }
            TeeParam::Memref { size, .. }
                if kind == TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT
                    || kind == TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT =>
            {
                if let Some(s) = m.memref_size() {
                    *size = s;
                }
            }
            _ => {}
        }
    }
}

impl TeeDriver for OpteeDriver {
    fn open_session(
        &self,
        arg: &mut TeeIoctlOpenSessionArg,
        params: &mut [TeeParam],
        caller: &Credentials,
    ) -> Result<()> {
        check_count(params.len().saturating_add(OPEN_SESSION_META_PARAMS))?;
        // As optee_open_session: the identity the TA sees is computed from
        // the caller, never taken from its clnt_uuid bytes.
        let client_uuid = login::client_uuid(arg.clnt_login, &arg.clnt_uuid, caller)?;
        let mut msg = Msg::open_session(Uuid(arg.uuid), arg.clnt_login, to_msgs(params)?);
        msg.client_uuid = Uuid(client_uuid);
        msg.cancel_id = arg.cancel_id;
        self.call(&mut msg)?;
        arg.session = msg.session;
        arg.ret = msg.ret;
        arg.ret_origin = msg.ret_origin;
        from_msgs(params, &msg.params);
        Ok(())
    }

    fn invoke(&self, arg: &mut TeeIoctlInvokeArg, params: &mut [TeeParam]) -> Result<()> {
        check_count(params.len())?;
        let mut msg = Msg::invoke(arg.session, arg.func, to_msgs(params)?);
        msg.cancel_id = arg.cancel_id;
        self.call(&mut msg)?;
        arg.ret = msg.ret;
        arg.ret_origin = msg.ret_origin;
        from_msgs(params, &msg.params);
        Ok(())
    }

    fn cancel(&self, cancel_id: u32, session: u32) -> Result<()> {
        self.call(&mut Msg::cancel(session, cancel_id))
    }

    fn close_session(&self, session: u32) -> Result<()> {
        let mut msg = Msg::close_session(session);
        self.call(&mut msg)?;
        if msg.ret != teeheap_uapi::tee::gp::TEEC_SUCCESS {
            return Err(einval("no such session in the secure world"));
        }
        Ok(())
    }
}

const _: () = assert!(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT == 7);
