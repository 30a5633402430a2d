//! `teeheap run -- prog args…`: runs a program with the heaps and the TEE
//! served to it, from a private daemon (a thread of this process) or from
//! the daemon at `--connect`.
//!
//! Both modes are one design: this process launches the program under
//! interception, then sends the seccomp listener over the daemon's control
//! socket (`SCM_RIGHTS`); the daemon supervises the program. The program
//! sees `TEEHEAP_SOCKET`, so `teeheap ls` inside it asks the same daemon.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use teeheap_daemon::paths::private_run_dir;
use teeheap_daemon::{Daemon, DaemonConfig};

/// Removes the run's private socket directory on the way out.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `argv` and returns its exit status (a signal `n` as `128 + n`).
pub(crate) fn run(
    config: Option<&Path>,
    connect: Option<&Path>,
    allow_admin: bool,
    argv: &[OsString],
) -> anyhow::Result<ExitCode> {
    let Some((prog, args)) = argv.split_first() else { bail!("no program given (teeheap run -- PROG ARGS…)") };
    // The private daemon lives until the program is gone.
    let mut private: Option<(Daemon, RunDir)> = None;
    let socket = match connect {
        Some(s) => s.to_owned(),
        None => {
            let dir = RunDir(private_run_dir().context("cannot make a private socket directory")?);
            let sock = dir.0.join("teeheap.sock");
            let mut d = Daemon::start(&DaemonConfig { platform: config.map(Path::to_owned) })?;
            d.listen(&sock)?;
            private = Some((d, dir));
            sock
        }
    };
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT]).context("cannot install signal handlers")?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    let mut child = teeheap::start_with_admin(&socket, cmd, allow_admin)?;
    let pid = child.id() as i32;
    // Forward terminal and service signals to the program.
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(
                    p,
                    rustix::process::Signal::from_named_raw(sig).unwrap_or(rustix::process::Signal::TERM),
                );
            }
        }
    });
    let status = child.wait().context("waiting for the program")?;
    handle.close();
    let _ = forward.join();
    if let Some((d, _dir)) = private {
        d.shutdown();
    }
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
