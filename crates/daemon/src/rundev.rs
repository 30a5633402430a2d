//! The private `/dev` of each supervised run, reached from the daemon so
//! that `teeheap heap rm` and `heap add` change what programs see there
//! (`open` → `ENOENT`, `ls` does not list the node; docs/lifecycle.md).
//!
//! A [`RunDev`] holds an `O_PATH` fd of the run's `/dev` directory, opened
//! through `/proc/<pid>/root/dev` when the run is supervised and checked
//! against the node inodes the launcher reported (so a reused pid cannot
//! lend us another run's `/dev`). It lives as long as the session and is
//! the only way the daemon changes a run's `/dev`.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use teeheap_sync::Recover;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use teeheap_intercept::Errno;
use teeheap_intercept::devns::NodeKind;
use teeheap_intercept::memfd::FileId;

use teeheap_kernel::file::File;

/// What a node of the program's private `/dev` stands for.
#[derive(Clone, Debug)]
pub enum Node {
    /// `/dev/dma_heap/<name>`: the heap file opened when the node was made,
    /// which every description of the node shares (a heap file has no
    /// state of its own). Once that heap is removed it answers `ENODEV`;
    /// `heap add` makes a new node with a new file. `None` if the heap was
    /// gone before the node was served.
    Heap(Option<File>),
    /// `/dev/<name>` of a TEE device (`tee0`, `teepriv0`).
    Tee(String),
    /// `/dev/dri/cardN` of a DRM device; the path relative to `/dev`.
    Drm(String),
    /// `/dev/videoN` of a V4L2 device; the path relative to `/dev`.
    Video(String),
}

impl Node {
    /// The node for a path relative to `/dev`, opening a heap's file now.
    pub fn open(path: &str, kernel: &teeheap_kernel::Kernel) -> Node {
        if let Some(h) = path.strip_prefix("dma_heap/") {
            Node::Heap(kernel.dma_heap_open(h).ok())
        } else if path.starts_with("dri/") {
            Node::Drm(path.to_owned())
        } else if path.starts_with("video") {
            Node::Video(path.to_owned())
        } else {
            Node::Tee(path.to_owned())
        }
    }
}

/// The nodes of one run by inode, shared by its session (which answers
/// calls on them) and the daemon (which adds nodes on `heap add`).
pub type NodeMap = Arc<Mutex<HashMap<FileId, Node>>>;

/// One run's `/dev`, as the daemon reaches it.
#[derive(Debug)]
pub struct RunDev {
    dev: OwnedFd,
    kind: NodeKind,
    nodes: NodeMap,
    /// The teepriv0 node's open gate, if it has one (supp_gate.rs).
    gate: Option<crate::supp_gate::GateMark>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().recover()
}

impl RunDev {
    /// Opens `/proc/<pid>/root/dev` and checks that every node of `nodes`
    /// (path relative to `/dev`, inode) is there with that inode.
    ///
    /// # Errors
    /// `ESRCH`/`ENOENT` if the process is gone, `EACCES` without ptrace
    /// access, `ESTALE` if a node's inode differs (another run's `/dev`).
    pub fn open(pid: i32, nodes: &[(String, FileId)], map: NodeMap) -> Result<RunDev, Errno> {
        let dev = rustix::fs::open(
            format!("/proc/{pid}/root/dev").as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut kind = NodeKind::File;
        for (path, id) in nodes {
            let st = rustix::fs::statat(&dev, path.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
            if (FileId { dev: st.st_dev, ino: st.st_ino }) != *id {
                return Err(Errno::STALE);
            }
            if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice {
                kind = NodeKind::CharDevice;
            }
        }
        Ok(RunDev { dev, kind, nodes: map, gate: None })
    }

    /// Makes the TEE node `name` (directly under `/dev`) a regular file if
    /// it is a device node, served as before, and returns a read-only
    /// description of it opened now. Only before the program runs: a
    /// description of the old node would name nothing served.
    ///
    /// # Errors
    /// Those of `openat`/`renameat`/`statat` on the run's `/dev`.
    pub fn regular_tee_node(&self, name: &str) -> Result<OwnedFd, Errno> {
        let st = rustix::fs::statat(&self.dev, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let old = FileId { dev: st.st_dev, ino: st.st_ino };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            let tmp = format!(".{name}.teeheap");
            match NodeKind::File.make_at(&self.dev, &tmp) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            rustix::fs::renameat(&self.dev, tmp.as_str(), &self.dev, name)?;
        }
        let probe = rustix::fs::openat(
            &self.dev,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let new = teeheap_intercept::memfd::FileId::of(&probe)?;
        let mut nodes = lock(&self.nodes);
        nodes.remove(&old);
        nodes.insert(new, Node::Tee(name.to_owned()));
        Ok(probe)
    }

    /// Keeps `mark` (the gate of a TEE node) as long as the run.
    pub fn set_gate(&mut self, mark: crate::supp_gate::GateMark) {
        self.gate = Some(mark);
    }

    /// The gated node, if any.
    pub fn gated_node(&self) -> Option<FileId> {
        self.gate.as_ref().map(|g| g.node())
    }

    /// Removes `/dev/dma_heap/<name>`. Fds already open on it stay (their
    /// ioctls answer `ENODEV`). A node already gone is not an error.
    pub fn remove_heap(&self, name: &str) -> Result<(), Errno> {
        match rustix::fs::unlinkat(&self.dev, format!("dma_heap/{name}").as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes `/dev/dma_heap/<name>` again, of the kind the run's other
    /// nodes are, and serves it as `heap` (the heap's file, opened once
    /// for this run). A node already there is served as it is.
    pub fn add_heap(&self, name: &str, heap: Node) -> Result<(), Errno> {
        match rustix::fs::mkdirat(&self.dev, "dma_heap", Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        let dir = rustix::fs::openat(
            &self.dev,
            "dma_heap",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match self.kind.make_at(&dir, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        lock(&self.nodes).insert(FileId { dev: st.st_dev, ino: st.st_ino }, heap);
        Ok(())
    }
}
