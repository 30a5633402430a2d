//! Starting a program under a daemon: ask the daemon which `/dev` nodes it
//! serves, launch the program under interception with a private `/dev`
//! holding them, and hand its seccomp listener to the daemon.
//!
//! The daemon supervises the program (and everything it forks) from then
//! on; the returned [`Child`] is the program itself.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};

use teeheap_daemon::paths::SOCKET_ENV;
use teeheap_daemon::protocol::{Client, NodeId, Reply, Request, unexpected};
use teeheap_intercept::devns::{DevNodes, SysfsDev};
use teeheap_intercept::launch::Launch;
use teeheap_intercept::sentinel::Sentinel;

use crate::Error;

/// Starts `cmd` with the heaps and the TEE of the daemon at `socket`
/// served to it. The program sees `TEEHEAP_SOCKET=socket`, so `teeheap`
/// commands it runs ask the same daemon — as observers only: see
/// [`start_with_admin`].
///
/// # Errors
/// [`Error::Connect`] if no daemon answers at `socket`, [`Error::Start`]
/// if the program cannot be started (its `io::Error` tells not found from
/// not executable), [`Error::Daemon`] if the daemon does not take it (the
/// program never runs then).
pub fn start(socket: &Path, cmd: Command) -> Result<Child, Error> {
    start_with_admin(socket, cmd, false)
}

/// As [`start`]; with `allow_admin` the program (and everything it forks)
/// may also act through the daemon's socket — `devmem` as a secure bus
/// master, `backend unbind|bind`, `heap rm|add` — as `teeheap run
/// --allow-admin` allows. Without it, those are refused (`not_permitted`)
/// and logged. The run is registered with the daemon while the child waits
/// before `exec`, so none of the program's code runs unregistered.
///
/// # Errors
/// As [`start`]; the daemon refuses `allow_admin` from a caller that may
/// not act itself ([`Error::Daemon`], code `not_permitted`).
pub fn start_with_admin(socket: &Path, cmd: Command, allow_admin: bool) -> Result<Child, Error> {
    start_inner(socket, cmd, allow_admin, false, None).map(|(child, _)| child)
}

/// As [`start_with_admin`], for `teeheap run`: also returns the connection
/// on which the daemon announces how the run's session ends
/// (`teeheap_daemon::protocol::session_end`: end-of-file without an answer
/// means the daemon died), and the program is killed when the calling
/// thread dies (so the calling thread must outlive the program). A
/// `sentinel` is armed with the program's mount namespace before the
/// program's first instruction.
///
/// # Errors
/// As [`start_with_admin`]; [`Error::Start`] if the sentinel cannot be
/// armed.
pub fn start_supervised(
    socket: &Path,
    cmd: Command,
    allow_admin: bool,
    sentinel: Option<&Sentinel>,
) -> Result<(Child, UnixStream), Error> {
    start_inner(socket, cmd, allow_admin, true, sentinel)
}

fn start_inner(
    socket: &Path,
    mut cmd: Command,
    allow_admin: bool,
    die_with_parent: bool,
    sentinel: Option<&Sentinel>,
) -> Result<(Child, UnixStream), Error> {
    let mut client = Client::connect(socket).map_err(|source| Error::Connect { socket: socket.to_owned(), source })?;
    let (nodes, devices, views) = match client.request(&Request::Hello, None)? {
        Reply::Hello { nodes, devices, views, .. } => (nodes, devices, views),
        other => return Err(unexpected(&other).into()),
    };
    let mut dev = DevNodes::new();
    for n in &nodes {
        dev = match devices.iter().find(|d| d.path == *n) {
            Some(d) => {
                dev.device(n, SysfsDev { class: d.class.clone(), name: d.name.clone(), uevent: d.uevent.clone() })
            }
            None => dev.node(n),
        }
        .map_err(|e| Error::Dev(e.into()))?;
    }
    if let Some(v) = views {
        dev = dev.views(v);
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.env(SOCKET_ENV, socket);
    // Why the registration failed, as our own error (the spawn's would only
    // say that the child was cancelled).
    let mut refused: Option<Error> = None;
    let mut launch = Launch::from_command(cmd).dev_nodes(dev.clone());
    if die_with_parent {
        launch = launch.die_with_parent();
    }
    let spawned = launch.spawn_with(|pre| {
        let r = (|| {
            if let Some(s) = sentinel {
                s.arm(pre.mnt.as_fd()).map_err(|source| Error::Start { program: program.clone(), source })?;
            }
            let ids = dev.node_ids(pre.pid).map_err(|e| Error::Dev(e.into()))?;
            let nodes = ids.into_iter().map(|(path, id)| NodeId { path, dev: id.dev, ino: id.ino }).collect();
            let req = Request::Supervise { pid: pre.pid, nodes, admin: allow_admin };
            // The listener last: where a daemon that knows no namespaces looks.
            let fds = [pre.user.as_fd(), pre.mnt.as_fd(), pre.listener.as_fd()];
            client.request_fds(&req, &fds).map(drop).map_err(Error::from)
        })();
        r.map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            refused = Some(e);
            io
        })
    });
    match (spawned, refused) {
        (Ok(child), _) => Ok((child, client.into_stream())),
        (Err(_), Some(e)) => Err(e),
        (Err(source), None) => Err(Error::Start { program, source }),
    }
}
