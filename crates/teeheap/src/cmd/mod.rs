//! The subcommands.

pub(crate) mod bufinfo;
pub(crate) mod client;
pub(crate) mod crc;
pub(crate) mod demo;
pub(crate) mod devmem;
pub(crate) mod generate;
pub(crate) mod lifecycle;
pub(crate) mod log;
pub(crate) mod ls;
pub(crate) mod map;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod stat;
pub(crate) mod svg;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use teeheap_daemon::backend::Host;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_platform::{Platform, PlatformConfig};
use teeheap_secure_world::SecureWorld;

/// A booted platform with its kernel model and backend.
pub(crate) struct System {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) backend: Option<OpteeBackend<SecureWorld>>,
}

/// Boots the platform described by `config` (the embedded default when
/// `None`) with the OP-TEE-style backend and its secure world bound.
pub(crate) fn boot(config: Option<&Path>) -> anyhow::Result<System> {
    let platform = match config {
        Some(path) => platform(path)?,
        None => Platform::new(PlatformConfig::embedded_default()).context("cannot boot the built-in platform")?,
    };
    let kernel = Kernel::boot(Arc::new(platform));
    let host = Host::boot(&kernel).map_err(|e| match config {
        Some(path) => anyhow::anyhow!("{}: the secure world refused its [tee] settings: {e}", path.display()),
        None => anyhow::anyhow!("the secure world refused the built-in platform: {e}"),
    })?;
    let backend = OpteeBackend::probe(&kernel, Arc::clone(host.world()), host.optee_config())
        .map_err(|e| anyhow::anyhow!("the TEE backend's probe failed: {e}"))?;
    Ok(System { kernel, backend: Some(backend) })
}

/// The platform of the description at `path`; every error names the file.
pub(crate) fn platform(path: &Path) -> anyhow::Result<Platform> {
    Platform::new(load(path)?).map_err(|e| anyhow::anyhow!("{}: cannot boot this platform: {e}", path.display()))
}

/// The one address format of every report: `0x` and at least nine hex
/// digits (a 36-bit physical address space lines up in columns), as the
/// platform's `PhysAddr` prints.
pub(crate) fn addr(a: u64) -> String {
    format!("{a:#011x}")
}

/// A half-open range `[start..end)` in the address format of [`addr`].
pub(crate) fn range(start: u64, end: u64) -> String {
    format!("[{}..{})", addr(start), addr(end))
}

/// `1 buffer`, `2 buffers`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1536 MiB`-style sizes for tables.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift {
            let v = bytes as f64 / (1u64 << shift) as f64;
            return if v.fract() == 0.0 { format!("{v:.0} {name}") } else { format!("{v:.1} {name}") };
        }
    }
    format!("{bytes} B")
}

/// Reads the platform description at `path`; every error names the file.
pub(crate) fn load(path: &Path) -> anyhow::Result<PlatformConfig> {
    use teeheap_platform::config::ConfigError;
    PlatformConfig::load(path).map_err(|e| match e {
        ConfigError::Io { source, .. } => {
            anyhow::anyhow!("cannot read the platform description {}: {source}", path.display())
        }
        other => anyhow::anyhow!("{}: {other}", path.display()),
    })
}

/// Where an observing command's data comes from, as its text and JSON
/// output say (`"source"`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Source {
    /// A running daemon, at this socket.
    Daemon {
        /// The control socket asked.
        socket: PathBuf,
    },
    /// A platform booted by this command alone: no daemon, no program on it.
    Fresh {
        /// The platform description, `None` for the built-in default.
        config: Option<PathBuf>,
    },
}

impl Source {
    /// The first line of a text report.
    pub(crate) fn line(&self) -> String {
        match self {
            Source::Daemon { socket } => format!("source: the daemon at {}", socket.display()),
            Source::Fresh { config: None } => "source: a fresh platform (built-in default), no daemon".to_owned(),
            Source::Fresh { config: Some(p) } => {
                format!("source: a fresh platform ({}), no daemon", p.display())
            }
        }
    }
}

/// A JSON document: its schema name and version, its source, then the
/// body's own fields (docs/observability.md lists the schemas).
#[derive(Serialize)]
pub(crate) struct Doc<'a, T: Serialize> {
    /// `teeheap-ls/1` ...: the command and the version of its shape.
    pub(crate) schema: &'static str,
    /// Where the data comes from.
    pub(crate) source: &'a Source,
    /// The body.
    #[serde(flatten)]
    pub(crate) body: &'a T,
}

impl<'a, T: Serialize> Doc<'a, T> {
    /// Pretty JSON (one document) or one line (JSON Lines).
    pub(crate) fn print(schema: &'static str, source: &'a Source, body: &'a T, pretty: bool) -> anyhow::Result<()> {
        let doc = Doc { schema, source, body };
        let text = if pretty { serde_json::to_string_pretty(&doc)? } else { serde_json::to_string(&doc)? };
        println!("{text}");
        Ok(())
    }
}

/// Restores the default action of `SIGPIPE` (the Rust runtime ignores it),
/// so that a report written into a closed pipe (`teeheap ls | head -1`)
/// ends the process quietly, as for any Unix filter, instead of failing a
/// write. Only for commands that print and exit: `serve` and `run` keep
/// ignoring it, since their daemon writes to clients' sockets.
pub(crate) fn quiet_on_closed_pipe() {
    teeheap_intercept::sigpipe::restore_default();
}

/// The error as one line: each cause once (a cause whose text the message
/// already contains is not repeated).
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

/// The exit status for a failed command: 127 when the program of
/// `teeheap run` does not exist, 126 when it cannot be executed (as a
/// shell does), else 1.
pub(crate) fn exit_code(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<teeheap::Error>() {
        Some(teeheap::Error::Start { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            ExitCode::from(127)
        }
        Some(teeheap::Error::Start { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            ExitCode::from(126)
        }
        _ => ExitCode::FAILURE,
    }
}
