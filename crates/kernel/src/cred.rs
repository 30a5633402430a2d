//! A caller's credentials (the kernel's `struct cred`): effective ids,
//! supplementary groups and the caller's user-namespace group map, read
//! from `/proc` when a call needs them (TEE logins). Plain data.

use crate::error::{Errno, Error, Result};

/// A caller's credentials as the kernel sees them (`current_cred()`): the
/// effective ids and supplementary groups, in the initial user namespace,
/// and how the caller's own user namespace maps group ids to those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The caller's `gid_map` (inside, outside, count); `None` for the
    /// initial user namespace (identity).
    pub gid_map: Option<Vec<(u32, u32, u32)>>,
}

impl Credentials {
    /// Credentials with `euid`/`egid`, no supplementary group, in the
    /// initial user namespace.
    pub fn new(euid: u32, egid: u32) -> Credentials {
        Credentials { euid, egid, groups: Vec::new(), gid_map: None }
    }

    /// Parses `/proc/<pid>/status` (and, if given, `/proc/<pid>/gid_map`).
    /// `None` if the `Uid:`/`Gid:` lines are missing or malformed.
    pub fn parse(status: &str, gid_map: Option<&str>) -> Option<Credentials> {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::split_whitespace);
        let effective = |name: &str| field(name)?.nth(1)?.parse::<u32>().ok();
        let groups = field("Groups:").map_or(Some(Vec::new()), |g| g.map(|x| x.parse().ok()).collect())?;
        let gid_map = match gid_map {
            None => None,
            Some(text) => {
                let mut map = Vec::new();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let n: Vec<u32> = line.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
                    let [inside, outside, count] = n[..] else { return None };
                    map.push((inside, outside, count));
                }
                // The initial namespace maps everything onto itself.
                (map != [(0, 0, u32::MAX)]).then_some(map)
            }
        };
        Some(Credentials { euid: effective("Uid:")?, egid: effective("Gid:")?, groups, gid_map })
    }

    /// The credentials of process `pid`, from `/proc`.
    ///
    /// # Errors
    /// `ESRCH` if the process is gone or its status cannot be read.
    pub fn of_process(pid: u32) -> Result<Credentials> {
        let gone = Error::new(Errno::ESRCH, "cannot read the caller's credentials");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|_| gone.clone())?;
        let gid_map = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).ok();
        Credentials::parse(&status, gid_map.as_deref()).ok_or(gone)
    }

    /// `make_kgid(current_user_ns(), gid)`: the caller's `gid` in the
    /// initial namespace, `None` if its namespace does not map it.
    pub fn map_gid(&self, gid: u32) -> Option<u32> {
        let Some(map) = &self.gid_map else { return (gid != u32::MAX).then_some(gid) };
        map.iter().find_map(|&(inside, outside, count)| {
            let off = gid.checked_sub(inside).filter(|&o| o < count)?;
            outside.checked_add(off)
        })
    }

    /// `in_egroup_p`: whether `gid` (initial namespace) is the effective
    /// group or a supplementary one.
    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups.contains(&gid)
    }
}
