//! Secure threads: OP-TEE runs a std call on one of a fixed number of
//! threads (`CFG_NUM_THREADS`); when all are taken the call does not start
//! and the normal world is told so (`OPTEE_SMC_RETURN_ETHREAD_LIMIT`).
//!
//! A thread is held for the whole call, also while its TA waits (a TA's
//! wait is an RPC that suspends the thread, it does not free it).

use std::sync::Mutex;
use teeheap_sync::Recover;

/// The secure threads. See the module docs.
#[derive(Debug)]
pub(crate) struct Threads {
    /// Threads not running a call.
    free: Mutex<u32>,
    total: u32,
}

/// A thread taken for one call; given back on drop.
#[derive(Debug)]
pub(crate) struct Thread<'a> {
    threads: &'a Threads,
}

impl Threads {
    /// `n` threads, all free.
    pub(crate) fn new(n: u32) -> Threads {
        Threads { free: Mutex::new(n), total: n }
    }

    /// A free thread, or `None` if every one runs a call.
    pub(crate) fn take(&self) -> Option<Thread<'_>> {
        let mut free = self.free.lock().recover();
        *free = free.checked_sub(1)?;
        Some(Thread { threads: self })
    }

    /// `(busy, total)`.
    pub(crate) fn usage(&self) -> (u32, u32) {
        let free = *self.free.lock().recover();
        (self.total - free, self.total)
    }
}

impl Drop for Thread<'_> {
    fn drop(&mut self) {
        *self.threads.free.lock().recover() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_per_call_up_to_the_limit() {
        let t = Threads::new(2);
        let a = t.take().unwrap();
        let b = t.take().unwrap();
        assert!(t.take().is_none());
        assert_eq!(t.usage(), (2, 2));
        drop(a);
        let c = t.take();
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(t.usage(), (0, 2));
    }
}
