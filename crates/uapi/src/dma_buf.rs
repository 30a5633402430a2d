//! `linux/dma-buf.h`: ioctls on a dma-buf fd (CPU sync, naming, sync files).
//!
//! All of them use the type byte [`DMA_BUF_BASE`].

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::{iow, iowr};

/// ioctl type byte of dma-buf fds, `'b'`.
pub const DMA_BUF_BASE: u8 = b'b';

/// Longest buffer name, including the terminating NUL.
pub const DMA_BUF_NAME_LEN: usize = 32;

/// Sync flag: the CPU reads the buffer.
pub const DMA_BUF_SYNC_READ: u64 = 1;
/// Sync flag: the CPU writes the buffer.
pub const DMA_BUF_SYNC_WRITE: u64 = 2;
/// Sync flag: the CPU reads and writes the buffer.
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
/// Sync flag: CPU access begins (the value 0).
pub const DMA_BUF_SYNC_START: u64 = 0;
/// Sync flag: CPU access ends.
pub const DMA_BUF_SYNC_END: u64 = 4;
/// Every bit allowed in [`DmaBufSync::flags`]; any other is `EINVAL`.
pub const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;

/// Brackets CPU access to the buffer; takes a [`DmaBufSync`].
pub const DMA_BUF_IOCTL_SYNC: u32 = iow(DMA_BUF_BASE, 0, size_of::<DmaBufSync>());
/// Sets the buffer's name; the argument is a user pointer (`const char *`).
pub const DMA_BUF_SET_NAME: u32 = iow(DMA_BUF_BASE, 1, size_of::<*const u8>());
/// [`DMA_BUF_SET_NAME`] as encoded with a 32-bit pointer size.
pub const DMA_BUF_SET_NAME_A: u32 = iow(DMA_BUF_BASE, 1, size_of::<u32>());
/// [`DMA_BUF_SET_NAME`] as encoded with a 64-bit pointer size.
pub const DMA_BUF_SET_NAME_B: u32 = iow(DMA_BUF_BASE, 1, size_of::<u64>());
/// Exports the buffer's fences as a sync file; takes a [`DmaBufExportSyncFile`].
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 = iowr(DMA_BUF_BASE, 2, size_of::<DmaBufExportSyncFile>());
/// Adds a sync file's fence to the buffer; takes a [`DmaBufImportSyncFile`].
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 = iow(DMA_BUF_BASE, 3, size_of::<DmaBufImportSyncFile>());

/// `struct dma_buf_sync`: the argument of [`DMA_BUF_IOCTL_SYNC`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaBufSync {
    /// `DMA_BUF_SYNC_*` bits, within [`DMA_BUF_SYNC_VALID_FLAGS_MASK`].
    pub flags: u64,
}
const _: () = assert!(size_of::<DmaBufSync>() == 8);

/// `struct dma_buf_export_sync_file`: the argument of [`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaBufExportSyncFile {
    /// In: `DMA_BUF_SYNC_READ`/`WRITE`, which fences to export.
    pub flags: u32,
    /// Out: the new sync file fd.
    pub fd: i32,
}
const _: () = assert!(size_of::<DmaBufExportSyncFile>() == 8);

/// `struct dma_buf_import_sync_file`: the argument of [`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaBufImportSyncFile {
    /// In: `DMA_BUF_SYNC_READ`/`WRITE`, how to add the fence.
    pub flags: u32,
    /// In: the sync file fd.
    pub fd: i32,
}
const _: () = assert!(size_of::<DmaBufImportSyncFile>() == 8);
