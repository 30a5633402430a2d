//! The kernel's accounting views of dma-bufs, for programs in a run:
//! `/sys/kernel/dmabuf/buffers/<ino>/{size,exporter_name}` (per-buffer
//! sysfs stats) and `/sys/kernel/debug/dma_buf/bufinfo` (debugfs), in the
//! kernel's format, for the buffers this daemon serves; and the display's
//! frame CRCs at `/sys/kernel/debug/dri/0/crtc-0/crc/{control,data}`, as
//! vkms exposes them.
//!
//! The daemon keeps them as plain files in a private directory
//! ([`Views::root`]: `dmabuf/` and `debug/`) that each run's launcher
//! mounts at `/sys/kernel/dmabuf` and `/sys/kernel/debug` of the program's
//! mount namespace. `<ino>` is the inode `fstat` shows for the buffer's fd,
//! as on Linux. The `teeheap-views` thread refreshes them (see
//! `Daemon::start`), so neither ALLOC nor the reaper pays for it.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use teeheap_sync::Recover;

use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::drm::kms::FrameCrc;

/// What a buffer shows in sysfs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shown {
    size: u64,
    exporter: &'static str,
}

/// The views' directory and what it shows now.
#[derive(Debug)]
pub struct Views {
    root: PathBuf,
    shown: Mutex<(BTreeMap<u64, Shown>, Vec<u8>)>,
}

/// The display's CRC directory in debugfs (vkms is DRM minor 0).
const CRC_DIR: &str = "debug/dri/0/crtc-0/crc";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().recover()
}

fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("new");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o444).open(&tmp)?;
        io::Write::write_all(&mut f, data)?;
    }
    std::fs::rename(tmp, path)
}

impl Views {
    /// Makes the directory (mode 0700) under `parent`: `dmabuf/buffers/`
    /// and `debug/dma_buf/bufinfo` (no buffers yet).
    ///
    /// # Errors
    /// Directory and file creation errors.
    pub fn create(parent: &Path) -> io::Result<Views> {
        static N: AtomicU64 = AtomicU64::new(0);
        remove_stale(parent);
        // A name left by a daemon that could not clean up (SIGKILL) whose
        // pid came back is skipped, not an error.
        let mut tries = 0;
        let root = loop {
            let root =
                parent.join(format!("teeheap-views-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            match std::fs::DirBuilder::new().mode(0o700).create(&root) {
                Ok(()) => break root,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 64 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let v = Views { root, shown: Mutex::default() };
        std::fs::DirBuilder::new().mode(0o755).recursive(true).create(v.root.join("dmabuf/buffers"))?;
        std::fs::DirBuilder::new().mode(0o755).recursive(true).create(v.root.join("debug/dma_buf"))?;
        std::fs::DirBuilder::new().mode(0o755).recursive(true).create(v.root.join(CRC_DIR))?;
        write_file(&v.root.join(CRC_DIR).join("control"), b"auto\n")?;
        v.refresh_crcs(&[]);
        v.refresh(&[]);
        Ok(v)
    }

    /// The directory: mount `dmabuf/` at `/sys/kernel/dmabuf` and `debug/`
    /// at `/sys/kernel/debug`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Shows the display's frame CRCs in `dri/0/crtc-0/crc/data`, one line
    /// per frame as vkms's CRC interface prints them (`0x<frame> 0x<crc>`).
    pub fn refresh_crcs(&self, crcs: &[FrameCrc]) {
        let mut text = String::with_capacity(crcs.len() * 22);
        for c in crcs {
            text.push_str(&format!("0x{:08x} 0x{:08x}\n", c.frame as u32, c.crc));
        }
        if let Err(e) = write_file(&self.root.join(CRC_DIR).join("data"), text.as_bytes()) {
            tracing::warn!(error = %e, "cannot write the display CRCs");
        }
    }

    /// Shows exactly `bufs` (inode of the served file, the buffer).
    pub fn refresh(&self, bufs: &[(u64, Arc<DmaBuf>)]) {
        let mut shown = lock(&self.shown);
        let now: BTreeMap<u64, Shown> =
            bufs.iter().map(|(ino, b)| (*ino, Shown { size: b.size().bytes(), exporter: b.exporter() })).collect();
        let dir = self.root.join("dmabuf/buffers");
        for ino in shown.0.keys().filter(|k| !now.contains_key(k)) {
            let _ = std::fs::remove_dir_all(dir.join(ino.to_string()));
        }
        for (ino, s) in &now {
            if shown.0.get(ino) == Some(s) {
                continue;
            }
            let d = dir.join(ino.to_string());
            let made = std::fs::DirBuilder::new().mode(0o755).recursive(true).create(&d).and_then(|()| {
                write_file(&d.join("size"), format!("{}\n", s.size).as_bytes())?;
                write_file(&d.join("exporter_name"), format!("{}\n", s.exporter).as_bytes())
            });
            if let Err(e) = made {
                tracing::warn!(ino, error = %e, "cannot show a buffer in sysfs");
            }
        }
        shown.0 = now;
        let info = bufinfo(bufs);
        if info != shown.1 {
            if let Err(e) = write_file(&self.root.join("debug/dma_buf/bufinfo"), &info) {
                tracing::warn!(error = %e, "cannot write bufinfo");
            }
            shown.1 = info;
        }
    }
}

/// Removes the views directories under `parent` of daemons that are gone
/// (killed before their `Drop` ran): `teeheap-views-<pid>-<n>` whose pid no
/// longer exists in this pid namespace, owned by this user. Best effort.
/// Where the views directory goes: `/dev/shm` when it is a writable
/// directory (memory: creating and replacing a buffer's files there never
/// waits for a disk — on a disk file system mounted with `discard` each
/// unlink waited for the device, minutes for 10 000 buffers), else
/// `$TMPDIR`.
pub fn parent_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir())
        && rustix::fs::access(shm, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).is_ok();
    if usable { shm.to_path_buf() } else { std::env::temp_dir() }
}

fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("teeheap-views-")).and_then(|r| r.split_once('-'))
        else {
            continue;
        };
        let Ok(pid) = pid.0.parse::<u32>() else { continue };
        let ours = e.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == rustix::process::geteuid().as_raw()
        });
        if ours && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for Views {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `dma_buf/bufinfo` as `dma_buf_debug_show` prints it. `flags` and
/// `mode` are those of a read-write description (the daemon does not see
/// each program's), `count` counts the model's references to the buffer.
fn bufinfo(bufs: &[(u64, Arc<DmaBuf>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\nDma-buf Objects:\n");
    out.extend_from_slice(
        format!("{:<8}\t{:<8}\t{:<8}\t{:<8}\texp_name\t{:<8}\tname\n", "size", "flags", "mode", "count", "ino")
            .as_bytes(),
    );
    let mut total = 0u64;
    for (ino, b) in bufs {
        let size = b.size().bytes();
        total += size;
        let count = Arc::strong_count(b).saturating_sub(1).max(1);
        out.extend_from_slice(
            format!("{size:08}\t{:08x}\t{:08x}\t{count:08}\t{}\t{ino:08}\t", 0o2, 0x3, b.exporter()).as_bytes(),
        );
        match b.name_bytes() {
            Some(n) => out.extend_from_slice(&n),
            None => out.extend_from_slice(b"<none>"),
        }
        out.extend_from_slice(b"\n\tAttached Devices:\n");
        let attached = b.info().attachments;
        for m in &attached {
            out.extend_from_slice(format!("\t{m}\n").as_bytes());
        }
        out.extend_from_slice(format!("Total {} devices attached\n\n", attached.len()).as_bytes());
    }
    out.extend_from_slice(format!("\nTotal {} objects, {total} bytes\n", bufs.len()).as_bytes());
    out
}
