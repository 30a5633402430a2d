//! The native syscall ABI the filter is written for.
//!
//! Only the build target's own ABI is served; syscalls of any other ABI
//! (i386 or x32 programs on x86_64) run natively and are not intercepted.

/// `AUDIT_ARCH_*` value of the native ABI, as seen in `seccomp_data.arch`.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xc000_003e;
/// `AUDIT_ARCH_*` value of the native ABI, as seen in `seccomp_data.arch`.
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Bit that marks an x32 syscall number on x86_64.
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall number of the native ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sysno(pub u32);

impl Sysno {
    /// `ioctl(2)`.
    pub const IOCTL: Sysno = Sysno(libc::SYS_ioctl as u32);
    /// `mmap(2)`.
    pub const MMAP: Sysno = Sysno(libc::SYS_mmap as u32);
    /// `lseek(2)`.
    pub const LSEEK: Sysno = Sysno(libc::SYS_lseek as u32);
    /// `openat(2)`.
    pub const OPENAT: Sysno = Sysno(libc::SYS_openat as u32);
    /// `getppid(2)`, handy as a syscall nobody serves.
    pub const GETPPID: Sysno = Sysno(libc::SYS_getppid as u32);
}
