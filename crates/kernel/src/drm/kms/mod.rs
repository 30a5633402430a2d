//! Kernel mode setting for a display like vkms: one CRTC, its primary
//! plane, one virtual encoder and one virtual connector with 1920x1080
//! and 3840x2160 modes; framebuffers, property blobs, legacy `SETCRTC` and
//! `PAGE_FLIP`, atomic commits with `IN_FENCE_FD` / `OUT_FENCE_PTR`, flip
//! events, and a CRC of every frame scanned out.
//!
//! The [`KmsDevice`] is the device (its state, its mode objects, the
//! display controller); a [`KmsFile`] is one open file's part (its
//! framebuffers, its blobs, its events, whether it is master). A commit
//! runs inside the call that makes it: the display reads the framebuffer
//! through the firewall as [`Master::Display`] (protected framebuffers
//! where the use case lets the display read them, never the CPU), records
//! the frame's CRC, then signals the out-fence and queues the event — so
//! when the call returns the frame is on screen.

pub mod atomic;
pub mod event;
pub mod fb;
pub mod props;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use teeheap_platform::Platform;
use teeheap_platform::devices::{Display, ScanPlane};
use teeheap_sync::Recover;
use teeheap_uapi::drm::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::dma_buf::DmaBuf;
use crate::dma_buf::fence::{Fence, monotonic_ns};
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{File, Files};
use crate::sync_file::SyncFile;
use crate::uaccess::{UserMemory, UserPtr};

use atomic::{Blob, SetEffect, State, Target};
use event::EventQueue;
use fb::Fb;
use props::Prop;

/// Mode-object id of the primary plane.
pub const PLANE_ID: u32 = 31;
/// Mode-object id of the CRTC.
pub const CRTC_ID: u32 = 32;
/// Mode-object id of the encoder.
pub const ENCODER_ID: u32 = 33;
/// Mode-object id of the connector.
pub const CONNECTOR_ID: u32 = 34;
/// Framebuffers and blobs take the lowest free id above this.
const FIRST_DYNAMIC_ID: u32 = 35;
/// Largest blob a client may create (a mode is 68 bytes).
pub const MAX_BLOB: u32 = 1 << 20;
/// Bytes all live property blobs of the device may hold, each blob's
/// length plus [`BLOB_OVERHEAD`] (the memory cgroup's part in Linux):
/// `CREATEPROPBLOB` past it is `ENOMEM`, so no program grows the daemon
/// without bound.
pub const BLOB_BUDGET: u64 = 64 << 20;
/// What one blob costs besides its bytes, for [`BLOB_BUDGET`].
pub const BLOB_OVERHEAD: u64 = 128;
/// CRC entries kept (`crc/data` lines).
pub const CRC_LOG: usize = 1024;

const fn mode(clock: u32, h: [u16; 4], v: [u16; 4], ty: u32, name: &[u8]) -> DrmModeModeinfo {
    let mut n = [0u8; DRM_DISPLAY_MODE_LEN];
    let mut i = 0;
    while i < name.len() {
        n[i] = name[i];
        i += 1;
    }
    DrmModeModeinfo {
        clock,
        hdisplay: h[0],
        hsync_start: h[1],
        hsync_end: h[2],
        htotal: h[3],
        hskew: 0,
        vdisplay: v[0],
        vsync_start: v[1],
        vsync_end: v[2],
        vtotal: v[3],
        vscan: 0,
        vrefresh: 60,
        flags: DRM_MODE_FLAG_PHSYNC | DRM_MODE_FLAG_PVSYNC,
        type_: ty,
        name: n,
    }
}

/// The connector's modes (CEA 1080p60, preferred, and 2160p60).
pub const MODES: [DrmModeModeinfo; 2] = [
    mode(
        148_500,
        [1920, 2008, 2052, 2200],
        [1080, 1084, 1089, 1125],
        DRM_MODE_TYPE_DRIVER | DRM_MODE_TYPE_PREFERRED,
        b"1920x1080",
    ),
    mode(594_000, [3840, 4016, 4104, 4400], [2160, 2168, 2178, 2250], DRM_MODE_TYPE_DRIVER, b"3840x2160"),
];

/// A mode object found by id.
#[derive(Clone, Debug)]
enum Obj {
    Property,
    Plane,
    Crtc,
    Encoder,
    Connector,
    Fb(Arc<Fb>),
    Blob(Arc<Blob>),
}

impl Obj {
    fn type_code(&self) -> u32 {
        match self {
            Obj::Property => DRM_MODE_OBJECT_PROPERTY,
            Obj::Plane => DRM_MODE_OBJECT_PLANE,
            Obj::Crtc => DRM_MODE_OBJECT_CRTC,
            Obj::Encoder => DRM_MODE_OBJECT_ENCODER,
            Obj::Connector => DRM_MODE_OBJECT_CONNECTOR,
            Obj::Fb(_) => DRM_MODE_OBJECT_FB,
            Obj::Blob(_) => DRM_MODE_OBJECT_BLOB,
        }
    }

    /// The properties attached, and where atomic sets go.
    fn props(&self) -> Option<(&'static [Prop], Target)> {
        match self {
            Obj::Plane => Some((&props::PLANE, Target::Plane)),
            Obj::Crtc => Some((&props::CRTC, Target::Crtc)),
            Obj::Connector => Some((&props::CONNECTOR, Target::Connector)),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Dynamic {
    Fb(Weak<Fb>),
    Blob(Weak<Blob>),
}

/// One scanned-out frame's CRC, as `crc/data` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCrc {
    /// The frame (vblank) number.
    pub frame: u64,
    /// CRC32 of the primary plane's source rectangle, planes in order.
    pub crc: u32,
}

/// What a client file may do (its caps).
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    /// `DRM_CLIENT_CAP_UNIVERSAL_PLANES`.
    pub universal_planes: bool,
    /// `DRM_CLIENT_CAP_ATOMIC`.
    pub atomic: bool,
    /// `DRM_CLIENT_CAP_ASPECT_RATIO` (also implied by atomic).
    pub aspect_ratio: bool,
}

/// `DRM_MODE_FLAG_PIC_AR_MASK`: a mode's picture aspect-ratio bits.
const PIC_AR_MASK: u32 = 0xf << 19;

/// The display device. See the module documentation.
#[derive(Debug)]
pub struct KmsDevice {
    platform: Arc<Platform>,
    display: Display,
    /// Serialises commits (the modeset locks of one CRTC).
    modeset: Mutex<()>,
    state: Mutex<State>,
    objects: Mutex<BTreeMap<u32, Dynamic>>,
    master: Mutex<Option<u64>>,
    next_file: AtomicU64,
    frame: AtomicU64,
    crcs: Mutex<VecDeque<FrameCrc>>,
}

/// One open file's mode-setting part. Dropping it (the file's release)
/// removes its framebuffers from the display, drops its blobs and gives
/// up master.
#[derive(Debug)]
pub struct KmsFile {
    dev: Arc<KmsDevice>,
    id: u64,
    /// Its events.
    pub events: EventQueue,
    fbs: Mutex<Vec<Arc<Fb>>>,
    blobs: Mutex<Vec<Arc<Blob>>>,
    closing: AtomicBool,
}

impl KmsDevice {
    /// A display on `platform`, off.
    pub fn new(platform: Arc<Platform>) -> Arc<KmsDevice> {
        Arc::new(KmsDevice {
            platform,
            display: Display::new(),
            modeset: Mutex::new(()),
            state: Mutex::new(State::default()),
            objects: Mutex::new(BTreeMap::new()),
            master: Mutex::new(None),
            next_file: AtomicU64::new(1),
            frame: AtomicU64::new(0),
            crcs: Mutex::new(VecDeque::new()),
        })
    }

    /// Opens a file; the first file while there is no master becomes it
    /// (`drm_master_open`).
    pub fn open(self: &Arc<Self>) -> Arc<KmsFile> {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.master.lock().recover().get_or_insert(id);
        Arc::new(KmsFile {
            dev: Arc::clone(self),
            id,
            events: EventQueue::default(),
            fbs: Mutex::new(Vec::new()),
            blobs: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
        })
    }

    /// The CRCs of the last frames scanned out (at most [`CRC_LOG`]),
    /// oldest first.
    pub fn crcs(&self) -> Vec<FrameCrc> {
        self.crcs.lock().recover().iter().copied().collect()
    }

    /// Frames committed to the screen so far (the vblank counter).
    pub fn frames(&self) -> u64 {
        self.frame.load(Ordering::Relaxed)
    }

    /// The current state (for tests and views).
    pub fn state(&self) -> State {
        self.state.lock().recover().clone()
    }

    fn find(&self, id: u32) -> Option<Obj> {
        match id {
            _ if Prop::from_id(id).is_some() => Some(Obj::Property),
            PLANE_ID => Some(Obj::Plane),
            CRTC_ID => Some(Obj::Crtc),
            ENCODER_ID => Some(Obj::Encoder),
            CONNECTOR_ID => Some(Obj::Connector),
            _ => match self.objects.lock().recover().get(&id)? {
                Dynamic::Fb(w) => w.upgrade().map(Obj::Fb),
                Dynamic::Blob(w) => w.upgrade().map(Obj::Blob),
            },
        }
    }

    fn find_typed(&self, id: u32, ty: u32) -> Option<Obj> {
        self.find(id).filter(|o| ty == DRM_MODE_OBJECT_ANY || o.type_code() == ty)
    }

    fn fb(&self, id: u32) -> Option<Arc<Fb>> {
        match self.find(id)? {
            Obj::Fb(f) => Some(f),
            _ => None,
        }
    }

    fn blob(&self, id: u32) -> Option<Arc<Blob>> {
        match self.find(id)? {
            Obj::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// Registers a new dynamic object made by `make` under the lowest free
    /// id (`idr_alloc`), dropping entries whose object is gone.
    fn register<T>(&self, make: impl FnOnce(u32) -> Result<Arc<T>>, wrap: fn(Weak<T>) -> Dynamic) -> Result<Arc<T>> {
        let mut objs = self.objects.lock().recover();
        objs.retain(|_, d| match d {
            Dynamic::Fb(w) => w.strong_count() > 0,
            Dynamic::Blob(w) => w.strong_count() > 0,
        });
        let mut id = FIRST_DYNAMIC_ID;
        for &k in objs.keys() {
            if k != id {
                break;
            }
            id = id.checked_add(1).ok_or(Error::new(Errno::ENOSPC, "no free mode-object id"))?;
        }
        let obj = make(id)?;
        objs.insert(id, wrap(Arc::downgrade(&obj)));
        Ok(obj)
    }

    /// Bytes the live blobs take against [`BLOB_BUDGET`].
    fn blob_bytes(&self) -> u64 {
        let objs = self.objects.lock().recover();
        objs.values()
            .filter_map(|d| match d {
                Dynamic::Blob(w) => w.upgrade().map(|b| b.data.len() as u64 + BLOB_OVERHEAD),
                Dynamic::Fb(_) => None,
            })
            .sum()
    }

    fn new_blob(&self, data: Vec<u8>) -> Result<Arc<Blob>> {
        self.register(|id| Ok(Arc::new(Blob { id, data })), Dynamic::Blob)
    }

    fn is_master(&self, file: &KmsFile) -> bool {
        *self.master.lock().recover() == Some(file.id)
    }

    fn value(&self, st: &State, prop: Prop) -> u64 {
        let p = &st.plane;
        let crtc = |on: bool| if on { u64::from(CRTC_ID) } else { 0 };
        match prop {
            Prop::Type => props::PLANE_TYPE_PRIMARY,
            Prop::FbId => p.fb.as_ref().map_or(0, |f| u64::from(f.id)),
            Prop::InFenceFd => u64::MAX,
            Prop::CrtcId => crtc(p.crtc),
            Prop::CrtcX => p.crtc_x as i64 as u64,
            Prop::CrtcY => p.crtc_y as i64 as u64,
            Prop::CrtcW => u64::from(p.crtc_w),
            Prop::CrtcH => u64::from(p.crtc_h),
            Prop::SrcX => u64::from(p.src_x),
            Prop::SrcY => u64::from(p.src_y),
            Prop::SrcW => u64::from(p.src_w),
            Prop::SrcH => u64::from(p.src_h),
            Prop::Active => u64::from(st.active),
            Prop::ModeId => st.mode.as_ref().map_or(0, |b| u64::from(b.id)),
            Prop::OutFencePtr | Prop::Edid | Prop::NonDesktop | Prop::Tile => 0,
            Prop::Dpms => {
                if st.conn_crtc && st.active {
                    props::DPMS_ON
                } else {
                    props::DPMS_OFF
                }
            }
            Prop::LinkStatus => u64::from(st.link_bad),
        }
    }

    /// Commits `new` (checked) and shows it: scan-out and CRC when the plane
    /// is visible, then the out-fence and the event. Returns the frame
    /// number.
    fn commit(&self, new: State, done: Done<'_>) -> u64 {
        let visible = new.visible();
        *self.state.lock().recover() = new.clone();
        let frame = self.frame.fetch_add(1, Ordering::Relaxed) + 1;
        if visible {
            self.scan_out(&new, frame);
        }
        if let Some(f) = done.fence {
            f.signal();
        }
        if let Some((file, r, user_data)) = done.event {
            file.events.send(r, user_data, monotonic_ns(), frame as u32, CRTC_ID);
        }
        frame
    }

    /// The display reads the plane's source rectangle of each
    /// framebuffer plane as its own bus master and records the CRC.
    fn scan_out(&self, st: &State, frame: u64) {
        let Some(fb) = st.plane.fb.as_ref() else { return };
        let Some(info) = fb::FormatInfo::of(fb.format) else { return };
        let (x, y, w, h) = (st.plane.src_x >> 16, st.plane.src_y >> 16, st.plane.src_w >> 16, st.plane.src_h >> 16);
        let sgs: Vec<_> = fb.planes.iter().map(|p| p.attachment.buffer().sg_table().ranges().to_vec()).collect();
        let mut planes = Vec::new();
        for (i, (p, sg)) in fb.planes.iter().zip(&sgs).enumerate() {
            let cpp = u64::from(info.cpp[i]);
            let (px, py) = if i == 0 { (x, y) } else { (x / info.sub.0, y / info.sub.1) };
            let (pw, ph) = info.plane_size(i, w, h);
            let offset = u64::from(p.offset) + u64::from(py) * u64::from(p.pitch) + u64::from(px) * cpp;
            planes.push(ScanPlane {
                sg,
                offset,
                pitch: u64::from(p.pitch),
                row_bytes: u64::from(pw) * cpp,
                rows: u64::from(ph),
            });
        }
        match self.display.scan_out_planes(&self.platform, &planes) {
            Ok(crc) => {
                let mut log = self.crcs.lock().recover();
                if log.len() == CRC_LOG {
                    log.pop_front();
                }
                log.push_back(FrameCrc { frame, crc });
                tracing::debug!(
                    frame,
                    crc = format_args!("{crc:08x}"),
                    protected = fb.is_protected(),
                    "vkms: frame on screen"
                );
            }
            Err(e) => tracing::warn!(frame, error = %e, "vkms: scan-out refused; the frame shows nothing"),
        }
    }
}

/// What a commit completes besides the state: the out-fence and the event.
#[derive(Default)]
struct Done<'a> {
    fence: Option<Arc<Fence>>,
    event: Option<(&'a KmsFile, event::Reservation, u64)>,
}

impl Drop for KmsFile {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        let fbs = std::mem::take(&mut *self.fbs.lock().recover());
        for fb in fbs {
            self.dev.remove_fb(&fb);
        }
        let mut master = self.dev.master.lock().recover();
        if *master == Some(self.id) {
            *master = None;
        }
    }
}

impl KmsDevice {
    /// `drm_framebuffer_remove`: takes `fb` off the plane if it is shown
    /// there (the plane goes off; the CRTC stays as it is).
    fn remove_fb(&self, fb: &Arc<Fb>) {
        let _g = self.modeset.lock().recover();
        let cur = self.state();
        if cur.plane.fb.as_ref().is_some_and(|f| Arc::ptr_eq(f, fb)) {
            let mut new = cur;
            new.plane.fb = None;
            new.plane.crtc = false;
            self.commit(new, Done::default());
        }
    }
}

/// `put_user` of element `i` of a user array of `T` at `base`.
fn put<T: IntoBytes + Immutable>(mem: &dyn UserMemory, base: u64, i: usize, v: &T) -> Result<()> {
    let at = base.checked_add((i * size_of::<T>()) as u64).ok_or(efault("array past the address space"))?;
    mem.write(UserPtr(at), v.as_bytes()).map_err(|_| efault("cannot write a user array"))
}

/// `get_user` of element `i` of a user array of `T` at `base`.
fn get<T: FromBytes + IntoBytes>(mem: &dyn UserMemory, base: u64, i: usize) -> Result<T> {
    let at = base.checked_add((i * size_of::<T>()) as u64).ok_or(efault("array past the address space"))?;
    let mut v = T::new_zeroed();
    mem.read(UserPtr(at), v.as_mut_bytes()).map_err(|_| efault("cannot read a user array"))?;
    Ok(v)
}

fn enoent(what: &'static str) -> Error {
    Error::new(Errno::ENOENT, what)
}

/// Ioctls whose handler needs master (`DRM_MASTER`).
fn needs_master(kcmd: u32) -> bool {
    matches!(kcmd, DRM_IOCTL_MODE_SETCRTC | DRM_IOCTL_MODE_PAGE_FLIP | DRM_IOCTL_MODE_ATOMIC | DRM_IOCTL_MODE_SETGAMMA)
}

impl KmsFile {
    /// The device.
    pub fn device(&self) -> &Arc<KmsDevice> {
        &self.dev
    }

    /// Whether this file is the device's master.
    pub fn is_master(&self) -> bool {
        self.dev.is_master(self)
    }

    /// `SET_MASTER`: becomes master if there is none.
    ///
    /// # Errors
    /// `EBUSY` while another file is master.
    pub fn set_master(&self) -> Result<()> {
        let mut m = self.dev.master.lock().recover();
        match *m {
            Some(id) if id != self.id => Err(Error::new(Errno::EBUSY, "another file is master")),
            _ => {
                *m = Some(self.id);
                Ok(())
            }
        }
    }

    /// `DROP_MASTER`.
    ///
    /// # Errors
    /// `EINVAL` if this file is not master.
    pub fn drop_master(&self) -> Result<()> {
        let mut m = self.dev.master.lock().recover();
        if *m != Some(self.id) {
            return Err(einval("not master"));
        }
        *m = None;
        Ok(())
    }

    /// A mode-setting ioctl on the kernel copy `k` of its argument.
    /// `gem` finds this file's GEM objects by handle.
    ///
    /// # Errors
    /// `EACCES` for a master-only ioctl of a file that is not master, then
    /// the handler's errno.
    pub fn ioctl(
        &self,
        caps: Caps,
        kcmd: u32,
        k: &mut [u8],
        mem: &dyn UserMemory,
        files: &mut dyn Files,
        gem: &dyn Fn(u32) -> Result<Arc<DmaBuf>>,
    ) -> Result<()> {
        if needs_master(kcmd) && !self.is_master() {
            return Err(Error::new(Errno::EACCES, "only the master may do this"));
        }
        match kcmd {
            DRM_IOCTL_MODE_GETRESOURCES => self.get_resources(parse(k)?, mem),
            DRM_IOCTL_MODE_GETCRTC => self.get_crtc(caps, parse(k)?),
            DRM_IOCTL_MODE_SETCRTC => self.set_crtc(caps, parse(k)?, mem),
            DRM_IOCTL_MODE_SETGAMMA => {
                let l: &mut DrmModeCrtcLut = parse(k)?;
                if l.crtc_id != CRTC_ID {
                    Err(enoent("no such CRTC"))
                } else {
                    Err(Error::new(Errno::ENOSYS, "no gamma"))
                }
            }
            DRM_IOCTL_MODE_GETENCODER => self.get_encoder(parse(k)?),
            DRM_IOCTL_MODE_GETCONNECTOR => self.get_connector(caps, parse(k)?, mem),
            DRM_IOCTL_MODE_GETPROPERTY => get_property(parse(k)?, mem),
            DRM_IOCTL_MODE_GETPROPBLOB => self.get_blob(parse(k)?, mem),
            DRM_IOCTL_MODE_RMFB => self.rmfb(parse(k)?),
            DRM_IOCTL_MODE_PAGE_FLIP => self.page_flip(parse(k)?),
            DRM_IOCTL_MODE_GETPLANERESOURCES => self.get_plane_resources(caps, parse(k)?, mem),
            DRM_IOCTL_MODE_GETPLANE => self.get_plane(parse(k)?, mem),
            DRM_IOCTL_MODE_ADDFB2 => self.addfb2(parse(k)?, gem),
            DRM_IOCTL_MODE_OBJ_GETPROPERTIES => self.obj_get_properties(caps, parse(k)?, mem),
            DRM_IOCTL_MODE_ATOMIC => self.atomic(caps, parse(k)?, mem, files),
            DRM_IOCTL_MODE_CREATEPROPBLOB => self.create_blob(parse(k)?, mem),
            DRM_IOCTL_MODE_DESTROYPROPBLOB => self.destroy_blob(parse(k)?),
            _ => Err(einval("no handler for this mode ioctl")),
        }
    }

    fn get_resources(&self, r: &mut DrmModeCardRes, mem: &dyn UserMemory) -> Result<()> {
        let fbs: Vec<u32> = self.fbs.lock().recover().iter().rev().map(|f| f.id).collect();
        for (i, id) in fbs.iter().enumerate().take(r.count_fbs as usize) {
            put(mem, r.fb_id_ptr, i, id)?;
        }
        r.count_fbs = fbs.len() as u32;
        (r.min_width, r.max_width, r.min_height, r.max_height) =
            (fb::MIN_SIZE, fb::MAX_SIZE, fb::MIN_SIZE, fb::MAX_SIZE);
        for (ptr, count, id) in [
            (r.crtc_id_ptr, &mut r.count_crtcs, CRTC_ID),
            (r.encoder_id_ptr, &mut r.count_encoders, ENCODER_ID),
            (r.connector_id_ptr, &mut r.count_connectors, CONNECTOR_ID),
        ] {
            if *count >= 1 {
                put(mem, ptr, 0, &id)?;
            }
            *count = 1;
        }
        Ok(())
    }

    fn get_crtc(&self, caps: Caps, c: &mut DrmModeCrtc) -> Result<()> {
        if c.crtc_id != CRTC_ID {
            return Err(enoent("no such CRTC"));
        }
        let st = self.dev.state();
        c.gamma_size = 0;
        c.fb_id = st.plane.fb.as_ref().map_or(0, |f| f.id);
        (c.x, c.y) = (st.plane.src_x >> 16, st.plane.src_y >> 16);
        match st.mode_info() {
            Some(mut m) => {
                if !caps.aspect_ratio {
                    m.flags &= !PIC_AR_MASK;
                }
                (c.mode, c.mode_valid) = (m, 1);
            }
            None => (c.mode, c.mode_valid) = (DrmModeModeinfo::default(), 0),
        }
        Ok(())
    }

    fn get_encoder(&self, e: &mut DrmModeGetEncoder) -> Result<()> {
        if e.encoder_id != ENCODER_ID {
            return Err(enoent("no such encoder"));
        }
        e.crtc_id = if self.dev.state().conn_crtc { CRTC_ID } else { 0 };
        (e.encoder_type, e.possible_crtcs, e.possible_clones) = (DRM_MODE_ENCODER_VIRTUAL, 1, 1);
        Ok(())
    }

    fn get_connector(&self, caps: Caps, c: &mut DrmModeGetConnector, mem: &dyn UserMemory) -> Result<()> {
        if c.connector_id != CONNECTOR_ID {
            return Err(enoent("no such connector"));
        }
        if c.count_encoders >= 1 {
            put(mem, c.encoders_ptr, 0, &ENCODER_ID)?;
        }
        c.count_encoders = 1;
        (c.connector_type, c.connector_type_id) = (DRM_MODE_CONNECTOR_VIRTUAL, 1);
        (c.mm_width, c.mm_height, c.subpixel, c.connection) = (0, 0, 0, DRM_MODE_CONNECTED);
        if c.count_modes as usize >= MODES.len() {
            for (i, m) in MODES.iter().enumerate() {
                put(mem, c.modes_ptr, i, m)?;
            }
        }
        c.count_modes = MODES.len() as u32;
        let st = self.dev.state();
        c.encoder_id = if st.conn_crtc { ENCODER_ID } else { 0 };
        self.put_props(caps, &st, &props::CONNECTOR, c.props_ptr, c.prop_values_ptr, &mut c.count_props, mem)
    }

    /// `drm_mode_object_get_properties`.
    #[allow(clippy::too_many_arguments)]
    fn put_props(
        &self,
        caps: Caps,
        st: &State,
        list: &[Prop],
        ids: u64,
        values: u64,
        count: &mut u32,
        mem: &dyn UserMemory,
    ) -> Result<()> {
        let mut n = 0usize;
        for &p in list.iter().filter(|p| caps.atomic || !p.is_atomic()) {
            if (*count as usize) > n {
                put(mem, ids, n, &p.id())?;
                put(mem, values, n, &self.dev.value(st, p))?;
            }
            n += 1;
        }
        *count = n as u32;
        Ok(())
    }

    fn obj_get_properties(&self, caps: Caps, o: &mut DrmModeObjGetProperties, mem: &dyn UserMemory) -> Result<()> {
        let obj = self.dev.find_typed(o.obj_id, o.obj_type).ok_or(enoent("no such object"))?;
        let (list, _) = obj.props().ok_or(einval("object without properties"))?;
        let st = self.dev.state();
        self.put_props(caps, &st, list, o.props_ptr, o.prop_values_ptr, &mut o.count_props, mem)
    }

    fn get_plane_resources(&self, caps: Caps, r: &mut DrmModeGetPlaneRes, mem: &dyn UserMemory) -> Result<()> {
        // Only overlays unless the client asked for universal planes.
        let n = u32::from(caps.universal_planes);
        if n == 1 && r.count_planes >= 1 {
            put(mem, r.plane_id_ptr, 0, &PLANE_ID)?;
        }
        r.count_planes = n;
        Ok(())
    }

    fn get_plane(&self, p: &mut DrmModeGetPlane, mem: &dyn UserMemory) -> Result<()> {
        if p.plane_id != PLANE_ID {
            return Err(enoent("no such plane"));
        }
        let st = self.dev.state();
        p.crtc_id = if st.plane.crtc { CRTC_ID } else { 0 };
        p.fb_id = st.plane.fb.as_ref().map_or(0, |f| f.id);
        (p.possible_crtcs, p.gamma_size) = (1, 0);
        if p.count_format_types as usize >= fb::FORMATS.len() {
            for (i, f) in fb::FORMATS.iter().enumerate() {
                put(mem, p.format_type_ptr, i, f)?;
            }
        }
        p.count_format_types = fb::FORMATS.len() as u32;
        Ok(())
    }

    fn get_blob(&self, b: &mut DrmModeGetBlob, mem: &dyn UserMemory) -> Result<()> {
        let blob = self.dev.blob(b.blob_id).ok_or(enoent("no such blob"))?;
        if b.length as usize == blob.data.len() {
            mem.write(UserPtr(b.data), &blob.data).map_err(|_| efault("cannot write the blob"))?;
        }
        b.length = blob.data.len() as u32;
        Ok(())
    }

    fn create_blob(&self, c: &mut DrmModeCreateBlob, mem: &dyn UserMemory) -> Result<()> {
        if c.length == 0 || c.length > i32::MAX as u32 - 64 {
            return Err(einval("blob length"));
        }
        if c.length > MAX_BLOB {
            return Err(Error::new(Errno::ENOMEM, "blob larger than this model keeps"));
        }
        if self.dev.blob_bytes() + u64::from(c.length) + BLOB_OVERHEAD > BLOB_BUDGET {
            return Err(Error::new(Errno::ENOMEM, "the device's blobs use up their memory"));
        }
        let mut data = vec![0u8; c.length as usize];
        mem.read(UserPtr(c.data), &mut data).map_err(|_| efault("cannot read the blob"))?;
        let blob = self.dev.new_blob(data)?;
        c.blob_id = blob.id;
        self.blobs.lock().recover().push(blob);
        Ok(())
    }

    fn destroy_blob(&self, d: &mut DrmModeDestroyBlob) -> Result<()> {
        let blob = self.dev.blob(d.blob_id).ok_or(enoent("no such blob"))?;
        let mut mine = self.blobs.lock().recover();
        let i =
            mine.iter().position(|b| Arc::ptr_eq(b, &blob)).ok_or(Error::new(Errno::EPERM, "not this file's blob"))?;
        mine.remove(i);
        Ok(())
    }

    fn addfb2(&self, r: &mut DrmModeFbCmd2, gem: &dyn Fn(u32) -> Result<Arc<DmaBuf>>) -> Result<()> {
        let info = fb::check(r)?;
        let fb = self.dev.register(|id| fb::build(id, r, info, gem).map(Arc::new), Dynamic::Fb)?;
        r.fb_id = fb.id;
        self.fbs.lock().recover().push(fb);
        Ok(())
    }

    fn rmfb(&self, id: &mut u32) -> Result<()> {
        let fb = self.dev.fb(*id).ok_or(enoent("no such framebuffer"))?;
        let mine = {
            let mut fbs = self.fbs.lock().recover();
            let i = fbs.iter().position(|f| Arc::ptr_eq(f, &fb)).ok_or(enoent("not this file's framebuffer"))?;
            fbs.remove(i)
        };
        self.dev.remove_fb(&mine);
        Ok(())
    }

    /// `drm_mode_setcrtc` through `drm_atomic_helper_set_config`.
    fn set_crtc(&self, caps: Caps, c: &mut DrmModeCrtc, mem: &dyn UserMemory) -> Result<()> {
        if c.x & 0xffff_0000 != 0 || c.y & 0xffff_0000 != 0 {
            return Err(Error::new(Errno::ERANGE, "CRTC offset past 16 bits"));
        }
        if c.crtc_id != CRTC_ID {
            return Err(enoent("no such CRTC"));
        }
        let _g = self.dev.modeset.lock().recover();
        let cur = self.dev.state();
        let mut set = None;
        if c.mode_valid != 0 {
            let fb = if c.fb_id == u32::MAX {
                cur.plane.fb.clone().ok_or(einval("CRTC has no current FB"))?
            } else {
                self.dev.fb(c.fb_id).ok_or(enoent("no such framebuffer"))?
            };
            if !caps.aspect_ratio && c.mode.flags & PIC_AR_MASK != 0 {
                return Err(einval("aspect-ratio bits without DRM_CLIENT_CAP_ASPECT_RATIO"));
            }
            atomic::check_mode(&c.mode)?;
            atomic::check_viewport(c.x, c.y, &c.mode, &fb)?;
            set = Some((fb, c.mode));
        }
        if c.count_connectors == 0 && set.is_some() {
            return Err(einval("mode set without connectors"));
        }
        if c.count_connectors > 0 && set.is_none() {
            return Err(einval("connectors without a mode and FB"));
        }
        if c.count_connectors > 1 {
            return Err(einval("more connectors than the device has"));
        }
        if c.count_connectors == 1 && get::<u32>(mem, c.set_connectors_ptr, 0)? != CONNECTOR_ID {
            return Err(enoent("no such connector"));
        }
        let mut new = cur.clone();
        match set {
            None => {
                (new.active, new.mode, new.conn_crtc) = (false, None, false);
                (new.plane.crtc, new.plane.fb) = (false, None);
            }
            Some((fb, m)) => {
                let same = cur.mode_info().is_some_and(|old| old.as_bytes() == m.as_bytes());
                if !same {
                    new.mode = Some(self.dev.new_blob(m.as_bytes().to_vec())?);
                }
                (new.active, new.conn_crtc) = (true, true);
                let (w, h) = (u32::from(m.hdisplay), u32::from(m.vdisplay));
                new.plane = atomic::PlaneState {
                    crtc: true,
                    fb: Some(fb),
                    crtc_x: 0,
                    crtc_y: 0,
                    crtc_w: w,
                    crtc_h: h,
                    src_x: c.x << 16,
                    src_y: c.y << 16,
                    src_w: w << 16,
                    src_h: h << 16,
                };
            }
        }
        atomic::check(&cur, &new, true, false)?;
        self.dev.commit(new, Done::default());
        Ok(())
    }

    /// `drm_mode_page_flip_ioctl` through `drm_atomic_helper_page_flip`.
    fn page_flip(&self, p: &mut DrmModeCrtcPageFlip) -> Result<()> {
        const TARGET: u32 = 0x4 | 0x8;
        if p.flags & !(DRM_MODE_PAGE_FLIP_EVENT | DRM_MODE_PAGE_FLIP_ASYNC | TARGET) != 0 {
            return Err(einval("unknown page-flip flags"));
        }
        if p.flags & DRM_MODE_PAGE_FLIP_ASYNC != 0 {
            return Err(einval("no async page flips"));
        }
        if p.flags & TARGET == TARGET {
            return Err(einval("both flip targets"));
        }
        if p.crtc_id != CRTC_ID {
            return Err(enoent("no such CRTC"));
        }
        if p.flags & TARGET != 0 {
            return Err(einval("the CRTC has no flip targets"));
        }
        let _g = self.dev.modeset.lock().recover();
        let cur = self.dev.state();
        let old_fb = cur.plane.fb.clone().ok_or(Error::new(Errno::EBUSY, "no framebuffer bound"))?;
        let fb = self.dev.fb(p.fb_id).ok_or(enoent("no such framebuffer"))?;
        atomic::check_src(&cur.plane, &fb)?;
        if old_fb.format != fb.format {
            return Err(einval("a page flip may not change the format"));
        }
        let event = p.flags & DRM_MODE_PAGE_FLIP_EVENT != 0;
        let reservation = if event { Some(self.events.reserve()?) } else { None };
        let mut new = cur.clone();
        new.plane.fb = Some(fb);
        if let Err(e) = atomic::check(&cur, &new, false, true) {
            if let Some(r) = reservation {
                self.events.cancel(r);
            }
            return Err(e);
        }
        let done = Done { fence: None, event: reservation.map(|r| (self, r, p.user_data)) };
        self.dev.commit(new, done);
        Ok(())
    }

    /// `drm_mode_atomic_ioctl`.
    fn atomic(&self, caps: Caps, a: &mut DrmModeAtomic, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<()> {
        const FLAGS: u32 = DRM_MODE_PAGE_FLIP_EVENT
            | DRM_MODE_PAGE_FLIP_ASYNC
            | DRM_MODE_ATOMIC_TEST_ONLY
            | DRM_MODE_ATOMIC_NONBLOCK
            | DRM_MODE_ATOMIC_ALLOW_MODESET;
        if !caps.atomic {
            return Err(einval("atomic cap not enabled"));
        }
        if a.flags & !FLAGS != 0 || a.reserved != 0 {
            return Err(einval("bad atomic flags or reserved field"));
        }
        if a.flags & DRM_MODE_PAGE_FLIP_ASYNC != 0 {
            return Err(einval("no async flips"));
        }
        let test_only = a.flags & DRM_MODE_ATOMIC_TEST_ONLY != 0;
        let want_event = a.flags & DRM_MODE_PAGE_FLIP_EVENT != 0;
        if test_only && want_event {
            return Err(einval("cannot test and expect an event"));
        }
        let _g = self.dev.modeset.lock().recover();
        let cur = self.dev.state();
        let mut new = cur.clone();
        let (mut out_fence, mut in_fence, mut crtc_in_state) = (None, None, false);
        let mut copied = 0usize;
        for i in 0..a.count_objs as usize {
            let obj_id: u32 = get(mem, a.objs_ptr, i)?;
            let obj = self.dev.find(obj_id).ok_or(enoent("no such object"))?;
            let (list, target) = obj.props().ok_or(enoent("object without properties"))?;
            let count: u32 = get(mem, a.count_props_ptr, i)?;
            crtc_in_state |= match target {
                Target::Crtc => true,
                Target::Plane => cur.plane.crtc,
                Target::Connector => cur.conn_crtc,
            };
            for _ in 0..count {
                let prop_id: u32 = get(mem, a.props_ptr, copied)?;
                let prop =
                    Prop::from_id(prop_id).filter(|p| list.contains(p)).ok_or(enoent("property not on this object"))?;
                let value: u64 = get(mem, a.prop_values_ptr, copied)?;
                if !prop.accepts(value, |ty, id| self.dev.find_typed(id, ty).is_some()) {
                    return Err(einval("value outside the property's range, or no such object"));
                }
                let fb = (prop == Prop::FbId).then(|| self.dev.fb(value as u32)).flatten();
                let blob = (prop == Prop::ModeId).then(|| self.dev.blob(value as u32)).flatten();
                match atomic::set_property(&mut new, target, prop, value, fb, blob)? {
                    SetEffect::None => {}
                    SetEffect::OutFence(ptr) => {
                        mem.write(UserPtr(ptr), &(-1i32).to_ne_bytes()).map_err(|_| efault("OUT_FENCE_PTR"))?;
                        out_fence = Some(ptr);
                    }
                    SetEffect::InFence(fd) => {
                        if in_fence.is_some() {
                            return Err(einval("IN_FENCE_FD set twice"));
                        }
                        let f = files.lookup(i64::from(fd)).ok().and_then(|f| f.downcast::<SyncFile>());
                        in_fence = Some(f.ok_or(einval("IN_FENCE_FD is not a sync file"))?);
                    }
                }
                copied += 1;
            }
            crtc_in_state |= match target {
                Target::Plane => new.plane.crtc,
                Target::Connector => new.conn_crtc,
                Target::Crtc => true,
            };
        }
        // prepare_signaling
        let mut reservation = None;
        if !test_only && crtc_in_state && want_event {
            reservation = Some(self.events.reserve()?);
        }
        if !crtc_in_state && want_event {
            return Err(einval("an event needs a CRTC in the commit"));
        }
        let event = crtc_in_state && (want_event || out_fence.is_some());
        let allow = a.flags & DRM_MODE_ATOMIC_ALLOW_MODESET != 0;
        if let Err(e) = atomic::check(&cur, &new, allow, event) {
            if let Some(r) = reservation {
                self.events.cancel(r);
            }
            return Err(e);
        }
        if test_only {
            return Ok(());
        }
        // Nothing below may fail once the state is committed: the in-fence
        // wait and the out-fence fd come first, and a failure gives the
        // event's room back (`complete_signaling` without install).
        let fence = out_fence.map(|_| Fence::new("vkms", "crtc-0"));
        let prepared = (|| {
            if let Some(f) = &in_fence {
                wait_fence(f, files)?;
            }
            match (out_fence, &fence) {
                (Some(ptr), Some(fence)) => {
                    let file = File::new(SyncFile::new(vec![Arc::clone(fence)]));
                    Ok(Some((ptr, files.install(file, teeheap_uapi::dma_heap::O_CLOEXEC)?)))
                }
                _ => Ok(None),
            }
        })();
        let fd = match prepared {
            Ok(fd) => fd,
            Err(e) => {
                if let Some(r) = reservation {
                    self.events.cancel(r);
                }
                return Err(e);
            }
        };
        let done = Done { fence, event: reservation.map(|r| (self, r, a.user_data)) };
        self.dev.commit(new, done);
        if let Some((ptr, fd)) = fd {
            mem.write(UserPtr(ptr), &fd.to_ne_bytes()).map_err(|_| efault("OUT_FENCE_PTR"))?;
        }
        Ok(())
    }
}

/// Waits until `f` has signalled, giving up when the caller does.
fn wait_fence(f: &SyncFile, files: &dyn Files) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let _watch = f.watch(move || {
        let _ = tx.send(());
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) if f.is_signalled() => return Ok(()),
            _ if files.gave_up() => return Err(Error::new(Errno::EINTR, "interrupted waiting for IN_FENCE_FD")),
            _ => {}
        }
    }
}

/// `drm_mode_getproperty_ioctl`.
fn get_property(g: &mut DrmModeGetProperty, mem: &dyn UserMemory) -> Result<()> {
    let p = Prop::from_id(g.prop_id).ok_or(enoent("no such property"))?;
    g.name = props::name_field(p.name());
    g.flags = p.flags();
    // Each array is copied whole when the caller's count has room for it,
    // and not at all otherwise (the caller asks again with the count).
    let values = p.values();
    if g.count_values as usize >= values.len() {
        for (i, v) in values.iter().enumerate() {
            put(mem, g.values_ptr, i, v)?;
        }
    }
    g.count_values = values.len() as u32;
    match p.prop_type() {
        props::PropType::Enum(e) => {
            if g.count_enum_blobs as usize >= e.len() {
                for (i, &(value, name)) in e.iter().enumerate() {
                    put(mem, g.enum_blob_ptr, i, &DrmModePropertyEnum { value, name: props::name_field(name) })?;
                }
            }
            g.count_enum_blobs = e.len() as u32;
        }
        props::PropType::Blob => g.count_enum_blobs = 0,
        _ => {}
    }
    Ok(())
}

/// The handler's view of the kernel copy of the argument.
fn parse<T: FromBytes + IntoBytes + zerocopy::KnownLayout>(k: &mut [u8]) -> Result<&mut T> {
    T::mut_from_bytes(k).map_err(|_| einval("bad argument size"))
}
