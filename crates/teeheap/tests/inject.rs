//! Fault injection (docs/fault-injection.md): for each fault kind, a C
//! program (tests/clients/inject_client.c) under `teeheap run --inject ...`
//! gets the answer the kernel gives for the real event, at the point the
//! spec names, and the daemon holds nothing of it afterwards; the same
//! `--seed` injects at the same points; `[[inject]]` tables; `teeheap
//! inject` is for admins only.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Served, TEEHEAP, compile, teeheap, teeheap_private, tmp};
use teeheap_daemon::protocol::Client;
use teeheap_daemon::report::Event;

const SDP: &str = "12345678-5b69-11e4-9dbb-101f74f00099";
const SV: &str = "protected,secure-video";

/// The client, compiled once for every test of this file.
fn client() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile("inject_client.c", "inject_client", &[]))
}

/// The program's output lines; it must have finished its scenario.
fn lines(out: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.ends_with("done\n"), "program failed:\n{stdout}\n{stderr}");
    stdout.lines().map(str::to_owned).collect()
}

/// `teeheap run [--inject SPEC]... [extra] -- inject_client ARGS` with a
/// private daemon.
fn run_private(specs: &[&str], extra: &[&str], args: &[&str]) -> Output {
    let mut c = teeheap_private("inject");
    c.arg("run");
    for s in specs {
        c.arg("--inject").arg(s);
    }
    c.args(extra).arg("--").arg(client()).args(args);
    c.output().unwrap()
}

/// A standalone daemon for one test; faults are sent to it by `run
/// --connect SOCKET --inject ...`, and afterwards it must hold nothing.
struct Daemon(Served);

impl Daemon {
    fn start(tag: &str) -> Daemon {
        let socket = tmp().join(format!("inject-{tag}-{}.sock", std::process::id()));
        Daemon(Served::spawn(teeheap(), socket, Stdio::null()))
    }

    fn run(&self, specs: &[&str], args: &[&str]) -> Vec<String> {
        let mut c = teeheap();
        c.arg("run").arg("--connect").arg(&self.0.socket);
        for s in specs {
            c.arg("--inject").arg(s);
        }
        c.arg("--").arg(client()).args(args);
        lines(&c.output().unwrap())
    }

    fn client(&self) -> Client {
        Client::connect(&self.0.socket).unwrap()
    }

    /// The `injected` events, in order.
    fn injected(&self) -> Vec<Event> {
        self.client().log(0).unwrap().events.into_iter().filter(|e| e.kind == "injected").collect()
    }

    /// Waits (at most 10 s) until the daemon holds no buffer, no served
    /// file, no session and no TEE context of the program.
    fn assert_nothing_left(&self) {
        let t0 = Instant::now();
        loop {
            let s = self.client().stats().unwrap();
            let left = s.buffers
                + s.heap_buffers
                + s.served_buffers
                + s.served_contexts
                + s.served_shms
                + s.served_sync_files
                + s.sessions;
            if left == 0 {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "the daemon still holds: {s:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn has(lines: &[String], want: &[&str]) {
    for w in want {
        assert!(lines.iter().any(|l| l == w), "missing {w:?} in {lines:#?}");
    }
}

#[test]
fn alloc_nth_and_every_fail_with_enomem_at_those_allocations() {
    let d = Daemon::start("alloc");
    let out = d.run(&[&format!("alloc:{SV}:nth=3:ENOMEM"), "alloc:system:every=2:ENOMEM"], &["alloc", SV, "5"]);
    has(&out, &["alloc 1 ok", "alloc 2 ok", "alloc 3 err ENOMEM", "alloc 4 ok", "alloc 5 ok"]);
    let out = d.run(&[], &["alloc", "system", "4"]);
    has(&out, &["alloc 1 ok", "alloc 2 err ENOMEM", "alloc 3 ok", "alloc 4 err ENOMEM"]);
    d.assert_nothing_left();
    let fired = d.injected();
    let specs: Vec<_> = fired.iter().map(|e| e.spec.as_deref().unwrap()).collect();
    assert_eq!(
        specs,
        [&format!("alloc:{SV}:nth=3:ENOMEM") as &str, "alloc:system:every=2:ENOMEM", "alloc:system:every=2:ENOMEM"]
    );
    assert!(fired[0].message.contains("3rd allocation"), "{}", fired[0].message);
}

#[test]
fn alloc_delay_answers_later_and_allocates() {
    let d = Daemon::start("delay");
    let out = d.run(&[&format!("alloc:{SV}:nth=2:delay=300ms")], &["until-fails", SV, "400"]);
    has(&out, &["no failure", "reopen: ok"]);
    let fired = d.injected();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].message.contains("2nd allocation") && fired[0].message.contains("300ms"), "{fired:?}");
    d.assert_nothing_left();
}

#[test]
fn backend_unbind_after_allocs_makes_the_next_allocation_einval() {
    let d = Daemon::start("unbind-n");
    let out = d.run(&["backend:unbind:after-allocs=3"], &["alloc", SV, "5"]);
    has(&out, &["alloc 1 ok", "alloc 2 ok", "alloc 3 ok", "alloc 4 err EINVAL", "alloc 5 err EINVAL"]);
    d.assert_nothing_left();
    let fired = d.injected();
    assert!(fired.len() == 1 && fired[0].message.contains("unbound"), "{fired:?}");
}

#[test]
fn backend_unbind_after_time_then_rebind() {
    let d = Daemon::start("unbind-t");
    let out = d.run(&["backend:unbind:after=300ms", "backend:rebind:after=900ms"], &["until-fails", SV, "5000"]);
    let at: u64 =
        out.iter().find_map(|l| l.strip_prefix("fails after ")).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(out.iter().any(|l| l == &format!("fails after {at} ms: EINVAL")), "{out:?}");
    // Armed when the request was answered, before the program started.
    assert!(at < 5000, "{out:?}");
    let ok: u32 = out.iter().find_map(|l| l.strip_prefix("ok before ")).unwrap().parse().unwrap();
    assert!(ok >= 1, "allocations worked before the unbind: {out:?}");
    // After the rebind, the heap allocates again.
    let t0 = Instant::now();
    while d.injected().len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no rebind: {:?}", d.injected());
        std::thread::sleep(Duration::from_millis(50));
    }
    has(&d.run(&[], &["alloc", SV, "1"]), &["alloc 1 ok"]);
    d.assert_nothing_left();
}

#[test]
fn heap_rm_after_time_gives_enodev_on_the_open_fd_and_enoent_on_open() {
    let d = Daemon::start("heap-rm");
    let out = d.run(&[&format!("heap-rm:{SV}:after=300ms")], &["until-fails", SV, "5000"]);
    assert!(out.iter().any(|l| l.starts_with("fails after ") && l.ends_with(": ENODEV")), "{out:?}");
    has(&out, &["reopen: err ENOENT"]);
    d.assert_nothing_left();
}

#[test]
fn ta_panic_on_command_n_kills_the_session() {
    let d = Daemon::start("ta-panic");
    let out = d.run(&[&format!("ta:{SDP}:cmd=1:nth=2:panic")], &["ta-cmd", "1", "3"]);
    // Unfaulted calls reach the TA (no parameters: BAD_PARAMETERS from it);
    // the panic is TARGET_DEAD from the TEE, and the session stays dead.
    has(
        &out,
        &["invoke 1 ret 0xffff0006 origin 4", "invoke 2 ret 0xffff3024 origin 3", "invoke 3 ret 0xffff3024 origin 3"],
    );
    d.assert_nothing_left();
}

#[test]
fn ta_delay_and_busy_on_open() {
    let d = Daemon::start("ta-open");
    let out = d.run(&[&format!("ta:{SDP}:open:nth=2:busy")], &["ta-open", "3"]);
    has(&out, &["open 1 ret 0 origin 4", "open 2 ret 0xffff000d origin 3", "open 3 ret 0 origin 4"]);
    let out = d.run(&[&format!("ta:{SDP}:cmd=9:nth=1:delay=200ms")], &["ta-cmd", "9", "2"]);
    has(&out, &["invoke 1 ret 0xffff0006 origin 4", "invoke 2 ret 0xffff0006 origin 4"]);
    let fired = d.injected();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(fired[1].message.contains("200ms longer at the 1st invocation of command 9"), "{fired:?}");
    d.assert_nothing_left();
}

#[test]
fn secure_world_panic_kills_every_session_and_the_devices() {
    let d = Daemon::start("sw-panic");
    let out = d.run(&["secure-world:panic:after=300ms"], &["until-dead", "5000"]);
    // The backend is gone: the kernel answers from the communication layer.
    assert!(out.iter().any(|l| l.starts_with("dead after ") && l.ends_with(": origin 2")), "{out:?}");
    has(&out, &["reopen: err ENOENT"]);
    // The secure world stays dead: binding again fails.
    let mut c = d.client();
    assert!(
        c.lifecycle(&teeheap_daemon::protocol::Request::Backend {
            action: teeheap_daemon::protocol::BackendAction::Bind
        })
        .is_err()
    );
    d.assert_nothing_left();
}

#[test]
fn firewall_fault_on_the_nth_access_is_refused_and_logged() {
    let d = Daemon::start("firewall");
    let out = d.run(&["firewall:secure-cpu:fault:nth=2"], &["inject", "3"]);
    // The TA's copy is refused by the firewall: ACCESS_DENIED from the TA.
    has(&out, &["inject 1 ret 0 origin 4", "inject 2 ret 0xffff0001 origin 4", "inject 3 ret 0 origin 4"]);
    let log = d.client().log(0).unwrap().events;
    assert!(log.iter().any(|e| e.kind == "violation" && e.region.as_deref() == Some("an injected fault")), "{log:#?}");
    d.assert_nothing_left();
}

/// The `alloc I ...` lines of a run with `prob=0.5` and `seed`.
fn seeded(seed: &str) -> Vec<String> {
    let out = run_private(&[&format!("alloc:{SV}:prob=0.5:ENOMEM")], &["--seed", seed], &["alloc", SV, "48"]);
    lines(&out).into_iter().filter(|l| l.starts_with("alloc ")).collect()
}

#[test]
fn the_same_seed_injects_at_the_same_points() {
    let a = seeded("42");
    let failed = a.iter().filter(|l| l.ends_with("ENOMEM")).count();
    assert!((5..44).contains(&failed), "{a:?}");
    assert_eq!(a, seeded("42"));
    assert_ne!(a, seeded("43"));
}

#[test]
fn inject_tables_in_the_platform_description() {
    let cfg = tmp().join("inject-tables.toml");
    let text = format!("{}\n[[inject]]\nspec = \"alloc:{SV}:nth=2:ENOMEM\"\n", teeheap_platform::config::DEFAULT_TOML);
    std::fs::write(&cfg, text).unwrap();
    let mut c = teeheap_private("inject-cfg");
    c.arg("--config").arg(&cfg).arg("run").arg("--").arg(client()).args(["alloc", SV, "3"]);
    has(&lines(&c.output().unwrap()), &["alloc 1 ok", "alloc 2 err ENOMEM", "alloc 3 ok"]);
    // A bad spec is refused with the file, the spec and the reason.
    std::fs::write(
        &cfg,
        format!("{}\n[[inject]]\nspec = \"alloc:gpu:ENOMEM\"\n", teeheap_platform::config::DEFAULT_TOML),
    )
    .unwrap();
    let mut c = teeheap_private("inject-cfg");
    let out = c.arg("--config").arg(&cfg).arg("run").arg("--").arg("true").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("inject-tables.toml") && err.contains("no heap \"gpu\""), "{err}");
}

#[test]
fn bad_specs_are_refused_before_anything_runs() {
    let out = run_private(&["alloc:system:nth=0:ENOMEM"], &[], &["alloc", "system", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nth=0") && out.stdout.is_empty(), "{err}");
}

#[test]
fn teeheap_inject_is_for_admins_only() {
    let d = Daemon::start("admin");
    let run_inject = |admin: bool| {
        let mut c = teeheap();
        c.arg("run").arg("--connect").arg(&d.0.socket);
        if admin {
            c.arg("--allow-admin");
        }
        c.arg("--").arg(TEEHEAP).arg("inject").arg("alloc:system:ENOMEM");
        c.output().unwrap()
    };
    let refused = run_inject(false);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("not permitted"), "{err}");
    assert!(d.client().log(0).unwrap().events.iter().any(|e| e.kind == "denied" && e.message.contains("inject")));
    let done = run_inject(true);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    // From outside any run it is the daemon's user's to ask.
    let mut c = Command::new(TEEHEAP);
    let out = c.arg("inject").arg("--socket").arg(&d.0.socket).arg("firewall:display:fault").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("firewall:display:fault:every=1"));
}

/// `supplicant:gone:after=DUR` (tests/clients/supp_gone.c): the LOAD_TA
/// request the program's own supplicant took and kept fails with
/// TEEC_ERROR_COMMUNICATION when the fault fires (the open session waiting
/// on it answers that, origin TEE, as OP-TEE does), the supplicant's
/// blocked SUPPL_RECV ends with EINTR, later requests fail at once; one
/// `injected` event; nothing left.
#[test]
fn supplicant_gone_fails_its_requests_with_communication() {
    let d = Daemon::start("supp-gone");
    let exe = compile("supp_gone.c", "supp_gone", &["-pthread"]);
    let spec = "supplicant:gone:after=2s";
    let out = teeheap()
        .arg("run")
        .arg("--connect")
        .arg(&d.0.socket)
        .arg("--inject")
        .arg(spec)
        .arg("--")
        .arg(&exe)
        .output()
        .unwrap();
    let out = lines(&out);
    has(
        &out,
        &[
            "ok teepriv0 and tee0 open",
            "ok SUPPL_RECV takes LOAD_TA before the fault",
            "ok the pending open session fails with COMMUNICATION from the TEE",
            "ok the blocked SUPPL_RECV ends with EINTR",
            "ok answering the aborted request is ENOENT",
            "ok a later open session fails with COMMUNICATION at once",
            "ok a later SUPPL_RECV ends with EINTR at once",
            "0 failed",
        ],
    );
    let fired = d.injected();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].spec.as_deref(), Some(spec));
    assert!(fired[0].message.contains("1 pending request failed"), "{fired:?}");
    d.assert_nothing_left();
}
