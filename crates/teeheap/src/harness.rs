//! [`Run`]: a program under a private daemon in this process, for tests.
//!
//! The daemon lives as long as the [`Running`] value: after the program
//! has exited its observations still answer, and dropping the value kills
//! a program still running, stops the daemon and removes its socket
//! directory.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use teeheap_daemon::Daemon;
use teeheap_daemon::paths::private_run_dir;
use teeheap_daemon::protocol::Listing;
use teeheap_daemon::report::{Bufinfo, Log, MemoryMap, Stat};
use teeheap_platform::{Platform, PlatformConfig};

use crate::Error;
use crate::launch::start_with_admin;

/// A program to run with the protected heaps and the TEE of a private
/// platform, like `teeheap run -- PROG`. See the crate documentation.
#[derive(Debug)]
pub struct Run {
    platform: PlatformConfig,
    command: Option<Command>,
    allow_admin: bool,
}

impl Default for Run {
    /// A run on the embedded default platform (`teeheap default-config`).
    fn default() -> Run {
        Run::new(PlatformConfig::embedded_default())
    }
}

impl Run {
    /// A run on `platform` (e.g. `PlatformConfig::from_toml(text)?`).
    pub fn new(platform: PlatformConfig) -> Run {
        Run { platform, command: None, allow_admin: false }
    }

    /// The program to run: program, arguments, environment, working
    /// directory and stdio as set on `cmd`. `TEEHEAP_SOCKET` is added.
    pub fn command(mut self, cmd: Command) -> Run {
        self.command = Some(cmd);
        self
    }

    /// Lets the program act through the daemon's socket (`devmem` as a
    /// secure bus master, `backend unbind|bind`, `heap rm|add`), as
    /// `teeheap run --allow-admin` does; by default it may only observe.
    pub fn allow_admin(mut self, allow: bool) -> Run {
        self.allow_admin = allow;
        self
    }

    /// Boots the platform and its daemon, and starts the program.
    ///
    /// # Errors
    /// See [`Error`]: [`Error::NoCommand`] without [`Run::command`],
    /// [`Error::Start`] if the program cannot be started.
    pub fn spawn(mut self) -> Result<Running, Error> {
        let cmd = self.command.take().ok_or(Error::NoCommand)?;
        let mut daemon = Daemon::with_platform(Platform::new(self.platform)?)?;
        let dir = RunDir(private_run_dir()?);
        let socket = dir.0.join("teeheap.sock");
        daemon.listen(&socket)?;
        let child = start_with_admin(&socket, cmd, self.allow_admin)?;
        Ok(Running { child: Some(child), status: None, daemon, socket, _dir: dir })
    }

    /// Runs the program to its end and returns its exit status.
    ///
    /// # Errors
    /// As [`Run::spawn`].
    pub fn status(self) -> Result<ExitStatus, Error> {
        Ok(self.spawn()?.wait()?)
    }

    /// Runs the program to its end with its standard output and error
    /// captured.
    ///
    /// # Errors
    /// As [`Run::spawn`].
    pub fn output(mut self) -> Result<Output, Error> {
        if let Some(cmd) = self.command.as_mut() {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut run = self.spawn()?;
        Ok(run.take_child().wait_with_output()?)
    }
}

/// Removes the run's private socket directory on the way out.
#[derive(Debug)]
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A started [`Run`]: the program and its daemon.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    status: Option<ExitStatus>,
    daemon: Daemon,
    socket: PathBuf,
    // Declared after the daemon: removed once the daemon has stopped.
    _dir: RunDir,
}

impl Running {
    fn take_child(&mut self) -> Child {
        self.child.take().expect("the child is only taken by Run::output, once")
    }

    /// The program's process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's control socket (what the program sees in
    /// `TEEHEAP_SOCKET`): `teeheap --socket`-style commands and other
    /// programs can use it while this value lives.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The program's standard input, if it was set to `Stdio::piped()`.
    pub fn stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// The program's standard output, if it was set to `Stdio::piped()`.
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// The program's standard error, if it was set to `Stdio::piped()`.
    pub fn stderr(&mut self) -> Option<ChildStderr> {
        self.child.as_mut().and_then(|c| c.stderr.take())
    }

    /// Waits for the program to exit. The daemon keeps answering.
    ///
    /// # Errors
    /// The wait's.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let Some(child) = self.child.as_mut() else { return Err(io::ErrorKind::InvalidInput.into()) };
        let s = child.wait()?;
        self.status = Some(s);
        Ok(s)
    }

    /// Sends `SIGKILL` to the program (not to what it forked).
    ///
    /// # Errors
    /// The kill's.
    pub fn kill(&mut self) -> io::Result<()> {
        match self.child.as_mut() {
            Some(c) if self.status.is_none() => c.kill(),
            _ => Ok(()),
        }
    }

    /// Every live dma-buf with its holders (`teeheap bufinfo --json`).
    pub fn bufinfo(&self) -> Bufinfo {
        self.daemon.shared().bufinfo()
    }

    /// Heap, secure-world and per-process counters (`teeheap stat --json`).
    pub fn stat(&self) -> Stat {
        self.daemon.shared().stat()
    }

    /// The heaps (`teeheap ls --json`).
    pub fn ls(&self) -> Listing {
        self.daemon.shared().listing()
    }

    /// Firewall violations and lifecycle events (`teeheap log --json`).
    pub fn log(&self) -> Log {
        self.daemon.shared().log(0)
    }

    /// The physical memory map (`teeheap map --json`).
    pub fn map(&self) -> MemoryMap {
        self.daemon.shared().memory_map()
    }

    /// Waits until no dma-buf is alive, up to `timeout`. Buffers are
    /// released shortly after their last fd and mapping are gone (the
    /// daemon notices closes in the background), so a test that checks
    /// for leaks after the program exited asks this rather than
    /// [`Running::bufinfo`] at once. Returns whether none is left.
    pub fn wait_for_no_buffers(&self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            if self.daemon.kernel().dma_bufs().snapshot().is_empty() {
                return true;
            }
            if t0.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        match self.child.as_mut() {
            Some(c) if self.status.is_none() => {
                let _ = c.kill();
                let _ = c.wait();
            }
            _ => {}
        }
    }
}
