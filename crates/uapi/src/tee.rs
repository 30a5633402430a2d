//! `linux/tee.h`: the ioctls of `/dev/tee<N>` (clients) and `/dev/teepriv<N>`
//! (the supplicant), their argument structs and flag values.
//!
//! Session, invoke and supplicant calls pass a [`TeeIoctlBufData`] that points
//! at a fixed header followed in memory by `num_params` [`TeeIoctlParam`]s.

pub mod gp;

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::{ior, iowr};

/// ioctl type byte of TEE devices.
pub const TEE_IOC_MAGIC: u8 = 0xa4;
/// First command number of the TEE ioctls.
pub const TEE_IOC_BASE: u8 = 0;

/// Prefix of client device nodes; the device index follows.
pub const TEE_DEV_PREFIX: &str = "/dev/tee";
/// Prefix of supplicant (privileged) device nodes; the device index follows.
pub const TEEPRIV_DEV_PREFIX: &str = "/dev/teepriv";
/// The first client device node.
pub const TEE_DEV0: &str = "/dev/tee0";
/// The first supplicant device node.
pub const TEEPRIV_DEV0: &str = "/dev/teepriv0";

/// Path of the client device node with the given index, e.g. `/dev/tee0`.
pub fn tee_dev_path(index: u32) -> String {
    format!("{TEE_DEV_PREFIX}{index}")
}

/// Path of the supplicant device node with the given index, e.g. `/dev/teepriv0`.
pub fn teepriv_dev_path(index: u32) -> String {
    format!("{TEEPRIV_DEV_PREFIX}{index}")
}

/// Largest `buf_len` accepted by the session, invoke and supplicant ioctls.
pub const TEE_MAX_ARG_SIZE: usize = 1024;
/// Length of a UUID in [`TeeIoctlOpenSessionArg`].
pub const TEE_IOCTL_UUID_LEN: usize = 16;

/// Shared memory flag: the memory is mapped in the normal world.
pub const TEE_IOCTL_SHM_MAPPED: u32 = 0x1;
/// Shared memory flag: the shared memory is backed by a dma-buf.
pub const TEE_IOCTL_SHM_DMA_BUF: u32 = 0x2;

/// Generic capability: the TEE follows the GlobalPlatform client API.
pub const TEE_GEN_CAP_GP: u32 = 1 << 0;
/// Generic capability: the node is the privileged one (for the supplicant).
pub const TEE_GEN_CAP_PRIVILEGED: u32 = 1 << 1;
/// Generic capability: user memory can be registered ([`TEE_IOC_SHM_REGISTER`]).
pub const TEE_GEN_CAP_REG_MEM: u32 = 1 << 2;
/// Generic capability: a memref may be NULL ([`TEE_MEMREF_NULL`]).
pub const TEE_GEN_CAP_MEMREF_NULL: u32 = 1 << 3;

/// Value of a memref's shm id (`c`) meaning "NULL buffer".
pub const TEE_MEMREF_NULL: u64 = u64::MAX;

/// Implementation id of OP-TEE.
pub const TEE_IMPL_ID_OPTEE: u32 = 1;
/// Implementation id of the AMD TEE.
pub const TEE_IMPL_ID_AMDTEE: u32 = 2;
/// OP-TEE implementation capability: it runs in Arm TrustZone.
pub const TEE_OPTEE_CAP_TZ: u32 = 1 << 0;

/// Parameter type: unused.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_NONE: u64 = 0;
/// Parameter type: value passed in (`a`, `b`, `c`).
pub const TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT: u64 = 1;
/// Parameter type: value passed out.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT: u64 = 2;
/// Parameter type: value passed in and out.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT: u64 = 3;
/// Parameter type: memory reference read by the TEE (`a` offset, `b` size, `c` shm id).
pub const TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT: u64 = 5;
/// Parameter type: memory reference written by the TEE.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT: u64 = 6;
/// Parameter type: memory reference read and written by the TEE.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT: u64 = 7;
/// Bits of `attr` that hold the parameter type.
pub const TEE_IOCTL_PARAM_ATTR_TYPE_MASK: u64 = 0xff;
/// `attr` flag: a meta parameter (between the supplicant and the driver).
pub const TEE_IOCTL_PARAM_ATTR_META: u64 = 0x100;
/// Every bit allowed in `attr`.
pub const TEE_IOCTL_PARAM_ATTR_MASK: u64 = TEE_IOCTL_PARAM_ATTR_TYPE_MASK | TEE_IOCTL_PARAM_ATTR_META;

/// Login class: public, no client identity.
pub const TEE_IOCTL_LOGIN_PUBLIC: u32 = 0;
/// Login class: the client's user.
pub const TEE_IOCTL_LOGIN_USER: u32 = 1;
/// Login class: a group of the client.
pub const TEE_IOCTL_LOGIN_GROUP: u32 = 2;
/// Login class: the client application.
pub const TEE_IOCTL_LOGIN_APPLICATION: u32 = 4;
/// Login class: the client's user and application.
pub const TEE_IOCTL_LOGIN_USER_APPLICATION: u32 = 5;
/// Login class: a group of the client and its application.
pub const TEE_IOCTL_LOGIN_GROUP_APPLICATION: u32 = 6;
/// First login value reserved for kernel clients (refused from user space).
pub const TEE_IOCTL_LOGIN_REE_KERNEL_MIN: u32 = 0x8000_0000;
/// Last login value reserved for kernel clients.
pub const TEE_IOCTL_LOGIN_REE_KERNEL_MAX: u32 = 0xbfff_ffff;
/// Login class used by kernel clients.
pub const TEE_IOCTL_LOGIN_REE_KERNEL: u32 = 0x8000_0000;

/// Queries the implementation; fills a [`TeeIoctlVersionData`].
pub const TEE_IOC_VERSION: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE, size_of::<TeeIoctlVersionData>());
/// Allocates driver shared memory; takes a [`TeeIoctlShmAllocData`], returns an fd.
pub const TEE_IOC_SHM_ALLOC: u32 = iowr(TEE_IOC_MAGIC, TEE_IOC_BASE + 1, size_of::<TeeIoctlShmAllocData>());
/// Opens a session; [`TeeIoctlBufData`] points at a [`TeeIoctlOpenSessionArg`] and params.
pub const TEE_IOC_OPEN_SESSION: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 2, size_of::<TeeIoctlBufData>());
/// Invokes a command; [`TeeIoctlBufData`] points at a [`TeeIoctlInvokeArg`] and params.
pub const TEE_IOC_INVOKE: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 3, size_of::<TeeIoctlBufData>());
/// Cancels an open session or invoke; takes a [`TeeIoctlCancelArg`].
pub const TEE_IOC_CANCEL: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 4, size_of::<TeeIoctlCancelArg>());
/// Closes a session; takes a [`TeeIoctlCloseSessionArg`].
pub const TEE_IOC_CLOSE_SESSION: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 5, size_of::<TeeIoctlCloseSessionArg>());
/// Supplicant waits for a request; [`TeeIoctlBufData`] points at a [`TeeIoctlSupplRecvArg`].
pub const TEE_IOC_SUPPL_RECV: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 6, size_of::<TeeIoctlBufData>());
/// Supplicant answers a request; [`TeeIoctlBufData`] points at a [`TeeIoctlSupplSendArg`].
pub const TEE_IOC_SUPPL_SEND: u32 = ior(TEE_IOC_MAGIC, TEE_IOC_BASE + 7, size_of::<TeeIoctlBufData>());
/// Registers a protected-heap dma-buf; takes a [`TeeIoctlShmRegisterFdData`], returns an fd.
pub const TEE_IOC_SHM_REGISTER_FD: u32 = iowr(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, size_of::<TeeIoctlShmRegisterFdData>());
/// Registers user memory; takes a [`TeeIoctlShmRegisterData`], returns an fd.
pub const TEE_IOC_SHM_REGISTER: u32 = iowr(TEE_IOC_MAGIC, TEE_IOC_BASE + 9, size_of::<TeeIoctlShmRegisterData>());

/// `struct tee_ioctl_version_data`: the result of [`TEE_IOC_VERSION`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlVersionData {
    /// `TEE_IMPL_ID_*`.
    pub impl_id: u32,
    /// Implementation-specific capabilities, e.g. [`TEE_OPTEE_CAP_TZ`].
    pub impl_caps: u32,
    /// `TEE_GEN_CAP_*` bits.
    pub gen_caps: u32,
}
const _: () = assert!(size_of::<TeeIoctlVersionData>() == 12);

/// `struct tee_ioctl_shm_alloc_data`: the argument of [`TEE_IOC_SHM_ALLOC`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlShmAllocData {
    /// In/out: size in bytes.
    pub size: u64,
    /// In: 0; out: `TEE_IOCTL_SHM_*` bits.
    pub flags: u32,
    /// Out: the shared memory id.
    pub id: i32,
}
const _: () = assert!(size_of::<TeeIoctlShmAllocData>() == 16);

/// `struct tee_ioctl_buf_data`: a user buffer holding a header and its params.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlBufData {
    /// User address of the buffer.
    pub buf_ptr: u64,
    /// Length of the buffer: exactly the header plus `num_params` params.
    pub buf_len: u64,
}
const _: () = assert!(size_of::<TeeIoctlBufData>() == 16);

/// `struct tee_ioctl_param`: one parameter, a value or a memory reference.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlParam {
    /// `TEE_IOCTL_PARAM_ATTR_TYPE_*`, possibly with [`TEE_IOCTL_PARAM_ATTR_META`].
    pub attr: u64,
    /// Value, or a memref's offset into the shared memory.
    pub a: u64,
    /// Value, or a memref's size.
    pub b: u64,
    /// Value, or a memref's shared memory id.
    pub c: u64,
}
const _: () = assert!(size_of::<TeeIoctlParam>() == 32);

/// `struct tee_ioctl_open_session_arg` without its trailing params.
///
/// `num_params` [`TeeIoctlParam`]s follow it in memory; aligned like C,
/// where the flexible `params[]` array gives the struct 8-byte alignment.
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlOpenSessionArg {
    /// In: UUID of the trusted application.
    pub uuid: [u8; TEE_IOCTL_UUID_LEN],
    /// In: UUID of the client (depends on the login class).
    pub clnt_uuid: [u8; TEE_IOCTL_UUID_LEN],
    /// In: `TEE_IOCTL_LOGIN_*`.
    pub clnt_login: u32,
    /// In: id for [`TEE_IOC_CANCEL`].
    pub cancel_id: u32,
    /// Out: the session id.
    pub session: u32,
    /// Out: a [`gp`] `TEEC_*` return code.
    pub ret: u32,
    /// Out: a [`gp`] `TEEC_ORIGIN_*` value.
    pub ret_origin: u32,
    /// In: number of params that follow.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoctlOpenSessionArg>() == 56);

/// `struct tee_ioctl_invoke_arg` without its trailing params.
///
/// `num_params` [`TeeIoctlParam`]s follow it in memory (8-byte aligned as in C).
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlInvokeArg {
    /// In: trusted application command id.
    pub func: u32,
    /// In: the session id.
    pub session: u32,
    /// In: id for [`TEE_IOC_CANCEL`].
    pub cancel_id: u32,
    /// Out: a [`gp`] `TEEC_*` return code.
    pub ret: u32,
    /// Out: a [`gp`] `TEEC_ORIGIN_*` value.
    pub ret_origin: u32,
    /// In: number of params that follow.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoctlInvokeArg>() == 24);

/// `struct tee_ioctl_cancel_arg`: the argument of [`TEE_IOC_CANCEL`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlCancelArg {
    /// The request's cancellation id.
    pub cancel_id: u32,
    /// The session id, or 0 while the session is being opened.
    pub session: u32,
}
const _: () = assert!(size_of::<TeeIoctlCancelArg>() == 8);

/// `struct tee_iocl_supp_recv_arg`: the header of [`TEE_IOC_SUPPL_RECV`]'s
/// buffer, followed by `num_params` [`TeeIoctlParam`]s.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoclSuppRecvArg {
    /// The request's function (`OPTEE_RPC_CMD_*`), out.
    pub func: u32,
    /// Parameters: room in, used out.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoclSuppRecvArg>() == 8);

/// `struct tee_iocl_supp_send_arg`: the header of [`TEE_IOC_SUPPL_SEND`]'s
/// buffer, followed by `num_params` [`TeeIoctlParam`]s.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoclSuppSendArg {
    /// The answer's result (`TEEC_*`).
    pub ret: u32,
    /// Parameters.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoclSuppSendArg>() == 8);

/// `struct tee_ioctl_close_session_arg`: the argument of [`TEE_IOC_CLOSE_SESSION`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlCloseSessionArg {
    /// The session id.
    pub session: u32,
}
const _: () = assert!(size_of::<TeeIoctlCloseSessionArg>() == 4);

/// `struct tee_iocl_supp_recv_arg` without its trailing params.
///
/// `num_params` [`TeeIoctlParam`]s follow it in memory (8-byte aligned as in C).
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlSupplRecvArg {
    /// Out: the supplicant function requested.
    pub func: u32,
    /// In: room for params; out: params received.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoctlSupplRecvArg>() == 8);

/// `struct tee_iocl_supp_send_arg` without its trailing params.
///
/// `num_params` [`TeeIoctlParam`]s follow it in memory (8-byte aligned as in C).
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlSupplSendArg {
    /// In: result of the supplicant function.
    pub ret: u32,
    /// In: number of params that follow.
    pub num_params: u32,
}
const _: () = assert!(size_of::<TeeIoctlSupplSendArg>() == 8);

/// `struct tee_ioctl_shm_register_data`: the argument of [`TEE_IOC_SHM_REGISTER`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlShmRegisterData {
    /// In: user address of the memory.
    pub addr: u64,
    /// In/out: length in bytes.
    pub length: u64,
    /// In: 0; out: `TEE_IOCTL_SHM_*` bits.
    pub flags: u32,
    /// Out: the shared memory id.
    pub id: i32,
}
const _: () = assert!(size_of::<TeeIoctlShmRegisterData>() == 24);

/// `struct tee_ioctl_shm_register_fd_data`: the argument of [`TEE_IOC_SHM_REGISTER_FD`].
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TeeIoctlShmRegisterFdData {
    /// In: the dma-buf fd (from a TEE protected heap).
    pub fd: i64,
    /// Out: size of the registered buffer.
    pub size: u64,
    /// In: 0; out: `TEE_IOCTL_SHM_*` bits.
    pub flags: u32,
    /// Out: the shared memory id.
    pub id: i32,
}
const _: () = assert!(size_of::<TeeIoctlShmRegisterFdData>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_paths() {
        assert_eq!(tee_dev_path(0), TEE_DEV0);
        assert_eq!(teepriv_dev_path(0), TEEPRIV_DEV0);
        assert_eq!(tee_dev_path(12), "/dev/tee12");
        assert_eq!(teepriv_dev_path(3), "/dev/teepriv3");
    }

    #[test]
    fn request_numbers() {
        assert_eq!(TEE_IOC_VERSION, 0x800c_a400);
        assert_eq!(TEE_IOC_SHM_ALLOC, 0xc010_a401);
        assert_eq!(TEE_IOC_OPEN_SESSION, 0x8010_a402);
        assert_eq!(TEE_IOC_INVOKE, 0x8010_a403);
        assert_eq!(TEE_IOC_CANCEL, 0x8008_a404);
        assert_eq!(TEE_IOC_CLOSE_SESSION, 0x8004_a405);
        assert_eq!(TEE_IOC_SUPPL_RECV, 0x8010_a406);
        assert_eq!(TEE_IOC_SUPPL_SEND, 0x8010_a407);
        assert_eq!(TEE_IOC_SHM_REGISTER_FD, 0xc018_a408);
        assert_eq!(TEE_IOC_SHM_REGISTER, 0xc018_a409);
    }

    #[test]
    fn open_session_header_and_params_from_bytes() {
        // A client buffer: header, then one memref param, as libteec lays it out.
        let mut buf = vec![0u8; size_of::<TeeIoctlOpenSessionArg>() + size_of::<TeeIoctlParam>()];
        buf[0] = 0xaa; // uuid[0]
        buf[32..36].copy_from_slice(&TEE_IOCTL_LOGIN_USER.to_ne_bytes());
        buf[52..56].copy_from_slice(&1u32.to_ne_bytes()); // num_params
        buf[56..64].copy_from_slice(&TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT.to_ne_bytes());

        let (hdr, rest) = TeeIoctlOpenSessionArg::read_from_prefix(&buf).unwrap();
        assert_eq!(hdr.uuid[0], 0xaa);
        assert_eq!(hdr.clnt_login, TEE_IOCTL_LOGIN_USER);
        assert_eq!(hdr.num_params, 1);
        let params: Vec<TeeIoctlParam> = rest
            .chunks_exact(size_of::<TeeIoctlParam>())
            .map(|chunk| TeeIoctlParam::read_from_bytes(chunk).unwrap())
            .collect();
        assert_eq!(params.len(), 1);
        let p = params[0];
        assert_eq!(p.attr & TEE_IOCTL_PARAM_ATTR_TYPE_MASK, 7);
        assert_eq!(hdr.as_bytes(), &buf[..56]);
    }
}
