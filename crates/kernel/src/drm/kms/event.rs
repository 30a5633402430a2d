//! The events of one open DRM file (`drm_file.event_list`): what `read(2)`
//! of the card fd returns and what makes it poll readable.
//!
//! An event is reserved against the file's 4 KiB of event space when a
//! flip asks for it (`drm_event_reserve_init`: `ENOMEM` without room) and
//! queued when the flip is done; reading gives the space back.

use std::collections::VecDeque;
use std::sync::Mutex;

use teeheap_sync::Recover;
use teeheap_uapi::drm::{DRM_EVENT_FLIP_COMPLETE, DrmEvent, DrmEventVblank};
use zerocopy::IntoBytes;

use crate::error::{Errno, Error, Result};

/// Event space of a new file (`drm_file.event_space`).
pub const EVENT_SPACE: usize = 4096;

/// Bytes of one flip-complete event.
pub const VBLANK_EVENT_LEN: usize = size_of::<DrmEventVblank>();

#[derive(Default)]
struct Queue {
    events: VecDeque<DrmEventVblank>,
    reserved: usize,
    wakers: Vec<(u64, Box<dyn FnOnce() + Send>)>,
    next_waker: u64,
}

/// A file's event queue. See the module documentation.
#[derive(Default)]
pub struct EventQueue {
    q: Mutex<Queue>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.q.lock().recover();
        f.debug_struct("EventQueue").field("queued", &q.events.len()).field("reserved", &q.reserved).finish()
    }
}

/// Room for one event, taken from a file's event space; given back if the
/// event is never sent.
#[derive(Debug)]
pub struct Reservation {
    _private: (),
}

impl EventQueue {
    /// Reserves room for one flip event.
    ///
    /// # Errors
    /// `ENOMEM` when the file's event space is used up (unread events).
    pub fn reserve(&self) -> Result<Reservation> {
        let mut q = self.q.lock().recover();
        if q.reserved + VBLANK_EVENT_LEN > EVENT_SPACE {
            return Err(Error::new(Errno::ENOMEM, "no event space left: read the pending events"));
        }
        q.reserved += VBLANK_EVENT_LEN;
        Ok(Reservation { _private: () })
    }

    /// Gives back a reservation whose flip failed.
    pub fn cancel(&self, _r: Reservation) {
        self.q.lock().recover().reserved -= VBLANK_EVENT_LEN;
    }

    /// Queues a flip-complete event in the room `r` reserved and wakes the
    /// waiters.
    pub fn send(&self, _r: Reservation, user_data: u64, time_ns: u64, sequence: u32, crtc_id: u32) {
        let ev = DrmEventVblank {
            base: DrmEvent { type_: DRM_EVENT_FLIP_COMPLETE, length: VBLANK_EVENT_LEN as u32 },
            user_data,
            tv_sec: (time_ns / 1_000_000_000) as u32,
            tv_usec: ((time_ns % 1_000_000_000) / 1000) as u32,
            sequence,
            crtc_id,
        };
        let wakers = {
            let mut q = self.q.lock().recover();
            q.events.push_back(ev);
            std::mem::take(&mut q.wakers)
        };
        for (_, w) in wakers {
            w();
        }
    }

    /// `drm_read` without blocking: as many whole events as fit in
    /// `count` bytes; none fitting gives an empty read (0), as Linux.
    ///
    /// # Errors
    /// `EAGAIN` when no event is queued.
    pub fn read(&self, count: usize) -> Result<Vec<u8>> {
        let mut q = self.q.lock().recover();
        if q.events.is_empty() {
            return Err(Error::new(Errno::EAGAIN, "no event queued"));
        }
        let mut out = Vec::new();
        while let Some(ev) = q.events.front() {
            if out.len() + VBLANK_EVENT_LEN > count {
                break;
            }
            out.extend_from_slice(ev.as_bytes());
            q.events.pop_front();
            q.reserved -= VBLANK_EVENT_LEN;
        }
        Ok(out)
    }

    /// Whether an event is queued (`POLLIN`).
    pub fn readable(&self) -> bool {
        !self.q.lock().recover().events.is_empty()
    }

    /// Runs `wake` once an event is queued (now if one is). Returns the
    /// id to [`Self::forget`] it by if it was kept for later.
    pub fn on_ready(&self, wake: Box<dyn FnOnce() + Send>) -> Option<u64> {
        let mut q = self.q.lock().recover();
        if q.events.is_empty() {
            let id = q.next_waker;
            q.next_waker += 1;
            q.wakers.push((id, wake));
            return Some(id);
        }
        drop(q);
        wake();
        None
    }

    /// Takes back the waiting `wake` that [`Self::on_ready`] kept as `id`
    /// (a waiter that is gone holds nothing here).
    pub fn forget(&self, id: u64) {
        self.q.lock().recover().wakers.retain(|(w, _)| *w != id);
    }

    /// Wakers waiting for an event.
    pub fn waiting(&self) -> usize {
        self.q.lock().recover().wakers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn space_reads_and_wakeups() {
        let q = EventQueue::default();
        assert_eq!(q.read(1024).unwrap_err().errno(), Errno::EAGAIN);
        let woke = Arc::new(AtomicBool::new(false));
        let w = Arc::clone(&woke);
        assert!(q.on_ready(Box::new(move || w.store(true, Ordering::SeqCst))).is_some());
        let gone = q.on_ready(Box::new(|| panic!("a forgotten waker never runs"))).unwrap();
        q.forget(gone);
        assert_eq!(q.waiting(), 1);
        let mut rs: Vec<Reservation> = (0..EVENT_SPACE / VBLANK_EVENT_LEN).map(|_| q.reserve().unwrap()).collect();
        assert_eq!(q.reserve().unwrap_err().errno(), Errno::ENOMEM);
        q.cancel(rs.pop().unwrap());
        let r = q.reserve().unwrap();
        q.send(r, 7, 1_500_000_000, 3, 32);
        assert!(woke.load(Ordering::SeqCst) && q.readable());
        assert!(q.read(VBLANK_EVENT_LEN - 1).unwrap().is_empty(), "no room for a whole event");
        let bytes = q.read(1024).unwrap();
        assert_eq!(bytes.len(), VBLANK_EVENT_LEN);
        let ev = <DrmEventVblank as zerocopy::FromBytes>::read_from_bytes(&bytes).unwrap();
        assert_eq!((ev.base.type_, ev.user_data, ev.tv_sec, ev.tv_usec, ev.sequence), (2, 7, 1, 500_000, 3));
        assert!(!q.readable());
    }
}
