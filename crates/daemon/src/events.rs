//! The daemon's log: lifecycle events (bind, unbind, heap removal and
//! re-adding, chunks lent and reclaimed, allocations refused by a cap) and
//! the platform firewall's violations, in one bounded sequence, newest last.
//!
//! Violations are copied from the firewall's own log whenever the log is
//! read or written and on the reaper's tick; chunks lent are seen by
//! comparing the secure world's lent objects at those moments, chunks
//! reclaimed by the secure world's scrub hook as they happen. A chunk lent
//! and reclaimed between two looks is logged at its reclaim, lend first.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use teeheap_sync::Recover;

use teeheap_platform::Platform;
use teeheap_secure_world::SecureWorld;

use crate::report::{Event, EventKind, Log, Range};

/// Entries kept; older ones are dropped (and counted).
pub const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Event>,
    next_seq: u64,
    dropped: u64,
    /// Firewall violations copied so far (their `seq + 1`).
    firewall_seen: u64,
    /// Cookies of lent chunks logged as lent and not yet reclaimed.
    lent: BTreeSet<u64>,
    /// Cookies reclaimed (cookies are never reused within a process).
    reclaimed: BTreeSet<u64>,
}

/// The log. See the module documentation.
#[derive(Debug, Default)]
pub struct EventLog {
    state: Mutex<State>,
}

fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl State {
    fn push(&mut self, mut e: Event) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if e.time_ms == 0 {
            e.time_ms = now_ms(SystemTime::now());
        }
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(e);
    }

    fn lend(&mut self, cookie: u64, use_case: String, range: Range) {
        if self.reclaimed.contains(&cookie) || !self.lent.insert(cookie) {
            return;
        }
        self.push(Event {
            kind: EventKind::Lend,
            message: format!("region #{cookie} of {} KiB lent to the secure world for {use_case}", range.len >> 10),
            range: Some(range),
            use_case: Some(use_case),
            ..Event::default()
        });
    }
}

impl EventLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    /// Appends an event (its `seq` and, if 0, `time_ms` are filled in),
    /// after catching up with the firewall and the secure world.
    pub fn push(&self, e: Event, platform: &Platform, world: &SecureWorld) {
        self.catch_up(platform, world);
        self.lock().push(e);
    }

    /// Appends an event without catching up first: for callers that may
    /// hold the firewall's or the secure world's locks (fault points).
    pub fn record(&self, e: Event) {
        self.lock().push(e);
    }

    /// Copies new firewall violations and newly lent chunks into the log.
    /// Takes the secure world's and firewall's locks before the log's, never
    /// inside it.
    pub fn catch_up(&self, platform: &Platform, world: &SecureWorld) {
        let violations = platform.firewall().violations();
        let lent = world.lent_objects();
        let mut s = self.lock();
        for v in violations {
            if v.seq < s.firewall_seen {
                continue;
            }
            s.firewall_seen = v.seq + 1;
            s.push(Event {
                time_ms: now_ms(v.time),
                kind: EventKind::Violation,
                message: v.to_string(),
                range: Some(v.range.into()),
                master: Some(v.master.name().to_owned()),
                access: Some(v.kind.to_string()),
                region: Some(v.region.clone()),
                ..Event::default()
            });
        }
        for o in lent {
            s.lend(o.cookie, o.use_case.name().to_owned(), o.range.into());
        }
    }

    /// Called by the secure world's scrub hook: chunk `cookie` was scrubbed
    /// and is being unprotected.
    pub fn reclaimed(&self, cookie: u64, use_case: &str, range: Range) {
        let mut s = self.lock();
        s.lend(cookie, use_case.to_owned(), range);
        s.lent.remove(&cookie);
        s.reclaimed.insert(cookie);
        if s.reclaimed.len() > CAPACITY {
            s.reclaimed.pop_first();
        }
        s.push(Event {
            kind: EventKind::Reclaim,
            message: format!("lent region #{cookie} of {} KiB scrubbed and reclaimed from {use_case}", range.len >> 10),
            range: Some(range),
            use_case: Some(use_case.to_owned()),
            ..Event::default()
        });
    }

    /// The entries with a sequence number above `after`.
    pub fn since(&self, after: u64) -> Log {
        let s = self.lock();
        Log { events: s.entries.iter().filter(|e| e.seq > after).cloned().collect(), dropped: s.dropped }
    }
}
