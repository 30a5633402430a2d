//! The kernel model's error: an errno value plus a short reason.
//!
//! Every operation that the kernel would fail with `-EXXX` fails here with an
//! [`Error`] carrying the same [`Errno`]; the reason is for logs and humans,
//! the errno is the contract.

use std::fmt;

/// A Linux errno value (positive), as returned negated by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl Errno {
            $(#[doc = $text] pub const $name: Errno = Errno($value);)*

            /// The symbolic name (`"EINVAL"`), or `"E?"` for a value this
            /// model does not use.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($value => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process (or session).";
    EINTR = 4, "Interrupted.";
    EIO = 5, "I/O error.";
    EBADF = 9, "Bad file descriptor.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    ENODEV = 19, "No such device.";
    EINVAL = 22, "Invalid argument.";
    ENFILE = 23, "Too many open files in system.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Inappropriate ioctl for device.";
    ENOSPC = 28, "No space left on device.";
    ESPIPE = 29, "Illegal seek.";
    EPIPE = 32, "Broken pipe (V4L2: the last buffer was dequeued).";
    ERANGE = 34, "Result out of range.";
    ENOSYS = 38, "Function not implemented.";
    EOPNOTSUPP = 95, "Operation not supported.";
    ETIMEDOUT = 110, "Timed out.";
}

impl Errno {
    /// The raw positive value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The errno with raw value `v`.
    pub const fn from_raw(v: i32) -> Errno {
        Errno(v)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// An error of the kernel model: an errno and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", errno.name())]
pub struct Error {
    errno: Errno,
    reason: &'static str,
}

impl Error {
    /// An error with `errno` and a short static `reason`.
    pub const fn new(errno: Errno, reason: &'static str) -> Error {
        Error { errno, reason }
    }

    /// The errno a caller of the real kernel would see.
    pub const fn errno(&self) -> Errno {
        self.errno
    }

    /// Why, for logs.
    pub const fn reason(&self) -> &'static str {
        self.reason
    }
}

/// `EINVAL` with a reason.
pub const fn einval(reason: &'static str) -> Error {
    Error::new(Errno::EINVAL, reason)
}

/// `ENOMEM` with a reason.
pub const fn enomem(reason: &'static str) -> Error {
    Error::new(Errno::ENOMEM, reason)
}

/// `EFAULT` with a reason.
pub const fn efault(reason: &'static str) -> Error {
    Error::new(Errno::EFAULT, reason)
}

/// The model's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(Errno::EINVAL.raw(), 22);
        assert_eq!(Errno::ENOTTY.name(), "ENOTTY");
        assert_eq!(Errno::from_raw(9999).name(), "E?");
        let e = einval("fd must be 0");
        assert_eq!(e.errno(), Errno::EINVAL);
        assert_eq!(e.to_string(), "EINVAL: fd must be 0");
    }
}
