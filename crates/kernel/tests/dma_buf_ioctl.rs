//! The ioctls of a dma-buf fd through the kernel model, each answer checked
//! against drivers/dma-buf/dma-buf.c (Linux 6.18): DMA_BUF_SET_NAME takes
//! bytes; EXPORT_SYNC_FILE / IMPORT_SYNC_FILE with sync_file fds and their
//! own ioctls (MERGE, FILE_INFO, SET_DEADLINE).

mod common;

use common::{Setup, setup};

use std::sync::Arc;

use teeheap_kernel::Errno;
use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::file::{File, Files};
use teeheap_kernel::uaccess::UserPtr;
use teeheap_uapi::dma_buf::{DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B};

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
        let f = File::new(Arc::clone(&buf));
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

mod sync_files {
    use super::*;
    use teeheap_kernel::dma_buf::fence::monotonic_ns;
    use teeheap_kernel::dma_buf::{Fence, Usage};
    use teeheap_kernel::sync_file::SyncFile;
    use teeheap_uapi::dma_buf::{
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW,
        DMA_BUF_SYNC_WRITE, DmaBufExportSyncFile, DmaBufImportSyncFile,
    };
    use teeheap_uapi::dma_heap::O_CLOEXEC;
    use teeheap_uapi::sync_file::{
        SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE, SYNC_IOC_SET_DEADLINE, SyncFenceInfo, SyncFileInfo, SyncMergeData,
        SyncSetDeadline,
    };
    use zerocopy::{FromBytes, IntoBytes};

    const R: u32 = DMA_BUF_SYNC_READ as u32;
    const W: u32 = DMA_BUF_SYNC_WRITE as u32;

    impl Setup {
        fn export(&mut self, buf: &File, flags: u32) -> Result<(i32, Arc<SyncFile>), Errno> {
            let p = self.mem.map(DmaBufExportSyncFile { flags, fd: 77 }.as_bytes());
            self.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, p)?;
            let out = DmaBufExportSyncFile::read_from_bytes(&self.mem.contents(p).unwrap()).unwrap();
            assert_eq!(out.flags, flags, "flags are left as they were");
            let Some(s) = self.files.get(out.fd).ok().and_then(|f| f.downcast::<SyncFile>()) else {
                panic!("fd {} is not a sync file", out.fd)
            };
            assert_eq!(self.files.flags(out.fd).unwrap(), O_CLOEXEC, "O_RDONLY | O_CLOEXEC as the kernel's");
            Ok((out.fd, s))
        }

        fn import(&mut self, buf: &File, flags: u32, fd: i32) -> Result<i64, Errno> {
            let p = self.mem.map(DmaBufImportSyncFile { flags, fd }.as_bytes());
            self.ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, p)
        }

        fn info(&mut self, sync: &File, room: u32) -> Result<(SyncFileInfo, Vec<SyncFenceInfo>), Errno> {
            let arr = self.mem.map_zeroed(80 * room.clamp(1, 4) as usize);
            let p = self
                .mem
                .map(SyncFileInfo { num_fences: room, sync_fence_info: arr.0, ..Default::default() }.as_bytes());
            self.ioctl(sync, SYNC_IOC_FILE_INFO, p)?;
            let info = SyncFileInfo::read_from_bytes(&self.mem.contents(p).unwrap()).unwrap();
            let raw = self.mem.contents(arr).unwrap();
            let fences =
                raw.chunks(80).take(room as usize).map(|c| SyncFenceInfo::read_from_bytes(c).unwrap()).collect();
            Ok((info, fences))
        }
    }

    fn cstr(b: &[u8]) -> &[u8] {
        &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
    }

    #[test]
    fn export_validates_like_linux_and_gives_a_signalled_stub_when_idle() {
        let mut s = setup();
        for heap in ["system", "protected,secure-video"] {
            let f = File::new(s.buf(heap));
            for bad in [0, 4, 8, R | 4, 0x8000_0000] {
                assert_eq!(s.export(&f, bad).unwrap_err(), Errno::EINVAL, "flags {bad:#x}");
            }
            assert_eq!(s.ioctl(&f, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, UserPtr(8)), Err(Errno::EFAULT));
            let before = s.files.len();
            for flags in [R, W, R | W] {
                let (_, sync) = s.export(&f, flags).unwrap();
                assert!(sync.is_signalled());
                assert_eq!(sync.status(), 1);
                assert!(Arc::ptr_eq(&sync.fences()[0], &Fence::stub()));
            }
            assert_eq!(s.files.len(), before + 3);
        }
    }

    #[test]
    fn export_waits_for_the_right_fences_and_import_adds_them() {
        let mut s = setup();
        let buf = s.buf("system");
        let f = File::new(Arc::clone(&buf));
        // A device writes the buffer; another reads it.
        let write = Fence::new("decoder", "frames");
        let read = Fence::new("display", "scanout");
        buf.add_fence(Arc::clone(&write), Usage::Write);
        buf.add_fence(Arc::clone(&read), Usage::Read);
        let (rfd, for_reading) = s.export(&f, R).unwrap();
        let (wfd, for_writing) = s.export(&f, W).unwrap();
        assert_eq!(for_reading.fences().len(), 1, "a reader waits for the writer");
        assert_eq!(for_writing.fences().len(), 2, "a writer waits for everyone");
        assert_eq!((for_reading.status(), for_writing.status()), (0, 0));
        let (info, fences) = s.info(&File::new(Arc::clone(&for_writing)), 2).unwrap();
        assert_eq!((info.status, info.num_fences), (0, 2));
        assert_eq!(cstr(&fences[0].driver_name), b"decoder");
        assert_eq!(cstr(&fences[1].obj_name), b"scanout");
        assert_eq!(fences[0].timestamp_ns, 0);
        write.signal();
        assert!(for_reading.is_signalled());
        assert_eq!(for_writing.status(), 0);
        read.signal();
        assert_eq!(for_writing.status(), 1);
        let (info, fences) = s.info(&File::new(Arc::clone(&for_writing)), 2).unwrap();
        assert_eq!(info.status, 1);
        assert_eq!(cstr(&fences[0].driver_name), b"detached-driver");
        assert_eq!(cstr(&fences[0].obj_name), b"signaled-timeline");
        assert!(fences[0].timestamp_ns > 0 && fences[0].timestamp_ns <= monotonic_ns());

        // Import into another buffer: as a write, both readers and writers
        // of it now wait; as a read, only writers.
        let other = s.buf("system");
        let of = File::new(Arc::clone(&other));
        let pending = Fence::new("encoder", "bits");
        let p_fd = s.files.install(File::new(SyncFile::new(vec![Arc::clone(&pending)])), 0).unwrap();
        assert_eq!(s.import(&of, R, p_fd), Ok(0));
        assert_eq!(other.fences(Usage::for_access(false)).len(), 0, "a read fence does not hold readers");
        assert_eq!(other.fences(Usage::for_access(true)).len(), 1);
        assert_eq!(s.import(&of, W, p_fd), Ok(0));
        assert_eq!(other.fences(Usage::for_access(false)).len(), 1);
        let (_, ex) = s.export(&of, R).unwrap();
        assert_eq!(ex.status(), 0);
        pending.signal();
        assert_eq!(ex.status(), 1);
        // Importing signalled files over and over does not grow the buffer's list.
        for _ in 0..100 {
            s.import(&of, R | W, rfd).unwrap();
            s.import(&of, R, wfd).unwrap();
        }
        assert!(other.fences(Usage::Bookkeep).len() <= 2);
    }

    #[test]
    fn import_validates_like_linux() {
        let mut s = setup();
        let f = File::new(s.buf("protected,secure-video"));
        let (sfd, _) = s.export(&f, R).unwrap();
        let heap_fd = s.files.install(s.kernel.dma_heap_open("system").unwrap(), 2).unwrap();
        let buf_fd = s.files.install(File::new(s.buf("system")), 2).unwrap();
        for bad in [0, 4, R | 8] {
            assert_eq!(s.import(&f, bad, sfd), Err(Errno::EINVAL), "flags {bad:#x}");
        }
        // sync_file_get_fence fails: EINVAL, whatever the fd is.
        for fd in [-1, 999, heap_fd, buf_fd] {
            assert_eq!(s.import(&f, DMA_BUF_SYNC_RW as u32, fd), Err(Errno::EINVAL), "fd {fd}");
        }
        assert_eq!(s.ioctl(&f, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, UserPtr(8)), Err(Errno::EFAULT));
        assert_eq!(s.import(&f, DMA_BUF_SYNC_RW as u32, sfd), Ok(0));
    }

    #[test]
    fn merge_info_and_deadline_like_linux() {
        let mut s = setup();
        let f = File::new(s.buf("system"));
        let (a_fd, a) = s.export(&f, R).unwrap();
        let (b_fd, _) = s.export(&f, W).unwrap();
        let a_file = File::new(a);
        let merge = |s: &mut Setup, d: SyncMergeData| {
            let p = s.mem.map(d.as_bytes());
            s.ioctl(&a_file, SYNC_IOC_MERGE, p)
                .map(|_| SyncMergeData::read_from_bytes(&s.mem.contents(p).unwrap()).unwrap())
        };
        let mut name = [0u8; 32];
        name[..5].copy_from_slice(b"mixed");
        let ok = SyncMergeData { name, fd2: b_fd, fence: -1, flags: 0, pad: 0 };
        assert_eq!(merge(&mut s, SyncMergeData { flags: 1, ..ok }), Err(Errno::EINVAL));
        assert_eq!(merge(&mut s, SyncMergeData { pad: 1, ..ok }), Err(Errno::EINVAL));
        let heap_fd = s.files.install(s.kernel.dma_heap_open("system").unwrap(), 2).unwrap();
        for fd2 in [-1, 999, heap_fd] {
            assert_eq!(merge(&mut s, SyncMergeData { fd2, ..ok }), Err(Errno::ENOENT), "fd2 {fd2}");
        }
        assert_eq!(s.ioctl(&a_file, SYNC_IOC_MERGE, UserPtr(8)), Err(Errno::EFAULT));
        let out = merge(&mut s, ok).unwrap();
        assert_eq!(s.files.flags(out.fence).unwrap(), O_CLOEXEC);
        let merged = s.files.get(out.fence).unwrap().clone();
        // Merging with itself works too (fd2 may be the same file).
        assert!(merge(&mut s, SyncMergeData { fd2: a_fd, ..ok }).is_ok());

        // FILE_INFO with num_fences 0: the count and the status only.
        let (info, _) = s.info(&merged, 0).unwrap();
        assert_eq!((cstr(&info.name), info.status, info.num_fences), (&b"mixed"[..], 1, 1));
        // num_fences sizes nothing: u32::MAX with room for one entry works
        // (the kernel sizes its array by the file's own fence count).
        let (info, _) = s.info(&merged, u32::MAX).unwrap();
        assert_eq!(info.num_fences, 1);
        let (info, fences) = s.info(&merged, 4).unwrap();
        assert_eq!((info.status, info.num_fences), (1, 1));
        assert_eq!(fences[0].status, 1);
        assert_eq!(fences[1], SyncFenceInfo::default(), "only num_fences entries are written");
        // The name of an exported file is made from its fence.
        let (info, _) = s.info(&a_file, 0).unwrap();
        assert_eq!(cstr(&info.name), b"detached-driver-signaled-timeli");
        // Bad FILE_INFO: flags, pad, too little room, bad array pointer.
        let bad = |s: &mut Setup, i: SyncFileInfo| {
            let p = s.mem.map(i.as_bytes());
            s.ioctl(&merged, SYNC_IOC_FILE_INFO, p)
        };
        let two_fences = {
            let x = Fence::new("x", "x");
            let y = Fence::new("y", "y");
            File::new(SyncFile::new(vec![x, y]))
        };
        assert_eq!(bad(&mut s, SyncFileInfo { flags: 1, ..Default::default() }), Err(Errno::EINVAL));
        assert_eq!(bad(&mut s, SyncFileInfo { pad: 1, ..Default::default() }), Err(Errno::EINVAL));
        assert_eq!(
            bad(&mut s, SyncFileInfo { num_fences: 1, sync_fence_info: 8, ..Default::default() }),
            Err(Errno::EFAULT)
        );
        let p = s.mem.map(
            SyncFileInfo { num_fences: 1, sync_fence_info: s.mem.map_zeroed(80).0, ..Default::default() }.as_bytes(),
        );
        assert_eq!(s.ioctl(&two_fences, SYNC_IOC_FILE_INFO, p), Err(Errno::EINVAL));
        let (info, _) = s.info(&two_fences, 0).unwrap();
        assert_eq!((info.status, info.num_fences), (0, 2));
        assert!(cstr(&info.name).starts_with(b"dma_fence_array-unbound"));
        assert_eq!(s.ioctl(&merged, SYNC_IOC_FILE_INFO, UserPtr(8)), Err(Errno::EFAULT));

        // SET_DEADLINE: pad must be 0.
        let p = s.mem.map(SyncSetDeadline { deadline_ns: 1, pad: 0 }.as_bytes());
        assert_eq!(s.ioctl(&merged, SYNC_IOC_SET_DEADLINE, p), Ok(0));
        let p = s.mem.map(SyncSetDeadline { deadline_ns: 1, pad: 1 }.as_bytes());
        assert_eq!(s.ioctl(&merged, SYNC_IOC_SET_DEADLINE, p), Err(Errno::EINVAL));
        assert_eq!(s.ioctl(&merged, SYNC_IOC_SET_DEADLINE, UserPtr(8)), Err(Errno::EFAULT));
        // Other requests, also dma-buf ones, are ENOTTY on a sync file.
        assert_eq!(s.ioctl(&merged, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, p), Err(Errno::ENOTTY));
    }
}
