//! The daemon's descriptor ceiling (`RLIMIT_NOFILE`).
//!
//! A daemon holds descriptors for every live buffer it serves (a memfd per
//! dma-buf, a pipe per sync file), for all the programs it serves. Under
//! an inherited soft limit (often 1024) one program's buffers would make
//! every program's allocations fail. So the daemon raises its soft limit
//! to the hard one, and when it may (`CAP_SYS_RESOURCE`) the hard limit
//! too, up to `fs.nr_open` ([`raise`]). A program it starts is no business
//! of this: [`crate::launch::Launch`] gives the program back the limits
//! the process had before the raise ([`restore_in_child`]).

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The limits before and after [`raise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    /// The limits the process had (inherited).
    pub was: Rlimit,
    /// The limits it has now.
    pub now: Rlimit,
}

static RAISED: OnceLock<Raised> = OnceLock::new();

/// The system-wide ceiling of any process's `RLIMIT_NOFILE`
/// (`/proc/sys/fs/nr_open`), if readable.
pub fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open").ok()?.trim().parse().ok()
}

/// Raises this process's `RLIMIT_NOFILE` as far as it may, once per
/// process (later calls return the first call's result): the hard limit
/// to `fs.nr_open` if allowed (`CAP_SYS_RESOURCE`), the soft limit to the
/// hard one. A failure to raise leaves the limits as they were.
pub fn raise() -> Raised {
    *RAISED.get_or_init(|| {
        let was = getrlimit(Resource::Nofile);
        let ceiling = nr_open();
        let hard = was.maximum;
        // Privileged: the hard limit up to fs.nr_open (EPERM otherwise).
        if let Some(top) = ceiling
            && hard.is_some_and(|h| h < top)
            && setrlimit(Resource::Nofile, Rlimit { current: Some(top), maximum: Some(top) }).is_ok()
        {
            return Raised { was, now: getrlimit(Resource::Nofile) };
        }
        // The soft limit up to the hard one (an unlimited hard limit means
        // fs.nr_open: the kernel refuses more).
        let soft = hard.or(ceiling);
        if soft.is_some() && soft != was.current {
            let _ = setrlimit(Resource::Nofile, Rlimit { current: soft, maximum: hard });
        }
        Raised { was, now: getrlimit(Resource::Nofile) }
    })
}

/// What [`raise`] did in this process, if it ran.
pub fn raised() -> Option<Raised> {
    RAISED.get().copied()
}

/// Gives a child (between fork and exec) back the limits this process had
/// before [`raise`]; nothing if it never ran. Lowering is always allowed.
/// Does not allocate or take locks (it runs after `fork`).
///
/// # Errors
/// `setrlimit`'s errno.
pub fn restore_in_child() -> rustix::io::Result<()> {
    match RAISED.get() {
        Some(r) if r.was != r.now => setrlimit(Resource::Nofile, r.was),
        _ => Ok(()),
    }
}

/// A limit as text: its value or `unlimited`.
pub fn show(l: Option<u64>) -> String {
    l.map_or_else(|| "unlimited".to_owned(), |v| v.to_string())
}
