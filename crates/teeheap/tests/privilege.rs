//! Privilege separation of the control socket (docs/threat-model.md): a
//! program under `teeheap run` may observe through `$TEEHEAP_SOCKET` but not
//! act — no `devmem` as a secure bus master, no `backend unbind|bind`, no
//! `heap rm|add` — unless the run was started with `--allow-admin`; as root
//! and as an ordinary user (whose program may become root of a nested user
//! namespace and is still inside). Outside any run, everything is allowed,
//! and every secure-master `devmem` is logged. The run is registered
//! before the program's first instruction (tests/clients/first_request.c).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Served, TEEHEAP, tmp};

const REFUSAL: &str = "not permitted from inside a run; start the run with --allow-admin";
/// In the secure-video carveout: secure-cpu, video-decoder and display may
/// read it, the normal-world CPU may not.
const CARVEOUT: &str = "0x160000000";
/// Normal DRAM.
const DRAM: &str = "0x80000000";

/// Each step as `name: ok` or `name: refused: <stderr>`, then the log as
/// JSON. `$T` is the teeheap binary, `$EXTRA` optional extra steps.
const PROBE: &str = r#"
try() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name: ok"; else echo "$name: refused: $(echo "$out" | tr '\n' ' ')"; fi; }
try ls "$T" ls
try ns-cpu-dram "$T" devmem 0x80000000 --len 16
try ns-cpu-carveout "$T" devmem 0x160000000 --len 16
try secure-cpu "$T" devmem 0x160000000 --len 64 --master secure-cpu
try secure-cpu-write "$T" devmem 0x160000000 --len 16 --master secure-cpu --write
try video-decoder "$T" devmem 0x160000000 --len 16 --master video-decoder
try display "$T" devmem 0x160000000 --len 16 --master display
try unbind "$T" backend unbind
try bind "$T" backend bind
try heap-rm "$T" heap rm system
try heap-add "$T" heap add system
if [ -n "$NESTED_USERNS" ]; then
  try nested-userns unshare -Ur "$T" devmem 0x160000000 --len 16 --master secure-cpu
  try nested-userns-unbind unshare -Urm "$T" backend unbind
fi
echo LOG
"$T" log --json
"#;

/// The steps that need rights.
const ACTS: &[&str] =
    &["secure-cpu", "secure-cpu-write", "video-decoder", "display", "unbind", "bind", "heap-rm", "heap-add"];

fn teeheap(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_remove("TEEHEAP_CONFIG").env_remove("TEEHEAP_SOCKET").env("RUST_LOG", "warn");
    c
}

/// What the probe printed: step -> outcome, and the log's events.
struct Probe {
    steps: BTreeMap<String, String>,
    log: Vec<serde_json::Value>,
    raw: String,
}

impl Probe {
    fn parse(out: &Output) -> Probe {
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let (steps, log) = raw
            .split_once("LOG\n")
            .unwrap_or_else(|| panic!("no log:\n{raw}\n{}", String::from_utf8_lossy(&out.stderr)));
        let steps =
            steps.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let log: serde_json::Value = serde_json::from_str(log).unwrap_or_else(|e| panic!("log JSON: {e}\n{raw}"));
        let log = log["events"].as_array().unwrap().clone();
        Probe { steps, log, raw }
    }

    fn step(&self, name: &str) -> &str {
        self.steps.get(name).unwrap_or_else(|| panic!("no step {name}:\n{}", self.raw))
    }

    fn refused(&self, name: &str) {
        let s = self.step(name);
        assert!(
            s.starts_with("refused") && s.contains(REFUSAL),
            "{name} must be refused for rights: {s}\n{}",
            self.raw
        );
    }

    fn allowed(&self, name: &str) {
        assert_eq!(self.step(name), "ok", "{name}:\n{}", self.raw);
    }

    fn events(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.log.iter().filter(|e| e["kind"] == kind).collect()
    }
}

/// `teeheap run [--allow-admin] -- sh -c PROBE` with `bin` as teeheap.
fn probe_run(bin: &Path, admin: bool, wrap: impl FnOnce(Command) -> Command, nested_userns: bool) -> Probe {
    let mut c = teeheap(bin);
    c.arg("run");
    if admin {
        c.arg("--allow-admin");
    }
    c.args(["--", "sh", "-c", PROBE]).env("T", bin);
    if nested_userns {
        c.env("NESTED_USERNS", "1");
    }
    let out = wrap(c).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Probe::parse(&out)
}

/// Observing and normal-world devmem work from inside any run.
fn check_observer_steps(p: &Probe) {
    p.allowed("ls");
    p.allowed("ns-cpu-dram");
    let s = p.step("ns-cpu-carveout");
    assert!(s.contains("refused by carveout secure-video"), "the firewall, not the rights, refuses it: {s}");
}

fn check_refused(p: &Probe) {
    check_observer_steps(p);
    for a in ACTS {
        p.refused(a);
    }
    assert!(p.events("devmem").is_empty(), "nothing was accessed as a secure master: {:#?}", p.log);
    // Every refusal is logged, naming the caller's run.
    let denied = p.events("denied");
    assert!(denied.len() >= ACTS.len(), "{denied:#?}");
    assert!(denied.iter().all(|e| e["message"].as_str().unwrap().contains("inside run")), "{denied:#?}");
    assert!(denied.iter().any(|e| e["message"].as_str().unwrap().starts_with("devmem read as secure-cpu refused")));
    // Nothing changed: no lifecycle event after the start.
    let kinds: Vec<&str> = p.log.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(!kinds.iter().any(|k| ["unbind", "heap-rm", "heap-add"].contains(k)), "{kinds:?}");
}

#[test]
fn a_program_observes_but_cannot_act_by_default() {
    let p = probe_run(Path::new(TEEHEAP), false, |c| c, false);
    check_refused(&p);
}

#[test]
fn allow_admin_lets_the_program_act_and_secure_accesses_are_logged() {
    let p = probe_run(Path::new(TEEHEAP), true, |c| c, false);
    check_observer_steps(&p);
    for a in ACTS {
        p.allowed(a);
    }
    let dm = p.events("devmem");
    let masters: Vec<&str> = dm.iter().map(|e| e["master"].as_str().unwrap()).collect();
    assert_eq!(masters, ["secure-cpu", "secure-cpu", "video-decoder", "display"], "{dm:#?}");
    assert_eq!((dm[0]["access"].as_str(), dm[1]["access"].as_str()), (Some("read"), Some("write")));
    assert_eq!(dm[0]["range"], serde_json::json!({"start": 0x1_6000_0000u64, "len": 64}));
    assert!(dm[0]["message"].as_str().unwrap().contains("(--allow-admin)"), "{dm:#?}");
    assert!(dm.iter().all(|e| e["pid"].as_i64().is_some()));
    assert!(p.events("denied").is_empty(), "{:#?}", p.log);
}

/// The teeheap binary where an ordinary user can run it, or `None` when
/// the test cannot switch users (not root, or no setpriv).
fn as_nobody() -> Option<(PathBuf, PathBuf)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let setpriv = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("setpriv")).find(|p| p.exists()))?;
    let dir = std::env::temp_dir().join(format!("teeheap-priv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("teeheap");
    std::fs::copy(TEEHEAP, &bin).unwrap();
    for p in [&dir, &bin] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Some((setpriv, bin))
}

fn nobody(setpriv: &Path, c: Command) -> Command {
    let mut n = Command::new(setpriv);
    n.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => n.env(k, v),
            None => n.env_remove(k),
        };
    }
    n.env_remove("XDG_RUNTIME_DIR").env("TMPDIR", "/tmp");
    n
}

#[test]
fn as_an_ordinary_user_even_root_of_a_nested_namespace_cannot_act() {
    let Some((setpriv, bin)) = as_nobody() else {
        // Already unprivileged: the other tests run as an ordinary user.
        let p = probe_run(Path::new(TEEHEAP), false, |c| c, true);
        check_refused(&p);
        p.refused("nested-userns");
        p.refused("nested-userns-unbind");
        return;
    };
    let p = probe_run(&bin, false, |c| nobody(&setpriv, c), true);
    check_refused(&p);
    // Root of a user namespace nested in the run's is still inside it.
    p.refused("nested-userns");
    p.refused("nested-userns-unbind");
    let p = probe_run(&bin, true, |c| nobody(&setpriv, c), true);
    for a in ACTS {
        p.allowed(a);
    }
    p.allowed("nested-userns");
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}

/// A `teeheap serve` on a fresh socket, killed on drop.
impl Served {
    fn start(name: &str) -> Served {
        let socket = tmp().join(format!("{name}-{}", std::process::id())).join("s.sock");
        Served::spawn(teeheap(Path::new(TEEHEAP)), socket, Stdio::null())
    }

    fn cli(&self, args: &[&str]) -> Output {
        teeheap(Path::new(TEEHEAP)).env("TEEHEAP_SOCKET", &self.socket).args(args).output().unwrap()
    }

    fn log(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["log", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["events"].as_array().unwrap().clone()
    }
}

#[test]
fn a_shared_daemon_applies_the_rule_per_run_and_logs_outside_secure_accesses() {
    let d = Served::start("priv-serve");
    let sock = d.socket.to_str().unwrap();
    let run = |admin: bool, script: &str| {
        let mut c = teeheap(Path::new(TEEHEAP));
        c.args(["run", "--connect", sock]);
        if admin {
            c.arg("--allow-admin");
        }
        c.args(["--", "sh", "-c", script]).env("T", TEEHEAP).output().unwrap()
    };
    // Outside any run: a secure master reads the carveout, and it is logged.
    let out = d.cli(&["devmem", CARVEOUT, "--len", "32", "--master", "secure-cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = d.log();
    let dm: Vec<_> = log.iter().filter(|e| e["kind"] == "devmem").collect();
    assert_eq!(dm.len(), 1, "{log:#?}");
    assert_eq!((dm[0]["master"].as_str(), dm[0]["access"].as_str()), (Some("secure-cpu"), Some("read")));
    assert!(dm[0]["message"].as_str().unwrap().contains("outside any run"), "{dm:#?}");
    // Normal-world accesses are not logged as devmem.
    assert!(d.cli(&["devmem", DRAM]).status.success());
    assert_eq!(d.log().iter().filter(|e| e["kind"] == "devmem").count(), 1);

    // Two runs of one daemon: only the one started with --allow-admin acts.
    let out = run(false, "\"$T\" heap rm system");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(REFUSAL));
    let out = run(true, "\"$T\" heap rm system && \"$T\" heap add system");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A process the program leaves behind is still inside its run after
    // the program exited (the run ends with its last process).
    let marker = d.socket.with_file_name("orphan.out");
    let script = format!(
        "( sleep 0.5; \"$T\" devmem {CARVEOUT} --master secure-cpu > {m}.tmp 2>&1; echo $? >> {m}.tmp; mv {m}.tmp {m} ) & exit 0",
        m = marker.display()
    );
    let out = run(false, &script);
    assert!(out.status.success());
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the orphan did not report");
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = std::fs::read_to_string(&marker).unwrap();
    assert!(got.contains(REFUSAL) && got.trim_end().ends_with('1'), "{got}");
    assert_eq!(d.log().iter().filter(|e| e["kind"] == "devmem").count(), 1, "the orphan accessed nothing");
    // And outside, acting still works.
    assert!(d.cli(&["backend", "unbind"]).status.success());
    assert!(d.cli(&["backend", "bind"]).status.success());
}

/// The run is registered before the program's first instruction: a static
/// program whose constructor asks for a secure-master access at once is
/// refused every time (registering after the program started left a window
/// in which it passed for an outsider).
#[test]
fn the_first_instruction_of_a_program_is_already_inside_its_run() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/first_request.c");
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("first_request");
    let st = Command::new("cc").args(["-O1", "-Wall", "-static", "-o"]).arg(&exe).arg(&src).status();
    assert!(st.is_ok_and(|s| s.success()), "cc -static {} failed (needs libc6-dev)", src.display());
    let d = Served::start("priv-first");
    let run = |admin: bool| {
        let mut c = teeheap(Path::new(TEEHEAP));
        c.arg("run").arg("--connect").arg(&d.socket);
        if admin {
            c.arg("--allow-admin");
        }
        let out = c.arg("--").arg(&exe).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    for i in 0..20 {
        assert_eq!(run(false), "not_permitted", "attempt {i}");
    }
    assert_eq!(run(true), "devmem");
}
