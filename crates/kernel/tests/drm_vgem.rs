//! vgem through the DRM core: VERSION as the dmabuf-heaps selftest reads
//! it, PRIME import of heap buffers (one handle per buffer per file),
//! export, dumb buffers, GEM_CLOSE, and the errno of each mistake.

mod common;

use teeheap_kernel::Errno;
use teeheap_kernel::file::Files;
use teeheap_kernel::uaccess::UserPtr;
use teeheap_uapi::drm::*;
use teeheap_uapi::ioc;
use zerocopy::{FromBytes, IntoBytes};

use common::DrmSetup as Setup;

fn setup() -> Setup {
    common::drm_setup("dri/card1")
}

impl Setup {
    fn heap_buf(&mut self, heap: &str, len: u64) -> i32 {
        let buf = self.kernel.dma_heaps().open(heap).unwrap().allocate(len, 0, 0).unwrap();
        self.files.install(teeheap_kernel::file::File::new(buf), 0).unwrap()
    }

    fn import(&mut self, fd: i32) -> Result<u32, Errno> {
        let (r, p) = self.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, DrmPrimeHandle { fd, ..Default::default() });
        r.map(|_| p.handle)
    }

    fn close(&mut self, handle: u32) -> Result<i64, Errno> {
        self.ioctl(DRM_IOCTL_GEM_CLOSE, DrmGemClose { handle, pad: 0 }).0
    }
}

#[test]
fn version_is_vgem_cut_to_the_callers_room() {
    let mut s = setup();
    assert_eq!(s.kernel.drm_cards(), ["dri/card0", "dri/card1"]);
    let name = s.mem.map_zeroed(8);
    let desc = s.mem.map_zeroed(64);
    // The selftest asks for 4 bytes of the name and checks "vgem".
    let v = DrmVersion { name_len: 4, name: name.0, desc_len: 64, desc: desc.0, ..Default::default() };
    let (r, out) = s.ioctl(DRM_IOCTL_VERSION, v);
    assert_eq!(r, Ok(0));
    assert_eq!((out.version_major, out.version_minor, out.version_patchlevel), (1, 0, 0));
    assert_eq!(out.name_len, 4);
    assert_eq!(&s.mem.contents(name).unwrap()[..5], b"vgem\0");
    assert_eq!(out.desc_len, 20);
    assert_eq!(&s.mem.contents(desc).unwrap()[..21], b"Virtual GEM provider\0");
    // Too little room: a prefix, and the full length back.
    let short = s.mem.map_zeroed(2);
    let (r, out) = s.ioctl(DRM_IOCTL_VERSION, DrmVersion { name_len: 2, name: short.0, ..Default::default() });
    assert_eq!((r, out.name_len, out.date_len), (Ok(0), 4, 8));
    assert_eq!(s.mem.contents(short).unwrap(), b"vg");
    // A NULL buffer gets only the lengths; a bad one is EFAULT.
    let (r, out) = s.ioctl(DRM_IOCTL_VERSION, DrmVersion { name_len: 64, ..Default::default() });
    assert_eq!((r, out.name_len), (Ok(0), 4));
    let (r, _) = s.ioctl(DRM_IOCTL_VERSION, DrmVersion { name_len: 64, name: 8, ..Default::default() });
    assert_eq!(r, Err(Errno::EFAULT));
    // The number alone chooses the handler (any type byte, as drm_ioctl).
    let any_type = ioc::iowr(b'x', 0, size_of::<DrmVersion>());
    assert_eq!(s.ioctl(any_type, DrmVersion::default()).0, Ok(0));
}

#[test]
fn prime_import_of_heap_buffers_and_gem_close() {
    let mut s = setup();
    let sys = s.heap_buf("system", 1 << 20);
    let prot = s.heap_buf("protected,secure-video", 1 << 20);
    let a = s.import(sys).unwrap();
    let b = s.import(prot).unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(s.import(sys), Ok(a), "one handle per buffer per file");
    // Another open file has its own handles.
    let other = s.kernel.drm_open("dri/card1").unwrap();
    let ptr = s.mem.map(DrmPrimeHandle { fd: prot, ..Default::default() }.as_bytes());
    other.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, ptr, &s.mem, &mut s.files).unwrap();
    assert_eq!(DrmPrimeHandle::read_from_bytes(&s.mem.contents(ptr).unwrap()).unwrap().handle, 1);
    assert_eq!(other.handle_count(), 1);

    assert_eq!(s.close(a), Ok(0));
    assert_eq!(s.close(a), Err(Errno::EINVAL), "closed twice");
    assert_eq!(s.close(0), Err(Errno::EINVAL));
    assert_eq!(s.card.handle_count(), 1);
    assert_eq!(s.import(99), Err(Errno::EBADF));
    // The handle keeps the buffer alive after its fd is closed.
    let live = s.kernel.dma_bufs().len();
    s.files.close(prot).unwrap();
    assert_eq!(s.kernel.dma_bufs().len(), live);
    drop(other);
    assert_eq!(s.close(b), Ok(0));
    assert_eq!(s.kernel.dma_bufs().len(), live - 1);
}

#[test]
fn dumb_buffers_export_as_system_dma_bufs() {
    let mut s = setup();
    let d = DrmModeCreateDumb { width: 1920, height: 1080, bpp: 32, ..Default::default() };
    let (r, d) = s.ioctl(DRM_IOCTL_MODE_CREATE_DUMB, d);
    assert_eq!(r, Ok(0));
    assert_eq!((d.handle, d.pitch, d.size), (1, 7680, 8_294_400));
    let (r, m) = s.ioctl(DRM_IOCTL_MODE_MAP_DUMB, DrmModeMapDumb { handle: d.handle, ..Default::default() });
    assert_eq!(r, Ok(0));
    assert!(m.offset >= 1 << 32 && m.offset % 4096 == 0);

    let (r, p) = s.ioctl(
        DRM_IOCTL_PRIME_HANDLE_TO_FD,
        DrmPrimeHandle { handle: d.handle, flags: DRM_CLOEXEC | DRM_RDWR, fd: -1 },
    );
    assert_eq!(r, Ok(0));
    let buf = s.files.get(p.fd).unwrap().as_dma_buf().unwrap().clone();
    assert_eq!(buf.size().bytes(), 8_294_400);
    assert!(!buf.is_protected());
    assert_eq!(s.files.flags(p.fd).unwrap() & DRM_CLOEXEC, DRM_CLOEXEC);
    assert_eq!(s.import(p.fd), Ok(d.handle), "re-import of its own export");

    let export = |handle, flags| DrmPrimeHandle { handle, flags, fd: -1 };
    assert_eq!(s.ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, export(d.handle, 0x100)).0, Err(Errno::EINVAL));
    assert_eq!(s.ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, export(42, 0)).0, Err(Errno::ENOENT));
    let destroy = DrmModeDestroyDumb { handle: d.handle };
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, destroy).0, Ok(0));
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, destroy).0, Err(Errno::EINVAL));
    assert_eq!(
        s.ioctl(DRM_IOCTL_MODE_MAP_DUMB, DrmModeMapDumb { handle: d.handle, ..Default::default() }).0,
        Err(Errno::ENOENT)
    );
}

#[test]
fn dumb_sizes_are_bounded_before_allocating() {
    let mut s = setup();
    let live = s.kernel.dma_bufs().len();
    for (w, h, bpp) in [(0, 1, 32), (1, 0, 32), (1, 1, 0), (u32::MAX, 1, 32), (65536, 65536, 32)] {
        let (r, _) =
            s.ioctl(DRM_IOCTL_MODE_CREATE_DUMB, DrmModeCreateDumb { width: w, height: h, bpp, ..Default::default() });
        assert_eq!(r, Err(Errno::EINVAL), "{w}x{h}x{bpp}");
    }
    // Fits in 32 bits but not in memory.
    let (r, _) = s.ioctl(
        DRM_IOCTL_MODE_CREATE_DUMB,
        DrmModeCreateDumb { width: 32768, height: 32767, bpp: 32, ..Default::default() },
    );
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!(s.kernel.dma_bufs().len(), live);
}

#[test]
fn caps_and_what_vgem_does_not_do() {
    let mut s = setup();
    let cap = |c| DrmGetCap { capability: c, value: 99 };
    let (r, c) = s.ioctl(DRM_IOCTL_GET_CAP, cap(DRM_CAP_PRIME));
    assert_eq!((r, c.value), (Ok(0), DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT));
    assert_eq!(s.ioctl(DRM_IOCTL_GET_CAP, cap(DRM_CAP_TIMESTAMP_MONOTONIC)).1.value, 1);
    // Display caps belong to mode-setting drivers.
    assert_eq!(s.ioctl(DRM_IOCTL_GET_CAP, cap(DRM_CAP_DUMB_BUFFER)).0, Err(Errno::EOPNOTSUPP));
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_GETRESOURCES, DrmModeCardRes::default()).0, Err(Errno::EOPNOTSUPP));
    let client = |c, v| DrmSetClientCap { capability: c, value: v };
    assert_eq!(s.ioctl(DRM_IOCTL_SET_CLIENT_CAP, client(DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1)).0, Ok(0));
    assert_eq!(s.ioctl(DRM_IOCTL_SET_CLIENT_CAP, client(DRM_CLIENT_CAP_UNIVERSAL_PLANES, 2)).0, Err(Errno::EINVAL));
    assert_eq!(s.ioctl(DRM_IOCTL_SET_CLIENT_CAP, client(DRM_CLIENT_CAP_ATOMIC, 1)).0, Err(Errno::EOPNOTSUPP));
    // vgem's own fence ioctls and unknown numbers.
    assert_eq!(s.ioctl(ioc::iowr(DRM_IOCTL_BASE, 0x41, 16), [0u8; 16]).0, Err(Errno::EINVAL));
    assert_eq!(s.ioctl(ioc::iowr(DRM_IOCTL_BASE, 0xff, 8), [0u8; 8]).0, Err(Errno::EINVAL));
    // A short caller struct is zero-filled in; a bad pointer is EFAULT.
    let short = ioc::iowr(DRM_IOCTL_BASE, 0x0c, 8);
    assert_eq!(s.ioctl(short, DRM_CAP_PRIME.to_ne_bytes()).0, Ok(0));
    let r = s.card.ioctl(DRM_IOCTL_GET_CAP, UserPtr(16), &s.mem, &mut s.files).map_err(|e| e.errno());
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(s.kernel.drm_open("dri/card9").unwrap_err().errno(), Errno::ENOENT);
}
