//! The process a host-built trusted application runs in.
//!
//! A TA is a shared object named `<uuid>.ta`, built against the dev kit's
//! GP TEE Internal Core API headers. The secure world starts one process per
//! TA instance (`teeheap __ta-runner PATH`, socket on standard input); that
//! process loads the TA, enters its sandbox ([`sandbox`]: seccomp
//! allow-list, no files, no network, no other processes) and serves calls
//! over [`wire`]. Memref parameters are windows of platform memory mapped
//! for the duration of a call. This crate is the edge with `unsafe`: the
//! loader, the mappings, the seccomp filter and the C functions a TA calls.

pub mod api;
pub mod crypto;
pub mod property;
pub mod runner;
mod sandbox;
pub mod wire;

/// The dev kit: headers and the file every TA is built with.
pub mod devkit;

/// Keeps the exported GP API functions in a binary that runs TAs (call it
/// from `main`, and link the binary with `-rdynamic`).
pub fn exports() -> usize {
    std::hint::black_box(api::EXPORTS).len()
        + std::hint::black_box(crypto::EXPORTS).len()
        + std::hint::black_box(property::EXPORTS).len()
}
