//! The daemon's process is out of reach of the other processes of its user.
//!
//! It holds the platform's physical memory (protected ranges included) in a
//! memfd and its mapping, and briefly plaintext copies of protected bytes
//! while a TA runs. Linux lets any process of the same uid read and write a
//! *dumpable* process: `/proc/<pid>/fd/N` (open the memfd, read or
//! `pwrite` it), `/proc/<pid>/mem`, `process_vm_readv`/`writev`,
//! `pidfd_getfd` and `ptrace`. A non-dumpable process
//! (`prctl(PR_SET_DUMPABLE, 0)`) is reachable that way only with
//! `CAP_SYS_PTRACE` in its user namespace: root on the host stays out of
//! scope, as everywhere (docs/threat-model.md).
//!
//! The flag is per process and survives `fork` but not `exec`: the programs
//! a run starts are dumpable again (the daemon needs that to serve them),
//! and the launcher's child turns it back on itself where it must write its
//! own `/proc/self/uid_map` (crates/intercept, `devns.rs`). The daemon's own
//! use of `/proc` is unaffected: a process always reaches itself, and what
//! the daemon opens of the programs depends on *their* dumpability.

use std::io;

/// Makes the calling process non-dumpable (see the module documentation).
/// Idempotent.
///
/// # Errors
/// The `prctl` errno (none expected on Linux).
pub fn keep_out_same_uid() -> io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// Whether the calling process is dumpable (`PR_GET_DUMPABLE`).
///
/// # Errors
/// The `prctl` errno.
pub fn is_dumpable() -> io::Result<bool> {
    Ok(rustix::process::dumpable_behavior()? != rustix::process::DumpableBehavior::NotDumpable)
}
