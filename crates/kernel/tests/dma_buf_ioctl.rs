//! The ioctls of a dma-buf fd through the kernel model, each answer checked
//! against drivers/dma-buf/dma-buf.c (Linux 6.18): DMA_BUF_SET_NAME takes
//! bytes; EXPORT_SYNC_FILE / IMPORT_SYNC_FILE with sync_file fds and their
//! own ioctls (MERGE, FILE_INFO, SET_DEADLINE).

mod common;

use std::sync::Arc;

use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::file::{FdTable, File};
use teeheap_kernel::uaccess::{SimUserMemory, UserPtr};
use teeheap_kernel::{Errno, Kernel, backend::builtin::BuiltinBackend};
use teeheap_uapi::dma_buf::{DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B};

struct Setup {
    kernel: Arc<Kernel>,
    _backend: BuiltinBackend,
    mem: SimUserMemory,
    files: FdTable,
}

fn setup() -> Setup {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let backend = BuiltinBackend::probe(&kernel).unwrap();
    Setup { kernel, _backend: backend, mem: SimUserMemory::new(), files: FdTable::default() }
}

impl Setup {
    fn buf(&self, heap: &str) -> Arc<DmaBuf> {
        self.kernel.dma_heaps().open(heap).unwrap().allocate(8192, 2, 0).unwrap()
    }

    fn ioctl(&mut self, file: &File, cmd: u32, arg: UserPtr) -> Result<i64, Errno> {
        self.kernel.ioctl(file, cmd, arg, &self.mem, &mut self.files).map_err(|e| e.errno())
    }
}

#[test]
fn set_name_takes_bytes_up_to_31_and_a_nul() {
    let mut s = setup();
    for heap in ["system", "protected,secure-video"] {
        let buf = s.buf(heap);
        let f = File::DmaBuf(Arc::clone(&buf));
        for cmd in [DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B] {
            // 31 bytes of 0xff: not UTF-8, accepted as bytes (issue 19).
            let mut name = vec![0xff; 31];
            name.push(0);
            let p = s.mem.map(&name);
            assert_eq!(s.ioctl(&f, cmd, p), Ok(0), "{heap}");
            assert_eq!(buf.name_bytes().as_deref(), Some(&[0xff; 31][..]));
            assert_eq!(buf.info().name.unwrap(), "\\xff".repeat(31));
            // Any bytes but NUL, the name ends at the first NUL.
            let p = s.mem.map(b"\x01caf\xc3\xa9\x80\0ignored");
            assert_eq!(s.ioctl(&f, cmd, p), Ok(0));
            assert_eq!(buf.name_bytes().as_deref(), Some(&b"\x01caf\xc3\xa9\x80"[..]));
            assert_eq!(buf.name().unwrap(), "\\u{1}caf\u{e9}\\x80");
            // Empty is a name too.
            let p = s.mem.map(b"\0");
            assert_eq!(s.ioctl(&f, cmd, p), Ok(0));
            assert_eq!(buf.name_bytes().as_deref(), Some(&b""[..]));
        }
        // strndup_user(buf, 32): no NUL in 32 bytes is EINVAL, the name
        // stays as it was.
        let p = s.mem.map(&[b'x'; 40]);
        assert_eq!(s.ioctl(&f, DMA_BUF_SET_NAME_B, p), Err(Errno::EINVAL));
        assert_eq!(buf.name_bytes().as_deref(), Some(&b""[..]));
        // Unreadable before a NUL: EFAULT (also when the string runs into
        // an unmapped page), the name stays.
        assert_eq!(s.ioctl(&f, DMA_BUF_SET_NAME_B, UserPtr(8)), Err(Errno::EFAULT));
        let p = s.mem.map(&[b'y'; 4096]);
        let tail = p.checked_add(4090).unwrap();
        assert_eq!(s.ioctl(&f, DMA_BUF_SET_NAME_B, tail), Err(Errno::EFAULT));
        assert_eq!(buf.name_bytes().as_deref(), Some(&b""[..]));
    }
}
