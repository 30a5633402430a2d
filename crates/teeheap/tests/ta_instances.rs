//! OP-TEE's instance rules for host-built TAs (issue 13): the TA in
//! `tests/tas/instance`, built once per set of `TA_FLAGS`, driven through
//! the secure world's message ABI with its TA process being the `teeheap`
//! binary under test. A single-instance TA shares one instance (one
//! process, one state) among its sessions and runs their calls one at a
//! time; without MULTI_SESSION a second session is BUSY (origin TEE);
//! KEEP_ALIVE keeps the instance after its last session; a multi-instance
//! TA gets a process per session; a panic of a shared instance is
//! TARGET_DEAD for each of its sessions.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{build_ta, repo, ta_world, tmp};
use teeheap_secure_world::{Msg, MsgParam, SecureWorld, Smc, TeeError, Uuid};
use teeheap_uapi::tee::gp::{TEEC_ORIGIN_TEE, TEEC_ORIGIN_TRUSTED_APP};

const SINGLE_INSTANCE: u32 = 1 << 2;
const MULTI_SESSION: u32 = 1 << 3;
const KEEP_ALIVE: u32 = 1 << 4;

const COUNT: u32 = 0;
const WAIT: u32 = 1;
const PANIC: u32 = 2;
const OPEN_SELF: u32 = 3;

/// The UUID of the variant with flags `flags`.
fn uuid(flags: u32) -> Uuid {
    Uuid::from_fields(0x5eed_1a57, 0x0001, 0x4000, [0x80, 0, 0, 0, 0, 0, 0, flags as u8])
}

/// Builds the instance TA with `flags` into `tadir`.
fn build(tadir: &Path, flags: u32) {
    let u = uuid(flags);
    let src = tmp().join(format!("ta-instance-src-{flags}-{}", std::process::id()));
    std::fs::create_dir_all(src.join("include")).unwrap();
    let f = u.0;
    let header = format!(
        "#define TA_UUID {{ 0x{:02x}{:02x}{:02x}{:02x}, 0x{:02x}{:02x}, 0x{:02x}{:02x}, {{ {} }} }}\n\
         #define TA_FLAGS {flags}\n#define TA_STACK_SIZE 2048\n#define TA_DATA_SIZE 32768\n",
        f[0],
        f[1],
        f[2],
        f[3],
        f[4],
        f[5],
        f[6],
        f[7],
        f[8..].iter().map(|b| format!("0x{b:02x}")).collect::<Vec<_>>().join(", "),
    );
    std::fs::write(src.join("include/user_ta_header_defines.h"), header).unwrap();
    let body = repo().join("crates/teeheap/tests/tas/instance/ta.c");
    std::fs::write(src.join("ta.c"), format!("#include \"{}\"\n", body.display())).unwrap();
    build_ta(&src, tadir, &u.to_string());
}

fn smc(w: &SecureWorld, mut m: Msg) -> Msg {
    w.smc(Smc::Std(&mut m));
    m
}

/// `(result, origin, session)` of opening a session on the variant `flags`.
fn open(w: &SecureWorld, flags: u32) -> (Result<(), TeeError>, u32, u32) {
    let m = smc(w, Msg::open_session(uuid(flags), 0, vec![]));
    (m.result(), m.ret_origin, m.session)
}

fn opened(w: &SecureWorld, flags: u32) -> u32 {
    let (r, origin, s) = open(w, flags);
    assert_eq!((r, origin), (Ok(()), TEEC_ORIGIN_TRUSTED_APP), "open flags {flags:#x}");
    s
}

/// `(result, origin, a, b)` of `cmd` with one value inout `(a, 0)`.
fn call(w: &SecureWorld, session: u32, cmd: u32, a: u64) -> (Result<(), TeeError>, u32, u64, u64) {
    let m = smc(w, Msg::invoke(session, cmd, vec![MsgParam::value_inout(a, 0, 0)]));
    let (a, b, _) = m.params[0].values().unwrap_or_default();
    (m.result(), m.ret_origin, a, b)
}

fn count(w: &SecureWorld, session: u32) -> u64 {
    let (r, _, a, _) = call(w, session, COUNT, 0);
    assert_eq!(r, Ok(()));
    a
}

fn close(w: &SecureWorld, session: u32) {
    assert_eq!(smc(w, Msg::close_session(session)).result(), Ok(()));
}

#[test]
fn single_instance_multi_session_shares_one_instance_and_serialises_calls() {
    let tadir = tmp().join("ta-instances-shared");
    let flags = SINGLE_INSTANCE | MULTI_SESSION;
    build(&tadir, flags);
    let w = ta_world(tadir);
    let (a, b) = (opened(&w, flags), opened(&w, flags));
    assert_eq!((count(&w, a), count(&w, b), count(&w, a)), (1, 2, 3), "one counter for both sessions");

    // Two 300 ms calls from two sessions: the second waits for the first
    // (one instance runs one call at a time) and neither fails.
    let t0 = Instant::now();
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|s| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || call(&w, s, WAIT, 300))
        })
        .collect();
    let mut seen: Vec<u64> =
        threads.into_iter().map(|t| t.join().unwrap()).map(|(r, _, n, _)| n + u64::from(r.is_err()) * 1000).collect();
    seen.sort_unstable();
    assert_eq!(seen, [4, 5], "both calls served, one after the other");
    assert!(t0.elapsed() >= Duration::from_millis(600), "the calls overlapped: {:?}", t0.elapsed());

    // The instance calling itself while in a call: BUSY from the TEE.
    let (r, _, res, origin) = call(&w, a, OPEN_SELF, 0);
    assert_eq!((r, res, origin), (Ok(()), u64::from(TeeError::BUSY.code()), u64::from(TEEC_ORIGIN_TEE)));

    // A panic ends the shared instance: every session of it is dead, and
    // a new session gets a new instance.
    assert_eq!(call(&w, a, PANIC, 0).0, Err(TeeError::TARGET_DEAD));
    let (r, origin, ..) = call(&w, b, COUNT, 0);
    assert_eq!((r, origin), (Err(TeeError::TARGET_DEAD), TEEC_ORIGIN_TEE), "the other session of the instance");
    let c = opened(&w, flags);
    assert_eq!(count(&w, c), 1, "a fresh instance");
    for s in [a, b, c] {
        close(&w, s);
    }
    assert_eq!(w.session_count(), 0);
}

#[test]
fn single_session_ta_refuses_a_second_session_with_busy() {
    let tadir = tmp().join("ta-instances-single");
    build(&tadir, SINGLE_INSTANCE);
    let w = ta_world(tadir);
    let a = opened(&w, SINGLE_INSTANCE);
    let (r, origin, _) = open(&w, SINGLE_INSTANCE);
    assert_eq!((r, origin), (Err(TeeError::BUSY), TEEC_ORIGIN_TEE));
    assert_eq!(count(&w, a), 1, "the open session is untouched");
    close(&w, a);
    // Once it closed, the instance is gone: the next session starts anew.
    let b = opened(&w, SINGLE_INSTANCE);
    assert_eq!(count(&w, b), 1);
    close(&w, b);
}

#[test]
fn keep_alive_instance_outlives_its_last_session() {
    let tadir = tmp().join("ta-instances-keep");
    let flags = SINGLE_INSTANCE | KEEP_ALIVE;
    build(&tadir, flags);
    let w = ta_world(tadir);
    let a = opened(&w, flags);
    assert_eq!(count(&w, a), 1);
    // Single session: a second one is BUSY while `a` is open.
    assert_eq!(open(&w, flags).0, Err(TeeError::BUSY));
    close(&w, a);
    // The instance is kept: its state carries over to the next session.
    let b = opened(&w, flags);
    assert_eq!(count(&w, b), 2);
    close(&w, b);
}

#[test]
fn multi_instance_ta_gets_an_instance_per_session() {
    let tadir = tmp().join("ta-instances-multi");
    build(&tadir, 0);
    let w = ta_world(tadir);
    let (a, b) = (opened(&w, 0), opened(&w, 0));
    assert_eq!((count(&w, a), count(&w, a), count(&w, b)), (1, 2, 1), "a counter per session");
    // Two instances run their calls at the same time.
    let t0 = Instant::now();
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|s| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || call(&w, s, WAIT, 300).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(()));
    }
    eprintln!("two 300 ms calls on two instances took {:?}", t0.elapsed());
    // Opening itself from a call: a new instance, which works.
    let (r, _, res, _) = call(&w, a, OPEN_SELF, 0);
    assert_eq!((r, res), (Ok(()), 0));
    // A panic kills one instance only.
    assert_eq!(call(&w, a, PANIC, 0).0, Err(TeeError::TARGET_DEAD));
    assert_eq!(count(&w, b), 3);
    close(&w, a);
    close(&w, b);
    assert_eq!(w.session_count(), 0);
}
