//! A buffer's reservation object (the kernel's `dma_resv`): the fences of
//! the work pending on it, each with what the work does to the buffer.
//!
//! A [`Resv`] is plain data kept under its buffer's lock. Adding a fence
//! replaces a signalled one or an older one of the same timeline, as
//! `dma_resv_add_fence` does, so it holds the pending fences plus at most
//! one signalled one: adding fences over and over does not grow it.

use std::sync::Arc;

use crate::dma_fence::Fence;

/// How the work behind a fence uses the buffer (`enum dma_resv_usage`), in
/// the kernel's order: a query for a usage includes every lower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    /// Memory management by the kernel (moves, clears).
    Kernel,
    /// The work writes the buffer (implicit-sync writers).
    Write,
    /// The work reads the buffer.
    Read,
    /// Bookkeeping only, never waited for implicitly.
    Bookkeep,
}

impl Usage {
    /// `dma_resv_usage_rw`: the fences to wait for before writing (`write`:
    /// every reader and writer, [`Usage::Read`]) or before reading (only the
    /// writers, [`Usage::Write`]).
    pub fn for_access(write: bool) -> Usage {
        if write { Usage::Read } else { Usage::Write }
    }
}

/// A reservation object. See the module documentation.
#[derive(Debug, Default)]
pub struct Resv {
    fences: Vec<(Arc<Fence>, Usage)>,
}

impl Resv {
    /// `dma_resv_add_fence`: adds `fence` with `usage`, in place of a
    /// signalled fence or an older fence of its timeline with a usage at
    /// least as wide.
    pub fn add_fence(&mut self, fence: Arc<Fence>, usage: Usage) {
        let replaces = |(old, old_usage): &(Arc<Fence>, Usage)| {
            (old.context() == fence.context() && *old_usage >= usage && fence.seqno() >= old.seqno())
                || old.is_signalled()
        };
        match self.fences.iter().position(replaces) {
            Some(i) => self.fences[i] = (fence, usage),
            None => self.fences.push((fence, usage)),
        }
    }

    /// The fences to wait for at `usage` (each with a usage up to it), in
    /// the order they were added — what `dma_resv_get_singleton` combines.
    pub fn fences(&self, usage: Usage) -> Vec<Arc<Fence>> {
        self.fences.iter().filter(|(_, u)| *u <= usage).map(|(f, _)| Arc::clone(f)).collect()
    }

    /// How many fences it holds.
    pub fn len(&self) -> usize {
        self.fences.len()
    }

    /// Whether it holds no fence.
    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_filters_and_replacement_bounds_the_list() {
        let mut r = Resv::default();
        let w = Fence::new("t", "w");
        let rd = Fence::new("t", "r");
        r.add_fence(Arc::clone(&w), Usage::Write);
        r.add_fence(Arc::clone(&rd), Usage::Read);
        assert_eq!(r.fences(Usage::for_access(false)).len(), 1, "readers wait for writers only");
        assert_eq!(r.fences(Usage::for_access(true)).len(), 2, "writers wait for everyone");
        assert_eq!(r.fences(Usage::Kernel).len(), 0);
        // The same fence again replaces itself.
        r.add_fence(Arc::clone(&w), Usage::Write);
        assert_eq!(r.len(), 2);
        // Signalled fences make room: any number of adds stays bounded.
        w.signal();
        rd.signal();
        for _ in 0..1000 {
            r.add_fence(Fence::stub(), Usage::Write);
        }
        assert!(r.len() <= 2, "{}", r.len());
        let pending = Fence::new("t", "p");
        r.add_fence(Arc::clone(&pending), Usage::Read);
        assert!(r.fences(Usage::Read).iter().any(|f| Arc::ptr_eq(f, &pending)));
    }
}
