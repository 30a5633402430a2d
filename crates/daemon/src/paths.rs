//! Where the daemon's socket lives: `$TEEHEAP_SOCKET`, else
//! `$XDG_RUNTIME_DIR/teeheap/teeheap.sock`, else the same place under
//! `/run/user/<uid>` when that is the user's own runtime directory (what
//! `XDG_RUNTIME_DIR` would name in a login session, so that a shell
//! without it, such as `sudo -u` or a cron job, finds the same daemon),
//! else a private 0700 directory `/tmp/teeheap-<uid>/`.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable that names the socket (and that `teeheap run`
/// sets for its program).
pub const SOCKET_ENV: &str = "TEEHEAP_SOCKET";

/// The default socket path, ignoring [`SOCKET_ENV`].
pub fn default_socket() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("teeheap").join("teeheap.sock");
    }
    let uid = rustix::process::getuid().as_raw();
    let run = PathBuf::from(format!("/run/user/{uid}"));
    match std::fs::metadata(&run) {
        Ok(md) if md.is_dir() && md.uid() == uid => run.join("teeheap").join("teeheap.sock"),
        _ => PathBuf::from(format!("/tmp/teeheap-{uid}")).join("teeheap.sock"),
    }
}

/// [`SOCKET_ENV`] if set and not empty, else [`default_socket`].
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()).map(PathBuf::from).unwrap_or_else(default_socket)
}

/// Makes the socket's directory private: creates it 0700 if missing;
/// refuses one that another user owns or that others can write to.
///
/// # Errors
/// Creation errors; `PermissionDenied` for a directory that is not ours
/// or is group/world writable.
pub fn prepare_dir(socket: &Path) -> io::Result<()> {
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else { return Ok(()) };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let md = std::fs::metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if md.uid() != me || md.permissions().mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a private directory of uid {me}", dir.display()),
        ));
    }
    Ok(())
}

/// A fresh private 0700 directory under the temporary directory, for a
/// run's own socket.
///
/// # Errors
/// Creation errors.
pub fn private_run_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for i in 0..1000u32 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("teeheap-run-{pid}-{nanos:x}-{i}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::ErrorKind::AlreadyExists.into())
}
