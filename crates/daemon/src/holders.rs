//! Who holds the files the daemon served: a scan of `/proc/<pid>/fd` and
//! `/proc/<pid>/maps` of every process the daemon may look at (its own
//! excluded), matched to served inodes — what `/proc/<pid>/fdinfo` gives a
//! kernel user, done from the outside.
//!
//! The scan is a snapshot: processes may open, pass and close fds while it
//! runs. Processes the daemon may not inspect (other users) are skipped.

use std::collections::{BTreeMap, HashMap};

use teeheap_intercept::memfd::FileId;

/// How one process holds one served inode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    /// Its fd numbers for the inode.
    pub fds: Vec<i32>,
    /// Its mappings of the inode.
    pub mmaps: u32,
}

/// One process's holds, by inode.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// Command line, arguments separated by spaces.
    pub cmdline: String,
    /// Holds by inode.
    pub holds: HashMap<FileId, Hold>,
}

/// Memfds the daemon serves are named `/memfd:<name> (deleted)`.
fn is_ours(link: &str) -> bool {
    link.starts_with("/memfd:dmabuf") || link.starts_with("/memfd:tee_shm")
}

/// The command line of `pid` (empty if unreadable).
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let parts: Vec<String> =
        raw.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    parts.join(" ")
}

/// The served inodes `pid` holds, by fd and by mapping; `None` if the
/// process is gone or may not be inspected.
pub fn scan_process(pid: i32) -> Option<HashMap<FileId, Hold>> {
    let mut holds: HashMap<FileId, Hold> = HashMap::new();
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for e in dir.flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(link) = std::fs::read_link(e.path()) else { continue };
        if !is_ours(&link.to_string_lossy()) {
            continue;
        }
        let Ok(st) = rustix::fs::stat(e.path()) else { continue };
        holds.entry(FileId { dev: st.st_dev, ino: st.st_ino }).or_default().fds.push(fd);
    }
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        for line in maps.lines().filter(|l| l.contains("/memfd:")) {
            let mut f = line.split_whitespace();
            let (Some(_), Some(_), Some(_), Some(dev), Some(ino), Some(path)) =
                (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            if !is_ours(path) {
                continue;
            }
            let Some((maj, min)) = dev.split_once(':') else { continue };
            let (Ok(maj), Ok(min), Ok(ino)) =
                (u32::from_str_radix(maj, 16), u32::from_str_radix(min, 16), ino.parse::<u64>())
            else {
                continue;
            };
            holds.entry(FileId { dev: rustix::fs::makedev(maj, min), ino }).or_default().mmaps += 1;
        }
    }
    for h in holds.values_mut() {
        h.fds.sort_unstable();
    }
    Some(holds)
}

/// Every process but this one that holds a served inode, by pid.
pub fn scan_all() -> BTreeMap<i32, Process> {
    let me = std::process::id() as i32;
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let Some(holds) = scan_process(pid) else { continue };
        if holds.is_empty() {
            continue;
        }
        out.insert(pid, Process { cmdline: cmdline(pid), holds });
    }
    out
}
