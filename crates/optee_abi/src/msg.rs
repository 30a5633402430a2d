//! Std-call messages (`struct optee_msg_arg` and `struct optee_msg_param`,
//! typed) and the ABI version both sides check first.
//!
//! Command numbers and capability bits are OP-TEE's; parameters carry
//! physical addresses or lend cookies, never references to secure state.

use std::fmt;

use teeheap_platform::{PhysAddr, PhysRange, UseCase};

use crate::error::TeeError;
use crate::uuid::Uuid;

/// Version of this message ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbiVersion {
    /// Incremented on incompatible changes.
    pub major: u32,
    /// Incremented on compatible additions.
    pub minor: u32,
}

impl AbiVersion {
    /// Whether a peer speaking `self` can talk to one speaking `other`.
    pub const fn is_compatible_with(self, other: AbiVersion) -> bool {
        self.major == other.major
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The ABI both sides of this crate speak.
pub const ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 0 };

/// Commands of a std call (`OPTEE_MSG_CMD_*`, same numbers).
///
/// | cmd | params | result |
/// |---|---|---|
/// | `OpenSession` 0 | [`Msg::uuid`], [`Msg::login`], TA params | [`Msg::session`] |
/// | `InvokeCommand` 1 | [`Msg::session`], [`Msg::func`], [`Msg::cancel_id`], TA params | TA params |
/// | `CloseSession` 2 | [`Msg::session`] | – |
/// | `Cancel` 3 | [`Msg::session`] (0: an open in progress), [`Msg::cancel_id`] | – |
/// | `RegisterShm` 4 | p0 value in a = cookie; p1 tmem in (normal memory) | – |
/// | `UnregisterShm` 5 | p0 value in a = cookie | – |
/// | `LendProtmem` 8 | p0 value in a = use case, b = cookie; p1 tmem in (range to lend) | – |
/// | `ReclaimProtmem` 9 | p0 value in a = cookie | – |
/// | `GetProtmemConfig` 10 | p0 value inout a = use case; p1 tmem out (attribute array) | p0 a = min size, b = alignment, c = pa width; p1 u32 attributes ([`ProtmemAttr`](crate::ProtmemAttr)) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Command {
    /// Open a session with the TA named by [`Msg::uuid`].
    OpenSession = 0,
    /// Invoke command [`Msg::func`] of an open session.
    InvokeCommand = 1,
    /// Close a session.
    CloseSession = 2,
    /// Cancel a pending open or invoke carrying the same cancel id.
    Cancel = 3,
    /// Register normal memory as shared memory (it can then not be lent).
    RegisterShm = 4,
    /// Unregister shared memory.
    UnregisterShm = 5,
    /// Lend normal memory to the secure world for a use case.
    LendProtmem = 8,
    /// Take lent memory back (scrubbed, then unprotected).
    ReclaimProtmem = 9,
    /// Ask the minimum size, alignment and attributes of a use case's memory.
    GetProtmemConfig = 10,
}

impl Command {
    /// Every command, by number.
    pub const ALL: [Command; 9] = [
        Command::OpenSession,
        Command::InvokeCommand,
        Command::CloseSession,
        Command::Cancel,
        Command::RegisterShm,
        Command::UnregisterShm,
        Command::LendProtmem,
        Command::ReclaimProtmem,
        Command::GetProtmemConfig,
    ];

    /// The OP-TEE command number.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The command with OP-TEE number `code`, if this ABI has it.
    pub fn from_code(code: u32) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// Capability bits of the secure world (`OPTEE_SMC_SEC_CAP_*` numbering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(pub u32);

impl Capabilities {
    /// Memrefs may point to any normal memory by physical address.
    pub const DYNAMIC_SHM: Capabilities = Capabilities(1 << 2);
    /// A static protected carveout exists for at least one use case.
    pub const PROTMEM: Capabilities = Capabilities(1 << 8);
    /// Normal memory may be lent for at least one use case.
    pub const DYNAMIC_PROTMEM: Capabilities = Capabilities(1 << 9);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }
}

/// Direction of a parameter, seen from the normal world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamDir {
    /// Normal world to secure world.
    In,
    /// Secure world to normal world.
    Out,
    /// Both.
    InOut,
}

impl ParamDir {
    /// Whether the secure world reads it.
    pub const fn is_input(self) -> bool {
        matches!(self, ParamDir::In | ParamDir::InOut)
    }

    /// Whether the secure world writes it back.
    pub const fn is_output(self) -> bool {
        matches!(self, ParamDir::Out | ParamDir::InOut)
    }
}

/// One parameter of a [`Msg`] (`struct optee_msg_param`, typed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MsgParam {
    /// Unused slot.
    #[default]
    None,
    /// Three numbers.
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
    /// Memory by physical address: normal memory or a static carveout. A
    /// size of 0 is a null memref (the address is ignored).
    Tmem {
        /// Direction.
        dir: ParamDir,
        /// First byte.
        phys: PhysAddr,
        /// Length in bytes; on output, the length written or needed.
        size: u64,
    },
    /// Memory inside an object lent with [`Command::LendProtmem`].
    Rmem {
        /// Direction.
        dir: ParamDir,
        /// The cookie the object was lent under.
        cookie: u64,
        /// Offset inside the object.
        offset: u64,
        /// Length in bytes; on output, the length written or needed.
        size: u64,
    },
}

impl MsgParam {
    /// An input value.
    pub const fn value_in(a: u64, b: u64, c: u64) -> MsgParam {
        MsgParam::Value { dir: ParamDir::In, a, b, c }
    }

    /// An output value (zeroed).
    pub const fn value_out() -> MsgParam {
        MsgParam::Value { dir: ParamDir::Out, a: 0, b: 0, c: 0 }
    }

    /// An in/out value.
    pub const fn value_inout(a: u64, b: u64, c: u64) -> MsgParam {
        MsgParam::Value { dir: ParamDir::InOut, a, b, c }
    }

    /// Memory by physical address.
    pub const fn tmem(dir: ParamDir, phys: PhysAddr, size: u64) -> MsgParam {
        MsgParam::Tmem { dir, phys, size }
    }

    /// Memory inside a lent object.
    pub const fn rmem(dir: ParamDir, cookie: u64, offset: u64, size: u64) -> MsgParam {
        MsgParam::Rmem { dir, cookie, offset, size }
    }

    /// The direction, `None` for an unused slot.
    pub const fn dir(&self) -> Option<ParamDir> {
        match *self {
            MsgParam::None => None,
            MsgParam::Value { dir, .. } | MsgParam::Tmem { dir, .. } | MsgParam::Rmem { dir, .. } => Some(dir),
        }
    }

    /// `(a, b, c)` of a value param.
    pub const fn values(&self) -> Option<(u64, u64, u64)> {
        match *self {
            MsgParam::Value { a, b, c, .. } => Some((a, b, c)),
            _ => None,
        }
    }

    /// The size of a memref param.
    pub const fn memref_size(&self) -> Option<u64> {
        match *self {
            MsgParam::Tmem { size, .. } | MsgParam::Rmem { size, .. } => Some(size),
            _ => None,
        }
    }
}

/// A std-call message (`struct optee_msg_arg`, typed). The secure world
/// fills `ret`, `ret_origin`, `session` (on open) and the output params.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// What to do.
    pub cmd: Command,
    /// TA command number, for [`Command::InvokeCommand`].
    pub func: u32,
    /// Session id (output of open, input of invoke/close/cancel).
    pub session: u32,
    /// Cancellation id of an open or invoke, matched by [`Command::Cancel`].
    pub cancel_id: u32,
    /// GP result code (output).
    pub ret: u32,
    /// Who produced `ret`: `TEEC_ORIGIN_*` (output).
    pub ret_origin: u32,
    /// The TA to open, for [`Command::OpenSession`].
    pub uuid: Uuid,
    /// The client's login method (`TEE_IOCTL_LOGIN_*`), for open.
    pub login: u32,
    /// The client's identity for the login method, for open.
    pub client_uuid: Uuid,
    /// Parameters (OP-TEE passes at most a handful; TAs see up to 4).
    pub params: Vec<MsgParam>,
}

impl Msg {
    /// An empty message for `cmd`.
    pub fn new(cmd: Command) -> Msg {
        Msg {
            cmd,
            func: 0,
            session: 0,
            cancel_id: 0,
            ret: 0,
            ret_origin: 0,
            uuid: Uuid::default(),
            login: 0,
            client_uuid: Uuid::default(),
            params: Vec::new(),
        }
    }

    /// Open a session with TA `uuid` as a client with `login`.
    pub fn open_session(uuid: Uuid, login: u32, params: Vec<MsgParam>) -> Msg {
        Msg { uuid, login, params, ..Msg::new(Command::OpenSession) }
    }

    /// Invoke command `func` of `session`.
    pub fn invoke(session: u32, func: u32, params: Vec<MsgParam>) -> Msg {
        Msg { session, func, params, ..Msg::new(Command::InvokeCommand) }
    }

    /// Close `session`.
    pub fn close_session(session: u32) -> Msg {
        Msg { session, ..Msg::new(Command::CloseSession) }
    }

    /// Cancel the open or invoke on `session` carrying `cancel_id`.
    pub fn cancel(session: u32, cancel_id: u32) -> Msg {
        Msg { session, cancel_id, ..Msg::new(Command::Cancel) }
    }

    /// Register normal memory `range` as shared memory under `cookie`.
    pub fn register_shm(cookie: u64, range: PhysRange) -> Msg {
        Msg {
            params: vec![MsgParam::value_in(cookie, 0, 0), MsgParam::tmem(ParamDir::In, range.start(), range.len())],
            ..Msg::new(Command::RegisterShm)
        }
    }

    /// Unregister the shared memory registered under `cookie`.
    pub fn unregister_shm(cookie: u64) -> Msg {
        Msg { params: vec![MsgParam::value_in(cookie, 0, 0)], ..Msg::new(Command::UnregisterShm) }
    }

    /// Lend normal memory `range` for `use_case` under `cookie`.
    pub fn lend_protmem(use_case: UseCase, range: PhysRange, cookie: u64) -> Msg {
        Msg {
            params: vec![
                MsgParam::value_in(u64::from(use_case.id()), cookie, 0),
                MsgParam::tmem(ParamDir::In, range.start(), range.len()),
            ],
            ..Msg::new(Command::LendProtmem)
        }
    }

    /// Reclaim the object lent under `cookie`.
    pub fn reclaim_protmem(cookie: u64) -> Msg {
        Msg { params: vec![MsgParam::value_in(cookie, 0, 0)], ..Msg::new(Command::ReclaimProtmem) }
    }

    /// Ask the protected-memory configuration of `use_case`; the attributes
    /// go to `attrs_size` bytes of normal memory at `attrs` (0 bytes to ask
    /// the size needed).
    pub fn get_protmem_config(use_case: UseCase, attrs: PhysAddr, attrs_size: u64) -> Msg {
        Msg {
            params: vec![
                MsgParam::value_inout(u64::from(use_case.id()), 0, 0),
                MsgParam::tmem(ParamDir::Out, attrs, attrs_size),
            ],
            ..Msg::new(Command::GetProtmemConfig)
        }
    }

    /// The result as a Rust value: `Ok` for `TEEC_SUCCESS`.
    pub fn result(&self) -> Result<(), TeeError> {
        match TeeError::from_code(self.ret) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_numbers_are_optee_s() {
        let table = [
            (Command::OpenSession, 0),
            (Command::InvokeCommand, 1),
            (Command::CloseSession, 2),
            (Command::Cancel, 3),
            (Command::RegisterShm, 4),
            (Command::UnregisterShm, 5),
            (Command::LendProtmem, 8),
            (Command::ReclaimProtmem, 9),
            (Command::GetProtmemConfig, 10),
        ];
        for (c, n) in table {
            assert_eq!(c.code(), n);
            assert_eq!(Command::from_code(n), Some(c));
        }
        assert_eq!(Command::from_code(6), None);
        assert_eq!(Capabilities::PROTMEM.bits(), 0x100);
        assert_eq!(Capabilities::DYNAMIC_PROTMEM.bits(), 0x200);
    }

    #[test]
    fn versions_are_compatible_by_major() {
        assert!(ABI_VERSION.is_compatible_with(AbiVersion { major: 1, minor: 7 }));
        assert!(!ABI_VERSION.is_compatible_with(AbiVersion { major: 2, minor: 0 }));
    }
}
