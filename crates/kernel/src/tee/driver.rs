//! What a TEE backend driver provides to the TEE core (`tee_driver_ops`):
//! sessions and invocations, with parameters already validated and
//! resolved by the core.

use std::sync::Arc;

use teeheap_uapi::tee::{
    TEE_IOCTL_PARAM_ATTR_TYPE_MASK, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT,
    TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, TeeIoctlInvokeArg, TeeIoctlOpenSessionArg,
};

use crate::error::Result;
use crate::tee::login::Credentials;
use crate::tee::shm::Shm;

/// A parameter of an open or invoke (`struct tee_param`), resolved: a
/// memref carries the shared-memory object it names.
#[derive(Clone, Debug)]
pub enum TeeParam {
    /// Unused; `attr` is `TYPE_NONE`, with META if set.
    None {
        /// Attribute bits.
        attr: u64,
    },
    /// Three numbers; `attr` is the VALUE_* type (with META if set).
    Value {
        /// Attribute bits.
        attr: u64,
        /// First value.
        a: u64,
        /// Second value.
        b: u64,
        /// Third value.
        c: u64,
    },
    /// A window of a shared-memory object; `shm` is `None` for a NULL memref.
    Memref {
        /// Attribute bits.
        attr: u64,
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
        TeeParam::None { attr: 0 }
    }
}

impl TeeParam {
    /// The whole attribute as the client gave it (type and META).
    pub fn attr(&self) -> u64 {
        match self {
            TeeParam::None { attr } | TeeParam::Value { attr, .. } | TeeParam::Memref { attr, .. } => *attr,
        }
    }

    /// The type part of the attribute (`TEE_IOCTL_PARAM_ATTR_TYPE_*`).
    pub fn kind(&self) -> u64 {
        self.attr() & TEE_IOCTL_PARAM_ATTR_TYPE_MASK
    }

    /// Whether the TA may write it (an output or in/out value or memref).
    pub fn is_output(&self) -> bool {
        matches!(
            self.kind(),
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT
                | TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT
                | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT
                | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT
        )
    }

    /// Whether it is a memref of any direction.
    pub fn is_memref(&self) -> bool {
        matches!(
            self.kind(),
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT
                | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT
                | TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT
        )
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
