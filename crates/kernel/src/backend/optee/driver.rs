//! The OP-TEE-style driver's session ops: TEE core parameters become
//! message parameters, the message goes through the SMC, results come back.
//!
//! Memrefs are translated by where the shared memory lives: normal pages
//! and static carveouts by physical address (`Tmem`), lent protected memory
//! by the lend cookie plus offset (`Rmem`). The driver never touches secure
//! state; it only sends messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use teeheap_optee_abi::rpc::{
    OPTEE_RPC_CMD_SHM_ALLOC, OPTEE_RPC_CMD_SHM_FREE, OPTEE_RPC_SHM_TYPE_APPL, Payload, SupplicantRpc,
};
use teeheap_platform::PhysAddr;
use teeheap_sync::Recover;

use teeheap_optee_abi::{Msg, MsgParam, ParamDir, Uuid};
use teeheap_uapi::tee::{TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, TeeIoctlInvokeArg, TeeIoctlOpenSessionArg};

use crate::backend::optee::call_queue::SmcPort;
use crate::error::{Result, einval};
use crate::pool::ProtMemRef;
use crate::tee::driver::{Dir, TeeDriver, TeeParam};
use crate::tee::login::{self, Credentials};
use crate::tee::shm::{Shm, ShmBacking, ShmIds};
use crate::tee::supp::Supp;

/// The driver of an OP-TEE-style backend. See the module documentation.
#[derive(Debug)]
pub struct OpteeDriver {
    port: Arc<SmcPort>,
    supp: Arc<Supp>,
}

impl OpteeDriver {
    /// A driver talking through `port`, serving the supplicant queue
    /// `supp` on its privileged node.
    pub fn new(port: Arc<SmcPort>, supp: Arc<Supp>) -> OpteeDriver {
        OpteeDriver { port, supp }
    }

    fn call(&self, msg: &mut Msg) -> Result<()> {
        self.port.std(msg)
    }
}

fn to_msg_dir(dir: Dir) -> ParamDir {
    match dir {
        Dir::In => ParamDir::In,
        Dir::Out => ParamDir::Out,
        Dir::InOut => ParamDir::InOut,
    }
}

fn from_msg_dir(dir: ParamDir) -> Dir {
    match dir {
        ParamDir::In => Dir::In,
        ParamDir::Out => Dir::Out,
        ParamDir::InOut => Dir::InOut,
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
    if p.is_meta() {
        return Err(einval("META is not for user parameters"));
    }
    Ok(match p {
        TeeParam::None { .. } => MsgParam::None,
        TeeParam::Value { dir, a, b, c, .. } => MsgParam::Value { dir: to_msg_dir(*dir), a: *a, b: *b, c: *c },
        TeeParam::Memref { dir, shm: None, .. } => {
            MsgParam::Tmem { dir: to_msg_dir(*dir), phys: teeheap_platform::PhysAddr(0), size: 0 }
        }
        TeeParam::Memref { dir, shm: Some(shm), offset, size, .. } => {
            let dir = to_msg_dir(*dir);
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
        match p {
            TeeParam::Value { dir, a, b, c, .. } if dir.is_output() => {
                if let Some((ma, mb, mc)) = m.values() {
                    (*a, *b, *c) = (ma, mb, mc);
                }
            }
            TeeParam::Memref { dir, size, .. } if dir.is_output() => {
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

    fn supplicant(&self) -> Option<&Supp> {
        Some(&self.supp)
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

/// The secure world's supplicant RPCs, forwarded to the supplicant queue
/// (`optee_supp_thrd_req` from the RPC handler): values as values; a
/// memref inside supplicant shared memory the secure world holds
/// ([`SupplicantRpc::alloc_payload`]) as a memref of that shm (the
/// supplicant sees its id and the offset), any other as a NULL memref of
/// its size.
#[derive(Debug)]
pub struct SuppRpc {
    supp: Arc<Supp>,
    /// The supplicant node's shm ids (`tee_shm_get_from_id`).
    ids: Arc<ShmIds>,
    /// Supplicant shm the secure world holds, by id: a reference of ours,
    /// as `optee_rpc_cmd_alloc_suppl` takes one (the secure world has none).
    payloads: Mutex<HashMap<u64, Arc<Shm>>>,
}

impl SuppRpc {
    /// The RPC path to the supplicant queue `supp`, whose shared memory
    /// has the ids `ids`.
    pub fn new(supp: Arc<Supp>, ids: Arc<ShmIds>) -> SuppRpc {
        SuppRpc { supp, ids, payloads: Mutex::default() }
    }

    /// The payload shm holding `size` bytes at `phys`, and the offset.
    fn payload_at(&self, phys: PhysAddr, size: u64) -> Option<(Arc<Shm>, u64)> {
        let payloads = self.payloads.lock().recover();
        payloads.values().find_map(|shm| {
            let ShmBacking::Pages { range, .. } = shm.backing() else { return None };
            let offset = phys.checked_offset_from(range.start())?;
            (offset.checked_add(size)? <= range.len()).then(|| (Arc::clone(shm), offset))
        })
    }
}

impl SupplicantRpc for SuppRpc {
    fn call(&self, func: u32, params: &mut [MsgParam]) -> Option<u32> {
        let memref =
            |dir, shm, offset, size| TeeParam::Memref { dir: from_msg_dir(dir), meta: false, shm, offset, size };
        let mut tee: Vec<TeeParam> = params
            .iter()
            .map(|p| match *p {
                MsgParam::Value { dir, a, b, c } => TeeParam::Value { dir: from_msg_dir(dir), meta: false, a, b, c },
                MsgParam::Tmem { dir, phys, size } if phys.0 != 0 => match self.payload_at(phys, size) {
                    Some((shm, offset)) => memref(dir, Some(shm), offset, size),
                    None => memref(dir, None, 0, size),
                },
                MsgParam::Tmem { dir, size, .. } | MsgParam::Rmem { dir, size, .. } => memref(dir, None, 0, size),
                _ => TeeParam::None { meta: false },
            })
            .collect();
        let ret = self.supp.request(func, &mut tee)?;
        from_msgs_rev(params, &tee);
        Some(ret)
    }

    fn alloc_payload(&self, size: u64) -> Option<Payload> {
        // optee_rpc_cmd_alloc_suppl: the supplicant allocates on its own
        // context and answers the id.
        let mut p = [TeeParam::Value { dir: Dir::InOut, meta: false, a: OPTEE_RPC_SHM_TYPE_APPL, b: size, c: 0 }];
        if self.supp.request(OPTEE_RPC_CMD_SHM_ALLOC, &mut p)? != 0 {
            return None;
        }
        let TeeParam::Value { c: id, .. } = p[0] else { return None };
        let shm = self.ids.get(self.supp.context()?, id as i64).ok()?;
        let found = match shm.backing() {
            ShmBacking::Pages { range, .. } if shm.size() >= size => Some(range.start()),
            _ => None,
        };
        let Some(phys) = found else {
            // Memory the secure world cannot use (too small, or registered
            // user memory): given back at once.
            self.free_id(id);
            return None;
        };
        let payload = Payload { phys, size: shm.size(), cookie: id };
        self.payloads.lock().recover().insert(id, shm);
        Some(payload)
    }

    fn free_payload(&self, payload: Payload) {
        let shm = self.payloads.lock().recover().remove(&payload.cookie);
        if shm.is_some() {
            self.free_id(payload.cookie);
        }
        drop(shm);
    }
}

impl SuppRpc {
    /// `optee_rpc_cmd_free_suppl`: tells the supplicant to free shm `id`.
    fn free_id(&self, id: u64) {
        let mut p = [TeeParam::Value { dir: Dir::In, meta: false, a: OPTEE_RPC_SHM_TYPE_APPL, b: id, c: 0 }];
        let _ = self.supp.request(OPTEE_RPC_CMD_SHM_FREE, &mut p);
    }
}

/// Copies output values and memref sizes of `tee` back into `msgs`.
fn from_msgs_rev(msgs: &mut [MsgParam], tee: &[TeeParam]) {
    for (m, t) in msgs.iter_mut().zip(tee) {
        match (m, t) {
            (MsgParam::Value { dir, a, b, c }, TeeParam::Value { a: ta, b: tb, c: tc, .. }) if dir.is_output() => {
                (*a, *b, *c) = (*ta, *tb, *tc);
            }
            (
                MsgParam::Tmem { dir, size, .. } | MsgParam::Rmem { dir, size, .. },
                TeeParam::Memref { size: ts, .. },
            ) if dir.is_output() => {
                *size = *ts;
            }
            _ => {}
        }
    }
}

const _: () = assert!(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT == 7);
