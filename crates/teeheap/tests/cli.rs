//! The `teeheap` binary, run as a user would: the report commands, where
//! their data comes from (`source`, `schema`), errors, exit codes, closed
//! pipes and leftovers.
//!
//! Hermetic: every command gets a private `XDG_RUNTIME_DIR` (so the default
//! socket is this test's own) and no `TEEHEAP_SOCKET`/`TEEHEAP_CONFIG`;
//! `tests_pass_with_a_daemon_on_the_default_socket` runs these tests again
//! with a daemon on the default socket of their environment.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use teeheap_platform::{PlatformConfig, UseCase};

const TEEHEAP: &str = env!("CARGO_BIN_EXE_teeheap");

/// A fresh private directory under the target's temporary directory.
fn private_dir(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

/// `teeheap` isolated from the user's environment: its own runtime
/// directory (hence default socket), no inherited socket or platform.
fn cmd(runtime: &Path) -> Command {
    let mut c = Command::new(TEEHEAP);
    c.env("XDG_RUNTIME_DIR", runtime).env_remove("TEEHEAP_SOCKET").env_remove("TEEHEAP_CONFIG");
    c.env("RUST_LOG", "warn");
    c
}

fn teeheap(args: &[&str]) -> Output {
    cmd(&private_dir("xdg")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// `teeheap serve` on `socket` (or the default socket of `runtime`),
/// killed on drop.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(runtime: &Path, socket: Option<&Path>, config: Option<&Path>) -> Serve {
        let mut c = cmd(runtime);
        if let Some(cfg) = config {
            c.arg("--config").arg(cfg);
        }
        c.arg("serve");
        if let Some(s) = socket {
            c.arg("--socket").arg(s);
        }
        let child = c.stderr(Stdio::null()).spawn().unwrap();
        let expect = socket.map_or_else(|| runtime.join("teeheap/teeheap.sock"), Path::to_owned);
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&expect).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "daemon did not come up on {}", expect.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small platform whose name and sizes tell it apart from the default.
fn small_config(dir: &Path) -> PathBuf {
    let good = dir.join("small.toml");
    let cfg = PlatformConfig::small("small", 64 << 20).with_carveout("sv", UseCase::SecureVideo, 0x4300_0000, 16 << 20);
    std::fs::write(&good, cfg.to_toml()).unwrap();
    good
}

const HEAPS: [&str; 4] = ["protected,secure-video", "protected,secure-video-record", "protected,trusted-ui", "system"];

#[test]
fn demo_passes_every_check() {
    let out = teeheap(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("ns-cpu read"), "the violation log is shown: {stdout}");
}

#[test]
fn ls_json_lists_all_heaps() {
    let v = json(&teeheap(&["ls", "--json"]));
    assert_eq!(v["schema"], "teeheap-ls/1");
    assert_eq!(v["source"], serde_json::json!({"kind": "fresh", "config": null}), "no daemon here: a fresh platform");
    assert_eq!(v["platform"], "default");
    let heaps = v["heaps"].as_array().unwrap();
    let names: Vec<&str> = heaps.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, HEAPS);
    for h in heaps {
        assert_eq!(h["used"], 0);
        assert_eq!(h["buffers"], 0);
        assert_eq!(h["free"], h["capacity"]);
        assert_eq!(h["protected"], h["name"] != "system");
    }
}

#[test]
fn ls_says_where_its_data_comes_from_and_has_one_shape() {
    let runtime = private_dir("xdg");
    // No daemon: a fresh platform, said in the first line.
    let out = cmd(&runtime).arg("ls").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().next(), Some("source: a fresh platform (built-in default), no daemon"), "{text}");
    let fresh = json(&cmd(&runtime).args(["ls", "--json"]).output().unwrap());

    // A daemon on the default socket: ls asks it, and says so.
    let _serve = Serve::start(&runtime, None, None);
    let socket = runtime.join("teeheap/teeheap.sock");
    let out = cmd(&runtime).arg("ls").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().next(), Some(format!("source: the daemon at {}", socket.display()).as_str()));
    let daemon = json(&cmd(&runtime).args(["ls", "--json"]).output().unwrap());
    assert_eq!(daemon["source"], serde_json::json!({"kind": "daemon", "socket": socket}));
    assert_eq!(daemon["schema"], fresh["schema"]);
    let keys = |v: &Value| -> Vec<Vec<String>> {
        let top = v.as_object().unwrap().keys().cloned().collect();
        let mut all = vec![top];
        all.extend(v["heaps"].as_array().unwrap().iter().map(|h| h.as_object().unwrap().keys().cloned().collect()));
        all
    };
    assert_eq!(keys(&daemon), keys(&fresh), "the same keys from a daemon and from a fresh boot");

    // --config never silently replaces the daemon that answers.
    let dir = private_dir("cfg");
    let small = small_config(&dir);
    let out = cmd(&runtime).args(["ls", "--config"]).arg(&small).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&socket.display().to_string()) && err.contains("--fresh"), "{err}");
    let out = cmd(&runtime).env("TEEHEAP_CONFIG", &small).arg("ls").output().unwrap();
    assert!(!out.status.success(), "TEEHEAP_CONFIG does not silently win either");
    let v = json(&cmd(&runtime).args(["ls", "--json", "--fresh", "--config"]).arg(&small).output().unwrap());
    assert_eq!((v["platform"].as_str(), v["source"]["kind"].as_str()), (Some("small"), Some("fresh")));
    assert_eq!(v["source"]["config"], small.to_str().unwrap());
}

#[test]
fn observing_commands_name_their_source_and_schema() {
    let runtime = private_dir("xdg");
    let socket = runtime.join("elsewhere.sock");
    // Nothing answers: the error names the socket tried and what to do.
    for args in [&["stat"][..], &["bufinfo"], &["log"], &["map"], &["heap", "rm", "system"]] {
        let out = cmd(&runtime).args(args).arg("--socket").arg(&socket).output().unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(&socket.display().to_string()) && err.contains("teeheap serve"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let out = cmd(&runtime).env("TEEHEAP_SOCKET", &socket).arg("stat").output().unwrap();
    assert!(stderr(&out).contains("from TEEHEAP_SOCKET"), "{}", stderr(&out));
    // An explicit socket must answer: no fresh platform instead.
    assert!(!cmd(&runtime).args(["ls", "--socket"]).arg(&socket).output().unwrap().status.success());

    let _serve = Serve::start(&runtime, Some(&socket), None);
    let line = format!("source: the daemon at {}", socket.display());
    for (args, schema) in [
        ("ls", "teeheap-ls/1"),
        ("stat", "teeheap-stat/1"),
        ("bufinfo", "teeheap-bufinfo/1"),
        ("log", "teeheap-log/1"),
        ("map", "teeheap-map/1"),
    ] {
        let with = |extra: &[&str]| cmd(&runtime).arg(args).args(extra).arg("--socket").arg(&socket).output().unwrap();
        let out = with(&[]);
        assert!(out.status.success(), "{args}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().next(), Some(line.as_str()), "{args}: {text}");
        let v = json(&with(&["--json"]));
        assert_eq!(v["schema"], schema);
        assert_eq!(v["source"], serde_json::json!({"kind": "daemon", "socket": socket}), "{args}");
    }
    // TEEHEAP_SOCKET is the same as --socket for the observing commands.
    let v = json(&cmd(&runtime).env("TEEHEAP_SOCKET", &socket).args(["stat", "--json"]).output().unwrap());
    assert_eq!(v["source"]["socket"], socket.to_str().unwrap());
    // JSON Lines: every line carries its schema.
    let mut child = cmd(&runtime)
        .args(["stat", "--json", "--watch", "0.1", "--socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0] as char);
    }
    let _ = child.kill();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["schema"], "teeheap-stat/1");
    // The SVG goes to standard output with `-`, and no file named `-` appears.
    let out =
        cmd(&runtime).current_dir(&runtime).args(["map", "--svg", "-", "--socket"]).arg(&socket).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.starts_with(b"<?xml") || out.stdout.starts_with(b"<svg"), "SVG on stdout");
    assert!(!runtime.join("-").exists());
}

#[test]
fn config_file_is_used_and_bad_ones_are_reported() {
    let dir = private_dir("cfg");
    let good = small_config(&dir);
    let v = json(&teeheap(&["--config", good.to_str().unwrap(), "ls", "--json"]));
    assert_eq!(v["platform"], "small");
    // The carveout gives secure-video a static pool; the other use cases
    // get dynamic pools that lend normal memory.
    let heaps = v["heaps"].as_array().unwrap();
    assert_eq!(heaps.len(), 4);
    assert_eq!(heaps[0]["name"], "protected,secure-video");
    assert_eq!(heaps[0]["capacity"], 16 << 20);
    assert!(heaps[0]["pool"].as_str().unwrap().starts_with("static"));
    assert!(heaps[2]["pool"].as_str().unwrap().starts_with("dynamic"), "{}", heaps[2]);
    // The subcommand's own --config is the same.
    let v = json(&teeheap(&["ls", "--json", "--config", good.to_str().unwrap()]));
    assert_eq!(v["platform"], "small");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\ndram = { base = 0, size = \"lots\" }\n").unwrap();
    let out = teeheap(&["--config", bad.to_str().unwrap(), "ls"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad size") && err.contains(bad.to_str().unwrap()), "{err}");
    // A missing file: named, and its reason said once.
    let missing = dir.join("missing.toml");
    for cmdline in [&["ls"][..], &["demo"]] {
        let out = teeheap(&[&["--config", missing.to_str().unwrap()][..], cmdline].concat());
        let err = stderr(&out);
        assert!(!out.status.success());
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    }
    // A description the secure world or the platform refuses: the file
    // and the real reason, for every command that boots one.
    let pin = dir.join("pin.toml");
    std::fs::write(
        &pin,
        "name = \"x\"\ndram = { base = 0x4000_0000, size = \"64 MiB\" }\n[tee]\ntrusted_ui_pin = \"12ab\"\n",
    )
    .unwrap();
    let caps = dir.join("caps.toml");
    std::fs::write(
        &caps,
        "name = \"x\"\ndram = { base = 0x4000_0000, size = \"64 MiB\" }\n[limits.heap.gpu]\nbytes = 4096\n",
    )
    .unwrap();
    for (file, why) in [(&pin, "PIN must be"), (&caps, "the heaps are")] {
        for cmdline in [&["ls", "--fresh"][..], &["demo"], &["run", "--", "true"]] {
            let out = teeheap(&[&["--config", file.to_str().unwrap()][..], cmdline].concat());
            let err = stderr(&out);
            assert!(!out.status.success(), "{cmdline:?}");
            assert!(err.contains(file.to_str().unwrap()) && err.contains(why), "{cmdline:?}: {err}");
        }
    }
    // Inside a run, the run's daemon is the platform an inherited
    // TEEHEAP_CONFIG described: ls asks it.
    let runtime = private_dir("xdg");
    let out = cmd(&runtime).env("TEEHEAP_CONFIG", &good).args(["run", "--", TEEHEAP, "ls", "--json"]).output().unwrap();
    let v = json(&out);
    assert_eq!((v["platform"].as_str(), v["source"]["kind"].as_str()), (Some("small"), Some("daemon")));
    // --config where it does nothing is refused, not ignored.
    let out = teeheap(&["--config", good.to_str().unwrap(), "stat"]);
    assert!(!out.status.success() && stderr(&out).contains("--config applies to"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn arguments_are_checked_before_asking_a_daemon() {
    let out = teeheap(&["devmem", "0x160000000", "--master", "gpu"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("ns-cpu") && err.contains("video-encoder"), "the masters are listed: {err}");
    for len in ["0", "65537", "lots"] {
        let out = teeheap(&["devmem", "0x160000000", "--len", len]);
        assert_eq!(out.status.code(), Some(2), "--len {len}: {}", stderr(&out));
    }
}

#[test]
fn daemon_errors_are_plain_and_list_the_choices() {
    let runtime = private_dir("xdg");
    let _serve = Serve::start(&runtime, None, None);
    let out = cmd(&runtime).args(["heap", "rm", "gpu"]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    for name in HEAPS {
        assert!(err.contains(name), "valid heaps listed: {err}");
    }
    for internal in ["ENOENT", "not_bound", "bad_request", "daemon:"] {
        assert!(!err.contains(internal), "{internal} in {err}");
    }
    let out = cmd(&runtime).args(["backend", "bind"]).output().unwrap();
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("busy:"), "{}", stderr(&out));
    let out = cmd(&runtime).args(["heap", "add", "system"]).output().unwrap();
    assert!(stderr(&out).contains("not removed"), "{}", stderr(&out));
}

/// Reads a little of the command's output, closes the pipe, and returns
/// how the command ended.
fn close_pipe_early(args: &[&str], runtime: &Path) -> (ExitStatus, String) {
    let mut child = cmd(runtime).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut some = [0u8; 16];
    out.read_exact(&mut some).unwrap();
    drop(out);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (child.wait().unwrap(), err)
}

#[test]
fn a_closed_pipe_ends_reports_quietly() {
    let runtime = private_dir("xdg");
    let _serve = Serve::start(&runtime, None, None);
    for args in
        [&["demo"][..], &["ls"], &["stat", "--watch", "0.05"], &["log", "--follow"], &["default-config", "--full"]]
    {
        let (status, err) = close_pipe_early(args, &runtime);
        let quiet = status.success() || status.signal() == Some(libc::SIGPIPE);
        assert!(quiet, "{args:?}: {status:?} {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn run_exit_codes_follow_the_shell_and_leave_no_directory() {
    let tmp = private_dir("tmpdir");
    let run = |prog: &str| {
        let out = cmd(&private_dir("xdg")).env("TMPDIR", &tmp).args(["run", "--", prog]).output().unwrap();
        (out.status.code(), stderr(&out))
    };
    let (code, err) = run("./no-such-program");
    assert_eq!(code, Some(127), "{err}");
    assert!(err.contains("./no-such-program") && err.lines().count() == 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "said once: {err}");
    let script = tmp.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let (code, err) = run(script.to_str().unwrap());
    assert_eq!(code, Some(126), "{err}");
    assert_eq!(run("true").0, Some(0));
    assert_eq!(run("false").0, Some(1));
    // A daemon that cannot start (its description refused) leaves nothing
    // either.
    let bad = tmp.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\ndram = { base = 0x4000_0000, size = \"64 MiB\" }\n[tee]\ntrusted_ui_pin = \"1\"\n",
    )
    .unwrap();
    let out = cmd(&private_dir("xdg"))
        .env("TMPDIR", &tmp)
        .arg("--config")
        .arg(&bad)
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("teeheap-run-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn run_ignores_an_inherited_socket_unless_told() {
    let runtime = private_dir("xdg");
    let _serve = Serve::start(&runtime, None, None);
    let socket = runtime.join("teeheap/teeheap.sock");
    let echo = ["sh", "-c", "echo \"$TEEHEAP_SOCKET\""];
    let out = cmd(&runtime).env("TEEHEAP_SOCKET", &socket).arg("run").arg("--").args(echo).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = String::from_utf8(out.stdout).unwrap();
    assert_ne!(seen.trim(), socket.to_str().unwrap(), "a private daemon, not the inherited one");
    let out = cmd(&runtime).env("TEEHEAP_SOCKET", &socket).args(["run", "--daemon", "--"]).args(echo).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), socket.to_str().unwrap(), "{}", stderr(&out));
    for opt in ["--socket", "--connect"] {
        let out = cmd(&runtime).args(["run", opt]).arg(&socket).arg("--").args(echo).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), socket.to_str().unwrap(), "{opt}: {}", stderr(&out));
    }
}

#[test]
fn tests_pass_with_a_daemon_on_the_default_socket() {
    // The user's environment: a daemon on the default socket, with a
    // platform of its own, named by TEEHEAP_SOCKET too. The tests above
    // must not see it.
    let runtime = private_dir("user");
    let cfg = small_config(&runtime);
    let _serve = Serve::start(&runtime, None, Some(&cfg));
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .args(["--exact", "--test-threads", "2"])
        .args(["ls_json_lists_all_heaps", "config_file_is_used_and_bad_ones_are_reported", "demo_passes_every_check"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("TEEHEAP_SOCKET", runtime.join("teeheap/teeheap.sock"))
        .env("TEEHEAP_CONFIG", &cfg)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", stderr(&out));
    assert!(report.contains("3 passed"), "{report}");
}
