//! Lending protected memory through the message ABI: LEND_PROTMEM and
//! RECLAIM_PROTMEM on behalf of a dynamic pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use teeheap_optee_abi::Msg;
use teeheap_platform::{PhysRange, UseCase};
use teeheap_uapi::tee::gp;

use crate::backend::optee::call_queue::SmcPort;
use crate::error::{Errno, Error, Result};
use crate::pool::dynamic::ProtMemLender;

/// Cookies for lent objects, unique in the process: a backend bound again
/// to the same secure world must not reuse the cookie of an object its
/// previous generation still has lent.
static NEXT_COOKIE: AtomicU64 = AtomicU64::new(1);

/// Lends and reclaims through the SMC.
#[derive(Debug)]
pub struct OpteeLender {
    port: Arc<SmcPort>,
}

impl OpteeLender {
    /// A lender through `port`.
    pub fn new(port: Arc<SmcPort>) -> OpteeLender {
        OpteeLender { port }
    }

    fn call(&self, mut msg: Msg) -> Result<u32> {
        self.port.std(&mut msg)?;
        Ok(msg.ret)
    }
}

impl ProtMemLender for OpteeLender {
    fn lend(&self, use_case: UseCase, range: PhysRange) -> Result<u64> {
        let cookie = NEXT_COOKIE.fetch_add(1, Ordering::Relaxed);
        match self.call(Msg::lend_protmem(use_case, range, cookie))? {
            gp::TEEC_SUCCESS => Ok(cookie),
            gp::TEEC_ERROR_OUT_OF_MEMORY => Err(Error::new(Errno::ENOMEM, "secure world out of memory")),
            ret => {
                tracing::warn!(%use_case, %range, ret = format_args!("{ret:#x}"), "LEND_PROTMEM refused");
                Err(Error::new(Errno::EINVAL, "secure world refused the lend"))
            }
        }
    }

    fn reclaim(&self, cookie: u64) -> Result<()> {
        match self.call(Msg::reclaim_protmem(cookie))? {
            gp::TEEC_SUCCESS => Ok(()),
            gp::TEEC_ERROR_BUSY => Err(Error::new(Errno::EBUSY, "secure world still uses the lent memory")),
            ret => {
                tracing::error!(cookie, ret = format_args!("{ret:#x}"), "RECLAIM_PROTMEM refused");
                Err(Error::new(Errno::EINVAL, "secure world refused the reclaim"))
            }
        }
    }
}
