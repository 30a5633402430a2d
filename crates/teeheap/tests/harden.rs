//! The daemon is never down and out of reach (issue 11): a panic while
//! serving a call answers that call with `EIO` and the daemon keeps serving
//! (docs/serving.md, "Answering").
//!
//! The panic comes from a test-only ioctl that exists only with the daemon's
//! `test-hooks` feature, which this crate's dev-dependency enables for test
//! builds; release builds of `teeheap` do not have it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Served, TEEHEAP, compile as cc, teeheap, tmp};
use serde_json::Value;
use teeheap_daemon::protocol::Client;

fn assert_all_ok(out: &Output) {
    common::assert_all_ok(out, &[]);
}

/// A `teeheap serve` on a fresh socket with its stderr in a file, killed on
/// drop.
impl Served {
    fn start(name: &str) -> Served {
        let dir = tmp().join(format!("harden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let err = std::fs::File::create(dir.join("stderr")).unwrap();
        Served::spawn(teeheap(), dir.join("teeheap.sock"), Stdio::from(err))
    }

    /// The file with the daemon's stderr.
    fn stderr(&self) -> PathBuf {
        self.socket.with_file_name("stderr")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = teeheap().args(args).arg("--json").env("TEEHEAP_SOCKET", &self.socket).output().unwrap();
        assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Output {
        self.run_connected(teeheap()).args(args).output().unwrap()
    }
}

#[test]
fn a_panic_answers_one_call_with_eio_and_the_daemon_keeps_serving() {
    let exe = compile("harden_client.c", "harden_client_panic");
    let d = Served::start("panic");
    let out = d.run(&[exe.as_os_str(), "panic".as_ref()]);
    assert_all_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("ok a call whose serving panics fails with EIO").count(), 3, "{stdout}");

    // Logged as a bug, with the caller.
    let log = d.json(&["log"]);
    let bugs: Vec<&Value> = log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "bug").collect();
    assert_eq!(bugs.len(), 3, "{log:#}");
    for b in &bugs {
        let msg = b["message"].as_str().unwrap();
        assert!(msg.contains("panic while serving ioctl 0x48fe"), "{msg}");
        assert!(b["pid"].as_i64().is_some_and(|p| p > 0), "{b}");
    }
    // The daemon still serves other programs, and says so on stderr.
    let again = d.run(&[exe.as_os_str(), "panic".as_ref()]);
    assert_all_ok(&again);
    let stats = d.json(&["stat"]);
    assert!(stats.is_object());
    let stderr = std::fs::read_to_string(d.stderr()).unwrap();
    assert_eq!(stderr.matches("teeheap: BUG: panic while serving ioctl 0x48fe").count(), 6, "{stderr}");
}

#[test]
fn a_panic_answers_one_control_request_with_a_bug_error() {
    let d = Served::start("ctlpanic");
    let cli = |args: &[&str]| teeheap().args(args).env("TEEHEAP_SOCKET", &d.socket).output().unwrap();
    for _ in 0..2 {
        let out = cli(&["heap", "rm", "teeheap-test-panic"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("bug"), "{stderr}");
        // The daemon, its locks poisoned by the panic, answers on.
        let ls = d.json(&["ls"]);
        assert!(ls["heaps"].as_array().is_some_and(|h| h.len() >= 4), "{ls:#}");
    }
    let log = d.json(&["log"]);
    let bugs = log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "bug").count();
    assert_eq!(bugs, 2, "{log:#}");
    // Programs are still served.
    let exe = compile("harden_client.c", "harden_client_ctlpanic");
    let out = d.run(&[exe.as_os_str(), "panic".as_ref()]);
    assert_all_ok(&out);
}

/// Runs commands as the daemon's user and the attacker's: as root, both as
/// the ordinary uid 65534 through `setpriv` (binaries copied where that uid
/// can reach them); otherwise as we are.
struct Users {
    setpriv: Option<PathBuf>,
    teeheap: PathBuf,
    client: PathBuf,
    /// The copies' directory, removed on drop.
    dir: Option<PathBuf>,
}

impl Drop for Users {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Users {
    /// `None` (the test is skipped) when root has no `setpriv` or the
    /// copies are not reachable by the ordinary uid.
    fn new(name: &str) -> Option<Users> {
        let client = compile("harden_client.c", &format!("harden_client_{name}"));
        if !rustix::process::geteuid().is_root() {
            return Some(Users { setpriv: None, teeheap: PathBuf::from(TEEHEAP), client, dir: None });
        }
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].iter().map(PathBuf::from).find(|p| p.exists());
        let Some(setpriv) = setpriv else {
            eprintln!("skipped: no setpriv (util-linux)");
            return None;
        };
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from("/tmp").join(format!("teeheap-harden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (bin, copy) = (dir.join("teeheap"), dir.join("harden_client"));
        std::fs::copy(TEEHEAP, &bin).unwrap();
        std::fs::copy(&client, &copy).unwrap();
        for p in [&dir, &bin, &copy] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Some(Users { setpriv: Some(setpriv), teeheap: bin, client: copy, dir: Some(dir) })
    }

    /// `prog` as the ordinary user, with a clean teeheap environment.
    fn cmd(&self, prog: &Path) -> Command {
        let mut c = match &self.setpriv {
            Some(sp) => {
                let mut c = Command::new(sp);
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(prog);
                c.env_remove("XDG_RUNTIME_DIR").env("TMPDIR", "/tmp");
                c
            }
            None => Command::new(prog),
        };
        c.env_remove("TEEHEAP_CONFIG").env_remove("TEEHEAP_SOCKET").env("RUST_LOG", "warn");
        c
    }
}

/// A program under `teeheap run` that planted a secret and holds it.
struct Planted {
    child: Child,
    stdin: std::process::ChildStdin,
    prog: i32,
}

impl Planted {
    /// Starts `cmd` (a `teeheap run ... -- harden_client plant SEED`) and
    /// waits for "planted PID BUF".
    fn start(mut cmd: Command) -> Planted {
        use std::io::BufRead;
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"planted"), "the program did not plant its secret: {line:?}");
        Planted { child, stdin, prog: words[1].parse().unwrap() }
    }

    fn finish(mut self) {
        use std::io::Write;
        writeln!(self.stdin).unwrap();
        let st = self.child.wait().unwrap();
        assert!(st.success(), "{st:?}");
    }
}

const SEED: &str = "0x5ec2e7";

/// The secret `harden_client plant SEED` plants (its `secret()`): the C
/// client's own xorshift, mirrored bit for bit (not a test RNG).
fn secret(seed: &str) -> Vec<u8> {
    let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).unwrap();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Every way into the daemon refused, nothing found; returns the output.
fn attack_refused(users: &Users, daemon: u32, prog: i32) -> String {
    let out = users.cmd(&users.client).args(["attack", &daemon.to_string(), &prog.to_string(), SEED]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for what in [
        "list /proc/DAEMON/fd",
        "open /proc/DAEMON/fd/N for reading",
        "open /proc/DAEMON/fd/N for writing (pwrite)",
        "open /proc/DAEMON/mem",
        "process_vm_readv on the daemon",
        "pidfd_getfd on the daemon",
        "PTRACE_SEIZE of the daemon",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("refused {what}: "))), "{what} not refused:\n{stdout}");
    }
    assert!(stdout.contains("\n0 reached, 0 found\n"), "{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Root (out of scope) still reaches the daemon: proves that the secret is
/// planted and that the scan finds it where it is (the DRAM memfd), and
/// nowhere in the daemon's private memory: the plaintext copies made while
/// the TA ran and the shm was synced were wiped.
fn root_finds_it(users: &Users, daemon: u32, prog: i32) {
    if users.setpriv.is_none() {
        return;
    }
    // The daemon's user, outside the run, reads the secret back as the
    // secure CPU through the daemon's socket (allowed, and logged): the
    // reply's copy in the daemon is wiped as well.
    let environ = std::fs::read(format!("/proc/{prog}/environ")).unwrap();
    let socket = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"TEEHEAP_SOCKET="))
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .expect("the program's TEEHEAP_SOCKET");
    let ask = |args: &[&str]| users.cmd(&users.teeheap).args(args).env("TEEHEAP_SOCKET", &socket).output().unwrap();
    let out = ask(&["bufinfo", "--json"]);
    let bufinfo: Value = serde_json::from_slice(&out.stdout).expect("bufinfo JSON");
    let start = bufinfo["buffers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["protected"] == true && b["size"] == 65536)
        .and_then(|b| b["ranges"][0]["start"].as_u64())
        .expect("the planted buffer");
    let out = ask(&["devmem", &format!("{start:#x}"), "--len", "4096", "--master", "secure-cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first: Vec<String> = secret(SEED)[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&first.join(" ")), "devmem read the secret back");
    let out =
        Command::new(&users.client).args(["attack", &daemon.to_string(), &prog.to_string(), SEED]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("REACHED open /proc/DAEMON/fd/N for reading"), "{stdout}");
    assert!(stdout.contains("FOUND secret in daemon fd"), "root finds the secret in the DRAM memfd:\n{stdout}");
    assert!(stdout.contains("REACHED open /proc/DAEMON/mem"), "{stdout}");
    assert!(
        !stdout.contains("FOUND secret in /proc/DAEMON/mem"),
        "a plaintext copy was left in the daemon's heap:\n{stdout}"
    );
}

#[test]
fn same_uid_outside_the_run_finds_nothing() {
    let Some(users) = Users::new("reach") else { return };
    // The run's private daemon (`teeheap run` itself).
    let mut run = users.cmd(&users.teeheap);
    run.arg("run").arg("--").arg(&users.client).args(["plant", SEED]);
    let planted = Planted::start(run);
    let daemon = planted.child.id();
    attack_refused(&users, daemon, planted.prog);
    root_finds_it(&users, daemon, planted.prog);
    planted.finish();

    // A shared `teeheap serve`.
    let dir = PathBuf::from("/tmp").join(format!("teeheap-harden-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let socket = dir.join("teeheap.sock");
    let mut serve =
        users.cmd(&users.teeheap).arg("serve").arg("--socket").arg(&socket).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while Client::connect(&socket).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut run = users.cmd(&users.teeheap);
    run.arg("run").arg("--connect").arg(&socket).arg("--").arg(&users.client).args(["plant", SEED]);
    let planted = Planted::start(run);
    attack_refused(&users, serve.id(), planted.prog);
    root_finds_it(&users, serve.id(), planted.prog);
    planted.finish();
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rfind(')').is_some_and(|i| s[i + 1..].trim_start().starts_with('Z')),
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `teeheap run ARGS -- sh -c SCRIPT` and reads the pids the script
/// prints on its first line.
fn run_sh(run_args: &[&std::ffi::OsStr], script: &str) -> (Child, Vec<i32>) {
    use std::io::BufRead;
    let mut child = teeheap()
        .arg("run")
        .args(run_args)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pids = line.split_whitespace().map(|w| w.parse().unwrap_or_else(|_| panic!("no pid: {line:?}"))).collect();
    (child, pids)
}

#[test]
fn a_dead_shared_daemon_ends_the_run_and_its_socket_is_replaced() {
    let d = Served::start("dies");
    // The program forks a grandchild and waits for it.
    let (mut run, pids) = run_sh(&["--connect".as_ref(), d.socket.as_os_str()], "sleep 1000 & echo $!; wait");
    let grandchild = pids[0];
    let daemon = rustix::process::Pid::from_raw(d.child.id() as i32).unwrap();
    rustix::process::kill_process(daemon, rustix::process::Signal::KILL).unwrap();
    let mut status = None;
    wait_until("teeheap run exits after its daemon died", 10, || {
        status = run.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(stderr.contains("died while the program ran"), "{stderr}");
    wait_until("the grandchild is gone", 5, || gone(grandchild));

    // The SIGKILLed daemon left its socket; the next serve replaces it.
    assert!(d.socket.exists());
    let mut next = teeheap().arg("serve").arg("--socket").arg(&d.socket).stderr(Stdio::null()).spawn().unwrap();
    wait_until("the next daemon serves the same socket", 10, || Client::connect(&d.socket).is_ok());
    assert!(next.try_wait().unwrap().is_none(), "the next serve must not fail on the stale socket");
    let _ = next.kill();
    let _ = next.wait();
}

#[test]
fn serve_removes_its_socket_on_sigint_sighup_sigquit_and_sigterm() {
    use rustix::process::Signal;
    for (i, sig) in [Signal::INT, Signal::HUP, Signal::QUIT, Signal::TERM].into_iter().enumerate() {
        let mut d = Served::start(&format!("sig{i}"));
        rustix::process::kill_process(rustix::process::Pid::from_raw(d.child.id() as i32).unwrap(), sig).unwrap();
        let st = d.child.wait().unwrap();
        assert!(st.success(), "{sig:?}: {st:?}");
        assert!(!d.socket.exists(), "{sig:?}: socket left behind");
    }
}

#[test]
fn a_killed_run_takes_its_program_tree_along() {
    // The run's private daemon is `teeheap run` itself. The program forks a
    // grandchild; PR_SET_PDEATHSIG ends the program, the run's sentinel
    // the grandchild.
    let (mut run, pids) = run_sh(&[], "sleep 1000 & echo $$ $!; wait");
    run.kill().unwrap();
    let _ = run.wait();
    for pid in pids {
        wait_until("the program and its child are gone", 5, || gone(pid));
    }
}

#[test]
fn a_private_run_ends_what_the_program_left_behind() {
    // The program exits at once, leaving a background process; the run's
    // daemon ends with the program, so the leftover is ended too.
    let (mut run, pids) = run_sh(&[], "sleep 1000 & echo $!");
    let st = run.wait().unwrap();
    assert!(st.success(), "{st:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("ended 1 process(es) the program left behind"), "{stderr}");
    wait_until("the leftover is gone", 5, || gone(pids[0]));
}

#[test]
fn a_failed_session_ends_its_run_and_the_daemon_serves_others() {
    use std::io::BufRead;
    let exe = compile("harden_client.c", "harden_client_session");
    let d = Served::start("session");
    let mut run = d
        .run_connected(teeheap())
        .arg(&exe)
        .arg("session-panic")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(run.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let program: i32 = line.trim().parse().unwrap();
    let mut status = None;
    wait_until("teeheap run exits after its session failed", 10, || {
        status = run.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("or its session for the run failed"), "{stderr}");
    wait_until("the program is gone", 5, || gone(program));
    // The daemon itself serves on.
    let out = d.run(&[exe.as_os_str(), "panic".as_ref()]);
    assert_all_ok(&out);
    d.json(&["stat"]);
}

fn compile(src: &str, out: &str) -> PathBuf {
    cc(src, out, &[])
}
