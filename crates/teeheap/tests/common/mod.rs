//! Helpers shared by the `teeheap` crate's integration tests: the binary
//! under test, the scratch directory, compiling the C clients in
//! `tests/clients/`, a `teeheap` command without inherited configuration,
//! and a standalone daemon killed on drop.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use teeheap_daemon::protocol::Client;

/// The `teeheap` binary under test.
pub(crate) const TEEHEAP: &str = env!("CARGO_BIN_EXE_teeheap");

/// Cargo's scratch directory for this crate's integration tests.
pub(crate) fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Compiles `tests/clients/SRC` with `cc -O1 -Wall` and `extra` into
/// `tmp()/OUT`. Every test passes its own `out`, so parallel tests never
/// rewrite a binary another test is executing.
pub(crate) fn compile(src: &str, out: &str, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(src);
    let exe = tmp().join(out);
    let st = Command::new("cc").args(["-O1", "-Wall", "-o"]).arg(&exe).arg(&src).args(extra).status();
    assert!(st.is_ok_and(|s| s.success()), "cc {extra:?} {} failed (needs a C compiler, libc6-dev)", src.display());
    exe
}

/// `teeheap` with no inherited configuration or daemon socket.
pub(crate) fn teeheap() -> Command {
    let mut c = Command::new(TEEHEAP);
    c.env_remove("TEEHEAP_CONFIG").env_remove("TEEHEAP_SOCKET").env("RUST_LOG", "warn");
    c
}

/// [`teeheap`] with a private runtime directory `tmp()/xdg-TAG-PID`.
pub(crate) fn teeheap_private(tag: &str) -> Command {
    let rt = tmp().join(format!("xdg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&rt).unwrap();
    let mut c = teeheap();
    c.env("XDG_RUNTIME_DIR", rt);
    c
}

/// Asserts that a C client succeeded, reported no `FAIL` and `0 failed`,
/// and printed `ok CHECK` for every check in `want`.
pub(crate) fn assert_all_ok(out: &Output, want: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("\n0 failed"), "{stdout}");
    for w in want {
        assert!(stdout.lines().any(|l| l == format!("ok {w}")), "missing check {w:?}:\n{stdout}");
    }
}

/// Waits (at most 10 s) until a daemon answers on `socket`.
pub(crate) fn wait_for_daemon(socket: &Path) {
    let t0 = Instant::now();
    while Client::connect(socket).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A standalone daemon on its own socket, killed on drop. Test files add
/// their own methods in `impl Served` blocks.
pub(crate) struct Served {
    /// The `teeheap serve` process.
    pub(crate) child: Child,
    /// Its socket.
    pub(crate) socket: PathBuf,
}

impl Served {
    /// Runs `cmd serve --socket SOCKET` with `stderr` and waits until it
    /// answers.
    pub(crate) fn spawn(mut cmd: Command, socket: PathBuf, stderr: Stdio) -> Served {
        let child = cmd.arg("serve").arg("--socket").arg(&socket).stderr(stderr).spawn().unwrap();
        wait_for_daemon(&socket);
        Served { child, socket }
    }

    /// `cmd` (a `teeheap` command) with `run --connect SOCKET --` added; the
    /// caller adds the program and its arguments.
    pub(crate) fn run_connected(&self, mut cmd: Command) -> Command {
        cmd.arg("run").arg("--connect").arg(&self.socket).arg("--");
        cmd
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `clients/ctl_client.c` under `teeheap run`, driven one command per line.
pub(crate) struct Prog {
    /// The `teeheap run` process.
    pub(crate) child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    /// The program's pid, as it reports it.
    pub(crate) pid: i64,
}

impl Prog {
    /// Starts `cmd` (a `teeheap run ... -- ctl_client ...` command) with
    /// piped stdin and stdout and asks the program for its pid.
    pub(crate) fn spawn(mut cmd: Command) -> Prog {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = Prog { child, stdin, out, pid: 0 };
        p.pid = p.cmd("pid").strip_prefix("pid ").unwrap().parse().unwrap();
        p
    }

    /// Sends one command line.
    pub(crate) fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The program's next line, which must come.
    pub(crate) fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).unwrap();
        assert!(!s.is_empty(), "the program stopped");
        s.trim_end().to_owned()
    }

    /// One command and its answer.
    pub(crate) fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// A command that must answer `fd N`.
    pub(crate) fn fd(&mut self, line: &str) -> i64 {
        let r = self.cmd(line);
        r.strip_prefix("fd ").unwrap_or_else(|| panic!("{line}: {r}")).parse().unwrap()
    }

    /// Tells the program to exit; it must succeed.
    pub(crate) fn exit(mut self) {
        self.send("exit");
        assert!(self.child.wait().unwrap().success());
    }
}

/// The repository's root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the TA in `src` (its `ta.c` and `include/`) into
/// `tadir/UUID.ta` with the build line of the README, word for word but
/// for the paths (`teeheap ta-dev-kit` from the binary under test).
pub(crate) fn build_ta(src: &Path, tadir: &Path, uuid: &str) -> PathBuf {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cc -shared -fPIC $(teeheap ta-dev-kit --cflags)"))
        .expect("README.md shows how to build a TA");
    let line = line
        .replace("my_ta", &src.display().to_string())
        .replace("tadir/<uuid>.ta", &format!("{}/{uuid}.ta", tadir.display()));
    std::fs::create_dir_all(tadir).unwrap();
    let bin = Path::new(TEEHEAP).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .args(["-c", &line])
        .env("PATH", path)
        .env("XDG_CACHE_HOME", tmp().join(format!("ta-cache-{}", std::process::id())))
        .output()
        .unwrap();
    assert!(out.status.success(), "{line}\n{}", String::from_utf8_lossy(&out.stderr));
    tadir.join(format!("{uuid}.ta"))
}

/// A secure world on a 16 MiB platform whose TA directory is `tadir` and
/// whose TA processes are the `teeheap` binary under test.
pub(crate) fn ta_world(tadir: PathBuf) -> std::sync::Arc<teeheap_secure_world::SecureWorld> {
    let toml = "name = \"ta\"\ndram = { base = 0x4000_0000, size = \"16 MiB\" }";
    let platform = teeheap_platform::Platform::new(teeheap_platform::PlatformConfig::from_toml(toml).unwrap()).unwrap();
    let config = teeheap_secure_world::SecureConfig {
        ta_dirs: vec![tadir],
        ta_runner: Some(PathBuf::from(TEEHEAP)),
        ta_call_timeout: Some(Duration::from_secs(20)),
        ..teeheap_secure_world::SecureConfig::default()
    };
    std::sync::Arc::new(teeheap_secure_world::SecureWorld::new(std::sync::Arc::new(platform), config).unwrap())
}
