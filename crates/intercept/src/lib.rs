//! The interception edge of teeheap: how an unmodified program's syscalls
//! reach the daemon, and how the daemon's answers reach the program.
//!
//! The mechanism is described in `docs/serving.md`. In short:
//! - [`filter`] builds the seccomp filter: ioctls whose type byte is `'H'`,
//!   `'b'`, `'>'`, `0xa4`, `'d'` or `'V'`, and `MAP_SHARED` mmaps of files, go to a supervisor via
//!   seccomp user notification; everything else runs natively.
//! - [`launch`] starts a program with that filter (and optionally a private
//!   `/dev` that holds the heap and TEE nodes) and hands back the listener.
//! - [`notify`] is the supervisor side: receive, check, answer, install fds.
//! - [`sentinel`] ends a program tree whose supervisor was killed;
//!   [`sigpipe`] gives commands that print the default `SIGPIPE` back.
//! - [`ns`] names namespaces and socket peers: which run a process is in.
//! - [`target`] reads and writes the program's memory behind ioctl pointers.
//! - [`tag`] names an open file description (a TEE context) by an OFD lock;
//!   [`fanotify`] answers opens of single inodes (`/dev/teepriv0`: `EBUSY`).
//! - [`memfd`] makes the file a program gets for a buffer, [`signal`] the
//!   one it gets for a sync_file, and [`watch`] reports when the last
//!   reference to such a file is gone.
//!
//! Every `unsafe` block of teeheap's serving path lives in this crate.

pub mod arch;
pub mod devns;
pub mod fanotify;
pub mod filter;
pub mod launch;
pub mod memfd;
pub mod nofile;
pub mod notify;
pub mod ns;
pub mod request;
pub mod sentinel;
pub mod signal;
pub mod sigpipe;
pub mod tag;
pub mod target;
pub mod watch;

pub use rustix::io::Errno;

/// Result with the kernel's errno as the error, as everywhere at the UAPI edge.
pub type Result<T> = core::result::Result<T, Errno>;

/// The errno of the last failed libc call.
pub(crate) fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}
