//! A scatter list: where a buffer's bytes are in physical memory, in
//! buffer order. Plain data; a buffer's exporter owns it for the buffer's
//! life and devices get copies ([`crate::dma_buf::Attachment::map`]).

use serde::Serialize;
use teeheap_platform::PhysRange;

/// A scatter list: the physical ranges of a buffer, in buffer order. The
/// common single-range case is kept inline (no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgTable(Ranges);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ranges {
    One(PhysRange),
    Many(Vec<PhysRange>),
}

impl Default for SgTable {
    fn default() -> Self {
        SgTable::empty()
    }
}

impl Serialize for SgTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.ranges().serialize(s)
    }
}

impl SgTable {
    /// An empty scatter list.
    pub const fn empty() -> SgTable {
        SgTable(Ranges::Many(Vec::new()))
    }

    /// A scatter list of `ranges`, in buffer order.
    pub fn new(mut ranges: Vec<PhysRange>) -> SgTable {
        if ranges.len() == 1 {
            return SgTable(Ranges::One(ranges.remove(0)));
        }
        SgTable(Ranges::Many(ranges))
    }

    /// The ranges.
    pub fn ranges(&self) -> &[PhysRange] {
        match &self.0 {
            Ranges::One(r) => std::slice::from_ref(r),
            Ranges::Many(v) => v,
        }
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.ranges().iter().map(PhysRange::len).sum()
    }

    /// Whether it holds no range.
    pub fn is_empty(&self) -> bool {
        self.ranges().is_empty()
    }

    /// Splits the buffer bytes `[offset, offset + len)` into physical
    /// pieces, or `None` if they leave the buffer.
    pub fn resolve(&self, mut offset: u64, len: u64) -> Option<Vec<PhysRange>> {
        let end = offset.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        let mut left = len;
        let mut out = Vec::new();
        for r in self.ranges() {
            if left == 0 {
                break;
            }
            if offset >= r.len() {
                offset -= r.len();
                continue;
            }
            let take = (r.len() - offset).min(left);
            out.push(r.subrange(offset, take)?);
            left -= take;
            offset = 0;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teeheap_platform::PhysAddr;

    fn range(start: u64, len: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), len).unwrap()
    }

    #[test]
    fn resolve_splits_across_ranges() {
        let sg = SgTable::new(vec![range(0x1000, 0x1000), range(0x8000, 0x2000)]);
        assert_eq!(sg.resolve(0xff0, 0x20).unwrap(), [range(0x1ff0, 0x10), range(0x8000, 0x10)]);
        assert_eq!(sg.resolve(0x1000, 0x2000).unwrap(), [range(0x8000, 0x2000)]);
        assert!(sg.resolve(0x2fff, 2).is_none());
        assert!(sg.resolve(u64::MAX, 2).is_none());
        assert_eq!(sg.resolve(5, 0).unwrap(), []);
    }
}
