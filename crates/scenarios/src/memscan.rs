//! A search of all normal memory for byte patterns (a PIN that must never
//! leave the secure world).
//!
//! Bytes are read as [`Master::SecureCpu`] through the firewall, which may
//! read everything, in 1 MiB chunks that overlap by the longest pattern so a
//! match across a chunk boundary is found. DRAM is a sparse file: pages
//! nobody ever wrote (or that were scrubbed by punching them out) are holes
//! that read as zeroes, so only the extents that hold data are read — found
//! by the platform (`Ram::data_extents`), which says where data is without
//! reading or committing any page; the scan never touches the DRAM file
//! itself. A host that cannot tell falls back to reading everything.

use serde::Serialize;
use teeheap_platform::{Master, PhysAddr, Platform};

/// Bytes read per access.
const CHUNK: u64 = 1 << 20;

/// What a scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryScan {
    /// Bytes of normal memory the platform has.
    pub normal_bytes: u64,
    /// Bytes that held data and were read.
    pub bytes_read: u64,
    /// Occurrences of any pattern.
    pub matches: u64,
}

/// Counts occurrences of each of `patterns` in all normal memory of
/// `platform` (DRAM outside the carveouts).
pub fn scan_normal_memory(platform: &Platform, patterns: &[Vec<u8>]) -> MemoryScan {
    let longest = patterns.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let mut scan = MemoryScan::default();
    let mut buf = Vec::new();
    for r in platform.normal_memory() {
        scan.normal_bytes += r.len();
        for ext in platform.ram().data_extents(r) {
            let mut off = 0;
            while off < ext.len() {
                let n = (CHUNK + longest.saturating_sub(1)).min(ext.len() - off);
                buf.resize(n as usize, 0);
                let at = PhysAddr(ext.start().raw() + off);
                if platform.read(Master::SecureCpu, at, &mut buf).is_err() {
                    // Not readable even by the secure CPU: not normal memory.
                    off += CHUNK;
                    continue;
                }
                scan.bytes_read += CHUNK.min(ext.len() - off);
                if buf.iter().any(|&b| b != 0) {
                    for p in patterns.iter().filter(|p| !p.is_empty()) {
                        scan.matches += buf.windows(p.len()).filter(|w| w == p).count() as u64;
                    }
                }
                off += CHUNK;
            }
        }
    }
    scan
}
