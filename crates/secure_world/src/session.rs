//! Open sessions (id → TA instance) and the calls in flight that a
//! CANCEL can reach.
//!
//! A session is an `Arc<Mutex<…>>`: invocations on one session run one at a
//! time, different sessions in parallel. Closing removes the id first (new
//! calls fail at once), then waits for a call in progress, then tells the TA.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use teeheap_sync::Recover;

use crate::abi::Uuid;
use crate::ta::TrustedApp;

/// One open session.
pub(crate) struct Session {
    pub(crate) uuid: Uuid,
    pub(crate) client: crate::ta::ClientIdentity,
    pub(crate) ta: Box<dyn TrustedApp>,
    /// The TA panicked in this session: every later call is TARGET_DEAD.
    pub(crate) panicked: bool,
}

struct InFlight {
    session: u32,
    cancel_id: u32,
    flag: Arc<AtomicBool>,
}

/// Unregisters a call from the in-flight list when dropped.
pub(crate) struct CallGuard<'a> {
    table: &'a Sessions,
    flag: Arc<AtomicBool>,
}

impl CallGuard<'_> {
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.flag
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.table.inflight().retain(|c| !Arc::ptr_eq(&c.flag, &self.flag));
    }
}

#[derive(Default)]
pub(crate) struct Sessions {
    next_id: Mutex<u32>,
    open: Mutex<BTreeMap<u32, Arc<Mutex<Session>>>>,
    calls: Mutex<Vec<InFlight>>,
}

impl Sessions {
    fn inflight(&self) -> MutexGuard<'_, Vec<InFlight>> {
        self.calls.lock().recover()
    }

    fn open_map(&self) -> MutexGuard<'_, BTreeMap<u32, Arc<Mutex<Session>>>> {
        self.open.lock().recover()
    }

    /// Registers a call (an open on session 0, or an invoke) for CANCEL.
    pub(crate) fn begin_call(&self, session: u32, cancel_id: u32) -> CallGuard<'_> {
        let flag = Arc::new(AtomicBool::new(false));
        self.inflight().push(InFlight { session, cancel_id, flag: Arc::clone(&flag) });
        CallGuard { table: self, flag }
    }

    /// Flags every call in flight on `session` with `cancel_id`; returns how many.
    pub(crate) fn cancel(&self, session: u32, cancel_id: u32) -> usize {
        let calls = self.inflight();
        let hits = calls.iter().filter(|c| c.session == session && c.cancel_id == cancel_id);
        hits.map(|c| c.flag.store(true, Ordering::Relaxed)).count()
    }

    /// Adds an opened session and returns its id (never 0).
    pub(crate) fn insert(&self, session: Session) -> u32 {
        let mut next = self.next_id.lock().recover();
        let mut open = self.open_map();
        loop {
            *next = next.wrapping_add(1).max(1);
            if let std::collections::btree_map::Entry::Vacant(slot) = open.entry(*next) {
                slot.insert(Arc::new(Mutex::new(session)));
                return *next;
            }
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<Arc<Mutex<Session>>> {
        self.open_map().get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: u32) -> Option<Arc<Mutex<Session>>> {
        self.open_map().remove(&id)
    }

    pub(crate) fn count(&self) -> usize {
        self.open_map().len()
    }
}
