//! Raw-syscall sequence fuzzer through a daemon (issue 11):
//! tests/clients/syscall_fuzz.c runs under `teeheap run` with several
//! processes of racing threads, forks and SIGKILLs, while the test unbinds
//! and rebinds the backend and removes and re-adds a heap from outside.
//! Afterwards the daemon still serves, logged no bug (a panic answered
//! with EIO), holds no buffer and no served file, every lent chunk is
//! reclaimed, the firewall has its boot regions, and its RSS is flat.
//!
//! Bounded in CI (`SMOKE_MS`); longer by hand (docs/fuzzing.md):
//! `TEEHEAP_SYSFUZZ_MS=600000 cargo test -p teeheap --test syscall_fuzz --
//! --nocapture` (`TEEHEAP_SYSFUZZ_PROCS=N` for more processes);
//! `TEEHEAP_SYSFUZZ_SEED=S` replays the operation streams of seed S
//! (printed on failure).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Served, tmp};
use serde_json::Value;
use teeheap_daemon::protocol::Client;

/// The CI run: a few seconds.
const SMOKE_MS: u64 = 3000;

fn compile() -> PathBuf {
    common::compile("syscall_fuzz.c", "syscall_fuzz", &["-pthread"])
}

fn teeheap() -> Command {
    let mut c = common::teeheap();
    c.env("RUST_LOG", "error");
    c
}

/// A `teeheap serve` on a fresh socket, killed on drop.
impl Served {
    fn start() -> Served {
        let dir = tmp().join(format!("sysfuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Served::spawn(teeheap(), dir.join("teeheap.sock"), Stdio::null())
    }

    fn cli(&self, args: &[&str]) -> Output {
        teeheap().args(args).env("TEEHEAP_SOCKET", &self.socket).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = teeheap().args(args).arg("--json").env("TEEHEAP_SOCKET", &self.socket).output().unwrap();
        assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident memory of the daemon, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits (10 s at most) until nothing is held, then returns `stat`.
    fn idle(&self) -> Value {
        let t0 = Instant::now();
        loop {
            let s = Client::connect(&self.socket).unwrap().stats().unwrap();
            let stat = self.json(&["stat"]);
            let idle = s.buffers == 0
                && s.heap_buffers == 0
                && s.served_buffers + s.served_contexts + s.served_shms + s.served_sync_files + s.backed_ranges == 0
                && stat["secure_world"]["chunks_outstanding"] == 0;
            if idle || t0.elapsed() > Duration::from_secs(10) {
                assert!(idle, "still held after the run: {s:?}\n{stat:#}");
                return stat;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run(&self, exe: &Path, seed: u64, ms: u64, procs: u64) -> Output {
        self.run_connected(teeheap())
            .arg(exe)
            .arg(format!("{seed:#x}"))
            .arg(ms.to_string())
            .arg(procs.to_string())
            .arg("2")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    Some(match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{name}={v}")),
        None => v.parse().unwrap_or_else(|_| panic!("{name}={v}")),
    })
}

/// The summary line's `key value` pairs.
fn summary(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("workers ")).unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    words.chunks(2).filter_map(|w| Some((w[0].to_owned(), w.get(1)?.parse().ok()?))).collect()
}

fn get(s: &[(String, u64)], key: &str) -> u64 {
    s.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

#[test]
fn raw_syscall_sequences_leave_nothing_and_the_daemon_flat() {
    let exe = compile();
    let ms = env_u64("TEEHEAP_SYSFUZZ_MS").unwrap_or(SMOKE_MS);
    let procs = env_u64("TEEHEAP_SYSFUZZ_PROCS").unwrap_or(4);
    let seed = env_u64("TEEHEAP_SYSFUZZ_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let replay = format!(
        "replay: TEEHEAP_SYSFUZZ_SEED={seed:#x} TEEHEAP_SYSFUZZ_MS={ms} TEEHEAP_SYSFUZZ_PROCS={procs} cargo test -p \
         teeheap --test syscall_fuzz -- --nocapture"
    );
    let mut d = Served::start();
    let regions = d.json(&["map"])["firewall"].as_array().unwrap().len();

    // Warm-up: the daemon's pools, caches and thread stacks settle.
    let out = d.run(&exe, seed ^ 0x5eed, 1000.min(ms), procs);
    assert!(out.status.success(), "warm-up: {}\n{replay}", String::from_utf8_lossy(&out.stderr));
    d.idle();
    let rss_before = d.rss_kib();

    // The run, with the backend unbound and rebound and a heap removed and
    // added back from outside meanwhile.
    const STEPS: [[&str; 2]; 4] = [["backend", "unbind"], ["heap", "rm"], ["backend", "bind"], ["heap", "add"]];
    let step = |i: usize| {
        let mut args = STEPS[i % 4].to_vec();
        if args[0] == "heap" {
            args.push("protected,trusted-ui");
        }
        let o = d.cli(&args);
        assert!(o.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let t0 = Instant::now();
    let (out, toggles) = std::thread::scope(|s| {
        let fuzz = s.spawn(|| d.run(&exe, seed, ms, procs));
        let mut toggles = 0;
        while !fuzz.is_finished() {
            std::thread::sleep(Duration::from_millis(250));
            step(toggles);
            toggles += 1;
        }
        (fuzz.join().unwrap(), toggles)
    });
    for i in toggles..toggles.next_multiple_of(4) {
        step(i);
    }
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", stdout.trim_end());
    assert!(out.status.success(), "the fuzzer failed: {stdout}\n{}\n{replay}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("seed {seed:#x}\n")), "{stdout}");
    let s = summary(&stdout);
    assert_eq!(get(&s, "crashes"), 0, "{stdout}\n{replay}");
    assert_eq!(get(&s, "stuck"), 0, "a process hung in a syscall: {stdout}\n{replay}");
    assert!(get(&s, "ops") > 1000 && get(&s, "kills") > 4, "the fuzzer ran: {stdout}");

    assert!(d.alive(), "the daemon died\n{replay}");
    // A panic serving a call is answered with EIO and logged as a bug: none.
    let log = d.json(&["log"]);
    let bugs: Vec<&Value> = log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "bug").collect();
    assert!(bugs.is_empty(), "the daemon hit bugs: {bugs:#?}\n{replay}");
    let stat = d.idle();
    let sw = &stat["secure_world"];
    assert_eq!(sw["chunks_lent"], sw["chunks_reclaimed"], "lent == reclaimed: {sw:#}\n{replay}");
    assert!(stat["heaps"].as_array().unwrap().iter().all(|h| h["used"] == 0 && h["buffers"] == 0), "{stat:#}");
    let b = d.json(&["bufinfo"]);
    assert_eq!(b["buffers"].as_array().unwrap().len(), 0, "{b:#}\n{replay}");
    assert_eq!(d.json(&["map"])["firewall"].as_array().unwrap().len(), regions, "no firewall region left\n{replay}");
    let rss_after = d.rss_kib();
    println!(
        "sysfuzz: seed {seed:#x}, {ms} ms x {procs} processes x 2 threads in {:.1} s, {toggles} lifecycle \
         steps (backend unbind/bind, heap rm/add), daemon RSS {rss_before} -> {rss_after} KiB, {} chunks lent and reclaimed",
        took.as_secs_f64(),
        sw["chunks_lent"]
    );
    assert!(rss_after <= rss_before + 8 * 1024, "daemon RSS grew {rss_before} -> {rss_after} KiB\n{replay}");
    // Still serving.
    let out = d.run(&exe, seed ^ 1, 200, 1);
    assert!(out.status.success() && d.alive(), "{}", String::from_utf8_lossy(&out.stderr));
    d.idle();
}
