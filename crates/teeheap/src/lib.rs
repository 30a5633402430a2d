//! teeheap as a library: run a program against an emulated platform from a
//! test and look at what it did.
//!
//! [`Run`] boots a platform (the embedded default, or any
//! [`PlatformConfig`]) in a private daemon inside the calling process,
//! starts the program with `/dev/dma_heap/*`, `/dev/tee0` and
//! `/dev/teepriv0` served to it — exactly as `teeheap run` does — and
//! returns its exit status. [`Running`] keeps the daemon alive after the
//! program exits, so a test can ask what is left: live buffers and who
//! holds them ([`Bufinfo`]), heap and per-process counters ([`Stat`]), the
//! heaps ([`Listing`]), firewall violations and lifecycle events ([`Log`]).
//! These are the same values `teeheap bufinfo|stat|ls|log --json` print.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//!
//! // The program under test allocates from /dev/dma_heap/* and exits.
//! let mut cmd = Command::new("./my-player");
//! cmd.arg("--input").arg("movie.mp4");
//! let mut run = teeheap::Run::default().command(cmd).spawn()?;
//! let status = run.wait()?;
//! assert!(status.success());
//! // Everything it allocated was released when it exited.
//! assert!(run.wait_for_no_buffers(Duration::from_secs(5)));
//! assert_eq!(run.stat().heaps.iter().map(|h| h.failures.values().sum::<u64>()).sum::<u64>(), 0);
//! # Ok::<(), teeheap::Error>(())
//! ```
//!
//! Needs what `teeheap run` needs: Linux 5.19 or later with seccomp user
//! notification, and unprivileged user namespaces when not root (see the
//! README's requirements).

#![forbid(unsafe_code)]

mod harness;
mod launch;

use std::io;
use std::path::PathBuf;

pub use harness::{Run, Running};
pub use launch::{start, start_supervised, start_with_admin};
pub use teeheap_daemon::protocol::{HeapRow, Listing};
pub use teeheap_daemon::report::{BufRow, Bufinfo, ClientUsage, Event, HeapStat, Holder, Log, MemoryMap, Stat};
pub use teeheap_platform::{ByteSize, PlatformConfig};

/// The annotated platform description that `teeheap default-config --full`
/// prints: every key, its default and what it does. Parses to the
/// embedded default platform.
pub const ANNOTATED_DEFAULT_CONFIG: &str = include_str!("annotated-default.toml");

/// Errors of starting a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform description is inconsistent, or its memory cannot be
    /// mapped.
    #[error("cannot boot the platform: {0}")]
    Platform(#[from] teeheap_platform::PlatformError),
    /// The daemon could not start (backend probe, threads, socket).
    #[error("cannot start the daemon: {0}")]
    DaemonStart(#[from] teeheap_daemon::DaemonError),
    /// No daemon answers at the socket.
    #[error("cannot reach the daemon at {}: {source}", socket.display())]
    Connect {
        /// The socket tried.
        socket: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// The daemon refused or answered something unexpected.
    #[error("the daemon did not take the program: {0}")]
    Daemon(#[from] teeheap_daemon::protocol::ClientError),
    /// The program could not be started: `source.kind()` is `NotFound`
    /// for a missing program, `PermissionDenied` for one that is not
    /// executable; `EPERM`/`EINVAL` from the set-up mean user namespaces
    /// or seccomp user notification are not available.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The program as given.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The program's private `/dev` could not be prepared or seen.
    #[error("cannot prepare the program's /dev: {0}")]
    Dev(io::Error),
    /// No command was given to [`Run::command`].
    #[error("no command given (Run::command)")]
    NoCommand,
    /// A host resource (temporary directory, wait) failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}
