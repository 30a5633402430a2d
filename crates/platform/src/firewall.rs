//! The memory firewall: the single place that decides whether a bus master
//! may read or write a physical range.
//!
//! Memory outside every region is open to all masters. A region names the
//! masters that may read it and those that may write it; an access that
//! touches several regions needs the right in each of them. A refused access
//! is recorded in a bounded violation log. Regions are added and removed by
//! whoever owns the protection (the secure world); they never overlap.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;
use teeheap_sync::Recover;

use serde::Serialize;

use crate::addr::PhysRange;
use crate::master::{Master, MasterSet};

/// Default number of violations the log keeps (the oldest go first).
pub const DEFAULT_LOG_CAPACITY: usize = 1024;

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    /// Data flows from memory to the master.
    Read,
    /// Data flows from the master to memory.
    Write,
}

impl fmt::Display for AccessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
        })
    }
}

/// Which masters may read and which may write a region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Rights {
    /// Masters allowed to read.
    pub read: MasterSet,
    /// Masters allowed to write.
    pub write: MasterSet,
}

impl Rights {
    /// Whether `master` may perform `kind`.
    pub const fn allows(&self, master: Master, kind: AccessKind) -> bool {
        match kind {
            AccessKind::Read => self.read.contains(master),
            AccessKind::Write => self.write.contains(master),
        }
    }
}

/// Identifies a firewall region for later removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RegionId(u64);

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A protected region as reported by [`Firewall::regions`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Its identity.
    pub id: RegionId,
    /// The protected range.
    pub range: PhysRange,
    /// Who may do what.
    pub rights: Rights,
    /// A human-readable label (e.g. `carveout secure-video`).
    pub label: String,
}

/// A refused access, as kept in the violation log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Position in the log since boot (0 for the first violation).
    pub seq: u64,
    /// Who tried.
    pub master: Master,
    /// What it tried to touch.
    pub range: PhysRange,
    /// Read or write.
    pub kind: AccessKind,
    /// The label of the first region that refused it.
    pub region: String,
    /// When.
    pub time: SystemTime,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {} {} refused by {}", self.seq, self.master, self.kind, self.range, self.region)
    }
}

/// Errors of programming the firewall.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    /// The new region overlaps an existing one.
    #[error("region {new} overlaps firewall region {label} ({existing})")]
    Overlap {
        /// The requested range.
        new: PhysRange,
        /// The region in the way.
        existing: RegionId,
        /// Its label.
        label: String,
    },
    /// No region has this id (already removed?).
    #[error("no firewall region {0}")]
    NoSuchRegion(RegionId),
}

#[derive(Debug, Default)]
struct Table {
    /// Regions by start address; they never overlap.
    by_start: BTreeMap<u64, Region>,
    next_id: u64,
}

#[derive(Debug)]
struct Log {
    entries: VecDeque<Violation>,
    capacity: usize,
    total: u64,
}

/// The firewall. See the module documentation.
#[derive(Debug)]
pub struct Firewall {
    table: RwLock<Table>,
    log: Mutex<Log>,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall::with_log_capacity(DEFAULT_LOG_CAPACITY)
    }
}

impl Firewall {
    /// A firewall with no region (all memory open) whose log keeps the last
    /// `capacity` violations.
    pub fn with_log_capacity(capacity: usize) -> Firewall {
        Firewall {
            table: RwLock::new(Table::default()),
            log: Mutex::new(Log { entries: VecDeque::with_capacity(capacity.min(4096)), capacity, total: 0 }),
        }
    }

    /// Protects `range`: from now on only the masters in `rights` may access it.
    ///
    /// # Errors
    /// [`FirewallError::Overlap`] if it overlaps an existing region; nothing
    /// changes then.
    pub fn add_region(
        &self,
        range: PhysRange,
        rights: Rights,
        label: impl Into<String>,
    ) -> Result<RegionId, FirewallError> {
        let mut t = self.table.write().recover();
        if let Some(existing) = overlapping(&t.by_start, range).next() {
            return Err(FirewallError::Overlap { new: range, existing: existing.id, label: existing.label.clone() });
        }
        let id = RegionId(t.next_id);
        t.next_id += 1;
        let label = label.into();
        tracing::debug!(%range, read = %rights.read, write = %rights.write, %label, "firewall: region added");
        t.by_start.insert(range.start().raw(), Region { id, range, rights, label });
        Ok(id)
    }

    /// Changes the rights of region `id`.
    ///
    /// # Errors
    /// [`FirewallError::NoSuchRegion`] if there is no such region.
    pub fn set_rights(&self, id: RegionId, rights: Rights) -> Result<(), FirewallError> {
        let mut t = self.table.write().recover();
        let region = t.by_start.values_mut().find(|r| r.id == id).ok_or(FirewallError::NoSuchRegion(id))?;
        region.rights = rights;
        Ok(())
    }

    /// Removes region `id`; its memory becomes open to every master. The
    /// caller must have scrubbed it first if it held secrets.
    ///
    /// # Errors
    /// [`FirewallError::NoSuchRegion`] if there is no such region.
    pub fn remove_region(&self, id: RegionId) -> Result<Region, FirewallError> {
        let mut t = self.table.write().recover();
        let start = t.by_start.values().find(|r| r.id == id).map(|r| r.range.start().raw());
        let region = start.and_then(|s| t.by_start.remove(&s)).ok_or(FirewallError::NoSuchRegion(id))?;
        tracing::debug!(range = %region.range, label = %region.label, "firewall: region removed");
        Ok(region)
    }

    /// All regions, by address.
    pub fn regions(&self) -> Vec<Region> {
        let t = self.table.read().recover();
        t.by_start.values().cloned().collect()
    }

    /// The region containing `range` entirely, if any.
    pub fn region_containing(&self, range: PhysRange) -> Option<Region> {
        let t = self.table.read().recover();
        overlapping(&t.by_start, range).find(|r| r.range.contains_range(&range)).cloned()
    }

    /// Decides whether `master` may perform `kind` on `range`. A refusal is
    /// recorded in the violation log and returned.
    ///
    /// # Errors
    /// The [`Violation`] if any region the range touches refuses the access.
    pub fn check(&self, master: Master, range: PhysRange, kind: AccessKind) -> Result<(), Violation> {
        let refused_by = {
            let t = self.table.read().recover();
            overlapping(&t.by_start, range).find(|r| !r.rights.allows(master, kind)).map(|r| r.label.clone())
        };
        match refused_by {
            None => Ok(()),
            Some(region) => Err(self.record(master, range, kind, region)),
        }
    }

    /// Refuses an access for a reason other than a region's rights (an
    /// injected fault): logged as a violation by `why`, and returned.
    pub fn refuse(&self, master: Master, range: PhysRange, kind: AccessKind, why: String) -> Violation {
        self.record(master, range, kind, why)
    }

    fn record(&self, master: Master, range: PhysRange, kind: AccessKind, region: String) -> Violation {
        let mut log = self.log.lock().recover();
        let v = Violation { seq: log.total, master, range, kind, region, time: SystemTime::now() };
        log.total += 1;
        if log.capacity > 0 {
            if log.entries.len() == log.capacity {
                log.entries.pop_front();
            }
            log.entries.push_back(v.clone());
        }
        tracing::info!(violation = %v, "firewall: access refused");
        v
    }

    /// The violations still in the log, oldest first.
    pub fn violations(&self) -> Vec<Violation> {
        let log = self.log.lock().recover();
        log.entries.iter().cloned().collect()
    }

    /// How many violations happened since boot (including those that fell
    /// out of the log).
    pub fn violation_count(&self) -> u64 {
        self.log.lock().recover().total
    }
}

/// Regions of `map` that overlap `range`, from the highest start down.
fn overlapping(map: &BTreeMap<u64, Region>, range: PhysRange) -> impl Iterator<Item = &Region> {
    map.range(..range.end().raw()).rev().map(|(_, r)| r).take_while(move |r| r.range.end() > range.start())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;

    fn range(start: u64, len: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), len).unwrap()
    }

    fn secure_video() -> Rights {
        Rights {
            read: MasterSet::of(&[Master::SecureCpu, Master::VideoDecoder, Master::Display]),
            write: MasterSet::of(&[Master::SecureCpu, Master::VideoDecoder]),
        }
    }

    #[test]
    fn open_memory_is_open_to_all() {
        let fw = Firewall::default();
        for m in Master::ALL {
            assert!(fw.check(m, range(0x1000, 10), AccessKind::Write).is_ok());
        }
        assert_eq!(fw.violation_count(), 0);
    }

    #[test]
    fn table_of_accesses() {
        let fw = Firewall::default();
        fw.add_region(range(0x10_000, 0x10_000), secure_video(), "carveout").unwrap();
        // (master, start, len, kind, allowed)
        let cases = [
            (Master::NsCpu, 0x10_000, 1, AccessKind::Read, false),
            (Master::NsCpu, 0x1f_fff, 1, AccessKind::Write, false),
            (Master::NsCpu, 0x0f_fff, 2, AccessKind::Read, false), // straddles the start
            (Master::NsCpu, 0x0f_fff, 1, AccessKind::Read, true),
            (Master::NsCpu, 0x20_000, 1, AccessKind::Read, true),
            (Master::Display, 0x18_000, 0x1000, AccessKind::Read, true),
            (Master::Display, 0x18_000, 0x1000, AccessKind::Write, false),
            (Master::VideoDecoder, 0x10_000, 0x10_000, AccessKind::Write, true),
            (Master::Camera, 0x10_000, 1, AccessKind::Write, false),
            (Master::SecureCpu, 0x0_0000, 0x100_000, AccessKind::Read, true),
        ];
        let mut refused = 0;
        for (m, s, l, k, ok) in cases {
            assert_eq!(fw.check(m, range(s, l), k).is_ok(), ok, "{m} {k} {s:#x}+{l:#x}");
            refused += u64::from(!ok);
        }
        assert_eq!(fw.violation_count(), refused);
        let log = fw.violations();
        assert_eq!(log[0].master, Master::NsCpu);
        assert_eq!(log[0].range, range(0x10_000, 1));
        assert_eq!(log[0].kind, AccessKind::Read);
        assert_eq!(log[0].region, "carveout");
    }

    #[test]
    fn access_spanning_two_regions_needs_both() {
        let fw = Firewall::default();
        let only_display = Rights { read: MasterSet::of(&[Master::Display]), write: MasterSet::EMPTY };
        fw.add_region(range(0x1000, 0x1000), secure_video(), "a").unwrap();
        fw.add_region(range(0x2000, 0x1000), only_display, "b").unwrap();
        assert!(fw.check(Master::Display, range(0x1800, 0x1000), AccessKind::Read).is_ok());
        let v = fw.check(Master::VideoDecoder, range(0x1800, 0x1000), AccessKind::Read).unwrap_err();
        assert_eq!(v.region, "b");
    }

    #[test]
    fn overlap_rejected_and_removal_opens() {
        let fw = Firewall::default();
        let id = fw.add_region(range(0x1000, 0x2000), secure_video(), "a").unwrap();
        assert!(matches!(fw.add_region(range(0x2fff, 1), Rights::default(), "b"), Err(FirewallError::Overlap { .. })));
        fw.add_region(range(0x3000, 1), Rights::default(), "c").unwrap();
        assert_eq!(fw.regions().len(), 2);
        assert!(fw.check(Master::NsCpu, range(0x1000, 1), AccessKind::Read).is_err());
        fw.remove_region(id).unwrap();
        assert!(fw.check(Master::NsCpu, range(0x1000, 1), AccessKind::Read).is_ok());
        assert_eq!(fw.remove_region(id), Err(FirewallError::NoSuchRegion(id)));
    }

    #[test]
    fn log_is_bounded() {
        let fw = Firewall::with_log_capacity(3);
        fw.add_region(range(0x1000, 0x1000), Rights::default(), "x").unwrap();
        for i in 0..5 {
            assert!(fw.check(Master::NsCpu, range(0x1000 + i, 1), AccessKind::Read).is_err());
        }
        let log = fw.violations();
        assert_eq!(log.len(), 3);
        assert_eq!(log.iter().map(|v| v.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(fw.violation_count(), 5);
    }
}
