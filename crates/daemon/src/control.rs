//! The control socket: accepts connections and answers [`Request`]s, one
//! thread per connection (at most [`MAX_CONNECTIONS`]).
//!
//! A connection that sends garbage gets an error reply; one that sends an
//! oversized or truncated frame, or stays silent mid-frame past the read
//! timeout, is dropped. None of that touches other connections or the
//! supervised programs: connection threads share only the daemon's state,
//! which they lock for map look-ups only.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use teeheap_intercept::ns::{Namespace, NsKind, Peer, PeerCred};

use zeroize::{Zeroize, Zeroizing};

use crate::Shared;
use crate::paths::prepare_dir;
use crate::privilege::{Caller, NOT_PERMITTED, Rights};
use crate::protocol::{Envelope, FrameError, MAX_FRAME, MIN_VERSION, Reply, Request, VERSION, read_frame, write_frame};

/// Most connections served at once; more get a `busy` error.
pub const MAX_CONNECTIONS: usize = 128;

/// How long a connection may stay silent before it is dropped.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound control socket and its accept thread.
#[derive(Debug)]
pub(crate) struct ControlServer {
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket nobody listens on) and starts
    /// accepting.
    pub(crate) fn bind(path: &Path, shared: Arc<Shared>) -> io::Result<ControlServer> {
        prepare_dir(path)?;
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("a daemon serves {}", path.display())));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        tracing::info!(socket = %path.display(), "control socket listening");
        let active = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name("teeheap-control".into())
            .spawn(move || accept_loop(&listener, &shared, &active))?;
        Ok(ControlServer { path: path.to_owned(), thread: Some(thread) })
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the accept thread (after the shutdown flag is set) and
    /// removes the socket.
    pub(crate) fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, active: &Arc<AtomicUsize>) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let tick = Timespec { tv_sec: 0, tv_nsec: 200_000_000 };
    while !shared.shutdown.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        if rustix::event::poll(&mut fds, Some(&tick)).unwrap_or(0) == 0 {
            continue;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = reply(&stream, &Reply::error("busy", "too many connections"));
            continue;
        }
        let (shared2, active2) = (Arc::clone(shared), Arc::clone(active));
        let spawned = std::thread::Builder::new().name("teeheap-conn".into()).spawn(move || {
            if let Err(e) = connection(&stream, &shared2) {
                tracing::debug!(error = %e, "control connection ended");
            }
            active2.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

/// The answer to a request whose serving panicked (see `guard.rs`).
fn bug_reply() -> Reply {
    Reply::error("bug", "the daemon hit a bug serving this request (logged); it keeps serving")
}

fn reply(stream: &UnixStream, r: &Reply) -> io::Result<()> {
    reply_in(stream, r, VERSION)
}

/// Replies in protocol `version` (the request's, so older clients can read it).
fn reply_in(stream: &UnixStream, r: &Reply, version: u32) -> io::Result<()> {
    // A reply may carry protected bytes (`devmem` by a secure master): the
    // encoded frame is wiped once sent.
    let payload = Zeroizing::new(serde_json::to_vec(&Envelope { version, body: r }).map_err(io::Error::other)?);
    write_frame(stream, &payload, None)
}

fn connection(stream: &UnixStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let peer = PeerCred::of_socket(stream.as_fd()).ok();
    // Classified once, from the process that connected (docs/threat-model.md).
    let caller = match Peer::of_socket(stream.as_fd()) {
        Ok(p) => shared.identities.classify(&p),
        Err(e) => {
            tracing::debug!(error = %e, "cannot identify a control peer: observe only");
            Caller { pid: peer.map(|c| c.pid).filter(|&p| p > 0), run: None, rights: Rights::Observe }
        }
    };
    loop {
        let mut fds: Vec<OwnedFd> = Vec::new();
        let frame = match read_frame(stream, &mut fds) {
            Ok(f) => f,
            Err(FrameError::Closed) => return Ok(()),
            Err(FrameError::TooLarge(n)) => {
                let _ = reply(stream, &Reply::error("too_large", format!("frame of {n} bytes > {MAX_FRAME}")));
                return Err(io::Error::new(io::ErrorKind::InvalidData, "oversized frame"));
            }
            Err(FrameError::Truncated(e)) => return Err(e),
        };
        let mut version = VERSION;
        let same_user = peer.is_some_and(|c| c.uid == 0 || c.uid == rustix::process::geteuid().as_raw());
        let mut r = match serde_json::from_slice::<Envelope<serde_json::Value>>(&frame) {
            Err(e) => Reply::error("bad_request", format!("not a request envelope: {e}")),
            Ok(env) if !(MIN_VERSION..=VERSION).contains(&env.version) => Reply::error(
                "version",
                format!("protocol version {} not supported (this daemon: {MIN_VERSION} to {VERSION})", env.version),
            ),
            Ok(env) => match serde_json::from_value::<Request>(env.body) {
                Err(e) => {
                    version = env.version;
                    Reply::error("bad_request", format!("unknown request: {e}"))
                }
                Ok(req) if req.since() > env.version => {
                    version = env.version;
                    Reply::error("version", format!("this request needs protocol version {}", req.since()))
                }
                Ok(req) if req.is_privileged() && !same_user => {
                    version = env.version;
                    Reply::error("denied", "only the daemon's user may ask for this")
                }
                Ok(req @ Request::Supervise { .. }) => {
                    version = env.version;
                    let fds = std::mem::take(&mut fds);
                    let pid = if let Request::Supervise { pid, .. } = &req { Some(*pid) } else { None };
                    // The launcher keeps this connection to learn how the run ends.
                    if let (Some(pid), Ok(copy)) = (pid, stream.try_clone()) {
                        shared.watch_run(pid, copy);
                    }
                    let r = shared
                        .serve_one(|| "supervise".into(), pid, || supervise(shared, &req, fds, &caller))
                        .unwrap_or_else(|()| bug_reply());
                    if let (Some(pid), false) = (pid, matches!(r, Reply::Supervising { .. })) {
                        shared.unwatch_run(pid);
                    }
                    r
                }
                Ok(req) => {
                    version = env.version;
                    let what = || format!("control request {req:?}");
                    shared
                        .serve_one(what, caller.pid, || {
                            #[cfg(feature = "test-hooks")]
                            if let Request::HeapRm { name } = &req
                                && name == crate::guard::test_hooks::PANIC_HEAP
                            {
                                shared.panic_holding_locks()
                            }
                            shared.answer_as(&req, &caller)
                        })
                        .unwrap_or_else(|()| bug_reply())
                }
            },
        };
        let sent = reply_in(stream, &r, version);
        if let Reply::Devmem { data, .. } = &mut r {
            data.zeroize();
        }
        sent?;
    }
}

/// Answers [`Request::Supervise`]: `fds` are the run's user and mount
/// namespaces, then the listener (last, where a daemon that does not know
/// the namespaces looks for it); the namespaces are read from
/// `/proc/<pid>/ns` when only the listener comes.
fn supervise(shared: &Arc<Shared>, req: &Request, fds: Vec<OwnedFd>, caller: &Caller) -> Reply {
    let Request::Supervise { pid, nodes, admin } = req else { return Reply::error("bad_request", "not supervise") };
    let rights = if *admin { Rights::Admin } else { Rights::Observe };
    if *admin && caller.rights != Rights::Admin {
        return shared.answer_as(req, caller);
    }
    let mut fds = fds.into_iter().rev();
    let Some(listener) = fds.next() else {
        return Reply::error("no_fd", "supervise needs the listener fd (SCM_RIGHTS)");
    };
    let (m, u) = (fds.next(), fds.next());
    let identity = match (u, m) {
        (Some(u), Some(m)) => {
            Namespace::from_fd(u, NsKind::User).and_then(|u| Ok((u, Namespace::from_fd(m, NsKind::Mount)?)))
        }
        _ => Namespace::of_pid(*pid, NsKind::User).and_then(|u| Ok((u, Namespace::of_pid(*pid, NsKind::Mount)?))),
    };
    let identity = match identity {
        Ok(i) => i,
        Err(e) => return Reply::error("failed", format!("cannot identify the run's namespaces: {e}")),
    };
    match shared.supervise_as(listener, *pid, nodes, identity, rights, caller) {
        Ok(session) => Reply::Supervising { session },
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            shared.log_denied(&format!("supervising pid {pid} ({e})"), caller);
            Reply::error(NOT_PERMITTED, e.to_string())
        }
        Err(e) => Reply::error("failed", e.to_string()),
    }
}
