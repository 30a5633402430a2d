//! `linux/dma-heap.h`: allocating a dma-buf from a heap under `/dev/dma_heap`.
//!
//! One ioctl, [`DMA_HEAP_IOCTL_ALLOC`], taking a [`DmaHeapAllocationData`].

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::iowr;

/// Directory that holds one character device per heap.
pub const DMA_HEAP_DEV_DIR: &str = "/dev/dma_heap";

/// `O_CLOEXEC` on Linux x86_64 and aarch64.
pub const O_CLOEXEC: u32 = 0o2_000_000;
/// `O_ACCMODE` (the `O_RDONLY`/`O_WRONLY`/`O_RDWR` bits) on Linux.
pub const O_ACCMODE: u32 = 0o3;

/// The only bits allowed in [`DmaHeapAllocationData::fd_flags`].
pub const DMA_HEAP_VALID_FD_FLAGS: u32 = O_CLOEXEC | O_ACCMODE;
/// The only bits allowed in [`DmaHeapAllocationData::heap_flags`] (none).
pub const DMA_HEAP_VALID_HEAP_FLAGS: u64 = 0;

/// ioctl type byte of dma-heap devices, `'H'`.
pub const DMA_HEAP_IOC_MAGIC: u8 = b'H';

/// Allocates a buffer; returns the argument with `fd` set to a new dma-buf.
pub const DMA_HEAP_IOCTL_ALLOC: u32 = iowr(DMA_HEAP_IOC_MAGIC, 0, size_of::<DmaHeapAllocationData>());

/// `struct dma_heap_allocation_data`: the argument of [`DMA_HEAP_IOCTL_ALLOC`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaHeapAllocationData {
    /// In: size of the buffer in bytes.
    pub len: u64,
    /// Out: the new dma-buf fd; must be 0 on input.
    pub fd: u32,
    /// In: open flags of the new fd, within [`DMA_HEAP_VALID_FD_FLAGS`].
    pub fd_flags: u32,
    /// In: heap-specific flags, within [`DMA_HEAP_VALID_HEAP_FLAGS`].
    pub heap_flags: u64,
}
const _: () = assert!(size_of::<DmaHeapAllocationData>() == 24);
