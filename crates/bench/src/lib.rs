//! Helpers of teeheap's benchmarks (issue 7); the measurements themselves
//! are the criterion benches in `benches/`, and their results BENCHMARKS.md.
//!
//! - [`bitmap`]: a genalloc-style page bitmap with first fit, the peer that
//!   stands for the kernel's own static protected pool;
//! - [`trace`]: allocation traces of the video, trusted-UI and random
//!   workloads, and the exact-hole-reuse case;
//! - [`replay`]: one interface over teeheap's allocator and its peers, and
//!   the replay that measures failures and fragmentation;
//! - [`counting`]: a counting global allocator for metadata bytes.

pub mod bitmap;
pub mod counting;
pub mod replay;
pub mod trace;
