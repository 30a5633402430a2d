//! `teeheap run -- prog args…`: runs a program with the heaps and the TEE
//! served to it, from a private daemon (a thread of this process) or from
//! the daemon at `--connect`.
//!
//! Both modes are one design: this process launches the program under
//! interception, then sends the seccomp listener over the daemon's control
//! socket (`SCM_RIGHTS`); the daemon supervises the program. The program
//! sees `TEEHEAP_SOCKET`, so `teeheap ls` inside it asks the same daemon.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use teeheap_daemon::paths::{SOCKET_ENV, private_run_dir};
use teeheap_daemon::protocol::{Client, NodeId, Reply, Request, unexpected};
use teeheap_daemon::{Daemon, DaemonConfig};
use teeheap_intercept::devns::DevNodes;
use teeheap_intercept::launch::Launch;
use teeheap_intercept::memfd::FileId;

/// Removes the run's private socket directory on the way out.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The inodes of the program's nodes, or `None` if it exited first (a
/// dying program's `/proc/<pid>/root` vanishes before it can be reaped).
fn node_ids(dev: &DevNodes, child: &mut Child) -> anyhow::Result<Option<Vec<(String, FileId)>>> {
    let t0 = Instant::now();
    loop {
        match dev.node_ids(child.id() as i32) {
            Ok(ids) => return Ok(Some(ids)),
            Err(_) if child.try_wait().ok().flatten().is_some() => return Ok(None),
            Err(e) if t0.elapsed() > Duration::from_secs(2) => bail!("cannot see the program's /dev: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Runs `argv` and returns its exit status (a signal `n` as `128 + n`).
pub(crate) fn run(config: Option<&Path>, connect: Option<&Path>, argv: &[OsString]) -> anyhow::Result<ExitCode> {
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
    let mut client =
        Client::connect(&socket).with_context(|| format!("cannot reach the daemon at {}", socket.display()))?;
    let nodes = match client.request(&Request::Hello, None)? {
        Reply::Hello { nodes, .. } => nodes,
        other => return Err(unexpected(&other).into()),
    };
    let mut dev = DevNodes::new();
    for n in &nodes {
        dev = dev.node(n).map_err(|e| anyhow::anyhow!("bad node path {n:?} from the daemon: {e}"))?;
    }
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT]).context("cannot install signal handlers")?;
    let launched = Launch::new(prog)
        .args(args)
        .env(SOCKET_ENV, &socket)
        .dev_nodes(dev.clone())
        .spawn()
        .with_context(|| format!("cannot start {}", prog.to_string_lossy()))?;
    let mut child = launched.child;
    let pid = child.id() as i32;
    let supervised = match node_ids(&dev, &mut child) {
        Ok(Some(ids)) => {
            let nodes = ids.into_iter().map(|(path, id)| NodeId { path, dev: id.dev, ino: id.ino }).collect();
            let req = Request::Supervise { pid, nodes };
            client.request(&req, Some(launched.listener.as_fd())).map(drop).map_err(anyhow::Error::from)
        }
        // Gone before its /dev could be seen: there is nothing to serve.
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    drop(launched.listener);
    if let Err(e) = supervised {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.context("the daemon did not take the program"));
    }
    drop(client);
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
