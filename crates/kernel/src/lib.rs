//! teeheap's kernel model: the dma-buf, dma-heap and TEE cores, the
//! protected-memory pools and the heaps a TEE backend binds to them — the
//! same objects, rules and errno as Linux, with ownership in place of krefs.
//!
//! A [`Kernel`] boots on a [`Platform`] with the `system` heap; a backend
//! (see [`backend`]) then registers TEE devices and binds the protected
//! heaps to its pools. Every object lives exactly as long as its last `Arc`.
//!
//! ```
//! use std::sync::Arc;
//! use teeheap_kernel::{Kernel, backend::builtin::BuiltinBackend};
//! use teeheap_platform::Platform;
//!
//! let kernel = Kernel::boot(Arc::new(Platform::embedded_default().unwrap()));
//! let backend = BuiltinBackend::probe(&kernel).unwrap();
//! let heap = kernel.dma_heaps().open("protected,secure-video").unwrap();
//! let buf = heap.allocate(1 << 20, 0, 0).unwrap();
//! assert!(buf.is_protected());
//! backend.remove(); // the backend goes away: no new allocations ...
//! assert!(heap.allocate(4096, 0, 0).is_err());
//! drop(buf); // ... and the pool is destroyed with the last buffer.
//! ```

#![forbid(unsafe_code)]

pub mod backend;
pub mod cred;
pub mod device_node;
pub mod dma_buf;
pub mod dma_fence;
pub mod dma_heap;
pub mod drm;
pub mod error;
pub mod file;
pub mod lifecycle;
pub mod mm;
pub mod pool;
pub mod scatterlist;
pub mod sync_file;
pub mod tee;
pub mod uaccess;
pub mod v4l2;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use teeheap_sync::Recover;

pub use error::{Errno, Error, Result};
use teeheap_platform::{PhysRange, Platform, UseCase};

use crate::dma_buf::BufId;
use crate::dma_buf::DmaBufList;
use crate::dma_heap::system::{SYSTEM_HEAP_NAME, SystemHeap};
use crate::dma_heap::{DmaHeapRegistry, HeapRegistration};
use crate::mm::NormalMemory;
use crate::pool::ProtMemPool;
use crate::pool::carveout::CarveoutSpace;
use crate::tee::heap::{TeeDmaHeap, TeeHeapOps};
use crate::tee::{TeeDevice, TeeRegistry};

/// The kernel model on one platform. See the crate documentation.
#[derive(Debug)]
pub struct Kernel {
    platform: Arc<Platform>,
    dma_heaps: DmaHeapRegistry,
    dma_bufs: Arc<DmaBufList>,
    system: Arc<SystemHeap>,
    normal: Arc<NormalMemory>,
    tee: TeeRegistry,
    tee_heaps: Mutex<BTreeMap<UseCase, Arc<TeeDmaHeap>>>,
    /// The registrations of the heaps the kernel added (system, TEE heaps):
    /// dropping one removes its node.
    heap_regs: Mutex<BTreeMap<String, HeapRegistration>>,
    removed_heaps: Mutex<BTreeMap<String, dma_heap::RemovedHeap>>,
    carveouts: Mutex<Vec<Weak<CarveoutSpace>>>,
    drm_cards: BTreeMap<&'static str, Arc<dyn drm::DrmDriver>>,
    /// Each V4L2 node's priorities, shared by its open files.
    v4l2_prio: BTreeMap<&'static str, Arc<v4l2::prio::PrioState>>,
}

impl Kernel {
    /// Boots the model on `platform` with the `system` heap registered.
    pub fn boot(platform: Arc<Platform>) -> Arc<Kernel> {
        let dma_bufs = Arc::new(DmaBufList::default());
        let normal = Arc::new(NormalMemory::new(Arc::clone(&platform)));
        let system = Arc::new(SystemHeap::over(Arc::clone(&normal), Arc::clone(&dma_bufs)));
        let dma_heaps = DmaHeapRegistry::with_faults(Arc::clone(platform.faults()));
        let system_reg = dma_heaps
            .register(SYSTEM_HEAP_NAME, Arc::clone(&system) as Arc<dyn dma_heap::DmaHeapOps>)
            .expect("the first heap of an empty registry is accepted");
        let mut drm_cards: BTreeMap<&'static str, Arc<dyn drm::DrmDriver>> = BTreeMap::new();
        drm_cards.insert("dri/card0", drm::vkms::Vkms::new(Arc::clone(&platform), Arc::clone(&system)));
        drm_cards.insert("dri/card1", drm::vgem::Vgem::new(Arc::clone(&system)));
        Arc::new(Kernel {
            platform,
            dma_heaps,
            dma_bufs,
            drm_cards,
            v4l2_prio: v4l2::NODES.iter().map(|(p, _)| (*p, Arc::default())).collect(),
            system,
            normal,
            tee: TeeRegistry::default(),
            tee_heaps: Mutex::new(BTreeMap::new()),
            heap_regs: Mutex::new(BTreeMap::from([(SYSTEM_HEAP_NAME.to_owned(), system_reg)])),
            removed_heaps: Mutex::new(BTreeMap::new()),
            carveouts: Mutex::new(Vec::new()),
        })
    }

    /// The platform.
    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    /// The heaps under `/dev/dma_heap`.
    pub fn dma_heaps(&self) -> &DmaHeapRegistry {
        &self.dma_heaps
    }

    /// Every live dma-buf.
    pub fn dma_bufs(&self) -> &Arc<DmaBufList> {
        &self.dma_bufs
    }

    /// The system heap.
    pub fn system_heap(&self) -> &Arc<SystemHeap> {
        &self.system
    }

    /// Normal memory: the page allocator the system heap, TEE shared
    /// memory, dynamic pools and the backend share.
    pub fn normal_memory(&self) -> &Arc<NormalMemory> {
        &self.normal
    }

    /// The TEE devices.
    pub fn tee(&self) -> &TeeRegistry {
        &self.tee
    }

    /// The pages of the static carveout `range`, shared by every pool a
    /// backend binds over it, across generations: a pool of a new
    /// generation allocates only around what older ones still hold. The
    /// space lives as long as its last pool.
    ///
    /// # Errors
    /// `EINVAL` if `range` is not page aligned; `EBUSY` if it overlaps a
    /// live carveout space without being the same range.
    pub fn carveout_space(&self, name: &str, range: PhysRange) -> Result<Arc<CarveoutSpace>> {
        let mut spaces = self.carveouts.lock().recover();
        spaces.retain(|w| w.strong_count() > 0);
        for space in spaces.iter().filter_map(Weak::upgrade) {
            if space.range() == range {
                return Ok(space);
            }
            if space.range().overlaps(&range) {
                return Err(Error::new(Errno::EBUSY, "carveout overlaps a live carveout"));
            }
        }
        let space = CarveoutSpace::new(name, range)?;
        spaces.push(Arc::downgrade(&space));
        Ok(space)
    }

    /// Two live buffers sharing physical memory, if any (see
    /// [`dma_buf::overlapping_buffers`]); `None` is the invariant.
    pub fn overlapping_buffers(&self) -> Option<(BufId, BufId)> {
        dma_buf::overlapping_buffers(&self.dma_bufs.snapshot())
    }

    /// The protected heap of `use_case`, once some backend registered it.
    pub fn tee_heap(&self, use_case: UseCase) -> Option<Arc<TeeDmaHeap>> {
        self.tee_heaps.lock().recover().get(&use_case).cloned()
    }

    /// `tee_device_register_dma_heap`: binds the heap of `use_case` to
    /// `pool` for `teedev`, creating the heap node on first use.
    ///
    /// # Errors
    /// `EBUSY` while the use case is still held by a previous registration;
    /// `EINVAL` if the heap name is taken by a heap that is not a TEE heap.
    pub fn tee_register_dma_heap(
        &self,
        teedev: &Arc<TeeDevice>,
        use_case: UseCase,
        pool: Box<dyn ProtMemPool>,
    ) -> Result<()> {
        let mut heaps = self.tee_heaps.lock().recover();
        let heap = match heaps.get(&use_case) {
            Some(h) => Arc::clone(h),
            None => {
                let h = TeeDmaHeap::new(use_case, Arc::clone(&self.dma_bufs), self.platform.config().tee.rebind.into());
                let reg = self.dma_heaps.register(use_case.heap_name(), Arc::new(TeeHeapOps(Arc::clone(&h))))?;
                self.heap_regs.lock().recover().insert(use_case.heap_name().to_owned(), reg);
                heaps.insert(use_case, Arc::clone(&h));
                h
            }
        };
        heap.bind(teedev, pool).map(drop)
    }

    /// `tee_device_put_all_dma_heaps`: unbinds every heap `teedev` bound.
    /// Their nodes stay; live buffers drain.
    pub fn tee_unregister_dma_heaps(&self, teedev: &Arc<TeeDevice>) {
        let heaps: Vec<_> = self.tee_heaps.lock().recover().values().cloned().collect();
        for h in heaps {
            h.unbind(teedev);
        }
    }
}

impl Kernel {
    /// Removes the heap `name` by dropping the kernel's registration of it
    /// (see [`HeapRegistration`]); it can be added back with
    /// [`Self::dma_heap_readd`].
    ///
    /// # Errors
    /// `ENOENT` if there is no such heap.
    pub fn dma_heap_remove(&self, name: &str) -> Result<()> {
        let reg = self.heap_regs.lock().recover().remove(name);
        let reg = reg.ok_or(Error::new(Errno::ENOENT, "no such dma-heap"))?;
        let removed = reg.unregister().ok_or(Error::new(Errno::ENOENT, "dma-heap already removed"))?;
        self.removed_heaps.lock().recover().insert(name.to_owned(), removed);
        Ok(())
    }

    /// Adds a removed heap back under its name, with its state (bound
    /// generation, draining buffers) as it is now.
    ///
    /// # Errors
    /// `ENOENT` if no heap of that name was removed; `EINVAL`/`EBUSY` as
    /// [`DmaHeapRegistry::register`].
    pub fn dma_heap_readd(&self, name: &str) -> Result<()> {
        let mut removed = self.removed_heaps.lock().recover();
        let (ops, counters) =
            removed.get(name).cloned().ok_or(Error::new(Errno::ENOENT, "no removed heap of that name"))?;
        let reg = self.dma_heaps.register_with_counters(name, ops, counters)?;
        self.heap_regs.lock().recover().insert(name.to_owned(), reg);
        removed.remove(name);
        Ok(())
    }

    /// The heaps taken out with [`Self::dma_heap_remove`] and not added
    /// back, by name: their usage as it is now, with `state` `removed`
    /// (`removed; draining ...` while an old generation still has buffers).
    pub fn removed_dma_heaps(&self) -> Vec<dma_heap::HeapInfo> {
        let removed = self.removed_heaps.lock().recover();
        removed
            .iter()
            .filter_map(|(name, (ops, counters))| {
                let name = dma_heap::HeapName::new(name).ok()?;
                let mut info = ops.info(&name);
                counters.fill(&mut info);
                info.state.presence = dma_heap::Presence::Removed;
                Some(info)
            })
            .collect()
    }

    /// Opens `/dev/<name>` of a TEE device: a new context.
    ///
    /// # Errors
    /// `ENOENT` if there is no such device.
    pub fn tee_open(&self, name: &str) -> Result<file::File> {
        let dev = self.tee.open(name)?;
        Ok(file::File::new(tee::context::TeeFile::open(dev, Arc::clone(&self.platform), Arc::clone(&self.normal))?))
    }

    /// The display (`/dev/dri/card0`, vkms): its state and frame CRCs.
    pub fn display(&self) -> Option<&Arc<drm::kms::KmsDevice>> {
        self.drm_cards.get("dri/card0").and_then(|d| d.kms())
    }

    /// The DRM card nodes, as paths relative to `/dev` (`dri/card0`: vkms,
    /// `dri/card1`: vgem).
    pub fn drm_cards(&self) -> Vec<&'static str> {
        self.drm_cards.keys().copied().collect()
    }

    /// Every device node with a sysfs identity (DRM cards, V4L2 nodes), for
    /// the run's `/dev` and `/sys`.
    pub fn device_nodes(&self) -> Vec<device_node::DeviceNode> {
        let mut v: Vec<_> = self.drm_cards.keys().map(|p| device_node::DeviceNode::drm(p)).collect();
        v.extend(v4l2::device_nodes());
        v
    }

    /// Opens the DRM card node `path` (relative to `/dev`): a new file with
    /// its own GEM handles.
    ///
    /// # Errors
    /// `ENOENT` if there is no such card.
    pub fn drm_open(&self, path: &str) -> Result<Arc<drm::DrmFile>> {
        let driver = self.drm_cards.get(path).ok_or(Error::new(Errno::ENOENT, "no such DRM card"))?;
        Ok(drm::DrmFile::open(Arc::clone(driver)))
    }

    /// Opens the V4L2 node `path` (relative to `/dev`, see
    /// [`v4l2::NODES`]): a new codec instance.
    ///
    /// # Errors
    /// `ENOENT` if there is no such node.
    pub fn v4l2_open(&self, path: &str) -> Result<Arc<v4l2::CodecFile>> {
        let (_, role) =
            v4l2::NODES.iter().find(|(p, _)| *p == path).ok_or(Error::new(Errno::ENOENT, "no such V4L2 node"))?;
        let prio = self.v4l2_prio.get(path).map(Arc::clone).unwrap_or_default();
        Ok(v4l2::CodecFile::open(*role, Arc::clone(&self.platform), Arc::clone(&self.system), prio))
    }

    /// Opens `/dev/dma_heap/<name>`: a new file holding the heap (see
    /// [`dma_heap::HeapFile`]).
    ///
    /// # Errors
    /// `ENOENT` if there is no such heap.
    pub fn dma_heap_open(&self, name: &str) -> Result<file::File> {
        self.dma_heaps.open(name).map(|h| file::File::new(dma_heap::HeapFile::open(h)))
    }

    /// An ioctl on an open file of the model: its [`file::FileOps::ioctl`].
    ///
    /// # Errors
    /// What the file's ioctl returns (`ENOTTY` for a file without ioctls).
    pub fn ioctl(
        &self,
        file: &file::File,
        cmd: u32,
        arg: uaccess::UserPtr,
        mem: &dyn uaccess::UserMemory,
        files: &mut dyn file::Files,
    ) -> Result<i64> {
        file.ioctl(cmd, arg, mem, files)
    }
}
