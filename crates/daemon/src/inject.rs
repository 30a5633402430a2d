//! The daemon's fault injector (docs/fault-injection.md): holds the armed
//! [`Spec`]s, answers the layers' fault points
//! ([`teeheap_platform::fault::Injector`]) and makes timed events happen
//! (backend unbind and rebind, heap removal, secure-world panic).
//!
//! Specs given at start (`run --inject`, `[[inject]]`) are armed when the
//! first program starts; a spec sent by `teeheap inject` is armed at once.
//! From then on each spec counts the events that match it, from 1; a
//! `prob=` spec draws from its own generator, seeded from the run's seed
//! and the spec's position, so two runs with the same seed and the same
//! program inject at the same points. Every fault that fires is logged as
//! an `injected` event naming its spec.
//!
//! Locks: the spec table is locked only to decide; actions (unbind, heap
//! removal, panic) and delays run after it is released. A fault point is
//! asked with no lock of the kernel model held (see
//! [`teeheap_platform::fault::Point`]), and the log is written without
//! reading the firewall's or the secure world's state
//! ([`EventLog::record`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use teeheap_platform::fault::spec::{AllocAction, BackendEvent, Spec, TaAction, TaPoint, Trigger, When};
use teeheap_platform::fault::{Fault, Point};

use teeheap_sync::Recover;

use crate::Shared;
use crate::events::EventLog;
use crate::protocol::{BackendAction, Reply};
use crate::report::{Event, EventKind};

/// Most specs one daemon holds; more are refused.
pub const MAX_SPECS: usize = 64;

/// A spec and its counters.
#[derive(Debug)]
struct Armed {
    spec: Spec,
    /// When it was armed; `None` until the first program starts.
    since: Option<Instant>,
    /// Protected allocations seen before it was armed (for
    /// `after-allocs`).
    allocs_base: u64,
    /// Events that matched it so far.
    seen: u64,
    /// A timed spec that already happened.
    done: bool,
    rng: fastrand::Rng,
}

#[derive(Debug, Default)]
struct State {
    armed: Vec<Armed>,
    /// Allocations on protected heaps since start.
    allocs: u64,
}

/// A timed event due now.
#[derive(Debug)]
struct Due {
    spec: Spec,
    why: String,
}

/// The injector. See the module documentation.
#[derive(Debug)]
pub struct Injector {
    seed: u64,
    state: Mutex<State>,
    wake: Condvar,
    events: Arc<EventLog>,
    shared: OnceLock<Weak<Shared>>,
}

/// The seed of the spec at `index` of a run seeded with `seed`.
fn spec_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Whether the `n`-th event (from 1) fires `trigger`.
fn fires(trigger: Trigger, n: u64, rng: &mut fastrand::Rng) -> bool {
    match trigger {
        Trigger::Nth(k) => n == k,
        Trigger::Every(k) => n % k == 0,
        Trigger::Prob(ppb) => rng.u32(0..1_000_000_000) < ppb,
    }
}

fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn uuid_text(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Injector {
    /// An injector holding `specs` (armed when the first program starts),
    /// logging into `events`; `seed` seeds the `prob=` specs (a random one
    /// when `None`, logged so that the run can be repeated).
    ///
    /// # Errors
    /// A message if there are more than [`MAX_SPECS`] specs.
    pub fn new(specs: &[Spec], seed: Option<u64>, events: Arc<EventLog>) -> Result<Injector, String> {
        if specs.len() > MAX_SPECS {
            return Err(format!("{} fault specs; at most {MAX_SPECS}", specs.len()));
        }
        let seed = seed.unwrap_or_else(|| fastrand::u64(..));
        let armed = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| Armed {
                spec: spec.clone(),
                since: None,
                allocs_base: 0,
                seen: 0,
                done: false,
                rng: fastrand::Rng::with_seed(spec_seed(seed, i)),
            })
            .collect();
        Ok(Injector {
            seed,
            state: Mutex::new(State { armed, allocs: 0 }),
            wake: Condvar::new(),
            events,
            shared: OnceLock::new(),
        })
    }

    /// The daemon whose backend and heaps timed specs act on.
    pub(crate) fn attach(&self, shared: Weak<Shared>) {
        let _ = self.shared.set(shared);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    /// The seed of this run's `prob=` specs.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The specs, in order, as text.
    pub fn specs(&self) -> Vec<String> {
        self.lock().armed.iter().map(|a| a.spec.to_string()).collect()
    }

    /// Arms the specs given at start (once: when the first program starts).
    pub(crate) fn program_started(&self) {
        let mut s = self.lock();
        let (now, allocs) = (Instant::now(), s.allocs);
        let mut armed = Vec::new();
        for a in s.armed.iter_mut().filter(|a| a.since.is_none()) {
            a.since = Some(now);
            a.allocs_base = allocs;
            armed.push(a.spec.to_string());
        }
        drop(s);
        if !armed.is_empty() {
            self.wake.notify_all();
            let msg = format!("faults armed (seed {}): {}", self.seed, armed.join(", "));
            tracing::info!("{msg}");
            self.log(Event { kind: EventKind::Inject, message: msg, ..Event::default() });
        }
    }

    /// Adds `spec`, armed at once (`teeheap inject`).
    ///
    /// # Errors
    /// A message past [`MAX_SPECS`].
    pub fn add(&self, spec: Spec) -> Result<String, String> {
        let mut s = self.lock();
        if s.armed.len() >= MAX_SPECS {
            return Err(format!("this daemon holds {MAX_SPECS} fault specs already"));
        }
        let index = s.armed.len();
        let allocs = s.allocs;
        s.armed.push(Armed {
            spec: spec.clone(),
            since: Some(Instant::now()),
            allocs_base: allocs,
            seen: 0,
            done: false,
            rng: fastrand::Rng::with_seed(spec_seed(self.seed, index)),
        });
        drop(s);
        self.wake.notify_all();
        let msg = format!("fault armed (seed {}): {spec}", self.seed);
        self.log(Event { kind: EventKind::Inject, message: msg.clone(), ..Event::default() });
        Ok(msg)
    }

    fn log(&self, e: Event) {
        self.events.record(e);
    }

    fn fired(&self, spec: &Spec, what: String) {
        let message = format!("{spec}: {what}");
        tracing::info!("injected: {message}");
        self.log(Event { kind: EventKind::Injected, message, spec: Some(spec.to_string()), ..Event::default() });
    }

    /// Decides at a counted point: the first armed spec `matches` selects
    /// whose trigger fires (every matching spec counts the event).
    fn decide<T>(&self, mut matches: impl FnMut(&Spec) -> Option<T>) -> Option<(Spec, u64, T)> {
        let mut s = self.lock();
        let mut hit = None;
        for a in s.armed.iter_mut().filter(|a| a.since.is_some()) {
            let Some(t) = matches(&a.spec) else { continue };
            let trigger = match a.spec {
                Spec::Alloc { trigger, .. } | Spec::Ta { trigger, .. } | Spec::Firewall { trigger, .. } => trigger,
                _ => continue,
            };
            a.seen += 1;
            if fires(trigger, a.seen, &mut a.rng) && hit.is_none() {
                hit = Some((a.spec.clone(), a.seen, t));
            }
        }
        hit
    }

    /// Timed specs of kind `after-allocs` due before this allocation.
    fn due_after_allocs(&self, protected: bool) -> Vec<Due> {
        let mut s = self.lock();
        if protected {
            s.allocs += 1;
        }
        let allocs = s.allocs;
        let mut due = Vec::new();
        for a in s.armed.iter_mut().filter(|a| a.since.is_some() && !a.done) {
            let Some(When::AfterAllocs(n)) = timed_when(&a.spec) else { continue };
            // This allocation is the (allocs - base)-th since arming.
            if protected && allocs - a.allocs_base > n {
                a.done = true;
                due.push(Due { spec: a.spec.clone(), why: format!("after {n} protected allocations") });
            }
        }
        due
    }

    /// Timed specs of kind `after=` due now, and how long until the next.
    fn due_by_time(&self, now: Instant) -> (Vec<Due>, Option<Duration>) {
        let mut s = self.lock();
        let (mut due, mut next) = (Vec::new(), None::<Duration>);
        for a in s.armed.iter_mut().filter(|a| !a.done) {
            let (Some(since), Some(When::After(d))) = (a.since, timed_when(&a.spec)) else { continue };
            let at = since + d;
            if at <= now {
                a.done = true;
                due.push(Due { spec: a.spec.clone(), why: format!("{} ms after arming", d.as_millis()) });
            } else {
                let left = at - now;
                next = Some(next.map_or(left, |n| n.min(left)));
            }
        }
        (due, next)
    }

    /// Makes the timed events of `due` happen on `shared`, logging each.
    fn act(&self, shared: &Shared, due: Vec<Due>) {
        for Due { spec, why } in due {
            let outcome = match &spec {
                Spec::Backend { event: BackendEvent::Unbind, .. } => {
                    reply_text(shared.backend_action(BackendAction::Unbind))
                }
                Spec::Backend { event: BackendEvent::Rebind, .. } => {
                    let unbound = reply_text(shared.backend_action(BackendAction::Unbind));
                    format!("{unbound}; {}", reply_text(shared.backend_action(BackendAction::Bind)))
                }
                Spec::HeapRm { heap, .. } => reply_text(shared.heap_rm(heap)),
                Spec::SecureWorldPanic { .. } => {
                    // The devices go first, so that every call from now on
                    // is answered by the kernel (origin COMMS), as after a
                    // backend's death; then the world stops answering.
                    let unbound = reply_text(shared.backend_action(BackendAction::Unbind));
                    shared.host.world().panic();
                    format!("the secure world panicked; {unbound}")
                }
                Spec::SupplicantGone { .. } => cut_supplicant(shared),
                _ => continue,
            };
            self.fired(&spec, format!("{why}: {outcome}"));
        }
    }

    /// One turn of the timer thread: waits (at most `max`) for the next
    /// timed event, then makes the due ones happen.
    pub(crate) fn tick(&self, shared: &Shared, max: Duration) {
        let (due, next) = self.due_by_time(Instant::now());
        if !due.is_empty() {
            self.act(shared, due);
            return;
        }
        let wait = next.map_or(max, |n| n.min(max));
        let s = self.lock();
        let _ = self.wake.wait_timeout(s, wait);
    }

    /// Wakes the timer thread (at shutdown).
    pub(crate) fn wake(&self) {
        self.wake.notify_all();
    }
}

/// Cuts off the bound backend's supplicant queue (the privileged node's
/// driver); says what it did.
fn cut_supplicant(shared: &Shared) -> String {
    let queue = shared.kernel.tee().list().into_iter().filter(|d| d.is_privileged()).find_map(|d| {
        let driver = d.driver().ok().flatten()?;
        driver.supplicant().map(|s| (d.name().to_owned(), s.cut()))
    });
    match queue {
        Some((node, n)) => format!(
            "tee-supplicant is gone ({node}): {n} pending request{} failed with TEEC_ERROR_COMMUNICATION",
            if n == 1 { "" } else { "s" }
        ),
        None => "no backend with a supplicant is bound; nothing to cut".to_owned(),
    }
}

/// The `when` of a timed spec.
fn timed_when(spec: &Spec) -> Option<When> {
    match spec {
        Spec::Backend { when, .. }
        | Spec::HeapRm { when, .. }
        | Spec::SecureWorldPanic { when }
        | Spec::SupplicantGone { when } => Some(*when),
        _ => None,
    }
}

fn reply_text(r: Reply) -> String {
    match r {
        Reply::Done { message } => message,
        Reply::Error { message, .. } => format!("refused: {message}"),
        other => format!("{other:?}"),
    }
}

impl teeheap_platform::fault::Injector for Injector {
    fn at(&self, point: &Point<'_>) -> Option<Fault> {
        match *point {
            Point::Alloc { heap } => {
                let due = self.due_after_allocs(heap != "system");
                if !due.is_empty()
                    && let Some(shared) = self.shared.get().and_then(Weak::upgrade)
                {
                    self.act(&shared, due);
                }
                let (spec, n, action) = self.decide(|s| match s {
                    Spec::Alloc { heap: h, action, .. } if h.as_deref().is_none_or(|h| h == heap) => Some(*action),
                    _ => None,
                })?;
                Some(match action {
                    AllocAction::Enomem => {
                        self.fired(&spec, format!("the {} allocation on {heap} fails with ENOMEM", ordinal(n)));
                        Fault::Fail
                    }
                    AllocAction::Delay(d) => {
                        self.fired(&spec, format!("the {} allocation on {heap} waits {d:?}", ordinal(n)));
                        Fault::Delay(d)
                    }
                })
            }
            Point::TaOpen { uuid } | Point::TaInvoke { uuid, .. } => {
                let cmd = match point {
                    Point::TaInvoke { cmd, .. } => Some(*cmd),
                    _ => None,
                };
                let (spec, n, action) = self.decide(|s| match s {
                    Spec::Ta { uuid: u, point: p, action, .. } if u == uuid => match (p, cmd) {
                        (TaPoint::Open, None) => Some(*action),
                        (TaPoint::Cmd(c), Some(cmd)) if *c == cmd => Some(*action),
                        _ => None,
                    },
                    _ => None,
                })?;
                let call = match cmd {
                    Some(c) => format!("the {} invocation of command {c}", ordinal(n)),
                    None => format!("the {} session opened", ordinal(n)),
                };
                let ta = uuid_text(uuid);
                Some(match action {
                    TaAction::Panic => {
                        self.fired(&spec, format!("TA {ta} panics at {call} (TARGET_DEAD)"));
                        Fault::Panic
                    }
                    TaAction::Busy => {
                        self.fired(&spec, format!("TA {ta} is busy at {call} (BUSY)"));
                        Fault::Busy
                    }
                    TaAction::Delay(d) => {
                        self.fired(&spec, format!("TA {ta} takes {d:?} longer at {call}"));
                        Fault::Delay(d)
                    }
                })
            }
            Point::Access { master } => {
                let (spec, n, ()) = self.decide(|s| match s {
                    Spec::Firewall { master: m, .. } if *m == master => Some(()),
                    _ => None,
                })?;
                self.fired(&spec, format!("the {} access by {master} is refused", ordinal(n)));
                Some(Fault::Fail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(specs: &[&str], seed: u64) -> Injector {
        let specs: Vec<Spec> = specs.iter().map(|s| s.parse().unwrap()).collect();
        Injector::new(&specs, Some(seed), Arc::default()).unwrap()
    }

    fn allocs(inj: &Injector, heap: &str, n: usize) -> Vec<bool> {
        use teeheap_platform::fault::Injector as _;
        (0..n).map(|_| inj.at(&Point::Alloc { heap }).is_some()).collect()
    }

    #[test]
    fn nothing_fires_before_arming_then_counts_from_one() {
        let inj = injector(&["alloc:system:nth=2:ENOMEM", "alloc:*:every=3:ENOMEM"], 1);
        assert_eq!(allocs(&inj, "system", 3), [false; 3]);
        inj.program_started();
        assert_eq!(allocs(&inj, "system", 7), [false, true, true, false, false, true, false]);
        let log = inj.events.since(0);
        let fired: Vec<_> = log.events.iter().filter(|e| e.kind == "injected").collect();
        assert_eq!(fired.len(), 3);
        assert_eq!(fired[0].spec.as_deref(), Some("alloc:system:nth=2:ENOMEM"));
        assert!(fired[0].message.contains("2nd allocation on system"), "{}", fired[0].message);
    }

    #[test]
    fn the_same_seed_fires_at_the_same_points() {
        let run = |seed| {
            let inj = injector(&["alloc:*:prob=0.3:ENOMEM", "firewall:display:fault:prob=0.5"], seed);
            inj.program_started();
            let mut v = allocs(&inj, "protected,secure-video", 200);
            use teeheap_platform::fault::Injector as _;
            v.extend((0..50).map(|_| inj.at(&Point::Access { master: teeheap_platform::Master::Display }).is_some()));
            v
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let hits = a[..200].iter().filter(|h| **h).count();
        assert!((30..90).contains(&hits), "{hits} of 200 at p=0.3");
    }

    #[test]
    fn after_allocs_is_due_before_the_next_protected_allocation() {
        let inj = injector(&["backend:unbind:after-allocs=2"], 1);
        inj.program_started();
        assert!(inj.due_after_allocs(true).is_empty());
        assert!(inj.due_after_allocs(false).is_empty(), "the system heap does not count");
        assert!(inj.due_after_allocs(true).is_empty());
        assert_eq!(inj.due_after_allocs(true).len(), 1);
        assert!(inj.due_after_allocs(true).is_empty(), "once");
    }

    #[test]
    fn the_number_of_specs_is_bounded() {
        let spec: Spec = "alloc:system:ENOMEM".parse().unwrap();
        assert!(Injector::new(&vec![spec.clone(); MAX_SPECS + 1], None, Arc::default()).is_err());
        let inj = Injector::new(&vec![spec.clone(); MAX_SPECS], None, Arc::default()).unwrap();
        assert!(inj.add(spec).is_err());
    }
}
