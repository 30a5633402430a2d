//! The daemon is never down and out of reach (issue 11): a panic while
//! serving a call answers that call with `EIO` and the daemon keeps serving
//! (docs/serving.md, "Answering").
//!
//! The panic comes from a test-only ioctl that exists only with the daemon's
//! `test-hooks` feature, which this crate's dev-dependency enables for test
//! builds; release builds of `teeheap` do not have it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use teeheap_daemon::protocol::Client;

const TEEHEAP: &str = env!("CARGO_BIN_EXE_teeheap");

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn compile(src: &str, out: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(src);
    let exe = tmp().join(out);
    let st = Command::new("cc").args(["-O1", "-Wall", "-o"]).arg(&exe).arg(&src).status();
    assert!(st.is_ok_and(|s| s.success()), "cc {} failed (needs a C compiler, libc6-dev)", src.display());
    exe
}

fn teeheap() -> Command {
    let mut c = Command::new(TEEHEAP);
    c.env_remove("TEEHEAP_CONFIG").env_remove("TEEHEAP_SOCKET").env("RUST_LOG", "warn");
    c
}

fn assert_all_ok(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("\n0 failed"), "{stdout}");
}

/// A `teeheap serve` on a fresh socket with its stderr in a file, killed on
/// drop.
struct Served {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Served {
    fn start(name: &str) -> Served {
        let dir = tmp().join(format!("harden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("teeheap.sock");
        let stderr = dir.join("stderr");
        let err = std::fs::File::create(&stderr).unwrap();
        let child = teeheap().arg("serve").arg("--socket").arg(&socket).stderr(Stdio::from(err)).spawn().unwrap();
        let t0 = Instant::now();
        while Client::connect(&socket).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "daemon did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served { child, socket, stderr }
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = teeheap().args(args).arg("--json").env("TEEHEAP_SOCKET", &self.socket).output().unwrap();
        assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Output {
        teeheap().arg("run").arg("--connect").arg(&self.socket).arg("--").args(args).output().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let stderr = std::fs::read_to_string(&d.stderr).unwrap();
    assert_eq!(stderr.matches("teeheap: BUG: panic while serving ioctl 0x48fe").count(), 6, "{stderr}");
}
