//! The DRM core: an open `/dev/dri/cardN` file and its ioctls, dispatched
//! by number as `drm_ioctl` does, with GEM handles per open file and PRIME
//! import/export of dma-bufs.
//!
//! A [`DrmFile`] is one open description of a card node; it owns its GEM
//! handles ([`gem::GemHandles`]), so the buffers they name live until the
//! handles are closed or the file is released. What differs between
//! drivers (name, features, how dumb buffers are made) is a [`DrmDriver`];
//! each driver is one module ([`vgem`], [`vkms`]). A driver with a display
//! has a [`kms::KmsDevice`]; each file then has its [`kms::KmsFile`]
//! (framebuffers, blobs, events, master).
//!
//! Implemented core ioctls: `VERSION`, `GET_UNIQUE`, `GET_CAP`,
//! `SET_CLIENT_CAP`, `SET_MASTER`/`DROP_MASTER` (display drivers),
//! `GEM_CLOSE`, `PRIME_HANDLE_TO_FD`, `PRIME_FD_TO_HANDLE`,
//! `MODE_CREATE_DUMB`, `MODE_MAP_DUMB`, `MODE_DESTROY_DUMB`, and the
//! mode-setting ioctls of [`kms`]. Mode-setting and sync-object ioctls of a
//! driver without them are `EOPNOTSUPP`, as in Linux; every other number is
//! `EINVAL` (the kernel's answer for a number it has no handler for).

pub mod gem;
pub mod kms;
pub mod vgem;
pub mod vkms;

use std::fmt;
use std::sync::{Arc, Mutex};

use teeheap_platform::Len;
use teeheap_sync::Recover;
use teeheap_uapi::drm::*;
use teeheap_uapi::ioc;
use zerocopy::FromBytes;

use crate::dma_buf::DmaBuf;
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{File, FileKind, FileOps, Files, PollEvents, ReadyWatch};
use crate::uaccess::{UserMemory, UserPtr};

use gem::GemHandles;

/// What `DRM_IOCTL_VERSION` reports and which features a driver has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverInfo {
    /// Driver name (`vgem`).
    pub name: &'static str,
    /// Driver date.
    pub date: &'static str,
    /// Description.
    pub desc: &'static str,
    /// Major, minor, patch level.
    pub version: (i32, i32, i32),
    /// `DRIVER_MODESET`: the driver drives displays (KMS ioctls, dumb caps).
    pub modeset: bool,
}

/// A DRM driver: what the core asks of it.
pub trait DrmDriver: Send + Sync + fmt::Debug {
    /// Name, version and features.
    fn info(&self) -> &DriverInfo;

    /// A new buffer object of `size` bytes for `MODE_CREATE_DUMB`.
    ///
    /// # Errors
    /// `ENOMEM` when memory is short.
    fn dumb_create(&self, size: Len) -> Result<Arc<DmaBuf>>;

    /// The display, for a mode-setting driver.
    fn kms(&self) -> Option<&Arc<kms::KmsDevice>> {
        None
    }
}

/// Per-file state the core keeps.
#[derive(Debug, Default)]
struct FileState {
    handles: GemHandles,
    stereo_allowed: bool,
    caps: kms::Caps,
}

/// One open file of a DRM card node (`struct drm_file`).
#[derive(Debug)]
pub struct DrmFile {
    driver: Arc<dyn DrmDriver>,
    state: Mutex<FileState>,
    kms: Option<Arc<kms::KmsFile>>,
}

/// Fake mmap offsets of dumb buffers start here, as the kernel's GEM
/// offset manager hands out offsets far from 0; each handle gets 16 MiB
/// apart (no overflow for any 32-bit handle).
const MMAP_OFFSET_BASE: u64 = 1 << 32;

impl DrmFile {
    /// Opens a card node of `driver`.
    pub fn open(driver: Arc<dyn DrmDriver>) -> Arc<DrmFile> {
        let kms = driver.kms().map(|k| k.open());
        Arc::new(DrmFile { driver, state: Mutex::new(FileState::default()), kms })
    }

    /// This file's mode-setting part, for a display driver.
    pub fn kms(&self) -> Option<&Arc<kms::KmsFile>> {
        self.kms.as_ref()
    }

    /// `drm_read` without blocking: whole events, as many as fit in
    /// `count` bytes (an empty read if the first does not fit).
    ///
    /// # Errors
    /// `EAGAIN` with no event queued (also for a driver without events).
    pub fn read_events(&self, count: usize) -> Result<Vec<u8>> {
        match &self.kms {
            Some(k) => k.events.read(count),
            None => Err(Error::new(Errno::EAGAIN, "no event queued")),
        }
    }

    /// The driver's name and features.
    pub fn info(&self) -> &DriverInfo {
        self.driver.info()
    }

    /// Number of GEM handles this file holds.
    pub fn handle_count(&self) -> usize {
        self.lock().handles.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().recover()
    }

    /// An ioctl on the file, as `drm_ioctl`: the handler is chosen by the
    /// command number alone; `min(user size, kernel size)` bytes are copied
    /// in when both sides read, the rest zero-filled; the user size is
    /// copied out when both sides write, also after a failed handler.
    ///
    /// # Errors
    /// `EINVAL` for a number without a handler; `EOPNOTSUPP` for mode and
    /// sync-object ioctls of a driver without them; `EFAULT` when the
    /// argument cannot be read or written; then each handler's errno.
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let kcmd = match ioc::nr(cmd) {
            0x00 => DRM_IOCTL_VERSION,
            0x01 => DRM_IOCTL_GET_UNIQUE,
            0x1e if self.kms.is_some() => DRM_IOCTL_SET_MASTER,
            0x1f if self.kms.is_some() => DRM_IOCTL_DROP_MASTER,
            0x09 => DRM_IOCTL_GEM_CLOSE,
            0x0c => DRM_IOCTL_GET_CAP,
            0x0d => DRM_IOCTL_SET_CLIENT_CAP,
            0x2d => DRM_IOCTL_PRIME_HANDLE_TO_FD,
            0x2e => DRM_IOCTL_PRIME_FD_TO_HANDLE,
            0xb2 => DRM_IOCTL_MODE_CREATE_DUMB,
            0xb3 => DRM_IOCTL_MODE_MAP_DUMB,
            0xb4 => DRM_IOCTL_MODE_DESTROY_DUMB,
            0xa0..=0xcf if !self.info().modeset || self.kms.is_none() => {
                return Err(Error::new(Errno::EOPNOTSUPP, "not a mode-setting driver"));
            }
            0xa0 => DRM_IOCTL_MODE_GETRESOURCES,
            0xa1 => DRM_IOCTL_MODE_GETCRTC,
            0xa2 => DRM_IOCTL_MODE_SETCRTC,
            0xa5 => DRM_IOCTL_MODE_SETGAMMA,
            0xa6 => DRM_IOCTL_MODE_GETENCODER,
            0xa7 => DRM_IOCTL_MODE_GETCONNECTOR,
            0xaa => DRM_IOCTL_MODE_GETPROPERTY,
            0xac => DRM_IOCTL_MODE_GETPROPBLOB,
            0xaf => DRM_IOCTL_MODE_RMFB,
            0xb0 => DRM_IOCTL_MODE_PAGE_FLIP,
            0xb5 => DRM_IOCTL_MODE_GETPLANERESOURCES,
            0xb6 => DRM_IOCTL_MODE_GETPLANE,
            0xb8 => DRM_IOCTL_MODE_ADDFB2,
            0xb9 => DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
            0xbc => DRM_IOCTL_MODE_ATOMIC,
            0xbd => DRM_IOCTL_MODE_CREATEPROPBLOB,
            0xbe => DRM_IOCTL_MODE_DESTROYPROPBLOB,
            _ => return Err(einval("no handler for this DRM ioctl number")),
        };
        let kernel_size = ioc::size(kcmd);
        let user_size = ioc::size(cmd);
        let both = |dir: u32| ioc::dir(cmd) & ioc::dir(kcmd) & dir != 0;
        let in_size = if both(ioc::IOC_WRITE) { user_size } else { 0 };
        let out_size = if both(ioc::IOC_READ) { user_size } else { 0 };
        let mut kdata = vec![0u8; in_size.max(out_size).max(kernel_size)];
        mem.read(arg, &mut kdata[..in_size]).map_err(|_| efault("cannot read the ioctl argument"))?;

        let k = &mut kdata[..kernel_size];
        let ret = match kcmd {
            DRM_IOCTL_VERSION => self.version(parse(k)?, mem),
            DRM_IOCTL_GEM_CLOSE => self.gem_close(parse(k)?),
            DRM_IOCTL_GET_CAP => self.get_cap(parse(k)?),
            DRM_IOCTL_SET_CLIENT_CAP => self.set_client_cap(parse(k)?),
            DRM_IOCTL_PRIME_HANDLE_TO_FD => self.prime_handle_to_fd(parse(k)?, files),
            DRM_IOCTL_PRIME_FD_TO_HANDLE => self.prime_fd_to_handle(parse(k)?, files),
            DRM_IOCTL_MODE_CREATE_DUMB => self.create_dumb(parse(k)?),
            DRM_IOCTL_MODE_MAP_DUMB => self.map_dumb(parse(k)?),
            DRM_IOCTL_MODE_DESTROY_DUMB => self.destroy_dumb(parse(k)?),
            DRM_IOCTL_GET_UNIQUE => {
                // No bus id is set before SET_VERSION: the unique name is empty.
                parse::<DrmUnique>(k)?.unique_len = 0;
                Ok(())
            }
            DRM_IOCTL_SET_MASTER | DRM_IOCTL_DROP_MASTER => {
                let kms = self.kms.as_ref().ok_or(einval("no master for this driver"))?;
                if kcmd == DRM_IOCTL_SET_MASTER { kms.set_master() } else { kms.drop_master() }
            }
            _ => match &self.kms {
                Some(kms) => {
                    let caps = self.lock().caps;
                    let gem = |h: u32| self.lock().handles.get(h);
                    kms.ioctl(caps, kcmd, k, mem, files, &gem)
                }
                None => Err(einval("no handler for this DRM ioctl")),
            },
        };
        mem.write(arg, &kdata[..out_size]).map_err(|_| efault("cannot write the ioctl argument"))?;
        ret.map(|()| 0)
    }

    /// `drm_version`: numbers, then each string cut to the caller's room
    /// (no NUL added) with its full length written back.
    fn version(&self, v: &mut DrmVersion, mem: &dyn UserMemory) -> Result<()> {
        let info = self.info();
        (v.version_major, v.version_minor, v.version_patchlevel) = info.version;
        copy_field(mem, &mut v.name_len, v.name, info.name)?;
        copy_field(mem, &mut v.date_len, v.date, info.date)?;
        copy_field(mem, &mut v.desc_len, v.desc, info.desc)
    }

    /// `drm_getcap`: the render-node caps for every driver, the rest only
    /// for mode-setting ones.
    fn get_cap(&self, c: &mut DrmGetCap) -> Result<()> {
        c.value = 0;
        match c.capability {
            DRM_CAP_TIMESTAMP_MONOTONIC => c.value = 1,
            DRM_CAP_PRIME => c.value = DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT,
            DRM_CAP_SYNCOBJ => c.value = 0,
            _ if !self.info().modeset => return Err(Error::new(Errno::EOPNOTSUPP, "not a mode-setting driver")),
            DRM_CAP_DUMB_BUFFER => c.value = 1,
            DRM_CAP_DUMB_PREFERRED_DEPTH => c.value = 24,
            DRM_CAP_VBLANK_HIGH_CRTC | DRM_CAP_DUMB_PREFER_SHADOW | DRM_CAP_ASYNC_PAGE_FLIP => {}
            DRM_CAP_CRTC_IN_VBLANK_EVENT => c.value = 1,
            DRM_CAP_CURSOR_WIDTH | DRM_CAP_CURSOR_HEIGHT => c.value = 64,
            DRM_CAP_ADDFB2_MODIFIERS => c.value = 1,
            DRM_CAP_PAGE_FLIP_TARGET => {}
            _ => return Err(einval("unknown capability")),
        }
        Ok(())
    }

    /// `drm_setclientcap` for the caps this model knows; atomic needs a
    /// driver with `DRIVER_ATOMIC` (mode-setting here).
    fn set_client_cap(&self, c: &mut DrmSetClientCap) -> Result<()> {
        match c.capability {
            DRM_CLIENT_CAP_STEREO_3D | DRM_CLIENT_CAP_UNIVERSAL_PLANES | DRM_CLIENT_CAP_ASPECT_RATIO if c.value > 1 => {
                Err(einval("client cap value must be 0 or 1"))
            }
            DRM_CLIENT_CAP_STEREO_3D => {
                self.lock().stereo_allowed = c.value == 1;
                Ok(())
            }
            DRM_CLIENT_CAP_UNIVERSAL_PLANES => {
                self.lock().caps.universal_planes = c.value == 1;
                Ok(())
            }
            DRM_CLIENT_CAP_ATOMIC if self.kms.is_none() => {
                Err(Error::new(Errno::EOPNOTSUPP, "driver without atomic mode setting"))
            }
            DRM_CLIENT_CAP_ATOMIC if c.value > 2 => Err(einval("atomic cap value must be 0, 1 or 2")),
            DRM_CLIENT_CAP_ATOMIC => {
                // Atomic implies universal planes (and aspect-ratio modes).
                let caps = &mut self.lock().caps;
                (caps.atomic, caps.universal_planes, caps.aspect_ratio) = (c.value != 0, c.value != 0, c.value != 0);
                Ok(())
            }
            DRM_CLIENT_CAP_ASPECT_RATIO => {
                self.lock().caps.aspect_ratio = c.value == 1;
                Ok(())
            }
            DRM_CLIENT_CAP_WRITEBACK_CONNECTORS if !self.lock().caps.atomic || c.value > 1 => {
                Err(einval("writeback connectors need atomic; value 0 or 1"))
            }
            DRM_CLIENT_CAP_WRITEBACK_CONNECTORS => Ok(()),
            _ => Err(einval("unknown or unsupported client cap")),
        }
    }

    /// `drm_gem_close_ioctl`.
    fn gem_close(&self, c: &mut DrmGemClose) -> Result<()> {
        let buf = self.lock().handles.remove(c.handle)?;
        tracing::debug!(driver = self.info().name, handle = c.handle, buf = ?buf.id(), "GEM handle closed");
        Ok(())
    }

    /// `drm_prime_handle_to_fd_ioctl`: flags first, then the handle.
    fn prime_handle_to_fd(&self, p: &mut DrmPrimeHandle, files: &mut dyn Files) -> Result<()> {
        if p.flags & !(DRM_CLOEXEC | DRM_RDWR) != 0 {
            return Err(einval("PRIME flags outside DRM_CLOEXEC|DRM_RDWR"));
        }
        let buf = self.lock().handles.get(p.handle)?;
        p.fd = files.install(File::new(buf), p.flags)?;
        Ok(())
    }

    /// `drm_prime_fd_to_handle_ioctl`: the buffer's handle in this file,
    /// made at the first import.
    fn prime_fd_to_handle(&self, p: &mut DrmPrimeHandle, files: &mut dyn Files) -> Result<()> {
        let file = files.lookup(i64::from(p.fd))?;
        let buf = file.as_dma_buf().ok_or(einval("not a dma-buf"))?;
        p.handle = self.lock().handles.get_or_insert(buf)?;
        Ok(())
    }

    /// `drm_mode_create_dumb`: sizes checked against overflow before the
    /// driver allocates; outputs zeroed first.
    fn create_dumb(&self, d: &mut DrmModeCreateDumb) -> Result<()> {
        if d.width == 0 || d.height == 0 || d.bpp == 0 {
            return Err(einval("dumb buffer with a zero dimension"));
        }
        let cpp = d.bpp.div_ceil(8);
        let pitch = cpp.checked_mul(d.width).ok_or(einval("dumb buffer pitch overflows"))?;
        let size = pitch.checked_mul(d.height).ok_or(einval("dumb buffer size overflows"))?;
        let size = Len::page_align(u64::from(size)).ok_or(einval("dumb buffer of zero pages"))?;
        (d.handle, d.pitch, d.size) = (0, 0, 0);
        let buf = self.driver.dumb_create(size)?;
        d.handle = self.lock().handles.get_or_insert(buf)?;
        d.pitch = pitch;
        d.size = size.bytes();
        Ok(())
    }

    /// `drm_mode_mmap_dumb_ioctl`: a fake offset for `mmap` of the card fd
    /// (which the serving layer does not map: docs/serving.md).
    fn map_dumb(&self, m: &mut DrmModeMapDumb) -> Result<()> {
        self.lock().handles.get(m.handle)?;
        m.offset = MMAP_OFFSET_BASE + (u64::from(m.handle) << 24);
        Ok(())
    }

    /// `drm_mode_destroy_dumb_ioctl`: a `GEM_CLOSE`.
    fn destroy_dumb(&self, d: &mut DrmModeDestroyDumb) -> Result<()> {
        self.lock().handles.remove(d.handle).map(drop)
    }
}

impl DrmFile {
    /// The kind of a DRM card file.
    pub const KIND: FileKind = FileKind::new("drm");
}

/// An open card node: the DRM ioctls; no mmap here (dumb buffers are
/// mapped through their PRIME fd), no llseek.
impl FileOps for DrmFile {
    fn kind(&self) -> FileKind {
        DrmFile::KIND
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        DrmFile::ioctl(self, cmd, arg, mem, files)
    }

    /// `drm_poll`: readable while an event is queued.
    fn poll(&self) -> PollEvents {
        match &self.kms {
            Some(k) if k.events.readable() => PollEvents::IN,
            _ => PollEvents::NONE,
        }
    }

    fn watch_ready(&self, wake: Box<dyn FnOnce() + Send>) -> Option<ReadyWatch> {
        let k = self.kms.as_ref()?;
        let id = k.events.on_ready(wake);
        Some(ReadyWatch::new(EventWatch { file: Arc::downgrade(k), id }))
    }
}

/// A wait for a DRM file's events; dropping it takes the waker back, so a
/// program that polls again and again with no event coming holds nothing.
#[derive(Debug)]
struct EventWatch {
    file: std::sync::Weak<kms::KmsFile>,
    id: Option<u64>,
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        if let (Some(id), Some(k)) = (self.id, self.file.upgrade()) {
            k.events.forget(id);
        }
    }
}

/// The handler's view of the kernel copy of the argument.
fn parse<T: FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout>(k: &mut [u8]) -> Result<&mut T> {
    T::mut_from_bytes(k).map_err(|_| einval("bad argument size"))
}

/// `drm_copy_field`: at most `*len` bytes of `value` to `ptr`, then the
/// full length to `*len`.
fn copy_field(mem: &dyn UserMemory, len: &mut u64, ptr: u64, value: &str) -> Result<()> {
    let n = usize::try_from(*len).unwrap_or(usize::MAX).min(value.len());
    *len = value.len() as u64;
    if n > 0 && ptr != 0 {
        mem.write(UserPtr(ptr), &value.as_bytes()[..n]).map_err(|_| efault("cannot write a version string"))?;
    }
    Ok(())
}
