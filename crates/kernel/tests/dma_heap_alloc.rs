//! DMA_HEAP_IOCTL_ALLOC through the kernel model: every validation path,
//! the kernel's handling of caller struct sizes, and what is (not) allocated.

mod common;

use common::{Setup, setup};

use std::sync::Arc;

use teeheap_kernel::Errno;
use teeheap_kernel::dma_heap::{DmaHeap, MAX_HEAPS};
use teeheap_kernel::uaccess::{SimUserMemory, UserMemory, UserPtr};
use teeheap_platform::PAGE_SIZE;
use teeheap_uapi::dma_heap::{DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, O_ACCMODE, O_CLOEXEC};
use teeheap_uapi::ioc;
use zerocopy::{FromBytes, IntoBytes};

const O_RDWR: u32 = 2;

fn req(len: u64, fd: u32, fd_flags: u32, heap_flags: u64) -> DmaHeapAllocationData {
    DmaHeapAllocationData { len, fd, fd_flags, heap_flags }
}

impl Setup {
    fn heap(&self, name: &str) -> Arc<DmaHeap> {
        self.kernel.dma_heaps().open(name).unwrap()
    }

    /// Runs ALLOC with `bytes` as the caller's struct and request `cmd`;
    /// returns the result and the caller's struct afterwards.
    fn ioctl(&mut self, heap: &str, cmd: u32, bytes: &[u8]) -> (Result<i64, Errno>, Vec<u8>) {
        let ptr = self.mem.map(bytes);
        let r = self.heap(heap).ioctl(cmd, ptr, &self.mem, &mut self.files).map_err(|e| e.errno());
        (r, self.mem.contents(ptr).unwrap())
    }

    fn alloc(&mut self, heap: &str, d: DmaHeapAllocationData) -> Result<DmaHeapAllocationData, Errno> {
        let (r, out) = self.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, d.as_bytes());
        r.map(|_| DmaHeapAllocationData::read_from_bytes(&out).unwrap())
    }

    fn live(&self) -> usize {
        self.kernel.dma_bufs().len()
    }
}

#[test]
fn validation_table_for_every_heap() {
    let mut s = setup();
    // (request, expected errno); each must allocate nothing.
    let cases = [
        (req(4096, 3, 0, 0), Errno::EINVAL),                  // fd != 0
        (req(4096, 0, 0x40 /* O_CREAT */, 0), Errno::EINVAL), // fd_flags outside the mask
        (req(4096, 0, O_CLOEXEC | 0o4000, 0), Errno::EINVAL),
        (req(4096, 0, 0, 1), Errno::EINVAL),       // heap_flags != 0
        (req(4096, 0, 0, 1 << 63), Errno::EINVAL), // any heap flag bit
        (req(0, 0, 0, 0), Errno::EINVAL),          // 0 after rounding
        (req(u64::MAX, 0, 0, 0), Errno::EINVAL),   // rounding wraps to 0
        (req(u64::MAX - 4094, 0, 0, 0), Errno::EINVAL),
        (req(1 << 40, 0, 0, 0), Errno::ENOMEM), // bigger than the pool
        (req(4096, 1, 0x40, 1), Errno::EINVAL), // several faults: fd checked first
    ];
    for heap in ["system", "protected,secure-video", "protected,trusted-ui", "protected,secure-video-record"] {
        for (d, errno) in cases {
            assert_eq!(s.alloc(heap, d).map(|_| ()), Err(errno), "{heap} {d:?}");
            assert_eq!(s.live(), 0, "{heap} {d:?} allocated something");
            assert!(s.files.is_empty());
        }
    }
}

#[test]
fn success_rounds_up_and_returns_an_fd_with_flags() {
    let mut s = setup();
    for (heap, flags) in [
        ("system", O_RDWR | O_CLOEXEC),
        ("protected,secure-video", O_RDWR | O_CLOEXEC),
        ("protected,trusted-ui", O_ACCMODE),
    ] {
        let out = s.alloc(heap, req(17000, 0, flags, 0)).unwrap();
        assert!(out.fd >= 3);
        assert_eq!(out.len, 17000, "len is not rewritten");
        let buf = s.files.get(out.fd as i32).unwrap().as_dma_buf().unwrap();
        assert_eq!(buf.size().bytes(), 5 * PAGE_SIZE);
        assert_eq!(s.files.flags(out.fd as i32).unwrap(), flags);
        assert_eq!(buf.is_protected(), heap != "system");
    }
    assert_eq!(s.live(), 3);
}

#[test]
fn small_and_large_caller_structs_work() {
    let mut s = setup();
    // The 16-byte struct of older headers: no heap_flags; the kernel
    // zero-fills the rest and copies 16 bytes back.
    let old = ioc::iowr(b'H', 0, 16);
    let full = req(8192, 0, O_RDWR, 0);
    let (r, out) = s.ioctl("protected,secure-video", old, &full.as_bytes()[..16]);
    assert_eq!(r, Ok(0));
    assert_eq!(out.len(), 16);
    let fd = u32::from_ne_bytes(out[8..12].try_into().unwrap());
    assert!(fd >= 3);
    // A 48-byte struct with trailing garbage: the tail is passed through.
    let big = ioc::iowr(b'H', 0, 48);
    let mut bytes = full.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xa5; 24]);
    let (r, out) = s.ioctl("system", big, &bytes);
    assert_eq!(r, Ok(0));
    assert_eq!(&out[24..], &[0xa5; 24]);
    let d = DmaHeapAllocationData::read_from_bytes(&out[..24]).unwrap();
    assert!(d.fd >= 3 && d.fd != fd);
    assert_eq!(s.live(), 2);
    // A struct of 16 bytes whose garbage would be heap_flags if read: only
    // 16 bytes are read, so it still succeeds.
    let (r, _) = s.ioctl("system", old, &[full.as_bytes()[..16].to_vec(), vec![0xff; 8]].concat());
    assert_eq!(r, Ok(0));
}

#[test]
fn command_dispatch_and_copy_directions() {
    let mut s = setup();
    let d = req(4096, 0, 0, 0);
    // Another type byte with nr 0 is still ALLOC (the kernel dispatches on nr).
    let (r, _) = s.ioctl("system", ioc::iowr(b'X', 0, 24), d.as_bytes());
    assert_eq!(r, Ok(0));
    // nr beyond the table → EINVAL.
    assert_eq!(s.ioctl("system", ioc::iowr(b'H', 1, 24), d.as_bytes()).0, Err(Errno::EINVAL));
    // Without the write bit nothing is copied in: a zeroed struct → len 0 → EINVAL.
    assert_eq!(s.ioctl("system", ioc::ior(b'H', 0, 24), d.as_bytes()).0, Err(Errno::EINVAL));
    // _IO: nothing in, nothing out.
    assert_eq!(s.ioctl("system", ioc::io(b'H', 0), d.as_bytes()).0, Err(Errno::EINVAL));
    // _IOW: copied in, not out: succeeds but the caller never sees the fd.
    let (r, out) = s.ioctl("system", ioc::iow(b'H', 0, 24), d.as_bytes());
    assert_eq!(r, Ok(0));
    assert_eq!(out, d.as_bytes());
    assert_eq!(s.live(), 2);
}

#[test]
fn bad_pointers_are_efault_and_allocate_nothing() {
    let mut s = setup();
    let heap = s.heap("system");
    let r = heap.ioctl(DMA_HEAP_IOCTL_ALLOC, UserPtr(0x10), &s.mem, &mut s.files);
    assert_eq!(r.unwrap_err().errno(), Errno::EFAULT);
    // The struct runs off the end of the caller's mapping.
    let ptr = s.mem.map(&[0u8; 20]);
    let r = heap.ioctl(DMA_HEAP_IOCTL_ALLOC, ptr, &s.mem, &mut s.files);
    assert_eq!(r.unwrap_err().errno(), Errno::EFAULT);
    assert_eq!(s.live(), 0);
}

/// Read-only caller memory: copy-in works, copy-out faults.
struct ReadOnly<'a>(&'a SimUserMemory);

impl UserMemory for ReadOnly<'_> {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> teeheap_kernel::Result<()> {
        self.0.read(ptr, buf)
    }
    fn write(&self, _: UserPtr, _: &[u8]) -> teeheap_kernel::Result<()> {
        Err(teeheap_kernel::error::efault("read-only"))
    }
}

#[test]
fn copy_out_fault_after_success_is_efault_and_the_fd_stays() {
    let mut s = setup();
    let ptr = s.mem.map(req(4096, 0, 0, 0).as_bytes());
    let heap = s.heap("system");
    let r = heap.ioctl(DMA_HEAP_IOCTL_ALLOC, ptr, &ReadOnly(&s.mem), &mut s.files);
    assert_eq!(r.unwrap_err().errno(), Errno::EFAULT);
    // As in Linux, the fd was installed before the copy-out failed.
    assert_eq!(s.files.len(), 1);
}

#[test]
fn heap_registry_rules() {
    let s = setup();
    let reg = s.kernel.dma_heaps();
    let ops = Arc::new(teeheap_kernel::tee::heap::TeeHeapOps(teeheap_kernel::tee::heap::TeeDmaHeap::new(
        teeheap_platform::UseCase::SecureVideo,
        Arc::clone(s.kernel.dma_bufs()),
        teeheap_kernel::lifecycle::RebindPolicy::Upstream,
    )));
    assert_eq!(reg.register("system", ops.clone()).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(reg.register("", ops.clone()).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(reg.register("a/b", ops.clone()).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(reg.open("nope").unwrap_err().errno(), Errno::ENOENT);
    let existing = reg.list().len();
    let regs: Vec<_> =
        (existing..MAX_HEAPS).map(|i| reg.register(&format!("extra{i}"), ops.clone()).unwrap()).collect();
    assert_eq!(reg.register("one-too-many", ops.clone()).unwrap_err().errno(), Errno::EBUSY);
    assert_eq!(
        reg.register("system", ops.clone()).unwrap_err().errno(),
        Errno::EBUSY,
        "minor exhaustion is checked first"
    );
    assert_eq!(reg.list().len(), MAX_HEAPS);
    // Dropping the registrations frees their minors.
    drop(regs);
    assert_eq!(reg.list().len(), existing);
    assert!(reg.register("one-more", ops).is_ok());
}

#[test]
fn dropping_a_heap_registration_unregisters() {
    let s = setup();
    let reg = s.kernel.dma_heaps();
    let system = Arc::clone(s.kernel.system_heap()) as Arc<dyn teeheap_kernel::dma_heap::DmaHeapOps>;
    let registration = reg.register("scratch", system).unwrap();
    let opened = reg.open("scratch").unwrap();
    assert!(Arc::ptr_eq(&opened, registration.heap()));
    let buf = opened.allocate(4096, 2, 0).unwrap();
    drop(registration);
    // The node is gone for new opens; the open heap answers ENODEV; the
    // buffer it gave out stays usable until closed.
    assert_eq!(reg.open("scratch").unwrap_err().errno(), Errno::ENOENT);
    assert!(reg.list().iter().all(|h| h.name().as_str() != "scratch"));
    assert_eq!(opened.allocate(4096, 2, 0).unwrap_err().errno(), Errno::ENODEV);
    assert_eq!(buf.size().bytes(), 4096);
    // The name is free again.
    let again = Arc::clone(s.kernel.system_heap()) as Arc<dyn teeheap_kernel::dma_heap::DmaHeapOps>;
    let _registration = reg.register("scratch", again).unwrap();
    assert!(reg.open("scratch").is_ok());
}

/// Fails every second allocation reaching a heap of the given name.
#[derive(Debug)]
struct EverySecond(&'static str, std::sync::atomic::AtomicU32);

impl teeheap_platform::fault::Injector for EverySecond {
    fn at(&self, p: &teeheap_platform::fault::Point<'_>) -> Option<teeheap_platform::fault::Fault> {
        use teeheap_platform::fault::{Fault, Point};
        let Point::Alloc { heap } = p else { return None };
        (*heap == self.0 && self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1).then_some(Fault::Fail)
    }
}

#[test]
fn an_injected_fault_is_enomem_after_validation_and_allocates_nothing() {
    let mut s = setup();
    let inj = Arc::new(EverySecond("protected,secure-video", 0.into()));
    assert!(s.kernel.platform().faults().install(Arc::clone(&inj) as _));
    // Validation comes first and is no fault point.
    assert_eq!(s.alloc("protected,secure-video", req(0, 0, O_RDWR, 0)).unwrap_err(), Errno::EINVAL);
    assert_eq!(inj.1.load(std::sync::atomic::Ordering::Relaxed), 0);
    let first = s.alloc("protected,secure-video", req(8192, 0, O_RDWR, 0)).unwrap();
    assert_eq!(s.alloc("protected,secure-video", req(8192, 0, O_RDWR, 0)).unwrap_err(), Errno::ENOMEM);
    assert_eq!(s.live(), 1, "the refused allocation made no buffer");
    assert!(s.alloc("system", req(8192, 0, O_RDWR, 0)).is_ok(), "other heaps are not faulted");
    assert!(s.alloc("protected,secure-video", req(8192, 0, O_RDWR, 0)).is_ok());
    let info = s.heap("protected,secure-video").info();
    assert_eq!((info.allocations, info.failures.get("ENOMEM").copied()), (2, Some(1)));
    assert!(first.fd > 0);
}
