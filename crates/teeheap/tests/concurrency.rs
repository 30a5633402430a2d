//! Issue 12: a program's threads and processes are served at once under
//! `teeheap run` (tests/clients/conc_client.c).

mod common;

use common::{assert_all_ok, compile, teeheap};

#[test]
fn threads_are_served_while_one_sits_in_a_ta_call_and_cancel_ends_it() {
    let exe = compile("conc_client.c", "conc_client", &["-pthread"]);
    let out = teeheap().arg("run").arg("--").arg(&exe).output().expect("teeheap run");
    assert_all_ok(
        &out,
        &[
            "open session trusted_ui",
            "ALLOC while another thread is in a TA call",
            "TEE_IOC_VERSION on the same context meanwhile",
            "TEE_IOC_SHM_ALLOC on the same context meanwhile",
            "forked process's TEE_IOC_VERSION is not delayed",
            "forked process's ALLOC is not delayed",
            "TEE_IOC_CANCEL of the running call",
            "cancelled call ends with TEEC_ERROR_CANCEL",
            "cancelled call has origin TRUSTED_APP",
            "cancelled call ends within 50 ms",
            "cancel of a finished call",
            "cancel of a call never started",
            "a later call with a cancelled id runs normally",
        ],
    );
}
