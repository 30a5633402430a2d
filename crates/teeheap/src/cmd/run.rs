//! `teeheap run -- prog args…`: runs a program with the heaps and the TEE
//! served to it, from a private daemon (a thread of this process) or from
//! the daemon at `--socket` (`--connect` is an older name). An inherited
//! `TEEHEAP_SOCKET` is not used: `--daemon` says to.
//!
//! Both modes are one design: this process launches the program under
//! interception, then sends the seccomp listener over the daemon's control
//! socket (`SCM_RIGHTS`); the daemon supervises the program. The program
//! sees `TEEHEAP_SOCKET`, so `teeheap ls` inside it asks the same daemon.
//!
//! A dead daemon never leaves the program running unsupervised (its served
//! calls would fail with `ENOSYS`): this process is a child subreaper, so
//! every process of the tree stays its descendant, and it keeps the
//! connection on which the daemon announces the session's end
//! (`teeheap_daemon::farewell`). End-of-file without that announcement
//! means the daemon died: the whole tree is killed and `teeheap run` exits
//! non-zero with a message. With a private daemon, processes the program
//! leaves behind when it exits are ended as the daemon stops (a message on
//! stderr says how many). If this process itself (with its private
//! daemon) is killed, the program gets SIGKILL (`PR_SET_PDEATHSIG`) and a
//! sentinel process kills the rest of the tree (`teeheap_intercept::sentinel`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::Shutdown;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, WaitOptions};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use teeheap_daemon::paths::private_run_dir;
use teeheap_daemon::{Daemon, DaemonConfig};
use teeheap_intercept::sentinel::Sentinel;
use teeheap_platform::fault::spec::Spec;

/// Removes the run's private socket directory on the way out.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The faults a run injects (`--inject`, `--seed`).
pub(crate) struct Faults<'a> {
    /// The specs.
    pub(crate) specs: &'a [Spec],
    /// The seed of the `prob=` specs.
    pub(crate) seed: Option<u64>,
}

/// Runs `argv` and returns its exit status (a signal `n` as `128 + n`).
/// A private daemon injects `faults`; a daemon at `connect` is sent them
/// (`teeheap inject`) before the program starts.
pub(crate) fn run(
    config: Option<&Path>,
    connect: Option<&Path>,
    allow_admin: bool,
    ta_dirs: &[PathBuf],
    faults: Faults<'_>,
    argv: &[OsString],
) -> anyhow::Result<ExitCode> {
    let Some((prog, args)) = argv.split_first() else { bail!("no program given (teeheap run -- PROG ARGS…)") };
    if connect.is_some() && faults.seed.is_some() {
        bail!("--seed seeds a private daemon's faults; the daemon at the socket has its own seed (leave --seed out)");
    }
    // A private daemon dies with this process: a sentinel ends the tree then.
    let sentinel = match connect {
        // Before any thread (the daemon's, the signal forwarder's and the
        // watcher's come below): the sentinel is forked.
        None => Some(Sentinel::start().context("cannot start the run's sentinel")?),
        Some(_) => None,
    };
    // The private daemon lives until the program is gone.
    let mut private: Option<(Daemon, RunDir)> = None;
    let socket = match connect {
        Some(_) if let Some(file) = config => bail!(
            "--config {} describes a platform for a private daemon; the daemon at the socket runs its own \
             (leave --config and TEEHEAP_CONFIG out, or the socket)",
            file.display()
        ),
        Some(_) if !ta_dirs.is_empty() => {
            bail!("--ta-dir applies to a private daemon; the daemon at the socket has its own [tee] ta_dirs")
        }
        Some(s) => {
            if !faults.specs.is_empty() {
                super::lifecycle::inject(Some(s), faults.specs, true)?;
            }
            s.to_owned()
        }
        None => {
            let dir = RunDir(private_run_dir().context("cannot make a private socket directory")?);
            let sock = dir.0.join("teeheap.sock");
            let mut d = match config {
                Some(file) if ta_dirs.is_empty() => {
                    Daemon::injecting(super::platform(file)?, faults.specs, faults.seed)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                }
                None if ta_dirs.is_empty() => {
                    Daemon::start(&DaemonConfig { platform: None, inject: faults.specs.to_vec(), seed: faults.seed })?
                }
                _ => {
                    let mut pc = match config {
                        Some(file) => super::load(file)?,
                        None => teeheap_platform::PlatformConfig::embedded_default(),
                    };
                    for d in ta_dirs {
                        let abs = std::path::absolute(d).with_context(|| format!("--ta-dir {}", d.display()))?;
                        pc.tee.ta_dirs.push(abs);
                    }
                    let platform = teeheap_platform::Platform::new(pc)
                        .map_err(|e| anyhow::anyhow!("cannot boot the platform: {e}"))?;
                    Daemon::injecting(platform, faults.specs, faults.seed).map_err(|e| anyhow::anyhow!("{e}"))?
                }
            };
            d.listen(&sock)?;
            private = Some((d, dir));
            sock
        }
    };
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD]).context("cannot install signal handlers")?;
    // Orphans of the program's tree become our children, so the tree can
    // be ended whole.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).context("cannot become a subreaper")?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    // The platform description is the daemon's now: `teeheap ls` in the
    // program asks the daemon (TEEHEAP_SOCKET) instead of refusing to
    // choose between it and an inherited TEEHEAP_CONFIG.
    cmd.env_remove("TEEHEAP_CONFIG");
    let (mut child, watch) = teeheap::start_supervised(&socket, cmd, allow_admin, sentinel.as_ref())?;
    let pid = child.id() as i32;
    // Forward terminal and service signals to the program; reap orphans.
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGCHLD {
                reap_orphans(pid);
            } else if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, Signal::from_named_raw(sig).unwrap_or(Signal::TERM));
            }
        }
    });
    // Learn how the daemon's session ends; end the tree if the daemon died.
    let (died, finished) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let stop_watch = watch.try_clone().context("cannot keep the daemon connection")?;
    let watcher = {
        let (died, finished, socket) = (Arc::clone(&died), Arc::clone(&finished), socket.clone());
        std::thread::spawn(move || match teeheap_daemon::protocol::session_end(&watch).as_deref() {
            Some(teeheap_daemon::farewell::SHUTDOWN) => eprintln!(
                "teeheap: the daemon at {} shut down; the program runs on, its calls to the daemon fail with ENOSYS",
                socket.display()
            ),
            Some(_) => {}
            None if finished.load(Ordering::SeqCst) => {}
            None => {
                died.store(true, Ordering::SeqCst);
                end_tree(pid, None);
            }
        })
    };
    let status = child.wait().context("waiting for the program")?;
    finished.store(true, Ordering::SeqCst);
    let _ = stop_watch.shutdown(Shutdown::Both);
    let _ = watcher.join();
    // A private daemon ends with the program: what the program left behind
    // would run on unsupervised, so it ends too.
    if private.is_some() {
        let n = end_tree(pid, sentinel.as_ref().map(Sentinel::pid));
        if n > 0 {
            eprintln!(
                "teeheap: ended {n} process(es) the program left behind (the run's daemon ends with the program)"
            );
        }
    }
    handle.close();
    let _ = forward.join();
    if let Some((d, _dir)) = private {
        d.shutdown();
    }
    if let Some(s) = sentinel {
        s.disarm();
    }
    if died.load(Ordering::SeqCst) {
        bail!(
            "the daemon serving this run ({}) died while the program ran (or its session for the run failed); \
             the program and everything it started were killed",
            socket.display()
        );
    }
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Every process: pid -> (parent, state letter), from `/proc`.
fn processes() -> HashMap<i32, (i32, char)> {
    let mut all = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return all };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut f = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (f.next().and_then(|s| s.chars().next()), f.next()) else { continue };
        if let Ok(ppid) = ppid.parse() {
            all.insert(pid, (ppid, state));
        }
    }
    all
}

/// Our descendants (transitively) in `all`.
fn descendants(all: &HashMap<i32, (i32, char)>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for (&pid, &(ppid, _)) in all {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Reaps our exited children other than the program itself (`main`, whose
/// status `Child::wait` collects): orphans of the tree that came to us.
fn reap_orphans(main: i32) {
    let me = std::process::id() as i32;
    for (pid, (ppid, _)) in processes() {
        if ppid == me && pid != main {
            let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::NOHANG);
        }
    }
}

/// Kills every process of the program's tree (all our descendants, as we
/// are their subreaper; `spare`, the sentinel, excepted) until none is left
/// alive, and reaps the orphans. Returns how many processes it killed.
fn end_tree(main: i32, spare: Option<i32>) -> usize {
    let mut killed = std::collections::HashSet::new();
    for _ in 0..250 {
        let all = processes();
        let alive: Vec<i32> = descendants(&all)
            .into_iter()
            .filter(|p| Some(*p) != spare && all.get(p).is_some_and(|s| s.1 != 'Z'))
            .collect();
        if alive.is_empty() {
            break;
        }
        for p in alive {
            if let Some(pid) = Pid::from_raw(p) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
                killed.insert(p);
            }
        }
        reap_orphans(main);
        std::thread::sleep(Duration::from_millis(20));
    }
    reap_orphans(main);
    killed.len()
}
