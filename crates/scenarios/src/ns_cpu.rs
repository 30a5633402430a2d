//! Deliberate normal-world CPU accesses to protected buffers: what a
//! compromised kernel or a curious program would try. Each must be refused —
//! a physical read by the firewall (and recorded in its violation log), an
//! `mmap` of the dma-buf by the exporter (`EINVAL`).

use std::sync::Arc;

use serde::Serialize;
use teeheap_kernel::Errno;
use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_platform::{AccessError, AccessKind, Master, PAGE_SIZE, Platform};

/// The outcome of the attempts on a set of buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NsCpuAttempts {
    /// Physical reads tried as [`Master::NsCpu`] (one per sg entry of each
    /// buffer, at most a page each).
    pub reads: u64,
    /// Reads the firewall refused.
    pub reads_refused: u64,
    /// Refused reads found in the firewall's violation log (same master,
    /// range and kind).
    pub reads_logged: u64,
    /// `mmap` calls on the buffers' dma-bufs.
    pub mmaps: u64,
    /// `mmap` calls that failed with `EINVAL`.
    pub mmaps_refused: u64,
}

impl NsCpuAttempts {
    /// Every attempt, reads and mmaps.
    pub fn attempts(&self) -> u64 {
        self.reads + self.mmaps
    }

    /// Every refused attempt.
    pub fn refused(&self) -> u64 {
        self.reads_refused + self.mmaps_refused
    }

    /// Whether every attempt was refused and every refused read is in the
    /// violation log (and at least one attempt was made).
    pub fn all_refused_and_logged(&self) -> bool {
        self.attempts() > 0 && self.refused() == self.attempts() && self.reads_logged == self.reads
    }

    /// Sums two sets of attempts.
    pub fn merged(self, other: NsCpuAttempts) -> NsCpuAttempts {
        NsCpuAttempts {
            reads: self.reads + other.reads,
            reads_refused: self.reads_refused + other.reads_refused,
            reads_logged: self.reads_logged + other.reads_logged,
            mmaps: self.mmaps + other.mmaps,
            mmaps_refused: self.mmaps_refused + other.mmaps_refused,
        }
    }
}

/// Tries to read each of `bufs` as the normal-world CPU and to `mmap` it,
/// and checks the firewall's log for the refusals.
pub fn try_read(platform: &Arc<Platform>, bufs: &[&Arc<DmaBuf>]) -> NsCpuAttempts {
    let mut out = NsCpuAttempts::default();
    let first_seq = platform.firewall().violation_count();
    let mut refused_ranges = Vec::new();
    let mut page = vec![0u8; PAGE_SIZE as usize];
    for buf in bufs {
        for r in buf.sg_table().ranges() {
            let n = r.len().min(PAGE_SIZE) as usize;
            out.reads += 1;
            if let Err(AccessError::Denied(v)) = platform.read(Master::NsCpu, r.start(), &mut page[..n]) {
                out.reads_refused += 1;
                refused_ranges.push(v.range);
            }
        }
        out.mmaps += 1;
        if buf.mmap(platform).is_err_and(|e| e.errno() == Errno::EINVAL) {
            out.mmaps_refused += 1;
        }
    }
    let log = platform.firewall().violations();
    out.reads_logged = refused_ranges
        .iter()
        .filter(|r| {
            log.iter().any(|v| {
                v.seq >= first_seq && v.master == Master::NsCpu && v.kind == AccessKind::Read && v.range == **r
            })
        })
        .count() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_refused_needs_every_attempt_refused_and_every_read_logged() {
        let all = NsCpuAttempts { reads: 2, reads_refused: 2, reads_logged: 2, mmaps: 1, mmaps_refused: 1 };
        assert!(all.all_refused_and_logged());
        assert_eq!((all.attempts(), all.refused()), (3, 3));
        assert!(!NsCpuAttempts::default().all_refused_and_logged(), "no attempt proves nothing");
        assert!(!NsCpuAttempts { reads_logged: 1, ..all }.all_refused_and_logged());
        assert!(!NsCpuAttempts { mmaps_refused: 0, ..all }.all_refused_and_logged());
        assert_eq!(all.merged(all).reads_logged, 4);
    }
}
