//! A private `/dev` for the served program, so that path calls on the heap
//! and TEE nodes (open, stat, access, readdir) run natively, uncounted.
//!
//! The launcher's child enters a new mount namespace (plus a user namespace
//! when not root), mounts a tmpfs on `/dev`, bind-mounts every host `/dev`
//! entry back (recursively, so `/dev/pts` and `/dev/shm` stay the host's)
//! and adds the nodes we serve: as root, character devices with
//! `/dev/null`'s numbers, so that the host itself refuses to `mmap` them
//! (`ENODEV`, as the kernel's dma-heap and TEE nodes) whatever the program
//! does to its fd numbers meanwhile; in a user namespace (not root), where
//! device nodes cannot be opened, empty regular files. A [`DevPlan`] is
//! computed in the parent, so the child runs syscalls only (no allocation
//! between `fork` and `exec`).
//!
//! Device nodes with a sysfs identity ([`DevNodes::device`]: V4L2, DRM)
//! get numbers of their own from [`OWN_NUMBERS`] (host devices whose
//! `open` is harmless and that have no `mmap` of consequence), and the run
//! gets `/sys/class/<class>/<name>/` and `/sys/dev/char/MAJ:MIN` for them
//! (tmpfs over the host's `/sys/class` and `/sys/dev/char`, every host
//! entry put back except the ones a served device replaces), which is how
//! v4l-utils and libudev find out what a node is.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self, CWD, FileType, Mode, OFlags};
use rustix::mount::{self, MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags};
use rustix::thread::UnshareFlags;

use crate::memfd::FileId;
use crate::{Errno, Result};

/// The device numbers served device nodes take, in order (DRM cards come
/// first, then V4L2 nodes): the host's `/dev/urandom`, `/dev/random`,
/// `/dev/full` and `/dev/kmsg` (major 1). Opening them natively is
/// harmless (no state, no privilege beyond what root has; `kmsg` gives each
/// open file its own log cursor), ioctls on the node are the supervisor's
/// (it recognises the node by inode, not by number), and none has an
/// `mmap` (`ENODEV`, shared or private; no mmap is intercepted,
/// docs/serving.md "mmap"); `/dev/zero` would map zero pages, so it is not
/// used. The cards get the random numbers because `read` of a card is not
/// served: zeros (`/dev/full`) would be a zero-length DRM event, on which
/// libdrm's `drmHandleEvent` loops for ever, while random bytes end its
/// loop. In the run, `/sys/dev/char` names the served device for these
/// numbers (so the program's own `/dev/urandom` looks like that device in
/// sysfs).
pub const OWN_NUMBERS: [(u32, u32); 4] = [(1, 9), (1, 8), (1, 7), (1, 11)];

/// The number of nodes without a sysfs identity (heap and TEE nodes):
/// `/dev/null`'s.
pub const NULL_NUMBER: (u32, u32) = (1, 3);

/// A device's sysfs entry in the run: `/sys/class/<class>/<name>` linking
/// to the directory `/sys/dev/char/MAJ:MIN` leads to, whose `uevent`
/// (`MAJOR`, `MINOR`, `DEVNAME`, then [`Self::uevent`]) and `subsystem`
/// link (to the class) are the device's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SysfsDev {
    /// The class (`video4linux`, `drm`).
    pub class: String,
    /// The device's directory name in its class (`video0`, `card1`).
    pub name: String,
    /// Extra `uevent` lines, `KEY` and value.
    pub uevent: Vec<(String, String)>,
}

/// Whether `s` is one path component (no `/`, NUL, newline, not `.`/`..`).
fn is_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0', '\n'])
}

impl SysfsDev {
    fn valid(&self) -> bool {
        is_component(&self.class)
            && is_component(&self.name)
            && self.uevent.iter().all(|(k, v)| is_component(k) && !k.contains('=') && !v.contains(['\0', '\n']))
    }
}

/// The nodes to serve under `/dev`, as paths relative to `/dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevNodes {
    nodes: Vec<String>,
    /// Nodes with a sysfs identity, by index into `nodes`.
    devices: Vec<(usize, SysfsDev)>,
    views: Option<std::path::PathBuf>,
}

impl DevNodes {
    /// No nodes.
    pub fn new() -> DevNodes {
        DevNodes::default()
    }

    /// Adds `rel` (e.g. `"dma_heap/system"` or `"tee0"`). Errors: `EINVAL`
    /// for an empty, absolute or `..`-containing path, or one with a NUL.
    pub fn node(mut self, rel: &str) -> Result<DevNodes> {
        let bad = rel.is_empty()
            || rel.starts_with('/')
            || rel.contains('\0')
            || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            return Err(Errno::INVAL);
        }
        if !self.nodes.iter().any(|n| n == rel) {
            self.nodes.push(rel.to_owned());
        }
        Ok(self)
    }

    /// Adds the device node `rel` with its sysfs identity: it gets the
    /// next of [`OWN_NUMBERS`]. Errors: as [`Self::node`]; `EINVAL` for a
    /// class, name or attribute that is not one path component (or a
    /// `uevent` value with a newline), or a node already added; `ENOSPC`
    /// once every own number is taken.
    pub fn device(self, rel: &str, sysfs: SysfsDev) -> Result<DevNodes> {
        if !sysfs.valid() || self.nodes.iter().any(|n| n == rel) {
            return Err(Errno::INVAL);
        }
        if self.devices.len() >= OWN_NUMBERS.len() {
            return Err(Errno::NOSPC);
        }
        let mut d = self.node(rel)?;
        let i = d.nodes.len() - 1;
        d.devices.push((i, sysfs));
        Ok(d)
    }

    /// The node paths relative to `/dev`.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The device number node `i` gets as a character device.
    fn number(&self, i: usize) -> (u32, u32) {
        self.devices.iter().position(|(n, _)| *n == i).map_or(NULL_NUMBER, |k| OWN_NUMBERS[k])
    }

    /// Each node path with the device number it gets as a character
    /// device (as root).
    pub fn numbers(&self) -> Vec<(String, (u32, u32))> {
        self.nodes.iter().enumerate().map(|(i, n)| (n.clone(), self.number(i))).collect()
    }

    /// Also shows the daemon's accounting views: `dir/dmabuf` at
    /// `/sys/kernel/dmabuf` and `dir/debug` at `/sys/kernel/debug` (a tmpfs
    /// on `/sys/kernel` with every host entry bind-mounted back, as for
    /// `/dev`). Best effort: if any part cannot be reached the program
    /// gets the host's `/sys/kernel`.
    pub fn views(mut self, dir: impl Into<std::path::PathBuf>) -> DevNodes {
        self.views = Some(dir.into());
        self
    }

    /// The inode of each node as the process `pid` sees it (through
    /// `/proc/<pid>/root`), to recognise the node behind a program's fd.
    /// Errors: `ENOENT` if a node is missing there, `EACCES`/`EPERM`
    /// without ptrace access.
    pub fn node_ids(&self, pid: i32) -> Result<Vec<(String, FileId)>> {
        self.nodes
            .iter()
            .map(|n| {
                let st = rustix::fs::stat(format!("/proc/{pid}/root/dev/{n}").as_str())?;
                Ok((n.clone(), FileId { dev: st.st_dev, ino: st.st_ino }))
            })
            .collect()
    }
}

#[derive(Debug)]
enum Kind {
    Dir,
    File,
    Symlink(CString),
}

#[derive(Debug)]
struct HostEntry {
    name: CString,
    dst: CString,
    kind: Kind,
}

/// Everything the child needs to build the private `/dev`, precomputed.
#[derive(Debug)]
pub struct DevPlan {
    user_ns: Option<[CString; 2]>,
    host: Vec<HostEntry>,
    dirs: Vec<CString>,
    nodes: Vec<(CString, (u32, u32))>,
    sys: Option<SysPlan>,
    devices: Option<SysDevPlan>,
}

/// The served devices' sysfs entries, precomputed. libudev accepts only
/// device directories on sysfs itself (it checks the file system type), so
/// each device borrows the host directory its number already leads to
/// (`/sys/dev/char/1:7` is `/sys/devices/virtual/mem/full`): its `uevent`
/// and `subsystem` link are covered by mounts of our own (staged in a
/// detached tmpfs), and `/sys/class/<class>/<name>` (a tmpfs over the
/// host's `/sys/class` with every host entry put back) links to it.
#[derive(Debug)]
struct SysDevPlan {
    class_host: Vec<HostEntry>,
    dirs: Vec<CString>,
    links: Vec<(CString, CString)>,
    /// Per device: staged name, target path, `uevent` bytes; then the
    /// staged link's name, its target path and the link text.
    overlays: Vec<Overlay>,
}

#[derive(Debug)]
struct Overlay {
    uevent_stage: CString,
    uevent_at: CString,
    uevent: Vec<u8>,
    subsystem_stage: CString,
    subsystem_at: CString,
    subsystem: CString,
}

impl SysDevPlan {
    /// The plan for `nodes`' devices, or `None` without devices or without
    /// the host directories. A device whose number the host's
    /// `/sys/dev/char` does not list is left out.
    fn prepare(nodes: &DevNodes) -> Result<Option<SysDevPlan>> {
        if nodes.devices.is_empty() || !std::path::Path::new("/sys/class").is_dir() {
            return Ok(None);
        }
        let classes: Vec<&str> = nodes.devices.iter().map(|(_, d)| d.class.as_str()).collect();
        let mut p = SysDevPlan {
            class_host: plan_host("/sys/class", &classes)?,
            dirs: Vec::new(),
            links: Vec::new(),
            overlays: Vec::new(),
        };
        for (k, (i, d)) in nodes.devices.iter().enumerate() {
            let (major, minor) = nodes.number(*i);
            let by_number = format!("/sys/dev/char/{major}:{minor}");
            let (Ok(link), Ok(real)) = (std::fs::read_link(&by_number), std::fs::canonicalize(&by_number)) else {
                continue;
            };
            let Some(below_sys) = real.strip_prefix("/sys").ok().filter(|r| r.components().count() > 0) else {
                continue;
            };
            let class_dir = cpath(format!("/sys/class/{}", d.class).as_bytes())?;
            if !p.dirs.contains(&class_dir) {
                p.dirs.push(class_dir);
            }
            // /sys/class/<class>/<name> is as deep as /sys/dev/char/M:m.
            p.links.push((
                cpath(format!("/sys/class/{}/{}", d.class, d.name).as_bytes())?,
                cpath(link.as_os_str().as_bytes())?,
            ));
            let mut uevent = format!("MAJOR={major}\nMINOR={minor}\nDEVNAME={}\n", nodes.nodes[*i]);
            for (key, v) in &d.uevent {
                uevent.push_str(&format!("{key}={v}\n"));
            }
            let up = "../".repeat(below_sys.components().count());
            let real = real.as_os_str().as_bytes();
            p.overlays.push(Overlay {
                uevent_stage: cpath(format!("u{k}").as_bytes())?,
                uevent_at: cpath(&[real, b"/uevent"].concat())?,
                uevent: uevent.into_bytes(),
                subsystem_stage: cpath(format!("s{k}").as_bytes())?,
                subsystem_at: cpath(&[real, b"/subsystem"].concat())?,
                // libudev takes the subsystem from the link's last component.
                subsystem: cpath(format!("{up}class/{}", d.class).as_bytes())?,
            });
        }
        Ok(Some(p))
    }

    /// Mounts the entries, or changes nothing (or less) if the host
    /// directories cannot be cloned or covered. Does not allocate.
    fn apply(&self) {
        let Ok(class) = clone_tree(CWD, c"/sys/class") else { return };
        let flags = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
        if mount::mount(c"teeheap", c"/sys/class", c"tmpfs", flags, c"mode=0755").is_err() {
            return;
        }
        bind_back(class.as_fd(), &self.class_host);
        for d in &self.dirs {
            let _ = fs::mkdir(d.as_c_str(), Mode::from_raw_mode(0o755));
        }
        for (path, target) in &self.links {
            let _ = fs::symlink(target.as_c_str(), path.as_c_str());
        }
        let Ok(stage) = stage_tmpfs() else { return };
        for o in &self.overlays {
            if write_new_at(&stage, &o.uevent_stage, &o.uevent).is_ok() {
                let _ = cover(&stage, &o.uevent_stage, &o.uevent_at, OpenTreeFlags::empty());
            }
            if fs::symlinkat(o.subsystem.as_c_str(), &stage, o.subsystem_stage.as_c_str()).is_ok() {
                let _ = cover(&stage, &o.subsystem_stage, &o.subsystem_at, OpenTreeFlags::AT_SYMLINK_NOFOLLOW);
            }
        }
    }
}

/// A detached tmpfs (no path leads to it) to stage files in.
fn stage_tmpfs() -> Result<OwnedFd> {
    let fs = mount::fsopen(c"tmpfs", mount::FsOpenFlags::FSOPEN_CLOEXEC)?;
    mount::fsconfig_create(&fs)?;
    mount::fsmount(&fs, mount::FsMountFlags::FSMOUNT_CLOEXEC, mount::MountAttrFlags::MOUNT_ATTR_NODEV)
}

/// Mounts `name` of `stage` on `at` (a file on a file, a link on a link:
/// `at` itself is covered, not followed).
fn cover(stage: &OwnedFd, name: &CStr, at: &CStr, extra: OpenTreeFlags) -> Result<()> {
    let t = mount::open_tree(stage, name, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | extra)?;
    mount::move_mount(&t, c"", CWD, at, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
}

/// Creates `name` in the directory `dir` (mode 0444) holding `data`.
fn write_new_at(dir: &OwnedFd, name: &CStr, data: &[u8]) -> Result<()> {
    let f = fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o444),
    )?;
    if rustix::io::write(&f, data)? != data.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

/// The `/sys/kernel` with the daemon's views, precomputed.
#[derive(Debug)]
struct SysPlan {
    host: Vec<HostEntry>,
    dmabuf: CString,
    debug: CString,
}

/// The entries of the host directory `dir` (absolute, no trailing `/`)
/// except those named in `skip`, to be bind-mounted back.
fn plan_host(dir: &str, skip: &[&str]) -> Result<Vec<HostEntry>> {
    let mut host = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| io_errno(&e))?;
    for e in rd {
        let e = e.map_err(|e| io_errno(&e))?;
        let name = e.file_name();
        if skip.iter().any(|t| OsStr::new(t) == name) {
            continue;
        }
        let ft = e.file_type().map_err(|e| io_errno(&e))?;
        let kind = if ft.is_symlink() {
            let t = std::fs::read_link(e.path()).map_err(|e| io_errno(&e))?;
            Kind::Symlink(cpath(t.as_os_str().as_bytes())?)
        } else if ft.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        };
        let mut dst = format!("{dir}/").into_bytes();
        dst.extend_from_slice(name.as_bytes());
        host.push(HostEntry { name: cpath(name.as_bytes())?, dst: cpath(&dst)?, kind });
    }
    Ok(host)
}

/// How a served node is made on the private `/dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device with `/dev/null`'s numbers (1:3): the host
    /// refuses `mmap` (`ENODEV`); `read` gives end of file. Needs a mount
    /// that allows devices, i.e. no user namespace.
    CharDevice,
    /// An empty regular file, mode 0666 (user namespace).
    File,
}

impl NodeKind {
    /// The kind a launcher with this effective uid makes.
    pub fn for_euid_root(root: bool) -> NodeKind {
        if root { NodeKind::CharDevice } else { NodeKind::File }
    }

    /// Makes the node `name` in the directory `dir` (mode 0666 whatever the
    /// umask). Errors: `EEXIST`, and those of `mknodat`/`openat`.
    pub fn make_at(self, dir: impl std::os::fd::AsFd, name: &str) -> Result<()> {
        use rustix::fs::{FileType, Mode, OFlags};
        let mode = Mode::from_raw_mode(0o666);
        let f = match self {
            NodeKind::CharDevice => {
                rustix::fs::mknodat(&dir, name, FileType::CharacterDevice, mode, rustix::fs::makedev(1, 3))?;
                rustix::fs::openat(&dir, name, OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty())?
            }
            NodeKind::File => rustix::fs::openat(
                &dir,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                mode,
            )?,
        };
        // The umask may have cleared bits; the node's own inode is changed.
        rustix::fs::chmodat(&dir, name, mode, rustix::fs::AtFlags::empty())?;
        drop(f);
        Ok(())
    }
}

fn cpath(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Errno::INVAL)
}

impl DevPlan {
    /// Reads the host `/dev` and plans the private one. A user namespace is
    /// used unless the caller's effective uid is 0.
    pub fn prepare(nodes: &DevNodes) -> Result<DevPlan> {
        let tops: Vec<&str> = nodes.nodes.iter().map(|n| n.split('/').next().unwrap_or(n)).collect();
        let host = plan_host("/dev", &tops)?;
        let sys = match &nodes.views {
            Some(v) if std::path::Path::new("/sys/kernel").is_dir() => Some(SysPlan {
                host: plan_host("/sys/kernel", &["dmabuf", "debug"])?,
                dmabuf: cpath(v.join("dmabuf").as_os_str().as_bytes())?,
                debug: cpath(v.join("debug").as_os_str().as_bytes())?,
            }),
            _ => None,
        };
        let mut dirs = Vec::new();
        let mut out_nodes = Vec::new();
        for (i, n) in nodes.nodes.iter().enumerate() {
            let comps: Vec<&str> = n.split('/').collect();
            for i in 1..comps.len() {
                let d = format!("/dev/{}", comps[..i].join("/"));
                let d = cpath(d.as_bytes())?;
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            out_nodes.push((cpath(format!("/dev/{n}").as_bytes())?, nodes.number(i)));
        }
        let user_ns = if rustix::process::geteuid().is_root() {
            None
        } else {
            let uid = rustix::process::getuid().as_raw();
            let gid = rustix::process::getgid().as_raw();
            Some([cpath(format!("{uid} {uid} 1").as_bytes())?, cpath(format!("{gid} {gid} 1").as_bytes())?])
        };
        let devices = SysDevPlan::prepare(nodes)?;
        Ok(DevPlan { user_ns, host, dirs, nodes: out_nodes, sys, devices })
    }

    /// Whether the plan enters a user namespace (non-root callers).
    pub fn uses_user_namespace(&self) -> bool {
        self.user_ns.is_some()
    }

    /// How the plan makes the served nodes.
    pub fn node_kind(&self) -> NodeKind {
        NodeKind::for_euid_root(self.user_ns.is_none())
    }

    /// Builds the private `/dev` in the calling process.
    ///
    /// # Safety
    /// Changes the namespaces of the calling process and must run in a
    /// single-threaded process (`unshare(CLONE_NEWUSER)` requires it, and
    /// no other thread may keep using the old mount namespace), i.e.
    /// between `fork` and `exec`. It does not allocate.
    pub unsafe fn apply(&self) -> Result<()> {
        if let Some([uid_map, gid_map]) = &self.user_ns {
            // A non-dumpable parent (the daemon) leaves us non-dumpable,
            // and then /proc/self/* belongs to root: writing our own maps
            // needs the flag back (exec sets it anyway).
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)?;
            // SAFETY: no `CLONE_FILES`: the fd table stays shared as it was;
            // the caller guarantees a single-threaded process (see above).
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) }?;
            write_file(c"/proc/self/setgroups", c"deny".to_bytes())?;
            write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
        } else {
            // SAFETY: as above.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }?;
        }
        mount::mount_change(c"/", MountPropagationFlags::REC | MountPropagationFlags::DOWNSTREAM)?;
        let old = clone_tree(CWD, c"/dev")?;
        mount::mount(c"teeheap", c"/dev", c"tmpfs", MountFlags::NOSUID | MountFlags::NOEXEC, c"mode=0755")?;
        bind_back(old.as_fd(), &self.host);
        drop(old);
        for d in &self.dirs {
            match fs::mkdir(d.as_c_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        }
        let mode = Mode::from_raw_mode(0o666);
        for (n, (major, minor)) in &self.nodes {
            if self.user_ns.is_none() {
                // Root: a device node the host will not mmap (see OWN_NUMBERS).
                fs::mknodat(CWD, n.as_c_str(), FileType::CharacterDevice, mode, fs::makedev(*major, *minor))?;
            } else {
                drop(fs::open(n.as_c_str(), OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC, mode)?);
            }
            fs::chmod(n.as_c_str(), mode)?;
        }
        if let Some(sys) = &self.sys {
            sys.apply();
        }
        if let Some(devices) = &self.devices {
            devices.apply();
        }
        Ok(())
    }
}

impl SysPlan {
    /// Mounts the views, or changes nothing if a source cannot be cloned.
    /// Runs in [`DevPlan::apply`]'s mount namespace; does not allocate.
    fn apply(&self) {
        let (Ok(old), Ok(dmabuf), Ok(debug)) = (
            clone_tree(CWD, c"/sys/kernel"),
            clone_tree(CWD, self.dmabuf.as_c_str()),
            clone_tree(CWD, self.debug.as_c_str()),
        ) else {
            return;
        };
        let flags = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
        if mount::mount(c"teeheap", c"/sys/kernel", c"tmpfs", flags, c"mode=0755").is_err() {
            return;
        }
        bind_back(old.as_fd(), &self.host);
        for (src, dst) in [(dmabuf, c"/sys/kernel/dmabuf"), (debug, c"/sys/kernel/debug")] {
            if fs::mkdir(dst, Mode::from_raw_mode(0o755)).is_ok() {
                let _ = mount::move_mount(src, c"", CWD, dst, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH);
            }
        }
    }
}

/// A detached recursive copy of the mount tree at `path` (under `dir`),
/// to be attached elsewhere with `move_mount`.
fn clone_tree(dir: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::AT_RECURSIVE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    mount::open_tree(dir, path, flags)
}

/// Recreates each host entry at its `dst` and bind-mounts the host's back
/// on it from `old` (an `open_tree` clone of the host directory). An entry
/// that cannot be recreated is left out rather than failing the launch.
/// Runs in the forked child: no allocation.
fn bind_back(old: BorrowedFd<'_>, entries: &[HostEntry]) {
    for e in entries {
        let made = match &e.kind {
            Kind::Symlink(t) => {
                let _ = fs::symlink(t.as_c_str(), e.dst.as_c_str());
                continue;
            }
            Kind::Dir => fs::mkdir(e.dst.as_c_str(), Mode::from_raw_mode(0o755)),
            Kind::File => fs::open(
                e.dst.as_c_str(),
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map(drop),
        };
        if made.is_err() {
            continue;
        }
        if let Ok(t) = clone_tree(old, e.name.as_c_str()) {
            let _ = mount::move_mount(&t, c"", CWD, e.dst.as_c_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH);
        }
    }
}

/// Writes `data` to the file at `path` in one `write` (a `/proc` control
/// file). A short write is `EIO`.
fn write_file(path: &CStr, data: &[u8]) -> Result<()> {
    let f = fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    if rustix::io::write(&f, data)? != data.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::IO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_paths() {
        let n = DevNodes::new().node("dma_heap/system").unwrap().node("tee0").unwrap();
        assert_eq!(n.nodes(), ["dma_heap/system", "tee0"]);
        for bad in ["", "/abs", "a/../b", "a//b", "./x", "x\0"] {
            assert_eq!(DevNodes::new().node(bad), Err(Errno::INVAL), "{bad:?}");
        }
    }

    fn video(name: &str) -> SysfsDev {
        SysfsDev { class: "video4linux".into(), name: name.into(), uevent: vec![] }
    }

    #[test]
    fn devices_get_numbers_of_their_own() {
        let mut n = DevNodes::new().node("tee0").unwrap();
        for (i, v) in ["video0", "video1", "dri/card0", "dri/card1"].iter().enumerate() {
            n = n.device(v, video(&format!("v{i}"))).unwrap();
        }
        assert_eq!(n.clone().device("video9", video("v9")), Err(Errno::NOSPC));
        assert_eq!(n.clone().device("video0", video("again")), Err(Errno::INVAL));
        let nums: Vec<_> = n.numbers().into_iter().map(|(_, d)| d).collect();
        assert_eq!(nums, [NULL_NUMBER, OWN_NUMBERS[0], OWN_NUMBERS[1], OWN_NUMBERS[2], OWN_NUMBERS[3]]);
        for bad in [
            SysfsDev { class: "a/b".into(), ..video("v") },
            SysfsDev { name: "..".into(), ..video("v") },
            SysfsDev { uevent: vec![("K".into(), "a\nb".into())], ..video("v") },
        ] {
            assert_eq!(DevNodes::new().device("video0", bad), Err(Errno::INVAL));
        }
    }

    #[test]
    fn device_sysfs_plan() {
        let n = DevNodes::new().device("video1", video("video1")).unwrap();
        let Some(p) = SysDevPlan::prepare(&n).unwrap() else { return }; // no /sys here
        let Some(o) = p.overlays.first() else { return }; // no /dev/urandom here
        assert!(p.class_host.iter().all(|e| e.name.as_bytes() != b"video4linux"));
        assert_eq!(o.uevent, b"MAJOR=1\nMINOR=9\nDEVNAME=video1\n");
        let real = std::fs::canonicalize("/sys/dev/char/1:9").unwrap();
        assert_eq!(o.uevent_at.as_bytes(), real.join("uevent").as_os_str().as_bytes());
        // The link text resolves to /sys/class/video4linux from the device's directory.
        let resolved = real.join(o.subsystem.to_str().unwrap());
        let norm: std::path::PathBuf = resolved.components().fold(std::path::PathBuf::new(), |mut acc, c| {
            match c {
                std::path::Component::ParentDir => {
                    acc.pop();
                }
                c => acc.push(c),
            }
            acc
        });
        assert_eq!(norm, std::path::Path::new("/sys/class/video4linux"));
        let link = std::fs::read_link("/sys/dev/char/1:9").unwrap();
        assert_eq!(
            p.links,
            [(c"/sys/class/video4linux/video1".to_owned(), cpath(link.as_os_str().as_bytes()).unwrap())]
        );
    }

    #[test]
    fn plan_replaces_host_tops() {
        let n = DevNodes::new().node("dma_heap/protected,trusted-ui").unwrap().node("null").unwrap();
        let p = DevPlan::prepare(&n).unwrap();
        assert!(p.host.iter().all(|e| e.name.as_bytes() != b"null" && e.name.as_bytes() != b"dma_heap"));
        assert_eq!(p.dirs, [c"/dev/dma_heap".to_owned()]);
        assert_eq!(p.nodes.len(), 2);
    }
}
