//! GEM handles of one open DRM file (`drm_file.object_idr` and its PRIME
//! lookup table).
//!
//! A handle names a buffer object for the file that created or imported
//! it; the object is a dma-buf here (what PRIME exports and imports), so a
//! handle keeps its buffer alive until `GEM_CLOSE`, `DESTROY_DUMB` or the
//! file's release drops the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::dma_buf::{BufId, DmaBuf};
use crate::error::{Errno, Error, Result, einval};

/// A file's handles.
///
/// # Invariants
/// `by_buf` is the inverse of `objects`: each buffer has at most one handle
/// in a file (an import of a buffer the file holds returns its handle, as
/// `drm_gem_prime_fd_to_handle` finds it in the file's PRIME table).
/// Handles are never 0.
#[derive(Debug, Default)]
pub struct GemHandles {
    objects: BTreeMap<u32, Arc<DmaBuf>>,
    by_buf: HashMap<BufId, u32>,
}

impl GemHandles {
    /// The handle of `buf` in this file, made if it has none: the lowest
    /// free number from 1 (`idr_alloc(.., 1, 0)`).
    ///
    /// # Errors
    /// `ENOSPC` if every 32-bit handle is taken.
    pub fn get_or_insert(&mut self, buf: Arc<DmaBuf>) -> Result<u32> {
        if let Some(&h) = self.by_buf.get(&buf.id()) {
            return Ok(h);
        }
        let mut handle = 1u32;
        for &h in self.objects.keys() {
            if h != handle {
                break;
            }
            handle = handle.checked_add(1).ok_or(Error::new(Errno::ENOSPC, "no free GEM handle"))?;
        }
        self.by_buf.insert(buf.id(), handle);
        self.objects.insert(handle, buf);
        Ok(handle)
    }

    /// The object behind `handle`.
    ///
    /// # Errors
    /// `ENOENT` if the file has no such handle (`drm_gem_object_lookup`).
    pub fn get(&self, handle: u32) -> Result<Arc<DmaBuf>> {
        self.objects.get(&handle).cloned().ok_or(Error::new(Errno::ENOENT, "no such GEM handle"))
    }

    /// Releases `handle` (`drm_gem_handle_delete`).
    ///
    /// # Errors
    /// `EINVAL` if the file has no such handle.
    pub fn remove(&mut self, handle: u32) -> Result<Arc<DmaBuf>> {
        let buf = self.objects.remove(&handle).ok_or(einval("no such GEM handle"))?;
        self.by_buf.remove(&buf.id());
        Ok(buf)
    }

    /// Number of handles.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the file holds no handle.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma_heap::DmaHeapOps;
    use crate::dma_heap::system::SystemHeap;
    use teeheap_platform::{Len, Platform};

    fn heap() -> SystemHeap {
        let p = Arc::new(Platform::embedded_default().unwrap());
        SystemHeap::new(p, Arc::default())
    }

    #[test]
    fn lowest_free_handle_and_one_handle_per_buffer() {
        let h = heap();
        let page = Len::page_align(1).unwrap();
        let (a, b, c) =
            (h.allocate(page, 0, 0).unwrap(), h.allocate(page, 0, 0).unwrap(), h.allocate(page, 0, 0).unwrap());
        let mut t = GemHandles::default();
        assert_eq!(t.get_or_insert(Arc::clone(&a)).unwrap(), 1);
        assert_eq!(t.get_or_insert(Arc::clone(&b)).unwrap(), 2);
        assert_eq!(t.get_or_insert(Arc::clone(&a)).unwrap(), 1, "same buffer, same handle");
        assert_eq!(t.remove(1).unwrap().id(), a.id());
        assert_eq!(t.remove(1).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(t.get(1).unwrap_err().errno(), Errno::ENOENT);
        assert_eq!(t.get_or_insert(Arc::clone(&c)).unwrap(), 1, "the freed number is reused");
        assert_eq!(t.get_or_insert(a).unwrap(), 3);
        assert_eq!(t.get(2).unwrap().id(), b.id());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_handle_keeps_its_buffer_alive() {
        let h = heap();
        let buf = h.allocate(Len::page_align(1).unwrap(), 0, 0).unwrap();
        let weak = Arc::downgrade(&buf);
        let mut t = GemHandles::default();
        let handle = t.get_or_insert(buf).unwrap();
        assert!(weak.upgrade().is_some());
        drop(t.remove(handle).unwrap());
        assert!(weak.upgrade().is_none());
        assert!(t.is_empty());
    }
}
