//! The programs in `examples/` build and do what their comments say under
//! `teeheap run`: the C ones compiled with `cc` against the system's
//! kernel headers, the Rust one with cargo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TEEHEAP: &str = env!("CARGO_BIN_EXE_teeheap");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Compiles `examples/c/NAME.c` warning-free.
fn compile(name: &str) -> PathBuf {
    let src = examples().join("c").join(format!("{name}.c"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("example-{name}"));
    let out = Command::new("cc").args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&exe).arg(&src).output();
    let out = out.expect("cc (needs a C compiler and linux-libc-dev)");
    assert!(out.status.success(), "cc {}:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    exe
}

/// `teeheap run -- exe args…`, isolated from any daemon of the user's.
fn run(exe: &Path, args: &[&str]) -> Output {
    let out = Command::new(TEEHEAP)
        .env_remove("TEEHEAP_SOCKET")
        .env_remove("TEEHEAP_CONFIG")
        .arg("run")
        .arg("--")
        .arg(exe)
        .args(args)
        .output()
        .expect("teeheap run");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const HEAPS: [&str; 4] = ["system", "protected,secure-video", "protected,trusted-ui", "protected,secure-video-record"];

#[test]
fn c_alloc_each_heap() {
    let text = stdout(&run(&compile("alloc_each_heap"), &[]));
    for heap in HEAPS {
        assert!(text.lines().any(|l| l.starts_with(heap) && l.contains("1048576 bytes")), "{heap}:\n{text}");
    }
    assert!(text.contains("mapped and written: ok"), "{text}");
    assert!(text.contains("4 heaps, 0 failed"), "{text}");
}

#[test]
fn c_protected_mmap_is_refused() {
    let exe = compile("protected_mmap");
    for heap in &HEAPS[1..] {
        let text = stdout(&run(&exe, &[heap]));
        assert!(text.contains("mmap of a system buffer: mapped"), "{text}");
        // Linux: EINVAL; teeheap: EACCES from the host (docs/serving.md).
        assert!(text.contains(&format!("mmap of a {heap} buffer: Permission denied")), "{text}");
    }
}

#[test]
fn c_tee_session_on_a_registered_protected_buffer() {
    let text = stdout(&run(&compile("tee_sdp"), &[]));
    assert!(text.contains("protected buffer registered: shm id"), "{text}");
    assert!(text.contains("flags 0x10"), "the kernel's TEE_SHM_DMA_BUF, as 6.18 reports it:\n{text}");
    assert!(text.contains("inject 0, transform 0, dump 0"), "{text}");
    assert!(text.contains("0 of 4096 bytes differ"), "{text}");
    assert!(text.contains("transform on normal memory: 0xffff0001"), "{text}");
}

#[test]
fn c_buffer_fences() {
    let text = stdout(&run(&compile("buffer_fences"), &[]));
    assert!(text.contains("fence \"frame swap\": signalled (status 1, 1 fence)"), "{text}");
    assert!(text.contains("imported into \"display frame 0\": ok"), "{text}");
}

/// Builds `examples/rust` in its own target directory (the workspace's is
/// locked by the running `cargo test`), offline when the crates are there.
#[test]
fn rust_dma_heap_crate() {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("example-rust-target");
    let manifest = examples().join("rust/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |extra: &[&str]| {
        Command::new(&cargo)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .args(extra)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(build(&["--offline"]) || build(&[]), "cannot build examples/rust");
    let text = stdout(&run(&target.join("debug/dma-heap-example"), &[]));
    assert!(text.lines().any(|l| l.starts_with("system ") && l.ends_with("mapped and written")), "{text}");
    for heap in &HEAPS[1..] {
        assert!(text.lines().any(|l| l.starts_with(heap) && l.contains("mmap refused: Permission denied")), "{text}");
    }
    assert!(text.contains("4 heaps, 0 failed"), "{text}");
}
