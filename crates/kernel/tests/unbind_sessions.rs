//! Backend unbind while a client holds a TEE context, a session, a
//! registered protected buffer and a draining heap (teeheap's lifecycle;
//! upstream blocks driver removal until every context is closed).

mod tee_client;

use tee_client::{CMD_DUMP, CMD_INJECT, Client, MEM_IN, MEM_OUT, SDP_UUID, boot_with, memref};
use teeheap_kernel::Errno;
use teeheap_uapi::tee::gp::*;

#[test]
fn sessions_get_target_dead_and_nothing_leaks() {
    let (kernel, backend) = boot_with(|_| {});
    let world = backend.world().clone();
    let mut c = Client::new(&kernel);
    let ctx = c.open_tee("tee0");
    let session = c.session(ctx, SDP_UUID);
    let heap = c.open_heap("protected,trusted-ui");
    let buf = c.heap_alloc(heap, 8192).unwrap();
    let (reg, _) = c.register_fd(ctx, i64::from(buf)).unwrap();
    c.close(buf);
    let info = kernel.dma_bufs().snapshot();
    assert_eq!((info[0].heap, info[0].tee_registrations), (Some("protected,trusted-ui"), 1), "{info:?}");
    let (normal, _) = c.shm_alloc(ctx, 8192).unwrap();
    c.shm_write(normal, 0, &[7u8; 64]);
    let normal_id = c.shm(normal).id();
    let reg_id = c.shm(reg).id();
    let inject = [memref(MEM_IN, normal_id, 0, 64), memref(MEM_OUT, reg_id, 0, 64)];
    assert_eq!(c.call(ctx, session, CMD_INJECT, &inject).0, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP));
    assert_eq!(world.session_count(), 1);

    drop(backend);

    // The session is dead: invocations fail with TARGET_DEAD from the
    // communication layer, without reaching a TA.
    let dump = [memref(MEM_IN, reg_id, 0, 64), memref(MEM_OUT, normal_id, 0, 64)];
    assert_eq!(c.call(ctx, session, CMD_DUMP, &dump).0, (TEEC_ERROR_TARGET_DEAD, TEEC_ORIGIN_COMMS));
    let (open, _) = c.open_session(ctx, SDP_UUID, &[]).unwrap();
    assert_eq!((open.ret, open.ret_origin), (TEEC_ERROR_TARGET_DEAD, TEEC_ORIGIN_COMMS));
    // No allocation on the unbound heap; the node stays listed.
    assert_eq!(c.heap_alloc(heap, 4096).unwrap_err(), Errno::EINVAL);
    assert!(kernel.dma_heaps().open("protected,trusted-ui").is_ok());
    // Closing still works and releases everything.
    assert_eq!(c.close_session(ctx, session), Ok(0));
    assert_eq!(world.session_count(), 0, "closing after the unbind reaches the secure world");
    assert_eq!(c.close_session(ctx, session), Err(Errno::EINVAL));
    assert_eq!(kernel.dma_bufs().len(), 1, "the registration keeps the protected buffer");
    c.close(reg);
    c.close(normal);
    c.close(ctx);
    c.close(heap);
    assert!(kernel.dma_bufs().is_empty());
    // The lent chunk was reclaimed (scrubbed, unprotected) with its last buffer.
    let stats = world.stats();
    assert_eq!(stats.lent, stats.reclaimed, "{stats:?}");
    assert!(stats.lent >= 1);
    assert!(world.lent_objects().is_empty());
}

/// An invocation in flight when the backend goes: unbind does not wait for
/// it, the call completes normally, the next one gets TARGET_DEAD.
#[test]
fn in_flight_invocation_completes_and_unbind_does_not_wait() {
    use std::time::{Duration, Instant};
    use tee_client::value;
    use teeheap_uapi::tee::TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;

    const TRUSTED_UI: [u8; 16] = *teeheap_secure_world::ta::trusted_ui::UUID.as_bytes();
    const CMD_INPUT: u32 = 1;
    let (kernel, backend) = boot_with(|_| {});
    let world = backend.world().clone();
    let mut c = Client::new(&kernel);
    let ctx = c.open_tee("tee0");
    let session = c.session(ctx, TRUSTED_UI);
    let wait_ms = 5_000;
    let waiter = std::thread::spawn(move || {
        // INPUT blocks in the TA until a digit arrives on the secure input path.
        let started = Instant::now();
        let (out, params) =
            c.call(ctx, session, CMD_INPUT, &[value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, wait_ms, 0, 0)]);
        (out, params, started.elapsed(), c)
    });
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(backend);
    assert!(t.elapsed() < Duration::from_millis(1000), "unbind waited for the call: {:?}", t.elapsed());
    world.secure_input().type_and_enter("12");
    let (out, params, took, mut c) = waiter.join().unwrap();
    assert_eq!(out, (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP), "the call in flight completes");
    assert!(params[0].a >= 1, "the input reached the TA: {:?}", params[0]);
    assert!(took < Duration::from_millis(wait_ms), "it returned on input, not on timeout");
    let (again, _) = c.call(ctx, session, CMD_INPUT, &[value(TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 0, 0, 0)]);
    assert_eq!(again, (TEEC_ERROR_TARGET_DEAD, TEEC_ORIGIN_COMMS));
    assert_eq!(world.session_count(), 1);
    c.close(ctx);
    assert_eq!(world.session_count(), 0, "the context's release closed the session in the secure world");
}
