//! Typed views of the intercepted syscalls' raw arguments.
//!
//! The values are the caller's, unchecked: a view only says where each
//! argument sits, the daemon validates them like the kernel would.

use teeheap_uapi::ioc;

use crate::target::UserAddr;

/// An ioctl request number, `_IOC(dir, type, nr, size)`; the fields are
/// decoded by [`teeheap_uapi::ioc`], the workspace's one `_IOC` codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoctlCmd(pub u32);

impl IoctlCmd {
    /// `_IOC_DIR`: a mix of [`ioc::IOC_WRITE`] and [`ioc::IOC_READ`].
    pub const fn dir(self) -> u32 {
        ioc::dir(self.0)
    }
    /// `_IOC_TYPE`, the driver's magic byte.
    pub const fn ty(self) -> u8 {
        ioc::ty(self.0)
    }
    /// `_IOC_NR`, the command within the driver.
    pub const fn nr(self) -> u8 {
        ioc::nr(self.0)
    }
    /// `_IOC_SIZE`, the caller's idea of the argument struct's size.
    pub const fn size(self) -> usize {
        ioc::size(self.0)
    }
}

/// `ioctl(fd, cmd, arg)` as the program issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlCall {
    /// The fd number in the calling process (not checked to be open).
    pub fd: i32,
    /// The request, truncated to 32 bits as the kernel does.
    pub cmd: IoctlCmd,
    /// The argument, usually a pointer into the caller.
    pub arg: UserAddr,
}

impl IoctlCall {
    /// Splits raw syscall arguments.
    pub fn from_args(args: &[u64; 6]) -> IoctlCall {
        IoctlCall { fd: args[0] as i32, cmd: IoctlCmd(args[1] as u32), arg: UserAddr(args[2]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioc_fields() {
        // DMA_HEAP_IOCTL_ALLOC = _IOWR('H', 0, 24)
        let alloc = IoctlCmd(0xc018_4800);
        assert_eq!((alloc.dir(), alloc.ty(), alloc.nr(), alloc.size()), (3, b'H', 0, 24));
        // TEE_IOC_VERSION = _IOR(0xa4, 0, 12)
        let v = IoctlCmd(0x800c_a400);
        assert_eq!((v.dir(), v.ty(), v.nr(), v.size()), (ioc::IOC_READ, 0xa4, 0, 12));
    }

    #[test]
    fn ioctl_truncates_request() {
        let c = IoctlCall::from_args(&[5, 0xffff_ffff_c018_4800, 0x7000, 0, 0, 0]);
        assert_eq!(c.cmd.0, 0xc018_4800);
        assert_eq!(c.fd, 5);
        assert_eq!(c.arg, UserAddr(0x7000));
    }
}
