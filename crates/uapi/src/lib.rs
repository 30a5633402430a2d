//! Byte-exact Linux UAPI for teeheap: the `#[repr(C)]` argument structs and
//! ioctl request numbers of `linux/dma-heap.h`, `linux/dma-buf.h`, `linux/sync_file.h`,
//! `linux/tee.h`, and subsets of `linux/videodev2.h` (V4L2 codecs) and
//! `drm/drm.h`/`drm_mode.h` (GEM, PRIME, KMS).
//!
//! This crate holds layouts and numbers only. Every struct derives the
//! `zerocopy` traits so that the layers above turn a client's bytes into a
//! value (and back) without `unsafe`; validation is their job, not ours.
#![forbid(unsafe_code)]

pub mod dma_buf;
pub mod dma_heap;
pub mod drm;
pub mod ioc;
pub mod sync_file;
pub mod tee;
pub mod v4l2;
