//! `linux/sync_file.h`: ioctls on a sync_file fd (a fence as a file).
//!
//! A sync_file is readable (`POLLIN`) once its fence has signalled. All its
//! ioctls use the type byte [`SYNC_IOC_MAGIC`].

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::{iow, iowr};

/// ioctl type byte of sync_file fds, `'>'`.
pub const SYNC_IOC_MAGIC: u8 = b'>';

/// Length of the name fields, including the terminating NUL.
pub const SYNC_NAME_LEN: usize = 32;

/// Merges two sync files into a new one; takes a [`SyncMergeData`].
pub const SYNC_IOC_MERGE: u32 = iowr(SYNC_IOC_MAGIC, 3, size_of::<SyncMergeData>());
/// Describes a sync file and, on request, each of its fences; takes a
/// [`SyncFileInfo`].
pub const SYNC_IOC_FILE_INFO: u32 = iowr(SYNC_IOC_MAGIC, 4, size_of::<SyncFileInfo>());
/// Hints when the fence should signal (Linux 6.3); takes a [`SyncSetDeadline`].
pub const SYNC_IOC_SET_DEADLINE: u32 = iow(SYNC_IOC_MAGIC, 5, size_of::<SyncSetDeadline>());

/// `struct sync_merge_data`: the argument of [`SYNC_IOC_MERGE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncMergeData {
    /// In: the new sync file's name (cut at 31 bytes).
    pub name: [u8; SYNC_NAME_LEN],
    /// In: the sync file to merge with the one the ioctl is called on.
    pub fd2: i32,
    /// Out: the new sync file fd.
    pub fence: i32,
    /// In: must be 0.
    pub flags: u32,
    /// In: must be 0.
    pub pad: u32,
}
const _: () = assert!(size_of::<SyncMergeData>() == 48);

/// `struct sync_fence_info`: one fence, as [`SYNC_IOC_FILE_INFO`] lists it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncFenceInfo {
    /// The fence's timeline name.
    pub obj_name: [u8; SYNC_NAME_LEN],
    /// The fence's driver name.
    pub driver_name: [u8; SYNC_NAME_LEN],
    /// 1 signalled, 0 active, negative errno on error.
    pub status: i32,
    /// Unused, 0.
    pub flags: u32,
    /// `CLOCK_MONOTONIC` time of signalling in ns, 0 while active.
    pub timestamp_ns: u64,
}
const _: () = assert!(size_of::<SyncFenceInfo>() == 80);

/// `struct sync_file_info`: the argument of [`SYNC_IOC_FILE_INFO`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncFileInfo {
    /// Out: the sync file's name.
    pub name: [u8; SYNC_NAME_LEN],
    /// Out: 1 signalled, 0 active, negative errno on error.
    pub status: i32,
    /// In: must be 0.
    pub flags: u32,
    /// In: room in the `sync_fence_info` array (0: count only); out: the
    /// number of fences.
    pub num_fences: u32,
    /// In: must be 0.
    pub pad: u32,
    /// In: user pointer to `num_fences` [`SyncFenceInfo`]s.
    pub sync_fence_info: u64,
}
const _: () = assert!(size_of::<SyncFileInfo>() == 56);

/// `struct sync_set_deadline`: the argument of [`SYNC_IOC_SET_DEADLINE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncSetDeadline {
    /// `CLOCK_MONOTONIC` deadline in ns.
    pub deadline_ns: u64,
    /// Must be 0.
    pub pad: u64,
}
const _: () = assert!(size_of::<SyncSetDeadline>() == 16);
