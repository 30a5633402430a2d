//! Finding and asking the running daemon: `--socket PATH`, else
//! `$TEEHEAP_SOCKET`, else the default socket (the one `teeheap serve`
//! picks in the same environment).

use std::io;
use std::path::{Path, PathBuf};

use teeheap_daemon::paths::{SOCKET_ENV, default_socket};
use teeheap_daemon::protocol::Client;

use super::Source;

/// How the socket was chosen, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// `--socket PATH`.
    Option,
    /// `$TEEHEAP_SOCKET`.
    Env,
    /// The default socket.
    Default,
}

/// The socket a command asks.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Its path.
    pub(crate) path: PathBuf,
    /// How it was chosen.
    pub(crate) via: Via,
}

impl Target {
    /// `--socket`, else `$TEEHEAP_SOCKET` (if not empty), else the default.
    pub(crate) fn resolve(option: Option<&Path>) -> Target {
        if let Some(p) = option {
            return Target { path: p.to_owned(), via: Via::Option };
        }
        match std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()) {
            Some(p) => Target { path: PathBuf::from(p), via: Via::Env },
            None => Target { path: default_socket(), via: Via::Default },
        }
    }

    /// `/path (from TEEHEAP_SOCKET)`.
    pub(crate) fn describe(&self) -> String {
        let how = match self.via {
            Via::Option => "given by --socket".to_owned(),
            Via::Env => format!("from {SOCKET_ENV}"),
            Via::Default => "the default socket".to_owned(),
        };
        format!("{} ({how})", self.path.display())
    }

    /// Connects, or says which socket did not answer and what to do.
    pub(crate) fn connect(&self) -> anyhow::Result<(Client, Source)> {
        match Client::connect(&self.path) {
            Ok(c) => Ok((c, Source::Daemon { socket: self.path.clone() })),
            Err(e) => Err(self.no_daemon(&e)),
        }
    }

    /// The error for a socket nobody answers on.
    pub(crate) fn no_daemon(&self, e: &io::Error) -> anyhow::Error {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no such socket".to_owned(),
            io::ErrorKind::ConnectionRefused => "nobody listens on it (a daemon that stopped)".to_owned(),
            io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        let serve = match self.via {
            Via::Default => "`teeheap serve`".to_owned(),
            _ => format!("`teeheap serve --socket {}`", self.path.display()),
        };
        anyhow::anyhow!(
            "no daemon answers at {}: {why}; start one with {serve}, or ask from a program under `teeheap run`",
            self.describe()
        )
    }
}

/// A connection to the daemon of [`Target::resolve`], for commands that
/// need one, and the source line of what it answers.
pub(crate) fn connect(option: Option<&Path>) -> anyhow::Result<(Client, Source)> {
    Target::resolve(option).connect()
}
