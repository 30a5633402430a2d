//! Using teeheap from a Rust test: run a program under a private
//! platform with `teeheap::Run`, assert on its exit status, and look at
//! what the daemon saw — live buffers and their holders while it runs,
//! counters and leaks after it exited. The program here is
//! `examples/c/alloc_each_heap.c`; in your project it is your own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use teeheap::{PlatformConfig, Run};

/// Compiles the example program once for all tests of this file (your
/// build would provide your binary). Tests run in parallel: compiling per
/// test would rewrite the file while another test executes it.
fn program() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/c/alloc_each_heap.c");
        let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("library-alloc_each_heap");
        let st = Command::new("cc").args(["-O2", "-o"]).arg(&exe).arg(&src).status();
        assert!(st.is_ok_and(|s| s.success()), "cc {}", src.display());
        exe
    })
    .clone()
}

/// The simplest use: run it, check its status.
#[test]
fn run_a_program_and_check_its_status() {
    let status = Run::default().command(Command::new(program())).status().unwrap();
    assert!(status.success());
}

/// Capture its output like `Command::output`.
#[test]
fn capture_its_output() {
    let out = Run::default().command(Command::new(program())).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 heaps, 0 failed"), "{text}");
}

/// Look at the daemon while the program holds its buffers, then check
/// that everything was released after it exited.
#[test]
fn observe_buffers_and_holders_then_no_leak() {
    let mut cmd = Command::new(program());
    cmd.arg("--hold").stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut run = Run::default().command(cmd).spawn().unwrap();
    let pid = run.id().unwrap() as i32;

    // Wait until it says it holds its buffers.
    let mut lines = BufReader::new(run.stdout().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("holding 4 buffers")));

    // One 1 MiB buffer per heap, each held by the program through one fd.
    let info = run.bufinfo();
    assert_eq!(info.buffers.len(), 4);
    for b in &info.buffers {
        assert_eq!(b.size, 1 << 20);
        assert_eq!(b.holders.len(), 1, "{b:?}");
        assert_eq!((b.holders[0].pid, b.holders[0].fds.len()), (pid, 1), "{b:?}");
    }
    let protected = info.buffers.iter().filter(|b| b.protected).count();
    assert_eq!(protected, 3);
    // The same per heap in `stat`, with no failed allocation.
    let stat = run.stat();
    for h in &stat.heaps {
        assert_eq!((h.buffers, h.used), (1, 1 << 20), "{h:?}");
        assert!(h.failures.is_empty(), "{h:?}");
    }

    // Let it go: closing its stdin makes it close its buffers and exit.
    drop(run.stdin());
    assert!(run.wait().unwrap().success());
    assert!(run.wait_for_no_buffers(Duration::from_secs(10)), "leaked: {:?}", run.bufinfo());
    // Counters outlive the buffers: 4 allocations were made.
    assert_eq!(run.stat().heaps.iter().map(|h| h.allocations).sum::<u64>(), 4);
}

/// Any platform: here one with a small secure-video carveout and a cap
/// on buffers per process, so the program's second allocation there fails.
#[test]
fn a_platform_of_your_own() {
    let mut platform = PlatformConfig::from_toml(teeheap::ANNOTATED_DEFAULT_CONFIG).unwrap();
    platform.carveout[0].size = teeheap::ByteSize(1 << 20);
    let status = Run::new(platform).command(Command::new(program())).status().unwrap();
    assert!(status.success(), "1 MiB fits a 1 MiB carveout");

    let text = format!(
        "{}\n[limits.heap.\"protected,secure-video\"]\nbytes = \"512 KiB\"\n",
        teeheap::ANNOTATED_DEFAULT_CONFIG
    );
    let out = Run::new(PlatformConfig::from_toml(&text).unwrap()).command(Command::new(program())).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("protected,secure-video           allocation failed: Cannot allocate memory"), "{stdout}");
}

#[test]
fn a_program_that_cannot_start() {
    let err = Run::default().command(Command::new("/nonexistent/program")).status().unwrap_err();
    match err {
        teeheap::Error::Start { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other}"),
    }
}
