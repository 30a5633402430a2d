//! Host-built trusted applications (issue 13): the example C TA in
//! `examples/ta/sdp`, built with the README's line, runs the SDP flow
//! under `teeheap run` through the UAPI; a misbehaving TA (tests/tas)
//! panics, crashes, loops and probes its sandbox without harming other
//! sessions or the daemon; a cancellation reaches a looping TA.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_all_ok, build_ta, compile, repo, ta_world, teeheap_private, tmp};
use teeheap_secure_world::{Msg, MsgParam, Smc, TeeError, Uuid};

const EXAMPLE_UUID: &str = "7eaf5d5c-8d11-4d8e-9a3c-7b1e5a1d0c01";
const MISBEHAVE_UUID: &str = "3c0c2a51-7d5e-4b1a-8f0e-5a6b7c8d9e01";

/// Builds the misbehaving test TA into `tmp()/NAME` and runs `client ARG`
/// under `teeheap run` with it, on a small platform whose TA calls end
/// after 1 s.
fn run_with_misbehave_ta(name: &str, client: &Path, arg: &str) -> Output {
    let tadir = tmp().join(name);
    build_ta(&repo().join("crates/teeheap/tests/tas/misbehave"), &tadir, MISBEHAVE_UUID);
    let cfg = tmp().join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ndram = {{ base = 0x4000_0000, size = \"64 MiB\" }}\n[tee]\nta_call_timeout_ms = 1000\n"
        ),
    )
    .unwrap();
    teeheap_private(name)
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--ta-dir")
        .arg(&tadir)
        .arg("--")
        .arg(client)
        .arg(arg)
        .output()
        .unwrap()
}

#[test]
fn example_c_ta_runs_the_sdp_flow_through_the_uapi() {
    let tadir = tmp().join("ta-example");
    build_ta(&repo().join("examples/ta/sdp"), &tadir, EXAMPLE_UUID);
    let client = compile("ta_client.c", "ta_client_sdp", &["-lpthread"]);
    let out = teeheap_private("ta-sdp")
        .arg("run")
        .arg("--ta-dir")
        .arg(&tadir)
        .arg("--")
        .arg(&client)
        .arg("sdp")
        .output()
        .unwrap();
    assert_all_ok(
        &out,
        &[
            "open session with the example C TA",
            "inject, transform, dump directly",
            "inject, transform, dump TA to TA",
            "inject, transform, dump TA to pseudo-TA",
            "out-of-bounds secure memref refused, not by the TA",
            "out-of-bounds normal memref refused (TA to TA)",
            "TEE_CheckMemoryAccessRights: normal shm is non-secure",
            "TEE_CheckMemoryAccessRights: protected buffer is secure",
            "inject into normal memory: ACCESS_DENIED from the TA",
            "invoke_tests pseudo-TA refuses a normal-world client",
        ],
    );
}

/// The xtest 1014 sequence (tests/clients/sdp_1014.c) under `teeheap
/// run`: against the built-in sdp_basic TA and against the example C TA,
/// which answer alike.
#[test]
fn xtest_1014_sequence_passes_against_builtin_and_c_ta() {
    let tadir = tmp().join("ta-1014");
    build_ta(&repo().join("examples/ta/sdp"), &tadir, EXAMPLE_UUID);
    let client = compile("sdp_1014.c", "sdp_1014", &[]);
    let want = [
        "1014.1 NS client invokes the SDP TA",
        "1014.2 SDP TA invokes an SDP TA",
        "1014.3 SDP TA invokes the test pseudo-TA",
        "1014.4 out-of-bounds memref: last byte reaches the TA",
        "1014.4 out-of-bounds memref: overflows the buffer by 1 byte",
        "1014.4 out-of-bounds memref: overflows the buffer by more than 4 KiB",
        "1014.4 out-of-bounds memref: offset 1 byte past the size",
        "1014.4 out-of-bounds memref: offset 4 KiB past the size",
        "1014.4 out-of-bounds memref: offset + size overflows",
        "inject into a smaller secure memref: SHORT_BUFFER, no size written back",
        "inject into normal memory: ACCESS_DENIED from the TA",
        "unknown command: BAD_PARAMETERS from the TA",
        "inject from a NULL input: the TA faults (TARGET_DEAD) and stays dead",
        "another session of the TA carries on",
    ];
    for uuid in ["12345678-5b69-11e4-9dbb-101f74f00099", EXAMPLE_UUID] {
        let out = teeheap_private("ta-1014")
            .arg("run")
            .arg("--ta-dir")
            .arg(&tadir)
            .arg("--")
            .arg(&client)
            .arg(uuid)
            .output()
            .unwrap();
        assert_all_ok(&out, &want);
    }
}

#[test]
fn misbehaving_ta_dies_alone_and_stays_in_its_sandbox() {
    let client = compile("ta_client.c", "ta_client_misbehave", &["-lpthread"]);
    let out = run_with_misbehave_ta("ta-misbehave", &client, "misbehave");
    assert_all_ok(
        &out,
        &[
            "ping",
            "cannot open a host file",
            "cannot read the daemon's memory",
            "cannot open a socket",
            "TEE_Panic gives TARGET_DEAD",
            "a crash gives TARGET_DEAD",
            "a TA looping past the call timeout gives TARGET_DEAD",
            "TEE_InvokeTACommand refused by the TEE panics the TA",
            "the dead session stays dead",
            "another session carries on",
        ],
    );
}

/// TEEC_RequestCancellation (TEE_IOC_CANCEL from another thread) under
/// `teeheap run` reaches a host-built TA within 50 ms, in its loop on the
/// cancellation flag and in TEE_Wait; a loop that never looks is ended at
/// the call timeout.
#[test]
fn teec_request_cancellation_ends_a_looping_ta_through_the_uapi() {
    let client = compile("ta_cancel.c", "ta_cancel", &["-lpthread"]);
    let out = run_with_misbehave_ta("ta-cancel-uapi", &client, "1000");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert_all_ok(
        &out,
        &[
            "a TA looping on TEE_GetCancellationFlag: TEEC_ERROR_CANCEL, origin TRUSTED_APP",
            "a TA looping on TEE_GetCancellationFlag: cancelled within 50 ms",
            "a TA in TEE_Wait(TEE_TIMEOUT_INFINITE): TEEC_ERROR_CANCEL, origin TRUSTED_APP",
            "a TA in TEE_Wait(TEE_TIMEOUT_INFINITE): cancelled within 50 ms",
            "the cancelled session carries on",
            "a TA looping without looking: TARGET_DEAD, origin TEE, at the call timeout",
            "another session carries on",
        ],
    );
}

/// The misbehaving TA's LOOP_CANCELLABLE (3) and WAIT (8), cancelled by a
/// CANCEL message with the call's cancel id, in a secure world whose TA
/// process is the `teeheap` binary under test.
#[test]
fn cancel_reaches_a_looping_ta() {
    let tadir = tmp().join("ta-cancel");
    build_ta(&repo().join("crates/teeheap/tests/tas/misbehave"), &tadir, MISBEHAVE_UUID);
    let world = ta_world(tadir);
    let uuid = Uuid::from_fields(0x3c0c_2a51, 0x7d5e, 0x4b1a, [0x8f, 0x0e, 0x5a, 0x6b, 0x7c, 0x8d, 0x9e, 0x01]);
    let mut open = Msg::open_session(uuid, 0, vec![]);
    world.smc(Smc::Std(&mut open));
    assert!(open.result().is_ok(), "{open:?}");
    for (cmd, cancel_id) in [(3, 11), (8, 12)] {
        let w = Arc::clone(&world);
        let session = open.session;
        let t = std::thread::spawn(move || {
            let mut m = Msg::invoke(session, cmd, vec![MsgParam::value_inout(0, 0, 0)]);
            m.cancel_id = cancel_id;
            w.smc(Smc::Std(&mut m));
            m
        });
        std::thread::sleep(Duration::from_millis(300));
        let mut c = Msg::cancel(session, cancel_id);
        world.smc(Smc::Std(&mut c));
        let m = t.join().unwrap();
        assert_eq!(m.result(), Err(TeeError::CANCEL), "command {cmd}");
    }
    let mut ping = Msg::invoke(open.session, 0, vec![MsgParam::value_inout(1, 0, 0)]);
    world.smc(Smc::Std(&mut ping));
    assert!(ping.result().is_ok());
    assert_eq!(ping.params[0].values(), Some((2, 0, 0)));
    let mut close = Msg::close_session(open.session);
    world.smc(Smc::Std(&mut close));
    assert!(close.result().is_ok());
}
