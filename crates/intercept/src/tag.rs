//! Tags on open file descriptions: a lock of one byte, taken as an
//! open-file-description lock (`F_OFD_SETLK`; a write lock, or a read lock
//! on a read-only description), names a description rather than an fd
//! number or an inode.
//!
//! The daemon tags the description behind a program's `/dev/tee*` fd with
//! the byte of its TEE context, so the context *is* that description:
//! `dup`, `fork`, `dup2` over the number, `close` and exit all act on it as
//! on Linux's TEE file, and no fd number is ever reused for a context. A
//! tag goes with its description: the kernel drops OFD locks when the
//! description is released, which [`Tag::held`] sees from another
//! description of the same inode. Only the description holding a byte can
//! release it (a program that unlocks its own tag ends its context, as a
//! close would); nobody else can take a byte that is write-locked, and a
//! read-locked one only by knowing it (the daemon draws tags at random).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};

use crate::{Errno, Result, last_errno};

/// A tag: the byte offset of a one-byte OFD lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u64);

/// Most bytes of an fdinfo text read by [`Tag::held_by`].
const FDINFO_MAX: u64 = 64 * 1024;

/// Largest tag offset (`off_t` positive, end inclusive).
pub const MAX_TAG: u64 = (i64::MAX - 1) as u64;

fn flock(ty: i32, at: Tag) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is valid.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = ty as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = at.0 as libc::off_t;
    l.l_len = 1;
    l
}

impl Tag {
    /// Tags the description behind `fd` with this byte (a write lock if
    /// it is open for writing, else a read lock). Returns `false` if
    /// another description holds the byte. Errors: `EBADF` for an `O_PATH`
    /// fd, `EINVAL` past [`MAX_TAG`], `ENOLCK`.
    pub fn set(self, fd: impl AsFd) -> Result<bool> {
        if self.0 > MAX_TAG {
            return Err(Errno::INVAL);
        }
        if self.held(&fd)? {
            return Ok(false);
        }
        let fl = rustix::fs::fcntl_getfl(&fd)?;
        let writable = fl.intersects(rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::RDWR);
        let mut l = flock(if writable { libc::F_WRLCK } else { libc::F_RDLCK }, self);
        // SAFETY: `l` is a live `flock` for the duration of the call.
        let r = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_OFD_SETLK, &mut l as *mut libc::flock) };
        if r == 0 {
            return Ok(true);
        }
        match last_errno() {
            Errno::AGAIN | Errno::ACCESS => Ok(false),
            e => Err(e),
        }
    }

    /// Whether a description other than `probe`'s holds this byte.
    pub fn held(self, probe: impl AsFd) -> Result<bool> {
        let mut l = flock(libc::F_WRLCK, self);
        // SAFETY: `l` is a live `flock` the kernel fills in.
        let r = unsafe { libc::fcntl(probe.as_fd().as_raw_fd(), libc::F_OFD_GETLK, &mut l as *mut libc::flock) };
        if r != 0 {
            return Err(last_errno());
        }
        Ok(i32::from(l.l_type) != libc::F_UNLCK)
    }

    /// The one-byte OFD locks the description behind `fd` holds, from
    /// `/proc/self/fdinfo` (which lists the locks of that description only),
    /// and whether that list is complete. `fd` must be this process's own
    /// (e.g. a `pidfd_getfd` duplicate). A program may put any number of
    /// locks on its description, so only a bounded prefix is read.
    pub fn held_by(fd: impl AsFd) -> Result<(Vec<Tag>, bool)> {
        let path = format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd());
        let mut s = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(FDINFO_MAX + 1).read_to_end(&mut s))
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        let complete = s.len() as u64 <= FDINFO_MAX;
        Ok((parse_fdinfo_locks(&String::from_utf8_lossy(&s)), complete))
    }
}

/// Tags in the `lock:` lines of an fdinfo text, e.g.
/// `lock:\t1: OFDLCK  ADVISORY  WRITE -1 00:1a:5 77 77`.
fn parse_fdinfo_locks(s: &str) -> Vec<Tag> {
    s.lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if !t.contains(&"OFDLCK") || t.len() < 2 {
                return None;
            }
            let start: u64 = t[t.len() - 2].parse().ok()?;
            let end: u64 = t[t.len() - 1].parse().ok()?;
            (start == end).then_some(Tag(start))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    fn reopen(fd: &impl AsFd) -> std::os::fd::OwnedFd {
        let p = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
        rustix::fs::open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn a_tag_names_a_description_and_goes_with_it() {
        let a = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let probe = reopen(&a);
        let other = reopen(&a);
        assert!(Tag(77).set(&a).unwrap());
        assert!(!Tag(77).set(&other).unwrap(), "held by another description");
        assert!(Tag(77).set(&a).unwrap(), "its own holder may set it again");
        assert!(Tag(77).held(&probe).unwrap());
        assert!(!Tag(78).held(&probe).unwrap());
        let dup = rustix::io::dup(&a).unwrap();
        assert_eq!(Tag::held_by(&dup).unwrap(), (vec![Tag(77)], true), "a dup is the same description");
        assert_eq!(Tag::held_by(&other).unwrap(), (vec![], true));
        drop(a);
        assert!(Tag(77).held(&probe).unwrap(), "the dup keeps the description");
        drop(dup);
        assert!(!Tag(77).held(&probe).unwrap(), "released with its description");
        assert!(Tag(77).set(&other).unwrap(), "a read-only description gets a read lock");
        assert!(Tag(77).held(&probe).unwrap());
        assert_eq!(Tag::held_by(&other).unwrap(), (vec![Tag(77)], true));
        assert!(!Tag(77).set(&probe).unwrap(), "held by another description");
        assert_eq!(Tag(MAX_TAG + 1).set(&other), Err(Errno::INVAL));
    }

    #[test]
    fn fdinfo_lines() {
        let s = "pos:\t0\nflags:\t02\nlock:\t1: OFDLCK  ADVISORY  WRITE -1 00:1a:5 77 77\n\
                 lock:\t2: OFDLCK  ADVISORY  READ -1 00:1a:5 9 9\nlock:\t3: POSIX  ADVISORY  WRITE 12 00:1a:5 4 4\n\
                 lock:\t4: OFDLCK  ADVISORY  WRITE -1 00:1a:5 0 EOF\n";
        assert_eq!(parse_fdinfo_locks(s), [Tag(77), Tag(9)]);
    }
}
