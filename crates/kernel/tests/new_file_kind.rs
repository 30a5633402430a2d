//! A new fd kind is one type implementing `FileOps`: this test-only
//! "counter" file is dispatched by the kernel like any other file, reaches
//! the caller's memory and fd table through the same interfaces, and gets
//! the defaults of a file without mmap, llseek or charge.
//! (docs/file-operations.md walks through it.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use teeheap_kernel::file::{Backing, FdTable, File, FileKind, FileOps, Files, PollEvents, ReadyWatch};
use teeheap_kernel::uaccess::{SimUserMemory, UserMemory, UserPtr, read_obj, write_obj};
use teeheap_kernel::{Errno, Error, Kernel, Result};
use teeheap_platform::Platform;
use teeheap_uapi::ioc;

/// `_IOWR('C', 0, u64)`: adds the caller's value, returns the sum in it.
const COUNTER_ADD: u32 = ioc::iowr(b'C', 0, 8);
/// `_IO('C', 1)`: a new counter file starting at this one's value.
const COUNTER_DUP: u32 = ioc::io(b'C', 1);

/// The kind: a counter, readable once it reaches its target.
struct Counter {
    value: AtomicU64,
    target: u64,
    wakers: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter").field("value", &self.value).field("target", &self.target).finish_non_exhaustive()
    }
}

const KIND: FileKind = FileKind::new("counter");

impl Counter {
    fn new(value: u64, target: u64) -> Arc<Counter> {
        Arc::new(Counter { value: AtomicU64::new(value), target, wakers: Mutex::default() })
    }
}

impl FileOps for Counter {
    fn kind(&self) -> FileKind {
        KIND
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        match cmd {
            COUNTER_ADD => {
                let add: u64 = read_obj(mem, arg)?;
                let v = self.value.fetch_add(add, Ordering::SeqCst) + add;
                write_obj(mem, arg, &v)?;
                if v >= self.target {
                    for wake in self.wakers.lock().unwrap().drain(..) {
                        wake();
                    }
                }
                Ok(0)
            }
            COUNTER_DUP => {
                let fd = files.install(File::new(Counter::new(self.value.load(Ordering::SeqCst), self.target)), 0)?;
                Ok(i64::from(fd))
            }
            _ => Err(Error::new(Errno::ENOTTY, "unknown counter ioctl")),
        }
    }

    fn backing(&self) -> Backing {
        Backing::Signal
    }

    fn poll(&self) -> PollEvents {
        if self.value.load(Ordering::SeqCst) >= self.target { PollEvents::IN } else { PollEvents::NONE }
    }

    fn watch_ready(&self, wake: Box<dyn FnOnce() + Send>) -> Option<ReadyWatch> {
        if self.poll().contains(PollEvents::IN) {
            wake();
        } else {
            self.wakers.lock().unwrap().push(wake);
        }
        Some(ReadyWatch::new("counter watch"))
    }
}

#[test]
fn a_new_kind_is_dispatched_like_every_other_file() {
    let kernel = Kernel::boot(Arc::new(Platform::embedded_default().unwrap()));
    let mem = SimUserMemory::new();
    let mut files = FdTable::default();
    let fd = files.install(File::new(Counter::new(0, 10)), 0).unwrap();
    let file = files.lookup(i64::from(fd)).unwrap();
    assert_eq!(file.kind(), KIND);
    assert_eq!(file.kind().to_string(), "counter");

    // Its ioctls, through the kernel's generic dispatch.
    let arg = mem.map(&4u64.to_ne_bytes());
    assert_eq!(kernel.ioctl(&file, COUNTER_ADD, arg, &mem, &mut files).unwrap(), 0);
    assert_eq!(mem.contents(arg).unwrap(), 4u64.to_ne_bytes());
    let e = kernel.ioctl(&file, COUNTER_ADD, UserPtr(0xdead_0000), &mem, &mut files).unwrap_err();
    assert_eq!(e.errno(), Errno::EFAULT);
    assert_eq!(kernel.ioctl(&file, ioc::io(b'C', 9), arg, &mem, &mut files).unwrap_err().errno(), Errno::ENOTTY);

    // It makes new files of its kind in the caller's table.
    let dup = kernel.ioctl(&file, COUNTER_DUP, UserPtr(0), &mem, &mut files).unwrap();
    let copy = files.lookup(dup).unwrap();
    assert!(!copy.ptr_eq(&file));
    assert!(copy.downcast::<Counter>().is_some_and(|c| c.value.load(Ordering::SeqCst) == 4));
    assert!(copy.as_dma_buf().is_none());

    // Readiness: a watch fires once the counter reaches its target.
    let fired = Arc::new(AtomicU64::new(0));
    let f2 = Arc::clone(&fired);
    let _watch = file.watch_ready(Box::new(move || {
        f2.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(file.poll(), PollEvents::NONE);
    let arg = mem.map(&6u64.to_ne_bytes());
    kernel.ioctl(&file, COUNTER_ADD, arg, &mem, &mut files).unwrap();
    assert_eq!(file.poll(), PollEvents::IN);
    assert_eq!(fired.load(Ordering::SeqCst), 1);

    // The defaults of a file without those operations, with Linux's errno.
    assert_eq!(file.mmap().unwrap_err().errno(), Errno::ENODEV);
    assert_eq!(file.llseek(5, 0).unwrap_err().errno(), Errno::ESPIPE);
    assert!(file.charge().is_none());
    assert_eq!(file.backing(), Backing::Signal);

    // A dup of the fd is the same object; the last close drops it.
    let weak = Arc::downgrade(&file.downcast::<Counter>().unwrap());
    let again = files.dup(fd).unwrap();
    assert!(files.lookup(i64::from(again)).unwrap().ptr_eq(&file));
    drop(file);
    files.close(fd).unwrap();
    assert!(weak.upgrade().is_some(), "the dup still holds it");
    files.close(again).unwrap();
    assert!(weak.upgrade().is_none(), "the last close dropped it");
}
