//! A run learns how its session ended, so that a dead daemon never leaves
//! its programs running without a supervisor.
//!
//! The connection that asked for [`Request::Supervise`] stays open on the
//! launcher's side (`teeheap run`); the daemon keeps a copy of it for the
//! session. When the session ends, the daemon writes one last frame on it:
//! [`Reply::SessionEnd`] with `tree_gone` (every process of the run has
//! exited) or `shutdown` (the daemon was stopped on purpose: the programs
//! keep running and their served calls fail with `ENOSYS`, as
//! docs/lifecycle.md says). A daemon that dies — SIGKILL, abort, a session
//! thread that failed — writes nothing, and the launcher reads end-of-file:
//! it then ends the program tree and exits non-zero with a message
//! (crates/teeheap/src/cmd/run.rs).
//!
//! [`Request::Supervise`]: crate::protocol::Request::Supervise

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::Duration;
use teeheap_sync::Recover;

use crate::Shared;
use crate::protocol::{Envelope, Reply, VERSION, write_frame};

/// [`Reply::SessionEnd`] reason: every process of the run has exited.
pub const TREE_GONE: &str = "tree_gone";
/// [`Reply::SessionEnd`] reason: the daemon was shut down on purpose.
pub const SHUTDOWN: &str = "shutdown";

impl Shared {
    /// Keeps `stream` (a copy of the connection asking to supervise `pid`)
    /// until that session ends.
    pub(crate) fn watch_run(&self, pid: i32, stream: UnixStream) {
        self.farewells.lock().recover().insert(pid, stream);
    }

    /// Forgets the connection of `pid` without a last frame (the run was
    /// not taken).
    pub(crate) fn unwatch_run(&self, pid: i32) {
        self.farewells.lock().recover().remove(&pid);
    }

    /// The session of `pid` ended: `gone` if its tree has exited. Writes the
    /// last frame, or nothing when the session failed (the launcher then
    /// ends the program).
    pub(crate) fn end_run(&self, pid: i32, gone: bool) {
        let Some(stream) = self.farewells.lock().recover().remove(&pid) else { return };
        let reason = if gone {
            Some(TREE_GONE)
        } else if self.shutdown.load(Ordering::Relaxed) {
            Some(SHUTDOWN)
        } else {
            tracing::error!(pid, "the session ended without its program tree; the launcher will end it");
            None
        };
        if let Some(reason) = reason {
            let body = Reply::SessionEnd { reason: reason.to_owned() };
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            if let Ok(payload) = serde_json::to_vec(&Envelope { version: VERSION, body: &body }) {
                let _ = write_frame(&stream, &payload, None);
            }
        }
        // The connection thread holds the socket too: end it for both, so
        // that the launcher reads end-of-file now.
        let _ = stream.shutdown(Shutdown::Both);
    }
}
