//! The normal world's door to the secure world: fast calls go straight
//! through; a std call that finds every secure thread busy
//! (`ThreadLimit`) waits in the call queue until another std call
//! returns, then tries again, as Linux's `optee_cq_wait_*` does. It never
//! fails for want of a thread.
//!
//! No lock is held during a call: the queue's mutex only guards the count
//! of completed calls that waiters compare against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use teeheap_sync::Recover;

use teeheap_optee_abi::{FastCall, Msg, SecureMonitor, Smc, SmcResult};

use crate::error::{Errno, Error, Result};

/// The SMC entry with its call queue. See the module docs.
#[derive(Debug)]
pub struct SmcPort {
    world: Arc<dyn SecureMonitor>,
    /// Std calls returned so far (the queue's wake-up generation).
    returned: Mutex<u64>,
    freed: Condvar,
    waits: AtomicU64,
}

impl SmcPort {
    /// The port of `world`.
    pub fn new(world: Arc<dyn SecureMonitor>) -> SmcPort {
        SmcPort { world, returned: Mutex::new(0), freed: Condvar::new(), waits: AtomicU64::new(0) }
    }

    /// A fast call (they need no thread).
    pub fn fast(&self, call: FastCall) -> SmcResult {
        self.world.smc(Smc::Fast(call))
    }

    /// A std call: runs `msg`, waiting in the call queue while every
    /// secure thread is busy. The outcome is in `msg.ret`.
    ///
    /// # Errors
    /// `EIO` if the secure world answers a std call with anything but
    /// done or thread-limit.
    pub fn std(&self, msg: &mut Msg) -> Result<()> {
        let mut queued = false;
        loop {
            let seen = *self.returned.lock().recover();
            let r = self.world.smc(Smc::Std(msg));
            if r == SmcResult::ThreadLimit {
                if !queued {
                    queued = true;
                    self.waits.fetch_add(1, Ordering::Relaxed);
                }
                // Wait for any std call to return after our attempt.
                let mut n = self.returned.lock().recover();
                while *n == seen {
                    n = self.freed.wait(n).recover();
                }
                continue;
            }
            *self.returned.lock().recover() += 1;
            self.freed.notify_all();
            return match r {
                SmcResult::Done => Ok(()),
                other => {
                    tracing::error!(?other, "unexpected answer to a std call");
                    Err(Error::new(Errno::EIO, "secure world gave an unexpected answer"))
                }
            };
        }
    }

    /// How many std calls had to wait for a secure thread since boot.
    pub fn queued_calls(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use teeheap_optee_abi::{MsgParam, ParamDir, Uuid};
    use teeheap_platform::{Platform, PlatformConfig};
    use teeheap_secure_world::{SecureConfig, SecureWorld};

    /// The trusted-UI TA (its INPUT waits for the secure input device).
    const TUI: Uuid = teeheap_secure_world::ta::trusted_ui::UUID;

    fn port(threads: u32) -> (Arc<SmcPort>, Arc<SecureWorld>) {
        let cfg = PlatformConfig::from_toml("name = \"q\"\ndram = { base = 0x4000_0000, size = \"16 MiB\" }").unwrap();
        let platform = Arc::new(Platform::new(cfg).unwrap());
        let world = Arc::new(SecureWorld::new(platform, SecureConfig { threads, ..SecureConfig::default() }).unwrap());
        (Arc::new(SmcPort::new(Arc::clone(&world) as Arc<dyn SecureMonitor>)), world)
    }

    fn open(p: &SmcPort) -> u32 {
        let mut msg = Msg::open_session(TUI, 0, Vec::new());
        p.std(&mut msg).unwrap();
        assert_eq!(msg.ret, 0);
        msg.session
    }

    fn input(session: u32, wait_ms: u64) -> Msg {
        Msg::invoke(session, 1, vec![MsgParam::Value { dir: ParamDir::InOut, a: wait_ms, b: 0, c: 0 }])
    }

    /// With one secure thread, a second call waits in the queue while the
    /// first runs, then runs: it does not fail.
    #[test]
    fn calls_past_the_threads_wait_then_run() {
        let (p, world) = port(1);
        let (s1, s2) = (open(&p), open(&p));
        let call = |s, wait| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let mut m = input(s, wait);
                p.std(&mut m).unwrap();
                m.ret
            })
        };
        let long = call(s1, 30_000);
        wait_until(|| world.thread_usage().0 == 1);
        let queued = call(s2, 0);
        wait_until(|| p.queued_calls() == 1);
        assert!(!queued.is_finished(), "ran while the only thread was busy");
        world.secure_input().type_and_enter("");
        assert_eq!(long.join().unwrap(), 0);
        assert_eq!(queued.join().unwrap(), 0);
        assert_eq!(world.thread_usage(), (0, 1));
    }

    fn wait_until(cond: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(20), "never reached");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// With two threads, two long calls are in the secure world at once.
    #[test]
    fn calls_within_the_threads_run_at_once() {
        let (p, world) = port(2);
        let (s1, s2) = (open(&p), open(&p));
        let calls: Vec<_> = [s1, s2]
            .into_iter()
            .map(|s| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || p.std(&mut input(s, 30_000)).unwrap())
            })
            .collect();
        wait_until(|| world.thread_usage().0 == 2);
        // End both waits: each INPUT takes events up to an Enter.
        world.secure_input().type_and_enter("");
        world.secure_input().type_and_enter("");
        calls.into_iter().for_each(|c| c.join().unwrap());
        assert_eq!(p.queued_calls(), 0);
    }
}
