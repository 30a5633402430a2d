//! Lifecycle commands and observability through a daemon, with real
//! programs driven step by step (tests/clients/ctl_client.c): `backend
//! unbind|bind` and `heap rm|add` with live buffers; `bufinfo`, `stat`,
//! `log` and `map --svg` for two processes passing a buffer and a TEE
//! registration; `[limits]` caps.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Prog, Served as Daemon, TEEHEAP, tmp};
use serde_json::Value;
use teeheap_daemon::protocol::Client;

const VIDEO: &str = "protected,secure-video";
const TUI: &str = "protected,trusted-ui";

fn client_exe(name: &str) -> PathBuf {
    common::compile("ctl_client.c", name, &[])
}

/// A daemon on a fresh socket, killed on drop.
impl Daemon {
    fn start(name: &str, config: Option<&str>) -> Daemon {
        let dir = tmp().join(format!("obs-{name}-{}", std::process::id()));
        let mut c = common::teeheap();
        if let Some(toml) = config {
            std::fs::create_dir_all(&dir).unwrap();
            let default = String::from_utf8(Command::new(TEEHEAP).arg("default-config").output().unwrap().stdout);
            let path = dir.join("platform.toml");
            std::fs::write(&path, default.unwrap() + toml).unwrap();
            c.arg("--config").arg(path);
        }
        Daemon::spawn(c, dir.join("teeheap.sock"), Stdio::null())
    }

    /// `teeheap ARGS` against this daemon.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(TEEHEAP)
            .args(args)
            .env("TEEHEAP_SOCKET", &self.socket)
            .env_remove("TEEHEAP_CONFIG")
            .output()
            .unwrap()
    }

    /// `teeheap ARGS --json`, which must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a);
        assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn heap(&self, name: &str) -> Value {
        let ls = self.json(&["ls"]);
        ls["heaps"].as_array().unwrap().iter().find(|h| h["name"] == name).cloned().unwrap_or(Value::Null)
    }

    /// Polls `f` over `teeheap stat --json` until it holds (10 s at most).
    fn until(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let s = self.json(&["stat"]);
            if f(&s) {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "timed out waiting for {what}: {s:#}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// `len` bytes at `addr` read by the secure CPU (as `teeheap devmem
    /// --master secure-cpu`).
    fn secure_read(&self, addr: u64, len: u64) -> Vec<u8> {
        let req = teeheap_daemon::protocol::Request::Devmem { master: "secure-cpu".into(), addr, len, write: false };
        match Client::connect(&self.socket).unwrap().request(&req, None).unwrap() {
            teeheap_daemon::protocol::Reply::Devmem { allowed: true, data, .. } => data,
            other => panic!("devmem {addr:#x}: {other:?}"),
        }
    }

    fn idle(&self) {
        self.until("no buffer", |s| s["heaps"].as_array().unwrap().iter().all(|h| h["buffers"] == 0));
        let b = self.json(&["bufinfo"]);
        assert_eq!(b["buffers"].as_array().unwrap().len(), 0, "{b:#}");
    }
}

/// Asserts that no two buffers of a `bufinfo --json` answer share physical
/// memory (issue 19's invariant).
fn assert_disjoint(bufinfo: &Value) {
    let mut ranges: Vec<(u64, u64, &Value)> = Vec::new();
    for b in bufinfo["buffers"].as_array().unwrap() {
        for r in b["ranges"].as_array().unwrap() {
            let (start, len) = (r["start"].as_u64().unwrap(), r["len"].as_u64().unwrap());
            ranges.push((start, start + len, &b["id"]));
        }
    }
    ranges.sort_by_key(|r| r.0);
    for w in ranges.windows(2) {
        assert!(w[1].0 >= w[0].1, "buffers {} and {} share memory: {bufinfo:#}", w[0].2, w[1].2);
    }
}

/// A ctl_client under `teeheap run --connect`, one command per call.
impl Prog {
    fn start(d: &Daemon, exe: &Path, name: &str) -> Prog {
        let mut c = d.run_connected(Command::new(TEEHEAP));
        c.arg(exe).arg(name).env("RUST_LOG", "warn");
        Prog::spawn(c)
    }
}

#[test]
fn backend_unbind_bind_and_heap_rm_add_through_the_daemon() {
    let exe = client_exe("ctl_client_lifecycle");
    let d = Daemon::start("lifecycle", None);
    let mut a = Prog::start(&d, &exe, "holder");
    let heap = a.fd(&format!("open {VIDEO}"));
    let buf = a.fd(&format!("alloc {heap} 65536"));
    let tee = a.fd("tee");
    let shm = a.fd(&format!("reg {tee} {buf}"));
    let tui = a.fd(&format!("open {TUI}"));
    assert_eq!(d.heap(VIDEO)["state"], "ready");

    // Unbind: the node stays, its buffer drains, no new allocations.
    assert!(d.ok(&["backend", "unbind"]).contains("unbound"));
    assert_eq!(d.heap(VIDEO)["state"], "draining generation 1 with 1 buffer");
    assert_eq!(d.heap(TUI)["state"], "unbound");
    assert_eq!(a.cmd(&format!("alloc {heap} 4096")), "err EINVAL", "no backend bound");
    let fresh = a.fd(&format!("open {VIDEO}"));
    assert_eq!(a.cmd(&format!("alloc {fresh} 4096")), "err EINVAL");
    // The program still uses its buffer.
    assert_eq!(a.cmd(&format!("size {buf}")), "size 65536");
    assert_eq!(a.cmd(&format!("sync {buf}")), "ok");
    assert!(!d.cli(&["backend", "unbind"]).status.success(), "nothing to unbind");

    // Bind again: a new generation at once, the old one still draining.
    assert!(d.ok(&["backend", "bind"]).contains("bound"));
    assert_eq!(d.heap(VIDEO)["state"], "ready; draining generation 1 with 1 buffer");
    let new = a.fd(&format!("alloc {heap} 4096"));
    assert_eq!(d.heap(VIDEO)["buffers"], 2);
    assert!(!d.cli(&["backend", "bind"]).status.success(), "already bound");
    // The old buffer goes (its fd and its registration): generation 1 is gone.
    assert_eq!(a.cmd(&format!("close {buf}")), "ok");
    assert_eq!(a.cmd(&format!("close {shm}")), "ok");
    d.until("generation 1 drained", |_| d.heap(VIDEO)["state"] == "ready");
    assert_eq!(d.heap(VIDEO)["buffers"], 1);

    // Heap removal: listed as removed, open fds get ENODEV, new programs ENOENT.
    assert!(d.ok(&["heap", "rm", TUI]).contains("removed"));
    assert_eq!(d.heap(TUI)["state"], "removed");
    assert_eq!(a.cmd(&format!("alloc {tui} 4096")), "err ENODEV");
    let mut b = Prog::start(&d, &exe, "late");
    assert_eq!(b.cmd(&format!("open {TUI}")), "err ENOENT");
    b.exit();
    assert!(!d.cli(&["heap", "rm", TUI]).status.success(), "already removed");
    assert!(d.ok(&["heap", "add", TUI]).contains("added"));
    assert_eq!(d.heap(TUI)["state"], "ready");
    let mut c = Prog::start(&d, &exe, "after");
    let h = c.fd(&format!("open {TUI}"));
    c.fd(&format!("alloc {h} 8192"));
    c.exit();

    let ls = d.ok(&["ls"]);
    assert!(ls.contains(VIDEO) && ls.contains("ready"), "{ls}");
    assert_eq!(a.cmd(&format!("close {new}")), "ok");
    a.exit();
    d.idle();
    let log = d.json(&["log"]);
    let kinds: Vec<&str> = log["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let lifecycle: Vec<&str> =
        kinds.iter().copied().filter(|k| ["bind", "unbind", "heap-rm", "heap-add"].contains(k)).collect();
    assert_eq!(lifecycle, ["bind", "unbind", "bind", "heap-rm", "heap-add"], "{log:#}");
    assert!(kinds.contains(&"lend") && kinds.contains(&"reclaim"), "trusted-ui chunk lent and reclaimed: {kinds:?}");
}

/// Issue 19: a program holds 16 MiB of secure-video, the backend is unbound
/// and bound again, a second program allocates 8 MiB. The two live buffers
/// lie in disjoint ranges of the carveout, and what the sdp_basic TA wrote
/// into each stays intact.
#[test]
fn rebind_keeps_live_buffers_disjoint_across_programs() {
    let exe = client_exe("ctl_client_rebind");
    let d = Daemon::start("rebind", None);
    let (big, small) = (16u64 << 20, 8u64 << 20);
    let mut a = Prog::start(&d, &exe, "first");
    let heap = a.fd(&format!("open {VIDEO}"));
    let old = a.fd(&format!("alloc {heap} {big}"));
    let tee = a.fd("tee");
    assert_eq!(a.cmd(&format!("fill {tee} {old} a1 {big}")), "ok");
    assert!(d.ok(&["backend", "unbind"]).contains("unbound"));
    assert!(d.ok(&["backend", "bind"]).contains("bound"));
    assert_eq!(d.heap(VIDEO)["state"], "ready; draining generation 1 with 1 buffer");

    let mut b = Prog::start(&d, &exe, "second");
    let bheap = b.fd(&format!("open {VIDEO}"));
    let new = b.fd(&format!("alloc {bheap} {small}"));
    let btee = b.fd("tee");
    assert_eq!(b.cmd(&format!("fill {btee} {new} b2 {small}")), "ok");

    let bi = d.json(&["bufinfo"]);
    let bufs = bi["buffers"].as_array().unwrap();
    assert_eq!(bufs.len(), 2, "{bi:#}");
    assert_disjoint(&bi);
    let range_of = |size: u64| {
        let b = bufs.iter().find(|b| b["size"] == size).unwrap_or_else(|| panic!("{bi:#}"));
        let r = &b["ranges"][0];
        (r["start"].as_u64().unwrap(), r["len"].as_u64().unwrap())
    };
    let (old_range, new_range) = (range_of(big), range_of(small));
    // What the TA wrote, read back as the secure CPU at both ends of each.
    let intact = |(start, len): (u64, u64), byte: u8| {
        for at in [start, start + len - 4096] {
            assert_eq!(d.secure_read(at, 4096), vec![byte; 4096], "at {at:#x}");
        }
    };
    intact(old_range, 0xa1);
    intact(new_range, 0xb2);
    assert_eq!(b.cmd(&format!("check {btee} {new} b2 {small}")), "ok");
    // The first program's TEE fd belongs to the old backend: its calls
    // answer TEEC_ERROR_TARGET_DEAD (and its buffer cannot be registered
    // with the new one, as Linux ties a protected buffer to its device).
    assert_eq!(a.cmd(&format!("check {tee} {old} a1 4096")), "tee 0xffff3024");
    let tee2 = a.fd("tee");
    assert_eq!(a.cmd(&format!("check {tee2} {old} a1 4096")), "err EINVAL");
    a.exit();
    d.until("generation 1 drained", |_| d.heap(VIDEO)["state"] == "ready");
    intact(new_range, 0xb2);
    assert_eq!(b.cmd(&format!("check {btee} {new} b2 {small}")), "ok", "the old generation's drain left it alone");
    b.exit();
    d.idle();
}

#[test]
fn bufinfo_stat_log_and_map_for_two_processes() {
    let exe = client_exe("ctl_client_observe");
    let d = Daemon::start("observe", None);
    let sock = tmp().join(format!("obs-pass-{}.sock", std::process::id()));
    let sock = sock.to_str().unwrap();
    let mut a = Prog::start(&d, &exe, "producer");
    let mut b = Prog::start(&d, &exe, "consumer");
    a.send(&format!("listen {sock}"));
    assert_eq!(a.line(), "listening");
    assert_eq!(b.cmd(&format!("connect {sock}")), "ok");
    assert_eq!(a.line(), "ok");

    let sys = a.fd("open system");
    let x = a.fd(&format!("alloc {sys} 8192"));
    assert_eq!(a.cmd(&format!("mmap {x} 8192")), "ok");
    let vh = a.fd(&format!("open {VIDEO}"));
    let y = a.fd(&format!("alloc {vh} 65536"));
    assert_eq!(a.cmd(&format!("send {y}")), "ok");
    let z = b.fd("recv");
    let tee = a.fd("tee");
    let shm = a.fd(&format!("reg {tee} {y}"));
    assert_eq!(a.cmd(&format!("close {y}")), "ok");
    // A deliberate violation: the normal-world CPU reads the carveout.
    let refused = d.cli(&["devmem", "0x160000000", "--len", "64"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused by carveout secure-video"));
    // Allowed: the secure CPU.
    assert!(d.cli(&["devmem", "--master", "secure-cpu", "0x160000000"]).status.success());

    let bi = d.json(&["bufinfo"]);
    let bufs = bi["buffers"].as_array().unwrap();
    assert_eq!(bufs.len(), 2, "{bi:#}");
    let by_heap = |h: &str| bufs.iter().find(|b| b["heap"] == h).unwrap().clone();
    let s = by_heap("system");
    assert_eq!(
        (s["size"].as_u64(), s["protected"].as_bool(), s["tee_registrations"].as_u64()),
        (Some(8192), Some(false), Some(0))
    );
    assert_eq!(s["exporter"], "system");
    assert_eq!(
        s["holders"],
        serde_json::json!([{"pid": a.pid, "cmdline": format!("{} producer", exe.display()), "fds": [x], "mmaps": 1, "tee_shm_fds": []}])
    );
    let p = by_heap(VIDEO);
    assert_eq!(
        (p["size"].as_u64(), p["protected"].as_bool(), p["tee_registrations"].as_u64()),
        (Some(65536), Some(true), Some(1))
    );
    assert_eq!(p["ranges"], serde_json::json!([{"start": 0x1_6000_0000u64, "len": 65536}]));
    let mut holders = p["holders"].as_array().unwrap().clone();
    holders.sort_by_key(|h| h["pid"].as_i64());
    let mut want = vec![
        serde_json::json!({"pid": a.pid, "cmdline": format!("{} producer", exe.display()), "fds": [], "mmaps": 0, "tee_shm_fds": [shm]}),
        serde_json::json!({"pid": b.pid, "cmdline": format!("{} consumer", exe.display()), "fds": [z], "mmaps": 0, "tee_shm_fds": []}),
    ];
    want.sort_by_key(|h| h["pid"].as_i64());
    assert_eq!(holders, want);
    assert_eq!(
        bi["totals"],
        serde_json::json!({"protected,secure-video": {"buffers": 1, "bytes": 65536}, "system": {"buffers": 1, "bytes": 8192}})
    );
    let text = d.ok(&["bufinfo"]);
    assert!(text.contains(&format!("pid {} ({} consumer) fd {z}", b.pid, exe.display())), "{text}");

    let st = d.json(&["stat"]);
    let heap = |n: &str| st["heaps"].as_array().unwrap().iter().find(|h| h["name"] == n).unwrap().clone();
    assert_eq!(
        (heap(VIDEO)["allocations"].as_u64(), heap(VIDEO)["used"].as_u64(), heap(VIDEO)["peak"].as_u64()),
        (Some(1), Some(65536), Some(65536))
    );
    assert_eq!(heap(VIDEO)["largest_free"].as_u64(), Some((512 << 20) - 65536));
    assert_eq!(heap(VIDEO)["free"].as_u64(), Some((512 << 20) - 65536), "stat's free is ls's");
    assert_eq!(heap(VIDEO)["free"], d.heap(VIDEO)["free"]);
    assert_eq!((heap("system")["allocations"].as_u64(), heap("system")["buffers"].as_u64()), (Some(1), Some(1)));
    assert!(st["allocations_per_s"][VIDEO].as_f64().unwrap() > 0.0);
    let clients = st["clients"].as_array().unwrap();
    let client = |pid: i64| clients.iter().find(|c| c["pid"] == pid).unwrap_or_else(|| panic!("{st:#}")).clone();
    assert_eq!((client(a.pid)["buffers"].as_u64(), client(a.pid)["bytes"].as_u64()), (Some(2), Some(8192 + 65536)));
    assert_eq!((client(b.pid)["buffers"].as_u64(), client(b.pid)["bytes"].as_u64()), (Some(1), Some(65536)));
    assert_eq!(client(b.pid)["heaps"], serde_json::json!({VIDEO: {"buffers": 1, "bytes": 65536}}));
    assert_eq!(clients.len(), 2, "{st:#}");

    let log = d.json(&["log"]);
    let violations: Vec<&Value> =
        log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "violation").collect();
    assert_eq!(violations.len(), 1, "{log:#}");
    let v = violations[0];
    assert_eq!(
        (v["master"].as_str(), v["access"].as_str(), v["region"].as_str()),
        (Some("ns-cpu"), Some("read"), Some("carveout secure-video"))
    );
    assert_eq!(v["range"], serde_json::json!({"start": 0x1_6000_0000u64, "len": 64}));

    // The map, as JSON and as a picture.
    let map = d.json(&["map"]);
    let svg_path = tmp().join(format!("obs-map-{}.svg", std::process::id()));
    d.ok(&["map", "--svg", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let class = |c: &str| doc.descendants().filter(move |n| n.attribute("class") == Some(c)).collect::<Vec<_>>();
    let pieces = class("buffer");
    assert_eq!(pieces.len(), map["buffers"].as_array().unwrap().len());
    let video: Vec<_> = pieces.iter().filter(|n| n.attribute("data-heap") == Some(VIDEO)).collect();
    assert_eq!(video.len(), 1);
    assert_eq!((video[0].attribute("data-start"), video[0].attribute("data-len")), (Some("5905580032"), Some("65536")));
    assert_eq!(class("carveout").len(), 1);
    assert_eq!(class("firewall").len(), map["firewall"].as_array().unwrap().len());
    let mut holder_pids: Vec<i64> =
        class("holder").iter().map(|n| n.attribute("data-pid").unwrap().parse().unwrap()).collect();
    holder_pids.sort_unstable();
    holder_pids.dedup();
    let mut want = vec![a.pid, b.pid];
    want.sort_unstable();
    assert_eq!(holder_pids, want);
    let texts: String =
        doc.descendants().filter(|n| n.is_text()).map(|n| n.text().unwrap()).collect::<Vec<_>>().join("\n");
    for needle in [
        "0x160000000",
        "512 MiB",
        "heap protected,secure-video",
        "heap system",
        &format!("holder (stripe) pid {}", b.pid),
        "carveout secure-video",
    ] {
        assert!(texts.contains(needle), "{needle:?} missing from the SVG text");
    }
    let text = d.ok(&["map"]);
    assert!(text.contains("carveout  [0x160000000..0x180000000)"), "{text}");

    a.exit();
    b.exit();
    d.idle();
}

#[test]
fn caps_refuse_the_capped_process_only() {
    let exe = client_exe("ctl_client_caps");
    let limits =
        format!("\n[limits.heap.\"{VIDEO}\"]\nbuffers = 2\nbytes = \"1 MiB\"\n[limits.process]\nbytes = \"2 MiB\"\n");
    let d = Daemon::start("caps", Some(&limits));
    let mut a = Prog::start(&d, &exe, "greedy");
    let mut b = Prog::start(&d, &exe, "modest");
    let h = a.fd(&format!("open {VIDEO}"));
    let first = a.fd(&format!("alloc {h} 65536"));
    a.fd(&format!("alloc {h} 65536"));
    assert_eq!(a.cmd(&format!("alloc {h} 4096")), "err ENOMEM", "the third buffer is over the cap of 2");
    let hb = b.fd(&format!("open {VIDEO}"));
    b.fd(&format!("alloc {hb} 65536"));
    b.fd(&format!("alloc {hb} 65536"));
    // Bytes: within a heap, then over all heaps.
    assert_eq!(b.cmd(&format!("alloc {hb} 1048576")), "err ENOMEM");
    let sys = a.fd("open system");
    a.fd(&format!("alloc {sys} 1048576"));
    assert_eq!(a.cmd(&format!("alloc {sys} 1048576")), "err ENOMEM", "2 MiB over all heaps");
    // Freeing makes room again.
    assert_eq!(a.cmd(&format!("close {first}")), "ok");
    d.until("the buffer released", |s| {
        s["clients"].as_array().unwrap().iter().any(|c| c["pid"] == a.pid && c["heaps"][VIDEO]["buffers"] == 1)
    });
    a.fd(&format!("alloc {h} 4096"));

    let st = d.json(&["stat"]);
    let heap = |n: &str| st["heaps"].as_array().unwrap().iter().find(|h| h["name"] == n).unwrap().clone();
    assert_eq!(heap(VIDEO)["limit_refusals"], 2);
    assert_eq!(heap(VIDEO)["failures"], serde_json::json!({"ENOMEM": 2}));
    assert_eq!(heap("system")["limit_refusals"], 1);
    assert_eq!(heap(VIDEO)["allocations"], 5);
    let client = |pid: i64| st["clients"].as_array().unwrap().iter().find(|c| c["pid"] == pid).unwrap().clone();
    assert_eq!(client(a.pid)["limit_refusals"], 2);
    assert_eq!(client(b.pid)["limit_refusals"], 1);
    assert_eq!(st["caps"]["heap"][VIDEO], serde_json::json!({"bytes": 1 << 20, "buffers": 2}));
    assert_eq!(st["caps"]["process"], serde_json::json!({"bytes": 2 << 20, "buffers": null}));
    let text = d.ok(&["stat"]);
    assert!(text.contains("2/2 buffers"), "usage against the cap: {text}");
    let log = d.json(&["log"]);
    let limits: Vec<&Value> = log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "limit").collect();
    assert_eq!(limits.len(), 3);
    assert_eq!(limits[0]["pid"], a.pid);
    a.exit();
    b.exit();
    d.idle();
}

#[test]
fn daemon_shutdown_with_a_live_client() {
    let exe = client_exe("ctl_client_shutdown");
    let mut d = Daemon::start("shutdown", None);
    let mut a = Prog::start(&d, &exe, "survivor");
    let heap = a.fd("open system");
    let buf = a.fd(&format!("alloc {heap} 8192"));
    assert_eq!(a.cmd(&format!("mmap {buf} 8192")), "ok");
    let video = a.fd(&format!("open {VIDEO}"));
    let protected = a.fd(&format!("alloc {video} 4096"));

    // SIGTERM: the daemon stops cleanly while the program runs on.
    let pid = rustix::process::Pid::from_raw(d.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let exit = d.child.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert!(!d.socket.exists(), "the socket is removed");

    // The program's fds are still real files: native calls work.
    assert_eq!(a.cmd(&format!("size {buf}")), "size 8192");
    assert_eq!(a.cmd(&format!("size {protected}")), "size 4096");
    // mmap never needs the daemon (issue 16): a system buffer still maps.
    assert_eq!(a.cmd(&format!("mmap {buf} 8192")), "ok");
    // Calls that needed the daemon fail cleanly (no supervisor): ENOSYS, no hang, no crash.
    assert_eq!(a.cmd(&format!("alloc {heap} 4096")), "err ENOSYS");
    assert_eq!(a.cmd(&format!("sync {buf}")), "err ENOSYS");
    assert_eq!(a.cmd(&format!("close {buf}")), "ok");
    a.exit();
}

/// Processes allocate and free through the daemon while the backend is
/// unbound and bound again and heaps are removed and re-added, for a bounded
/// time; afterwards nothing is left and every lent chunk is reclaimed.
#[test]
fn lifecycle_stress_with_processes() {
    let exe = client_exe("ctl_client_stress");
    let d = Daemon::start("stress", None);
    let regions_at_start = d.json(&["map"])["firewall"].as_array().unwrap().len();
    // At least this long and at least 12 lifecycle actions (a loaded
    // machine slows the CLI down), never more than a minute.
    let started = Instant::now();
    let deadline = started + Duration::from_millis(2500);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heaps = ["system", VIDEO, TUI, "protected,secure-video-record"];
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut p = Prog::start(&d, &exe, &format!("stress{i}"));
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d_u64 ^ (i as u64 + 1));
                let mut rnd = move |n: u64| rng.u64(..n);
                let mut held: Vec<i64> = Vec::new();
                let mut opened: Vec<Option<i64>> = vec![None; heaps.len()];
                let (mut ok, mut refused) = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let h = rnd(heaps.len() as u64) as usize;
                    if opened[h].is_none() {
                        let r = p.cmd(&format!("open {}", heaps[h]));
                        opened[h] = r.strip_prefix("fd ").map(|f| f.parse().unwrap());
                    }
                    if let Some(hfd) = opened[h] {
                        let r = p.cmd(&format!("alloc {hfd} {}", 4096 * (1 + rnd(16))));
                        match r.strip_prefix("fd ") {
                            Some(f) => {
                                held.push(f.parse().unwrap());
                                ok += 1;
                            }
                            None => {
                                assert!(["err EINVAL", "err ENODEV", "err ENOMEM"].contains(&r.as_str()), "{r}");
                                refused += 1;
                            }
                        }
                    }
                    if held.len() > 8 || (!held.is_empty() && rnd(2) == 0) {
                        let fd = held.swap_remove(rnd(held.len() as u64) as usize);
                        assert_eq!(p.cmd(&format!("close {fd}")), "ok");
                    }
                }
                for fd in held {
                    assert_eq!(p.cmd(&format!("close {fd}")), "ok");
                }
                p.exit();
                (ok, refused)
            })
        })
        .collect();
    let mut actions = 0;
    while (actions < 12 || Instant::now() < deadline) && started.elapsed() < Duration::from_secs(60) {
        let heap = heaps[1 + actions % 3];
        let args: [&[&str]; 4] =
            [&["backend", "unbind"], &["backend", "bind"], &["heap", "rm", heap], &["heap", "add", heap]];
        let _ = d.cli(args[actions % 4]);
        assert_disjoint(&d.json(&["bufinfo"]));
        actions += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut refused) = (0, 0);
    for w in workers {
        let (o, r) = w.join().unwrap();
        ok += o;
        refused += r;
    }
    println!("{actions} lifecycle actions; allocations ok {ok}, refused {refused}");
    assert!(ok > 20 && actions > 8, "both sides ran: {ok} allocations, {actions} actions");
    // Leave it bound with every heap listed, then check nothing is left.
    let _ = d.cli(&["backend", "bind"]);
    for h in &heaps[1..] {
        let _ = d.cli(&["heap", "add", h]);
    }
    d.idle();
    let s = d.until("every chunk reclaimed", |s| s["secure_world"]["chunks_outstanding"] == 0);
    assert_eq!(s["secure_world"]["chunks_lent"], s["secure_world"]["chunks_reclaimed"], "{s:#}");
    assert!(s["heaps"].as_array().unwrap().iter().all(|h| h["used"] == 0), "{s:#}");
    assert_eq!(d.json(&["map"])["firewall"].as_array().unwrap().len(), regions_at_start, "no firewall region left");
}
