//! A search of all normal memory for byte patterns (a PIN that must never
//! leave the secure world).
//!
//! Bytes are read as [`Master::SecureCpu`] through the firewall, which may
//! read everything, in 1 MiB chunks that overlap by the longest pattern so a
//! match across a chunk boundary is found. DRAM is a sparse file: pages
//! nobody ever wrote (or that were scrubbed by punching them out) are holes
//! that read as zeroes, so only the extents that hold data are read — found
//! with `SEEK_DATA`/`SEEK_HOLE` on the DRAM's memfd, which says where data
//! is without reading or committing any page. A host without those falls
//! back to reading everything.

use serde::Serialize;
use teeheap_platform::{Master, PAGE_SIZE, PhysAddr, PhysRange, Platform};

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

/// The extents of `r` that hold data (page granular), or all of `r` if the
/// host cannot tell.
fn data_extents(platform: &Platform, r: PhysRange) -> Vec<PhysRange> {
    use rustix::fs::{SeekFrom, seek};
    let fd = platform.ram().memfd();
    let base = platform.dram().start();
    let Some(start) = r.start().checked_offset_from(base) else { return vec![r] };
    let end = start + r.len();
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let data = match seek(fd, SeekFrom::Data(at)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return vec![r],
        };
        if data >= end {
            break;
        }
        let hole = seek(fd, SeekFrom::Hole(data)).unwrap_or(end).min(end);
        if let Some(ext) = PhysRange::new(PhysAddr(base.raw() + data), hole - data) {
            out.push(ext);
        }
        at = hole.max(data + PAGE_SIZE);
    }
    out
}

/// Counts occurrences of each of `patterns` in all normal memory of
/// `platform` (DRAM outside the carveouts).
pub fn scan_normal_memory(platform: &Platform, patterns: &[Vec<u8>]) -> MemoryScan {
    let longest = patterns.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let mut scan = MemoryScan::default();
    let mut buf = Vec::new();
    for r in platform.normal_memory() {
        scan.normal_bytes += r.len();
        for ext in data_extents(platform, r) {
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
