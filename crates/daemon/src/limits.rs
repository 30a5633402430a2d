//! Per-client accounting and caps (`[limits]` of the platform description).
//!
//! A process is charged, in full, for every dma-buf it holds: by an fd, by
//! a mapping, or by a TEE shared-memory fd registering it
//! (`SHM_REGISTER_FD`). A buffer held by several processes is charged to
//! each of them (as RSS counts shared pages); a broker that allocates a
//! buffer and passes it on is charged until it closes its own fd, and the
//! receiver from the moment it holds it. References the daemon or the
//! model hold (attachments) charge nobody. At `DMA_HEAP_IOCTL_ALLOC` the
//! caller's charge plus the new buffer is compared with the caps; over a
//! cap the call fails with `ENOMEM`, as a memcg limit would.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use teeheap_intercept::memfd::FileId;
use teeheap_platform::LimitsConfig;

use crate::holders::Hold;
use crate::report::{Cap, Caps, Usage};
use crate::served::Registry;

/// The name charged for a buffer of no heap.
pub const NO_HEAP: &str = "-";

impl From<teeheap_platform::Limit> for Cap {
    fn from(l: teeheap_platform::Limit) -> Cap {
        Cap { bytes: l.bytes.map(|b| b.0), buffers: l.buffers }
    }
}

/// The caps in force, from the platform description.
pub fn caps(cfg: &LimitsConfig) -> Caps {
    Caps { process: cfg.process.map(Cap::from), heap: cfg.heap.iter().map(|(k, v)| (k.clone(), (*v).into())).collect() }
}

/// What a process's holds amount to: buffer ids and bytes per heap.
#[derive(Clone, Debug, Default)]
pub struct Charge {
    /// Buffer ids and size, by heap.
    pub by_heap: BTreeMap<String, BTreeMap<u64, u64>>,
}

impl Charge {
    /// Charges `holds` (as found by [`crate::holders`]) against `registry`.
    pub fn of(holds: &HashMap<FileId, Hold>, registry: &Registry) -> Charge {
        let mut c = Charge::default();
        for id in holds.keys() {
            let Some(charge) = registry.file(id).and_then(|f| f.charge()) else { continue };
            let heap = charge.heap.unwrap_or(NO_HEAP).to_owned();
            c.by_heap.entry(heap).or_default().insert(charge.buf, charge.bytes);
        }
        c
    }

    /// Usage in `heap`.
    pub fn heap(&self, heap: &str) -> Usage {
        self.by_heap
            .get(heap)
            .map_or_else(Usage::default, |b| Usage { buffers: b.len() as u64, bytes: b.values().sum() })
    }

    /// Usage over all heaps.
    pub fn total(&self) -> Usage {
        let ids: BTreeSet<u64> = self.by_heap.values().flat_map(|b| b.keys().copied()).collect();
        Usage { buffers: ids.len() as u64, bytes: self.by_heap.values().flat_map(|b| b.values()).sum() }
    }
}

fn over(cap: &Cap, used: Usage, len: u64) -> Option<String> {
    if let Some(max) = cap.buffers
        && used.buffers + 1 > max
    {
        return Some(format!("{} buffers held, cap {max}", used.buffers));
    }
    if let Some(max) = cap.bytes
        && used.bytes + len > max
    {
        return Some(format!("{} + {len} bytes over the cap of {max}", used.bytes));
    }
    None
}

/// Why an allocation of `len` bytes from `heap` by a process charged
/// `charge` is over a cap, or `None` if it is within every cap.
pub fn check(caps: &Caps, heap: &str, len: u64, charge: &Charge) -> Option<String> {
    if let Some(cap) = caps.heap.get(heap)
        && let Some(why) = over(cap, charge.heap(heap), len)
    {
        return Some(format!("{heap}: {why}"));
    }
    if let Some(cap) = &caps.process
        && let Some(why) = over(cap, charge.total(), len)
    {
        return Some(format!("all heaps: {why}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(v: &[(&str, u64, u64)]) -> Charge {
        let mut c = Charge::default();
        for (h, id, size) in v {
            c.by_heap.entry((*h).to_owned()).or_default().insert(*id, *size);
        }
        c
    }

    #[test]
    fn caps_per_heap_and_per_process() {
        let caps = Caps {
            process: Some(Cap { bytes: Some(1 << 20), buffers: None }),
            heap: [("v".to_owned(), Cap { bytes: None, buffers: Some(2) })].into(),
        };
        let none = charge(&[]);
        assert_eq!(check(&caps, "v", 4096, &none), None);
        let two = charge(&[("v", 1, 4096), ("v", 2, 4096)]);
        assert!(check(&caps, "v", 4096, &two).unwrap().starts_with("v: 2 buffers"));
        assert_eq!(check(&caps, "system", 4096, &two), None, "another heap has no buffer cap");
        assert!(check(&caps, "system", 1 << 20, &two).unwrap().starts_with("all heaps"));
        assert_eq!(check(&caps, "system", (1 << 20) - 8192, &two), None, "exactly at the cap");
        assert_eq!(check(&Caps::default(), "v", u64::MAX / 2, &two), None);
    }
}
