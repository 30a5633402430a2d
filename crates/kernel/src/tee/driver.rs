//! What a TEE backend driver provides to the TEE core (`tee_driver_ops`):
//! sessions and invocations, with parameters already validated and
//! resolved by the core.

use std::sync::Arc;

use teeheap_uapi::tee::{
    TEE_IOCTL_PARAM_ATTR_META, TEE_IOCTL_PARAM_ATTR_TYPE_MASK, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, TEE_IOCTL_PARAM_ATTR_TYPE_NONE,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, TeeIoctlInvokeArg, TeeIoctlOpenSessionArg,
};

use crate::error::Result;
use crate::tee::login::Credentials;
use crate::tee::shm::Shm;

/// The direction of a value or memref parameter, as its attribute's type
/// names it (`*_INPUT`, `*_OUTPUT`, `*_INOUT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The TA reads it.
    In,
    /// The TA writes it.
    Out,
    /// The TA reads and writes it.
    InOut,
}

impl Dir {
    /// Whether the TA may write it.
    pub fn is_output(self) -> bool {
        matches!(self, Dir::Out | Dir::InOut)
    }
}

/// A parameter of an open or invoke (`struct tee_param`), decoded once
/// from its attribute at copy-in and resolved: a memref carries the
/// shared-memory object it names. [`TeeParam::attr`] encodes it back.
#[derive(Clone, Debug)]
pub enum TeeParam {
    /// Unused (`TYPE_NONE`).
    None {
        /// `TEE_IOCTL_PARAM_ATTR_META` was set.
        meta: bool,
    },
    /// Three numbers (`VALUE_*`).
    Value {
        /// Direction.
        dir: Dir,
        /// `TEE_IOCTL_PARAM_ATTR_META` was set.
        meta: bool,
        /// First value.
        a: u64,
        /// Second value.
        b: u64,
        /// Third value.
        c: u64,
    },
    /// A window of a shared-memory object (`MEMREF_*`); `shm` is `None`
    /// for a NULL memref.
    Memref {
        /// Direction.
        dir: Dir,
        /// `TEE_IOCTL_PARAM_ATTR_META` was set.
        meta: bool,
        /// The object.
        shm: Option<Arc<Shm>>,
        /// Offset of the window.
        offset: u64,
        /// Size of the window; on output, the size written or needed.
        size: u64,
    },
}

impl Default for TeeParam {
    fn default() -> Self {
        TeeParam::None { meta: false }
    }
}

impl TeeParam {
    /// Decodes the type and META bits of `attr` (other bits are the
    /// caller's to refuse first): `None` for a type Linux does not know.
    /// Values and memrefs start zeroed and unresolved.
    pub fn decode(attr: u64) -> Option<TeeParam> {
        let meta = attr & TEE_IOCTL_PARAM_ATTR_META != 0;
        let value = |dir| TeeParam::Value { dir, meta, a: 0, b: 0, c: 0 };
        let memref = |dir| TeeParam::Memref { dir, meta, shm: None, offset: 0, size: 0 };
        Some(match attr & TEE_IOCTL_PARAM_ATTR_TYPE_MASK {
            TEE_IOCTL_PARAM_ATTR_TYPE_NONE => TeeParam::None { meta },
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT => value(Dir::In),
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT => value(Dir::Out),
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT => value(Dir::InOut),
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT => memref(Dir::In),
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT => memref(Dir::Out),
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT => memref(Dir::InOut),
            _ => return None,
        })
    }

    /// The attribute that encodes it (type and META), for copy-out.
    pub fn attr(&self) -> u64 {
        let kind = match self {
            TeeParam::None { .. } => TEE_IOCTL_PARAM_ATTR_TYPE_NONE,
            TeeParam::Value { dir: Dir::In, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
            TeeParam::Value { dir: Dir::Out, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT,
            TeeParam::Value { dir: Dir::InOut, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT,
            TeeParam::Memref { dir: Dir::In, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
            TeeParam::Memref { dir: Dir::Out, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
            TeeParam::Memref { dir: Dir::InOut, .. } => TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT,
        };
        if self.is_meta() { kind | TEE_IOCTL_PARAM_ATTR_META } else { kind }
    }

    /// Whether `TEE_IOCTL_PARAM_ATTR_META` is set.
    pub fn is_meta(&self) -> bool {
        match self {
            TeeParam::None { meta } | TeeParam::Value { meta, .. } | TeeParam::Memref { meta, .. } => *meta,
        }
    }

    /// The direction of a value or memref.
    pub fn dir(&self) -> Option<Dir> {
        match self {
            TeeParam::None { .. } => None,
            TeeParam::Value { dir, .. } | TeeParam::Memref { dir, .. } => Some(*dir),
        }
    }

    /// Whether the TA may write it (an output or in/out value or memref).
    pub fn is_output(&self) -> bool {
        self.dir().is_some_and(Dir::is_output)
    }
}

/// The operations of a TEE backend. The core has validated the arguments,
/// resolved memrefs and checked that the session belongs to the caller's
/// context; the driver talks to the secure world and fills in `session`,
/// `ret`, `ret_origin` and the output parameters. An error return is an
/// errno for the ioctl; a TA's failure is `ret`/`ret_origin` with `Ok`.
pub trait TeeDriver: Send + Sync + 'static {
    /// Opens a session with the TA `arg.uuid` for `caller`, who presents
    /// itself with `arg.clnt_login` (the driver computes the client UUID
    /// with [`crate::tee::login::client_uuid`]).
    ///
    /// # Errors
    /// `EPERM`/`EINVAL` for the login as [`crate::tee::login::client_uuid`];
    /// transport failures (e.g. `ENOMEM`, `ENODEV` when the secure world is gone).
    fn open_session(
        &self,
        arg: &mut TeeIoctlOpenSessionArg,
        params: &mut [TeeParam],
        caller: &Credentials,
    ) -> Result<()>;

    /// Invokes command `arg.func` in session `arg.session`.
    ///
    /// # Errors
    /// As [`Self::open_session`].
    fn invoke(&self, arg: &mut TeeIoctlInvokeArg, params: &mut [TeeParam]) -> Result<()>;

    /// Requests cancellation of the call `cancel_id` in `session`.
    ///
    /// # Errors
    /// As [`Self::open_session`].
    fn cancel(&self, cancel_id: u32, session: u32) -> Result<()>;

    /// Closes `session`.
    ///
    /// # Errors
    /// As [`Self::open_session`].
    fn close_session(&self, session: u32) -> Result<()>;

    /// The supplicant's queue, for a driver that serves a supplicant on
    /// its privileged node (`optee_supp_ops`); `None` (the default): the
    /// supplicant ioctls are `EINVAL`.
    fn supplicant(&self) -> Option<&crate::tee::supp::Supp> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_decodes_once_and_encodes_back() {
        let known = [0, 1, 2, 3, 5, 6, 7];
        for kind in 0..=TEE_IOCTL_PARAM_ATTR_TYPE_MASK {
            for meta in [0, TEE_IOCTL_PARAM_ATTR_META] {
                let attr = kind | meta;
                match TeeParam::decode(attr) {
                    Some(p) => {
                        assert!(known.contains(&kind), "type {kind} decoded");
                        assert_eq!(p.attr(), attr);
                        assert_eq!(p.is_meta(), meta != 0);
                        assert_eq!(p.is_output(), matches!(kind, 2 | 3 | 6 | 7));
                        assert_eq!(matches!(p, TeeParam::Memref { .. }), kind >= 5);
                    }
                    None => assert!(!known.contains(&kind), "type {kind} refused"),
                }
            }
        }
    }
}
