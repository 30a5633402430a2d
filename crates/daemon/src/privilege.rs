//! Who may do what over the control socket: observe, or act.
//!
//! A program under `teeheap run` gets the daemon's socket in its
//! environment, and a same-uid process can connect to any path it can name,
//! so the socket path grants nothing by itself. Each connection is instead
//! classified once, when it is accepted, from the process that connected:
//! the kernel names it by a pidfd (`SO_PEERPIDFD`, no pid reuse), and its
//! user and mount namespaces are compared with those of every supervised
//! run ([`Runs`]). A run's namespaces are recorded before the program's
//! first instruction (the launcher registers the run while the child waits
//! before `exec`) and kept open, so their identities stay unique, until
//! every process of the run has exited. A process inside a run's user
//! namespace, or in one nested in it, cannot leave it, so as an ordinary
//! user a program cannot pass for an outsider; started by root (no user
//! namespace), only the mount namespace tells, which a root program can
//! leave — root on the host is out of scope (docs/threat-model.md).
//!
//! A connection from inside a run gets the run's [`Rights`]: observe-only
//! unless the run was started with `--allow-admin`. See
//! [`crate::protocol::Request::needs_admin`] for what needs more.

use std::collections::BTreeMap;
use std::sync::Mutex;
use teeheap_sync::Recover;

use teeheap_intercept::Errno;
use teeheap_intercept::ns::{Namespace, NsId, NsKind, Peer};

/// The error code of a refusal.
pub const NOT_PERMITTED: &str = "not_permitted";

/// The message of a refusal.
pub const NOT_PERMITTED_MESSAGE: &str = "not permitted from inside a run; start the run with --allow-admin";

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rights {
    /// `hello`, `ls`, `stats`, `bufinfo`, `stat`, `log`, `map`, `devmem`
    /// as the normal-world CPU, and supervising a nested run with the same
    /// rights.
    Observe,
    /// Everything, including acting as a secure bus master, unbinding and
    /// binding the backend and removing and adding heaps.
    Admin,
}

/// The caller of a request, as classified when its connection was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Its pid in the daemon's pid namespace, if known.
    pub pid: Option<i32>,
    /// The run (session number) it is inside, if any.
    pub run: Option<u64>,
    /// What it may do.
    pub rights: Rights,
}

impl Caller {
    /// A caller inside the daemon's own process (the library API): all rights.
    pub fn owner() -> Caller {
        Caller { pid: Some(std::process::id() as i32), run: None, rights: Rights::Admin }
    }

    /// Who it is, for log messages.
    pub fn describe(&self) -> String {
        let pid = self.pid.map_or_else(|| "an unknown process".to_owned(), |p| format!("pid {p}"));
        match (self.run, self.rights) {
            (Some(r), Rights::Observe) => format!("{pid} inside run {r}, started without --allow-admin"),
            (Some(r), Rights::Admin) => format!("{pid} inside run {r} (--allow-admin)"),
            (None, Rights::Observe) => format!("{pid}, whose namespaces could not be read"),
            (None, Rights::Admin) => format!("{pid} outside any run"),
        }
    }
}

/// A supervised run's identity.
#[derive(Debug)]
struct Run {
    /// Its user namespace; `None` when it is the daemon's own (a run
    /// started by root makes none).
    user: Option<Namespace>,
    /// Its mount namespace.
    mnt: Namespace,
    rights: Rights,
}

/// The identities of the live runs. See the module documentation.
#[derive(Debug)]
pub(crate) struct Runs {
    /// The daemon's own user namespace (where ancestry walks stop).
    own_user: Option<NsId>,
    runs: Mutex<BTreeMap<u64, Run>>,
}

impl Runs {
    pub(crate) fn new() -> Runs {
        let own_user = match Namespace::of_self(NsKind::User) {
            Ok(ns) => Some(ns.id()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the daemon's user namespace; root runs will make every peer observe-only");
                None
            }
        };
        Runs { own_user, runs: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Run>> {
        self.runs.lock().recover()
    }

    /// The ancestry of `user` up to the daemon's own namespace.
    fn chain(&self, user: &Namespace) -> Result<Vec<NsId>, Errno> {
        user.ancestry(self.own_user.unwrap_or(NsId { dev: 0, ino: 0 }))
    }

    /// Records run `id` with its namespaces and rights.
    pub(crate) fn register(&self, id: u64, user: Namespace, mnt: Namespace, rights: Rights) {
        let user = (Some(user.id()) != self.own_user).then_some(user);
        self.lock().insert(id, Run { user, mnt, rights });
    }

    /// Forgets run `id` (every process of it has exited).
    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// What `peer` may do: the least of the rights of every run it is
    /// inside; all rights if it is inside none.
    pub(crate) fn classify(&self, peer: &Peer) -> Caller {
        let chain = match self.chain(&peer.user) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(pid = peer.pid, error = %e, "cannot walk a peer's user namespaces");
                return Caller { pid: Some(peer.pid), run: None, rights: Rights::Observe };
            }
        };
        let mut caller = Caller { pid: Some(peer.pid), run: None, rights: Rights::Admin };
        for (&id, run) in self.lock().iter() {
            let inside = run.mnt.id() == peer.mnt.id() || run.user.as_ref().is_some_and(|u| chain.contains(&u.id()));
            if inside && (caller.run.is_none() || run.rights < caller.rights) {
                caller.run = Some(id);
                caller.rights = caller.rights.min(run.rights);
            }
        }
        caller
    }

    /// Whether namespaces `user`/`mnt` (of a run that a process inside run
    /// `within` asks to supervise) lie inside run `within`.
    pub(crate) fn nested(&self, within: u64, user: &Namespace, mnt: &Namespace) -> bool {
        let Ok(chain) = self.chain(user) else { return false };
        self.lock().get(&within).is_some_and(|run| match &run.user {
            Some(u) => chain.contains(&u.id()),
            // A run started by root: only its mount namespace tells, and a
            // nested run makes a new one (root is out of scope anyway).
            None => run.mnt.id() == mnt.id() || chain.is_empty(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// Writes `data` to `path` (no allocation: runs before exec).
    fn write(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
        // SAFETY: a NUL-terminated path and a live slice; the fd is closed here.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, data.as_ptr().cast(), data.len()) != data.len() as isize {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
        }
        Ok(())
    }

    /// A `sleep` in user and mount namespaces nested `depth` levels below
    /// ours (each maps the one uid and gid of the level above, so the next
    /// level may be made).
    fn nested(depth: usize) -> std::process::Child {
        let uid = format!("{0} {0} 1", rustix::process::geteuid().as_raw()).into_bytes();
        let gid = format!("{0} {0} 1", rustix::process::getegid().as_raw()).into_bytes();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("10");
        // SAFETY: unshare and writes of prepared bytes, in the forked child before exec.
        unsafe {
            cmd.pre_exec(move || {
                for _ in 0..depth {
                    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    write(c"/proc/self/setgroups", b"deny")?;
                    write(c"/proc/self/uid_map", &uid)?;
                    write(c"/proc/self/gid_map", &gid)?;
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn ns(pid: i32, kind: NsKind) -> Namespace {
        Namespace::of_pid(pid, kind).unwrap()
    }

    fn peer(pid: i32) -> Peer {
        Peer { pid, user: ns(pid, NsKind::User), mnt: ns(pid, NsKind::Mount) }
    }

    fn who(c: Caller) -> (Option<u64>, Rights) {
        (c.run, c.rights)
    }

    #[test]
    fn inside_a_run_is_its_namespaces_and_user_namespaces_nested_in_it() {
        let mut child = nested(1);
        let mut grandchild = nested(2);
        let (c, g) = (child.id() as i32, grandchild.id() as i32);
        let me = std::process::id() as i32;
        let runs = Runs::new();
        assert_eq!(who(runs.classify(&peer(g))), (None, Rights::Admin), "no run yet");
        // Run 8: the grandchild's parent user namespace, the child's mount one.
        let run_user = ns(g, NsKind::User).parent().unwrap().unwrap();
        runs.register(8, run_user, ns(c, NsKind::Mount), Rights::Observe);
        assert_eq!(who(runs.classify(&peer(me))), (None, Rights::Admin), "outside");
        assert_eq!(who(runs.classify(&peer(g))), (Some(8), Rights::Observe), "user namespace nested in the run's");
        assert_eq!(who(runs.classify(&peer(c))), (Some(8), Rights::Observe), "the run's mount namespace");
        assert!(runs.nested(8, &ns(g, NsKind::User), &ns(g, NsKind::Mount)));
        assert!(!runs.nested(8, &ns(me, NsKind::User), &ns(me, NsKind::Mount)), "a run may not register the host");
        assert!(!runs.nested(8, &ns(c, NsKind::User), &ns(c, NsKind::Mount)), "nor a sibling");
        // Inside two runs: the least rights win.
        runs.register(9, ns(g, NsKind::User), ns(g, NsKind::Mount), Rights::Admin);
        assert_eq!(who(runs.classify(&peer(g))), (Some(8), Rights::Observe));
        runs.remove(8);
        assert_eq!(who(runs.classify(&peer(g))), (Some(9), Rights::Admin));
        assert_eq!(who(runs.classify(&peer(c))), (None, Rights::Admin), "run 8 forgotten");
        for p in [&mut child, &mut grandchild] {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    #[test]
    fn an_observer_cannot_start_a_run_with_more_rights() {
        use crate::protocol::{Reply, Request};
        let d = crate::Daemon::start(&crate::DaemonConfig::default()).unwrap();
        let observer = Caller { pid: Some(1234), run: Some(3), rights: Rights::Observe };
        let req = Request::Supervise { pid: 1234, nodes: vec![], admin: true };
        let r = d.shared().answer_as(&req, &observer);
        assert_eq!(r, Reply::error(NOT_PERMITTED, NOT_PERMITTED_MESSAGE));
        let log = d.shared().log(0);
        let denied: Vec<_> = log.events.iter().filter(|e| e.kind == "denied").collect();
        assert_eq!(denied.len(), 1, "{log:?}");
        assert_eq!(
            denied[0].message,
            "a run with --allow-admin refused: pid 1234 inside run 3, started without --allow-admin"
        );
        assert_eq!(denied[0].pid, Some(1234));
        // The same below the protocol: nothing is registered.
        let (listener, _w) = rustix::pipe::pipe().unwrap();
        let me = std::process::id() as i32;
        let identity = (ns(me, NsKind::User), ns(me, NsKind::Mount));
        let e = d.shared().supervise_as(listener, me, &[], identity, Rights::Admin, &observer).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        // A process of a run (here one in a nested user namespace) may not
        // register namespaces outside its run, such as the host's.
        let mut child = nested(1);
        let c = child.id() as i32;
        d.shared().identities.register(40, ns(c, NsKind::User), ns(c, NsKind::Mount), Rights::Observe);
        let inside = Caller { pid: Some(c), run: Some(40), rights: Rights::Observe };
        let (listener, _w) = rustix::pipe::pipe().unwrap();
        let identity = (ns(me, NsKind::User), ns(me, NsKind::Mount));
        let e = d.shared().supervise_as(listener, me, &[], identity, Rights::Observe, &inside).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("only start runs inside its own namespaces"), "{e}");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(d.shared().stats().sessions_total, 0);
        assert_eq!(who(d.shared().identities.classify(&peer(me))), (None, Rights::Admin));
    }

    #[test]
    fn callers_describe_themselves() {
        let c = Caller { pid: Some(5), run: Some(2), rights: Rights::Observe };
        assert_eq!(c.describe(), "pid 5 inside run 2, started without --allow-admin");
        assert_eq!(Caller::owner().rights, Rights::Admin);
        assert!(Rights::Observe < Rights::Admin);
    }
}
