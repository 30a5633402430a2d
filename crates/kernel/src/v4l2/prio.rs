//! V4L2 access priorities (`v4l2_prio_state`): one [`PrioState`] per
//! device node counts how many open files hold each priority; each open
//! file holds a [`FilePrio`] (`INTERACTIVE` from the start), which gives
//! its count back when the file is released.
//!
//! A file may make changes (`S_FMT`, `REQBUFS`, `STREAMON`, `S_CTRL`, ...)
//! only while no other file holds a higher priority: `EBUSY` otherwise, as
//! `v4l2_prio_check`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Errno, Error, Result, einval};

/// `V4L2_PRIORITY_BACKGROUND`.
pub const BACKGROUND: u32 = 1;
/// `V4L2_PRIORITY_INTERACTIVE`, the default.
pub const INTERACTIVE: u32 = 2;
/// `V4L2_PRIORITY_RECORD`.
pub const RECORD: u32 = 3;

/// The priorities of one device node's open files.
#[derive(Debug, Default)]
pub struct PrioState {
    /// Files holding priority `i` (`BACKGROUND..=RECORD`; 0 unused).
    counts: [AtomicU32; 4],
}

impl PrioState {
    /// The highest priority an open file holds (`v4l2_prio_max`), or
    /// `V4L2_PRIORITY_UNSET` (0) when none does.
    pub fn max(&self) -> u32 {
        (BACKGROUND..=RECORD).rev().find(|p| self.counts[*p as usize].load(Ordering::SeqCst) > 0).unwrap_or(0)
    }
}

/// One open file's priority.
///
/// # Invariants
/// `local` is one of `BACKGROUND..=RECORD` and counted once in `state`.
#[derive(Debug)]
pub struct FilePrio {
    state: Arc<PrioState>,
    local: AtomicU32,
}

impl FilePrio {
    /// A newly opened file: `INTERACTIVE` (`v4l2_prio_open`).
    pub fn open(state: Arc<PrioState>) -> FilePrio {
        state.counts[INTERACTIVE as usize].fetch_add(1, Ordering::SeqCst);
        FilePrio { state, local: AtomicU32::new(INTERACTIVE) }
    }

    /// `VIDIOC_G_PRIORITY`: the device's highest priority.
    pub fn device_max(&self) -> u32 {
        self.state.max()
    }

    /// May this file make changes (`v4l2_prio_check`)?
    ///
    /// # Errors
    /// `EBUSY` while another file holds a higher priority.
    pub fn check(&self) -> Result<()> {
        if self.local.load(Ordering::SeqCst) < self.state.max() {
            return Err(Error::new(Errno::EBUSY, "another file has a higher priority"));
        }
        Ok(())
    }

    /// `VIDIOC_S_PRIORITY` after [`Self::check`] (`v4l2_prio_change`).
    ///
    /// # Errors
    /// `EINVAL` for a value other than `BACKGROUND`, `INTERACTIVE`, `RECORD`.
    pub fn change(&self, new: u32) -> Result<()> {
        if !(BACKGROUND..=RECORD).contains(&new) {
            return Err(einval("not a priority"));
        }
        let old = self.local.swap(new, Ordering::SeqCst);
        if old != new {
            self.state.counts[new as usize].fetch_add(1, Ordering::SeqCst);
            self.state.counts[old as usize].fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Drop for FilePrio {
    fn drop(&mut self) {
        self.state.counts[*self.local.get_mut() as usize].fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let s = Arc::new(PrioState::default());
        let a = FilePrio::open(Arc::clone(&s));
        let b = FilePrio::open(Arc::clone(&s));
        assert_eq!(s.max(), INTERACTIVE);
        a.change(RECORD).unwrap();
        assert_eq!(b.device_max(), RECORD);
        assert_eq!(b.check().unwrap_err().errno(), Errno::EBUSY);
        a.check().unwrap();
        assert_eq!(a.change(0).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(a.change(4).unwrap_err().errno(), Errno::EINVAL);
        drop(a);
        assert_eq!(s.max(), INTERACTIVE);
        b.check().unwrap();
        drop(b);
        assert_eq!(s.max(), 0);
    }
}
