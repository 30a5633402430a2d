//! Starting a program under a daemon: ask the daemon which `/dev` nodes it
//! serves, launch the program under interception with a private `/dev`
//! holding them, and hand its seccomp listener to the daemon.
//!
//! The daemon supervises the program (and everything it forks) from then
//! on; the returned [`Child`] is the program itself.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use teeheap_daemon::paths::SOCKET_ENV;
use teeheap_daemon::protocol::{Client, NodeId, Reply, Request, unexpected};
use teeheap_intercept::devns::DevNodes;
use teeheap_intercept::launch::Launch;
use teeheap_intercept::memfd::FileId;

use crate::Error;

/// The inodes of the program's nodes, or `None` if it exited first (a
/// dying program's `/proc/<pid>/root` vanishes before it can be reaped).
fn node_ids(dev: &DevNodes, child: &mut Child) -> Result<Option<Vec<(String, FileId)>>, Error> {
    let t0 = Instant::now();
    loop {
        match dev.node_ids(child.id() as i32) {
            Ok(ids) => return Ok(Some(ids)),
            Err(_) if child.try_wait().ok().flatten().is_some() => return Ok(None),
            Err(e) if t0.elapsed() > Duration::from_secs(2) => return Err(Error::Dev(e.into())),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Starts `cmd` with the heaps and the TEE of the daemon at `socket`
/// served to it. The program sees `TEEHEAP_SOCKET=socket`, so `teeheap`
/// commands it runs ask the same daemon.
///
/// # Errors
/// [`Error::Connect`] if no daemon answers at `socket`, [`Error::Start`]
/// if the program cannot be started (its `io::Error` tells not found from
/// not executable), [`Error::Daemon`] if the daemon does not take it (the
/// program is killed then).
pub fn start(socket: &Path, mut cmd: Command) -> Result<Child, Error> {
    let mut client = Client::connect(socket).map_err(|source| Error::Connect { socket: socket.to_owned(), source })?;
    let nodes = match client.request(&Request::Hello, None)? {
        Reply::Hello { nodes, .. } => nodes,
        other => return Err(unexpected(&other).into()),
    };
    let mut dev = DevNodes::new();
    for n in &nodes {
        dev = dev.node(n).map_err(|e| Error::Dev(e.into()))?;
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.env(SOCKET_ENV, socket);
    let launched =
        Launch::from_command(cmd).dev_nodes(dev.clone()).spawn().map_err(|source| Error::Start { program, source })?;
    let mut child = launched.child;
    let supervised = match node_ids(&dev, &mut child) {
        Ok(Some(ids)) => {
            let nodes = ids.into_iter().map(|(path, id)| NodeId { path, dev: id.dev, ino: id.ino }).collect();
            let req = Request::Supervise { pid: child.id() as i32, nodes };
            client.request(&req, Some(launched.listener.as_fd())).map(drop).map_err(Error::from)
        }
        // Gone before its /dev could be seen: there is nothing to serve.
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = supervised {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}
