//! A panic while serving one call answers that call and nothing else: the
//! caller gets an errno (`EIO` for an intercepted call, a `bug` error reply
//! on the control socket), the panic is logged as a bug (a `bug` event in
//! `teeheap log` and a line on stderr), and the daemon keeps serving.
//!
//! What a panic can leave behind is a poisoned mutex: every lock in the
//! daemon, the kernel model, the secure world and the platform is taken
//! through `teeheap_sync::Recover`, which recovers the guard, so the next
//! call proceeds on the state as the panicking call left it. Unwinding
//! releases the guards and drops the objects the call had made, as on an
//! error return.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Shared;
use crate::report::{Event, EventKind};

/// The text of a panic payload (`panic!` with a message gives a `&str` or a
/// `String`).
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

impl Shared {
    /// Runs `f`, the serving of one call described by `what` for process
    /// `pid`. A panic in `f` is caught, logged as a bug and returned as
    /// `Err(())`; the caller answers with its errno.
    pub(crate) fn serve_one<T>(
        &self,
        what: impl FnOnce() -> String,
        pid: Option<i32>,
        f: impl FnOnce() -> T,
    ) -> Result<T, ()> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(payload) => {
                let what = what();
                let msg = message(payload.as_ref());
                let text = format!("BUG: panic while serving {what}: {msg}; the call was answered with an error");
                tracing::error!(pid, "{text}");
                eprintln!("teeheap: {text} (the daemon keeps serving; please report this)");
                let e = Event { kind: EventKind::Bug, message: text, pid, ..Event::default() };
                self.events.push(e, self.kernel.platform(), self.host.world());
                Err(())
            }
        }
    }
}

/// Test-only ways to make the daemon panic, to prove a panic answers one
/// call. Compiled only with the `test-hooks` feature, which no release
/// build enables: a program cannot reach them otherwise.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    use teeheap_sync::Recover;
    use teeheap_uapi::ioc;

    /// An ioctl on a `/dev/dma_heap/*` node that panics the serving thread
    /// while it holds the daemon's locks (`_IO('H', 0xfe)`).
    pub const PANIC_IOCTL: u32 = ioc::io(b'H', 0xfe);

    /// An ioctl on any served node that panics the session thread itself,
    /// outside the per-call guard (`_IO('H', 0xfd)`): the session fails.
    pub const SESSION_PANIC_IOCTL: u32 = ioc::io(b'H', 0xfd);

    /// A `heap rm` of this name panics the connection's thread while it
    /// holds the daemon's locks.
    pub const PANIC_HEAP: &str = "teeheap-test-panic";

    impl crate::Shared {
        /// Panics while holding the daemon's own mutexes, so that they are
        /// poisoned for the calls that follow.
        pub(crate) fn panic_holding_locks(&self) -> ! {
            let _refusals = self.refusals.lock().recover();
            let _backend = self.backend.lock().recover();
            self.registry.panic_holding_locks()
        }
    }
}
