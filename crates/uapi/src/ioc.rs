//! Encoding of ioctl request numbers, as the kernel's `_IOC` family does it.
//!
//! A request is `dir << 30 | size << 16 | type << 8 | nr`; the constructors
//! are `const fn` so that every request number in this crate is a constant.

/// Direction bits: the ioctl carries no argument.
pub const IOC_NONE: u32 = 0;
/// Direction bit: user space writes the argument (the kernel reads it).
pub const IOC_WRITE: u32 = 1;
/// Direction bit: user space reads the argument (the kernel writes it).
pub const IOC_READ: u32 = 2;

/// Width of the `nr` field in bits.
pub const IOC_NRBITS: u32 = 8;
/// Width of the `type` field in bits.
pub const IOC_TYPEBITS: u32 = 8;
/// Width of the `size` field in bits.
pub const IOC_SIZEBITS: u32 = 14;
/// Width of the `dir` field in bits.
pub const IOC_DIRBITS: u32 = 2;

/// Bit position of the `nr` field.
pub const IOC_NRSHIFT: u32 = 0;
/// Bit position of the `type` field.
pub const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
/// Bit position of the `size` field.
pub const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
/// Bit position of the `dir` field.
pub const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

const IOC_SIZEMASK: u32 = (1 << IOC_SIZEBITS) - 1;
const IOC_DIRMASK: u32 = (1 << IOC_DIRBITS) - 1;

/// Builds a request number from its four fields (`_IOC`).
///
/// Panics (at compile time when used in a constant) if `dir` does not fit
/// in 2 bits or `size` does not fit in 14 bits.
///
/// ```
/// use teeheap_uapi::ioc::{ioc, IOC_READ, IOC_WRITE};
/// assert_eq!(ioc(IOC_READ | IOC_WRITE, b'H', 0, 24), 0xc018_4800);
/// ```
///
/// ```compile_fail
/// use teeheap_uapi::ioc::{ioc, IOC_WRITE};
/// const TOO_BIG: u32 = ioc(IOC_WRITE, b'x', 0, 1 << 14);
/// ```
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(dir <= IOC_DIRMASK, "ioctl direction must fit in 2 bits");
    assert!(size <= IOC_SIZEMASK as usize, "ioctl argument size must fit in 14 bits");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// A request without an argument (`_IO`).
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// A request whose argument the kernel writes back (`_IOR`).
pub const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// A request whose argument the kernel reads (`_IOW`).
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// A request whose argument goes both ways (`_IOWR`).
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// The direction bits of a request (`_IOC_DIR`).
pub const fn dir(cmd: u32) -> u32 {
    (cmd >> IOC_DIRSHIFT) & IOC_DIRMASK
}

/// The type (magic) byte of a request (`_IOC_TYPE`).
pub const fn ty(cmd: u32) -> u8 {
    (cmd >> IOC_TYPESHIFT) as u8
}

/// The command number within its type (`_IOC_NR`).
pub const fn nr(cmd: u32) -> u8 {
    (cmd >> IOC_NRSHIFT) as u8
}

/// The argument size in bytes (`_IOC_SIZE`).
pub const fn size(cmd: u32) -> usize {
    ((cmd >> IOC_SIZESHIFT) & IOC_SIZEMASK) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes, compares with the known number, then decodes it back.
    fn check(cmd: u32, expected: u32, d: u32, t: u8, n: u8, s: usize) {
        assert_eq!(cmd, expected, "encoded {cmd:#x}, want {expected:#x}");
        assert_eq!(dir(cmd), d);
        assert_eq!(ty(cmd), t);
        assert_eq!(nr(cmd), n);
        assert_eq!(size(cmd), s);
    }

    #[test]
    fn known_numbers() {
        // DMA_HEAP_IOCTL_ALLOC
        check(iowr(b'H', 0, 24), 0xc018_4800, 3, b'H', 0, 24);
        // DMA_BUF_IOCTL_SYNC
        check(iow(b'b', 0, 8), 0x4008_6200, IOC_WRITE, b'b', 0, 8);
        // DMA_BUF_SET_NAME_A / _B
        check(iow(b'b', 1, 4), 0x4004_6201, IOC_WRITE, b'b', 1, 4);
        check(iow(b'b', 1, 8), 0x4008_6201, IOC_WRITE, b'b', 1, 8);
        // TEE_IOC_VERSION
        check(ior(0xa4, 0, 12), 0x800c_a400, IOC_READ, 0xa4, 0, 12);
        // TEE_IOC_OPEN_SESSION
        check(ior(0xa4, 2, 16), 0x8010_a402, IOC_READ, 0xa4, 2, 16);
        // TEE_IOC_SHM_REGISTER
        check(iowr(0xa4, 9, 24), 0xc018_a409, 3, 0xa4, 9, 24);
        // _IO('T', 9): no direction and no size (the value of TCSBRK)
        check(io(b'T', 9), 0x0000_5409, IOC_NONE, b'T', 9, 0);
    }

    #[test]
    fn field_extremes_round_trip() {
        let max = ioc(3, 0xff, 0xff, (1 << 14) - 1);
        check(max, 0xffff_ffff, 3, 0xff, 0xff, (1 << 14) - 1);
        check(ioc(0, 0, 0, 0), 0, 0, 0, 0, 0);
        // Each field lands in its own bits and no other.
        check(ioc(0, 0, 1, 0), 1, 0, 0, 1, 0);
        check(ioc(0, 1, 0, 0), 1 << 8, 0, 1, 0, 0);
        check(ioc(0, 0, 0, 1), 1 << 16, 0, 0, 0, 1);
        check(ioc(1, 0, 0, 0), 1 << 30, 1, 0, 0, 0);
    }

    #[test]
    fn field_layout_constants() {
        assert_eq!(IOC_TYPESHIFT, 8);
        assert_eq!(IOC_SIZESHIFT, 16);
        assert_eq!(IOC_DIRSHIFT, 30);
        assert_eq!(IOC_DIRSHIFT + IOC_DIRBITS, 32);
    }

    #[test]
    #[should_panic(expected = "14 bits")]
    fn oversized_argument_panics() {
        let size = std::hint::black_box(1usize << 14);
        let _ = ioc(IOC_WRITE, b'x', 0, size);
    }

    #[test]
    #[should_panic(expected = "2 bits")]
    fn oversized_direction_panics() {
        let d = std::hint::black_box(4);
        let _ = ioc(d, b'x', 0, 0);
    }
}
