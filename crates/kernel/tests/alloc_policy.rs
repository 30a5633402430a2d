//! Policy in one place, one fetch: DMA_HEAP_IOCTL_ALLOC reads the caller's
//! struct once, validates it, and only then asks the caller's fd table's
//! charging hook (`Files::admit_allocation`) with the parsed values; a
//! refusal allocates nothing, installs nothing and is not a heap failure.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use teeheap_kernel::file::{FdTable, File, Files};
use teeheap_kernel::uaccess::{SimUserMemory, UserMemory, UserPtr};
use teeheap_kernel::{Errno, Error, Kernel, Result};
use teeheap_platform::{Len, Platform};
use teeheap_uapi::dma_heap::{DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, O_CLOEXEC};
use zerocopy::{FromBytes, IntoBytes};

/// The caller's memory, counting every read of it.
struct Counting {
    mem: SimUserMemory,
    reads: Cell<usize>,
}

impl UserMemory for Counting {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.mem.read(ptr, buf)
    }

    fn write(&self, ptr: UserPtr, data: &[u8]) -> Result<()> {
        self.mem.write(ptr, data)
    }
}

/// An fd table with a limit of `cap` bytes per allocation, recording what
/// it was asked.
struct Capped {
    table: FdTable,
    cap: u64,
    asked: RefCell<Vec<(String, u64)>>,
}

impl Files for Capped {
    fn install(&mut self, file: File, flags: u32) -> Result<i32> {
        self.table.install(file, flags)
    }

    fn lookup(&self, fd: i64) -> Result<File> {
        self.table.lookup(fd)
    }

    fn admit_allocation(&mut self, heap: &str, len: Len) -> Result<()> {
        self.asked.borrow_mut().push((heap.to_owned(), len.bytes()));
        if len.bytes() > self.cap { Err(Error::new(Errno::ENOMEM, "over the test cap")) } else { Ok(()) }
    }
}

struct Setup {
    kernel: Arc<Kernel>,
    mem: Counting,
    files: Capped,
}

fn setup(cap: u64) -> Setup {
    let kernel = Kernel::boot(Arc::new(Platform::embedded_default().unwrap()));
    let mem = Counting { mem: SimUserMemory::new(), reads: Cell::new(0) };
    Setup { kernel, mem, files: Capped { table: FdTable::default(), cap, asked: RefCell::default() } }
}

impl Setup {
    /// ALLOC on a fresh open of `system`: the result, the struct after, and
    /// how many reads of the caller's memory it took.
    fn alloc(&mut self, len: u64, fd_flags: u32) -> (std::result::Result<i64, Errno>, DmaHeapAllocationData, usize) {
        let heap = self.kernel.dma_heap_open("system").unwrap();
        let arg = self.mem.mem.map(DmaHeapAllocationData { len, fd: 0, fd_flags, heap_flags: 0 }.as_bytes());
        self.mem.reads.set(0);
        let r = self.kernel.ioctl(&heap, DMA_HEAP_IOCTL_ALLOC, arg, &self.mem, &mut self.files).map_err(|e| e.errno());
        let out = DmaHeapAllocationData::read_from_bytes(&self.mem.mem.contents(arg).unwrap()).unwrap();
        (r, out, self.mem.reads.get())
    }

    fn system_failures(&self) -> u64 {
        self.kernel.dma_heaps().open("system").unwrap().info().failures.values().sum()
    }
}

#[test]
fn the_hook_is_asked_once_with_the_parsed_length_after_one_read() {
    let mut s = setup(1 << 20);
    let (r, out, reads) = s.alloc(5000, O_CLOEXEC);
    assert_eq!(r, Ok(0));
    assert_eq!(reads, 1, "the caller's struct is read once");
    assert_eq!(*s.files.asked.borrow(), [("system".to_owned(), 8192)], "asked with the page-rounded length");
    let buf = s.files.table.get(out.fd as i32).unwrap().as_dma_buf().unwrap();
    assert_eq!(buf.size().bytes(), 8192);
}

#[test]
fn a_refusal_allocates_nothing_and_is_not_a_heap_failure() {
    let mut s = setup(4096);
    let (r, out, reads) = s.alloc(8192, O_CLOEXEC);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!(reads, 1);
    assert_eq!(out.fd, 0, "no fd reported");
    assert!(s.files.table.is_empty(), "no fd installed");
    assert_eq!(s.kernel.dma_bufs().len(), 0, "no buffer made");
    assert_eq!(s.system_failures(), 0, "a policy refusal is not the heap failing");
    // Within the cap it allocates.
    assert_eq!(s.alloc(4096, O_CLOEXEC).0, Ok(0));
}

#[test]
fn validation_comes_before_policy() {
    let mut s = setup(0);
    // Bad fd_flags and length 0: EINVAL from validation; the hook is not asked.
    assert_eq!(s.alloc(4096, 0o4000).0, Err(Errno::EINVAL));
    assert_eq!(s.alloc(0, O_CLOEXEC).0, Err(Errno::EINVAL));
    assert!(s.files.asked.borrow().is_empty());
    // A removed heap: ENODEV, not the policy's ENOMEM.
    let held = s.kernel.dma_heap_open("system").unwrap();
    s.kernel.dma_heap_remove("system").unwrap();
    let arg = s.mem.mem.map(DmaHeapAllocationData { len: 4096, fd: 0, fd_flags: O_CLOEXEC, heap_flags: 0 }.as_bytes());
    let r = s.kernel.ioctl(&held, DMA_HEAP_IOCTL_ALLOC, arg, &s.mem, &mut s.files).map_err(|e| e.errno());
    assert_eq!(r, Err(Errno::ENODEV));
    assert!(s.files.asked.borrow().is_empty());
}
