//! vkms through the DRM core: the mode objects and their properties as
//! modetest reads them, legacy SETCRTC and PAGE_FLIP with events, atomic
//! commits with MODE_ID blobs, IN_FENCE_FD and OUT_FENCE_PTR, CRCs of the
//! scanned frames (system and protected framebuffers), master, and the
//! errno of each mistake.

mod common;

use std::sync::Arc;

use teeheap_kernel::Errno;
use teeheap_kernel::drm::DrmFile;
use teeheap_kernel::drm::kms::props::Prop;
use teeheap_kernel::drm::kms::{CONNECTOR_ID, CRTC_ID, ENCODER_ID, MODES, PLANE_ID};
use teeheap_kernel::file::{FdTable, File, FileOps, Files};
use teeheap_kernel::sync_file::SyncFile;
use teeheap_kernel::uaccess::UserPtr;
use teeheap_platform::Master;
use teeheap_uapi::drm::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use common::DrmSetup as Setup;

fn setup() -> Setup {
    common::drm_setup("dri/card0")
}

const W: u32 = 1920;
const H: u32 = 1080;

impl Setup {
    fn ioctl_on<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        card: &DrmFile,
        cmd: u32,
        arg: T,
    ) -> (Result<i64, Errno>, T) {
        let ptr = self.mem.map(arg.as_bytes());
        let r = card.ioctl(cmd, ptr, &self.mem, &mut self.files).map_err(|e| e.errno());
        (r, T::read_from_bytes(&self.mem.contents(ptr).unwrap()).unwrap())
    }

    fn cap(&mut self, capability: u64, value: u64) {
        assert_eq!(self.ioctl(DRM_IOCTL_SET_CLIENT_CAP, DrmSetClientCap { capability, value }).0, Ok(0));
    }

    /// A dumb buffer filled with `fill(i)` through a CPU mapping; its handle.
    fn dumb(&mut self, w: u32, h: u32, bpp: u32, fill: impl Fn(usize) -> u8) -> (u32, Vec<u8>) {
        let (r, d) = self
            .ioctl(DRM_IOCTL_MODE_CREATE_DUMB, DrmModeCreateDumb { width: w, height: h, bpp, ..Default::default() });
        assert_eq!(r, Ok(0));
        let (r, p) =
            self.ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, DrmPrimeHandle { handle: d.handle, flags: DRM_RDWR, fd: -1 });
        assert_eq!(r, Ok(0));
        let buf = self.files.get(p.fd).unwrap().as_dma_buf().unwrap();
        let bytes: Vec<u8> = (0..(d.pitch * h) as usize).map(fill).collect();
        buf.mmap(self.kernel.platform()).unwrap().write(0, &bytes).unwrap();
        self.files.close(p.fd).unwrap();
        (d.handle, bytes)
    }

    fn addfb(&mut self, handle: u32, format: u32, w: u32, h: u32) -> Result<u32, Errno> {
        let mut r = DrmModeFbCmd2 { width: w, height: h, pixel_format: format, ..Default::default() };
        r.handles[0] = handle;
        if format == DRM_FORMAT_NV12 {
            (r.handles[1], r.pitches, r.offsets) = (handle, [w, w, 0, 0], [0, w * h, 0, 0]);
        } else {
            r.pitches[0] = w * 4;
        }
        let (res, out) = self.ioctl(DRM_IOCTL_MODE_ADDFB2, r);
        res.map(|_| out.fb_id)
    }

    fn setcrtc(&mut self, fb_id: u32, mode: Option<DrmModeModeinfo>) -> Result<i64, Errno> {
        let conn = self.mem.map(CONNECTOR_ID.as_bytes());
        let c = DrmModeCrtc {
            set_connectors_ptr: conn.0,
            count_connectors: u32::from(mode.is_some()),
            crtc_id: CRTC_ID,
            fb_id,
            mode_valid: u32::from(mode.is_some()),
            mode: mode.unwrap_or_default(),
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_MODE_SETCRTC, c).0
    }

    fn last_crc(&self) -> u32 {
        self.kernel.display().unwrap().crcs().last().unwrap().crc
    }

    /// An atomic commit of `(object, [(prop, value)])`.
    fn atomic(&mut self, flags: u32, objs: &[(u32, &[(Prop, u64)])]) -> Result<i64, Errno> {
        let ids: Vec<u32> = objs.iter().map(|o| o.0).collect();
        let counts: Vec<u32> = objs.iter().map(|o| o.1.len() as u32).collect();
        let props: Vec<u32> = objs.iter().flat_map(|o| o.1.iter().map(|p| p.0.id())).collect();
        let values: Vec<u64> = objs.iter().flat_map(|o| o.1.iter().map(|p| p.1)).collect();
        let a = DrmModeAtomic {
            flags,
            count_objs: ids.len() as u32,
            objs_ptr: self.mem.map(ids.as_bytes()).0,
            count_props_ptr: self.mem.map(counts.as_bytes()).0,
            props_ptr: self.mem.map(props.as_bytes()).0,
            prop_values_ptr: self.mem.map(values.as_bytes()).0,
            reserved: 0,
            user_data: 0x55,
        };
        self.ioctl(DRM_IOCTL_MODE_ATOMIC, a).0
    }

    fn mode_blob(&mut self, m: &DrmModeModeinfo) -> u32 {
        let data = self.mem.map(m.as_bytes());
        let (r, b) =
            self.ioctl(DRM_IOCTL_MODE_CREATEPROPBLOB, DrmModeCreateBlob { data: data.0, length: 68, blob_id: 0 });
        assert_eq!(r, Ok(0));
        b.blob_id
    }
}

#[test]
fn resources_connector_modes_and_properties_as_modetest_reads_them() {
    let mut s = setup();
    let name = s.mem.map_zeroed(8);
    let (r, v) = s.ioctl(DRM_IOCTL_VERSION, DrmVersion { name_len: 8, name: name.0, ..Default::default() });
    assert_eq!((r, v.name_len), (Ok(0), 4));
    assert_eq!(&s.mem.contents(name).unwrap()[..5], b"vkms\0");
    assert_eq!(s.ioctl(DRM_IOCTL_GET_UNIQUE, DrmUnique::default()), (Ok(0), DrmUnique::default()));

    let ids = s.mem.map_zeroed(16);
    let (r, res) = s.ioctl(
        DRM_IOCTL_MODE_GETRESOURCES,
        DrmModeCardRes { crtc_id_ptr: ids.0, count_crtcs: 4, ..Default::default() },
    );
    assert_eq!(r, Ok(0));
    assert_eq!((res.count_fbs, res.count_crtcs, res.count_encoders, res.count_connectors), (0, 1, 1, 1));
    assert_eq!((res.min_width, res.max_width), (10, 8192));
    assert_eq!(&s.mem.contents(ids).unwrap()[..4], CRTC_ID.as_bytes());

    // Connector: two calls, as libdrm makes them.
    let (r, c) =
        s.ioctl(DRM_IOCTL_MODE_GETCONNECTOR, DrmModeGetConnector { connector_id: CONNECTOR_ID, ..Default::default() });
    assert_eq!((r, c.count_modes, c.count_encoders, c.connection), (Ok(0), 2, 1, DRM_MODE_CONNECTED));
    assert_eq!(
        (c.connector_type, c.count_props, c.encoder_id),
        (DRM_MODE_CONNECTOR_VIRTUAL, 5, 0),
        "CRTC_ID is atomic-only"
    );
    let modes = s.mem.map_zeroed(2 * 68);
    let (props, values) = (s.mem.map_zeroed(64), s.mem.map_zeroed(128));
    let (r, _) = s.ioctl(
        DRM_IOCTL_MODE_GETCONNECTOR,
        DrmModeGetConnector {
            connector_id: CONNECTOR_ID,
            count_modes: 2,
            modes_ptr: modes.0,
            count_props: 5,
            props_ptr: props.0,
            prop_values_ptr: values.0,
            ..Default::default()
        },
    );
    assert_eq!(r, Ok(0));
    let got = s.mem.contents(modes).unwrap();
    let m0 = DrmModeModeinfo::read_from_bytes(&got[..68]).unwrap();
    let m1 = DrmModeModeinfo::read_from_bytes(&got[68..136]).unwrap();
    assert_eq!((m0.hdisplay, m0.vdisplay, &m0.name[..9]), (1920, 1080, &b"1920x1080"[..]));
    assert_eq!((m1.hdisplay, m1.vdisplay), (3840, 2160));
    assert!(m0.type_ & DRM_MODE_TYPE_PREFERRED != 0);
    assert_eq!(&s.mem.contents(props).unwrap()[..4], Prop::Edid.id().as_bytes());

    // Planes: only with universal planes.
    let (r, pr) = s.ioctl(DRM_IOCTL_MODE_GETPLANERESOURCES, DrmModeGetPlaneRes::default());
    assert_eq!((r, pr.count_planes), (Ok(0), 0));
    s.cap(DRM_CLIENT_CAP_ATOMIC, 1);
    let (r, pr) = s.ioctl(DRM_IOCTL_MODE_GETPLANERESOURCES, DrmModeGetPlaneRes::default());
    assert_eq!((r, pr.count_planes), (Ok(0), 1));
    let formats = s.mem.map_zeroed(12);
    let (r, p) = s.ioctl(
        DRM_IOCTL_MODE_GETPLANE,
        DrmModeGetPlane { plane_id: PLANE_ID, count_format_types: 3, format_type_ptr: formats.0, ..Default::default() },
    );
    assert_eq!((r, p.count_format_types, p.possible_crtcs, p.fb_id), (Ok(0), 3, 1, 0));
    assert_eq!(&s.mem.contents(formats).unwrap()[..4], DRM_FORMAT_XRGB8888.as_bytes());

    // Properties of the plane for an atomic client, then one property.
    let (r, o) = s.ioctl(
        DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
        DrmModeObjGetProperties { obj_id: PLANE_ID, obj_type: DRM_MODE_OBJECT_PLANE, ..Default::default() },
    );
    assert_eq!((r, o.count_props), (Ok(0), 12));
    let enums = s.mem.map_zeroed(3 * 40);
    let (r, g) = s.ioctl(
        DRM_IOCTL_MODE_GETPROPERTY,
        DrmModeGetProperty {
            prop_id: Prop::Type.id(),
            count_enum_blobs: 3,
            enum_blob_ptr: enums.0,
            ..Default::default()
        },
    );
    assert_eq!((r, &g.name[..5], g.count_values, g.count_enum_blobs), (Ok(0), &b"type\0"[..], 3, 3));
    let e = DrmModePropertyEnum::read_from_bytes(&s.mem.contents(enums).unwrap()[40..80]).unwrap();
    assert_eq!((e.value, &e.name[..8]), (1, &b"Primary\0"[..]));
    let (r, g) =
        s.ioctl(DRM_IOCTL_MODE_GETPROPERTY, DrmModeGetProperty { prop_id: Prop::ModeId.id(), ..Default::default() });
    assert_eq!((r, g.flags, g.count_values), (Ok(0), DRM_MODE_PROP_BLOB | DRM_MODE_PROP_ATOMIC, 0));

    // The encoder; errno of unknown objects.
    let (r, e) = s.ioctl(DRM_IOCTL_MODE_GETENCODER, DrmModeGetEncoder { encoder_id: ENCODER_ID, ..Default::default() });
    assert_eq!((r, e.encoder_type, e.possible_crtcs, e.crtc_id), (Ok(0), DRM_MODE_ENCODER_VIRTUAL, 1, 0));
    for (cmd, r) in [
        (
            DRM_IOCTL_MODE_GETCRTC,
            s.ioctl(DRM_IOCTL_MODE_GETCRTC, DrmModeCrtc { crtc_id: PLANE_ID, ..Default::default() }).0,
        ),
        (
            DRM_IOCTL_MODE_GETPROPERTY,
            s.ioctl(DRM_IOCTL_MODE_GETPROPERTY, DrmModeGetProperty { prop_id: 99, ..Default::default() }).0,
        ),
        (
            DRM_IOCTL_MODE_GETPROPBLOB,
            s.ioctl(DRM_IOCTL_MODE_GETPROPBLOB, DrmModeGetBlob { blob_id: 99, ..Default::default() }).0,
        ),
    ] {
        assert_eq!(r, Err(Errno::ENOENT), "{cmd:#x}");
    }
    let (r, _) = s.ioctl(
        DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
        DrmModeObjGetProperties { obj_id: ENCODER_ID, obj_type: DRM_MODE_OBJECT_ENCODER, ..Default::default() },
    );
    assert_eq!(r, Err(Errno::EINVAL), "an encoder has no properties");
    let (r, _) = s.ioctl(
        DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
        DrmModeObjGetProperties { obj_id: PLANE_ID, obj_type: DRM_MODE_OBJECT_CRTC, ..Default::default() },
    );
    assert_eq!(r, Err(Errno::ENOENT), "wrong object type");
}

#[test]
fn legacy_setcrtc_and_page_flips_show_frames_with_crcs_and_events() {
    let mut s = setup();
    let (a, a_bytes) = s.dumb(W, H, 32, |i| (i % 251) as u8);
    let (b, b_bytes) = s.dumb(W, H, 32, |i| (i % 241) as u8);
    let fa = s.addfb(a, DRM_FORMAT_XRGB8888, W, H).unwrap();
    let fb = s.addfb(b, DRM_FORMAT_XRGB8888, W, H).unwrap();
    assert_ne!(fa, fb);
    assert_eq!(s.setcrtc(fa, Some(MODES[0])), Ok(0));
    assert_eq!(s.last_crc(), crc32fast::hash(&a_bytes));
    let (r, c) = s.ioctl(DRM_IOCTL_MODE_GETCRTC, DrmModeCrtc { crtc_id: CRTC_ID, ..Default::default() });
    assert_eq!((r, c.fb_id, c.mode_valid, c.mode.hdisplay), (Ok(0), fa, 1, 1920));

    assert_eq!(s.card.read_events(1024).unwrap_err().errno(), Errno::EAGAIN);
    assert!(!s.card.poll().contains(teeheap_kernel::file::PollEvents::IN));
    let flip = DrmModeCrtcPageFlip {
        crtc_id: CRTC_ID,
        fb_id: fb,
        flags: DRM_MODE_PAGE_FLIP_EVENT,
        reserved: 0,
        user_data: 0xfeed,
    };
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_PAGE_FLIP, flip).0, Ok(0));
    assert_eq!(s.last_crc(), crc32fast::hash(&b_bytes));
    assert!(s.card.poll().contains(teeheap_kernel::file::PollEvents::IN));
    let ev = DrmEventVblank::read_from_bytes(&s.card.read_events(1024).unwrap()).unwrap();
    assert_eq!(
        (ev.base.type_, ev.base.length, ev.user_data, ev.crtc_id),
        (DRM_EVENT_FLIP_COMPLETE, 32, 0xfeed, CRTC_ID)
    );
    assert_eq!(u64::from(ev.sequence), s.kernel.display().unwrap().frames());

    // Flip mistakes, each with Linux's errno and nothing shown.
    let shown = s.kernel.display().unwrap().crcs().len();
    for (f, errno) in [
        (DrmModeCrtcPageFlip { flags: 0x80, ..flip }, Errno::EINVAL),
        (DrmModeCrtcPageFlip { flags: DRM_MODE_PAGE_FLIP_ASYNC, ..flip }, Errno::EINVAL),
        (DrmModeCrtcPageFlip { crtc_id: 7, ..flip }, Errno::ENOENT),
        (DrmModeCrtcPageFlip { fb_id: 999, ..flip }, Errno::ENOENT),
    ] {
        assert_eq!(s.ioctl(DRM_IOCTL_MODE_PAGE_FLIP, f).0, Err(errno), "{f:?}");
    }
    let (nv, _) = s.dumb(W, H * 3 / 2, 8, |_| 0);
    let fnv = s.addfb(nv, DRM_FORMAT_NV12, W, H).unwrap();
    assert_eq!(
        s.ioctl(DRM_IOCTL_MODE_PAGE_FLIP, DrmModeCrtcPageFlip { fb_id: fnv, ..flip }).0,
        Err(Errno::EINVAL),
        "format change"
    );
    assert_eq!(s.kernel.display().unwrap().crcs().len(), shown);

    // A second open is not master: no mode setting.
    let other = s.kernel.drm_open("dri/card0").unwrap();
    assert_eq!(s.ioctl_on(&other, DRM_IOCTL_MODE_PAGE_FLIP, flip).0, Err(Errno::EACCES));
    assert_eq!(s.ioctl_on(&other, DRM_IOCTL_SET_MASTER, 0u8).0, Err(Errno::EBUSY));
    // SETCRTC mistakes: a mode larger than the framebuffer, bad offsets.
    let (small, _) = s.dumb(640, 480, 32, |_| 0);
    let fsmall = s.addfb(small, DRM_FORMAT_XRGB8888, 640, 480).unwrap();
    assert_eq!(s.setcrtc(fsmall, Some(MODES[0])), Err(Errno::ENOSPC));
    let mut bad = MODES[0];
    bad.htotal = 1;
    assert_eq!(s.setcrtc(fa, Some(bad)), Err(Errno::EINVAL));

    // RMFB of the shown framebuffer turns the plane off; of another file's: ENOENT.
    assert_eq!(s.ioctl_on(&other, DRM_IOCTL_MODE_RMFB, fb).0, Err(Errno::ENOENT));
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_RMFB, fb).0, Ok(0));
    assert!(s.kernel.display().unwrap().state().plane.fb.is_none());
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_RMFB, fb).0, Err(Errno::ENOENT));
    // Releasing the file takes its framebuffers away and gives up master.
    drop(other);
    let card = std::mem::replace(&mut s.card, s.kernel.drm_open("dri/card1").unwrap());
    drop(card);
    let again = s.kernel.drm_open("dri/card0").unwrap();
    assert!(again.kms().unwrap().is_master());
}

#[test]
fn atomic_commit_with_mode_blob_fences_and_events() {
    let mut s = setup();
    let (h, bytes) = s.dumb(W, H * 3 / 2, 8, |i| (i % 199) as u8);
    let fb = s.addfb(h, DRM_FORMAT_NV12, W, H).unwrap();
    assert_eq!(s.atomic(0, &[]), Err(Errno::EINVAL), "atomic cap not set");
    s.cap(DRM_CLIENT_CAP_ATOMIC, 1);
    let blob = s.mode_blob(&MODES[0]);
    let fence_ptr = s.mem.map(&0i32.to_ne_bytes());
    let plane: &[(Prop, u64)] = &[
        (Prop::FbId, u64::from(fb)),
        (Prop::CrtcId, u64::from(CRTC_ID)),
        (Prop::SrcX, 0),
        (Prop::SrcY, 0),
        (Prop::SrcW, u64::from(W) << 16),
        (Prop::SrcH, u64::from(H) << 16),
        (Prop::CrtcX, 0),
        (Prop::CrtcY, 0),
        (Prop::CrtcW, u64::from(W)),
        (Prop::CrtcH, u64::from(H)),
    ];
    let crtc: &[(Prop, u64)] = &[(Prop::ModeId, u64::from(blob)), (Prop::Active, 1), (Prop::OutFencePtr, fence_ptr.0)];
    let conn: &[(Prop, u64)] = &[(Prop::CrtcId, u64::from(CRTC_ID))];
    let all = [(PLANE_ID, plane), (CRTC_ID, crtc), (CONNECTOR_ID, conn)];
    // A modeset needs ALLOW_MODESET; TEST_ONLY shows nothing.
    assert_eq!(s.atomic(DRM_MODE_ATOMIC_NONBLOCK, &all), Err(Errno::EINVAL));
    assert_eq!(s.atomic(DRM_MODE_ATOMIC_TEST_ONLY | DRM_MODE_ATOMIC_ALLOW_MODESET, &all), Ok(0));
    assert_eq!(
        s.atomic(DRM_MODE_ATOMIC_TEST_ONLY | DRM_MODE_PAGE_FLIP_EVENT, &all),
        Err(Errno::EINVAL),
        "test and event"
    );
    assert!(s.kernel.display().unwrap().crcs().is_empty());
    assert_eq!(s.atomic(DRM_MODE_ATOMIC_ALLOW_MODESET | DRM_MODE_PAGE_FLIP_EVENT, &all), Ok(0));
    assert_eq!(s.last_crc(), crc32fast::hash(&bytes[..(W * H * 3 / 2) as usize]));
    let fd = i32::from_ne_bytes(s.mem.contents(fence_ptr).unwrap()[..4].try_into().unwrap());
    let sync = s.files.get(fd).unwrap().downcast::<SyncFile>().unwrap();
    assert!(sync.is_signalled(), "the frame is on screen when the commit returns");
    let ev = DrmEventVblank::read_from_bytes(&s.card.read_events(32).unwrap()).unwrap();
    assert_eq!(ev.user_data, 0x55);

    // A flip through atomic with IN_FENCE_FD of that sync file.
    let in_fence: &[(Prop, u64)] = &[(Prop::FbId, u64::from(fb)), (Prop::InFenceFd, fd as u64)];
    assert_eq!(s.atomic(DRM_MODE_ATOMIC_NONBLOCK, &[(PLANE_ID, in_fence)]), Ok(0));
    let not_sync: &[(Prop, u64)] = &[(Prop::InFenceFd, 99)];
    assert_eq!(s.atomic(0, &[(PLANE_ID, not_sync)]), Err(Errno::EINVAL));
    // Atomic mistakes.
    assert_eq!(s.atomic(0, &[(77, &[])]), Err(Errno::ENOENT), "no such object");
    assert_eq!(s.atomic(0, &[(ENCODER_ID, &[])]), Err(Errno::ENOENT), "no properties");
    assert_eq!(s.atomic(0, &[(CRTC_ID, &[(Prop::FbId, 0)])]), Err(Errno::ENOENT), "not the CRTC's");
    assert_eq!(s.atomic(0, &[(PLANE_ID, &[(Prop::Type, 0)])]), Err(Errno::EINVAL), "immutable");
    // drm_property_change_valid_get refuses an id that is no CRTC first.
    assert_eq!(s.atomic(0, &[(PLANE_ID, &[(Prop::CrtcId, 5)])]), Err(Errno::EINVAL));
    assert_eq!(s.atomic(0, &[(PLANE_ID, &[(Prop::SrcW, u64::from(W + 1) << 16)])]), Err(Errno::ENOSPC));
    assert_eq!(s.atomic(0, &[(PLANE_ID, &[(Prop::CrtcW, 100)])]), Err(Errno::ERANGE), "no scaling");
    assert_eq!(s.atomic(0, &[(CONNECTOR_ID, &[(Prop::Dpms, 0)])]), Err(Errno::EINVAL));
    assert_eq!(s.atomic(0x8000, &[]), Err(Errno::EINVAL), "unknown flag");
    assert_eq!(s.atomic(DRM_MODE_PAGE_FLIP_EVENT, &[]), Err(Errno::EINVAL), "event without a CRTC");

    // Blobs: only the creator destroys; the CRTC keeps its mode alive.
    let other = s.kernel.drm_open("dri/card0").unwrap();
    let (r, _) = s.ioctl_on(&other, DRM_IOCTL_MODE_DESTROYPROPBLOB, DrmModeDestroyBlob { blob_id: blob });
    assert_eq!(r, Err(Errno::EPERM));
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_DESTROYPROPBLOB, DrmModeDestroyBlob { blob_id: blob }).0, Ok(0));
    let data = s.mem.map_zeroed(68);
    let (r, g) = s.ioctl(DRM_IOCTL_MODE_GETPROPBLOB, DrmModeGetBlob { blob_id: blob, length: 68, data: data.0 });
    assert_eq!((r, g.length), (Ok(0), 68));
    assert_eq!(s.mem.contents(data).unwrap(), MODES[0].as_bytes());
    assert_eq!(
        s.ioctl(DRM_IOCTL_MODE_CREATEPROPBLOB, DrmModeCreateBlob { data: 0, length: 0, blob_id: 0 }).0,
        Err(Errno::EINVAL)
    );
    // Turning it all off.
    let off: &[(Prop, u64)] = &[(Prop::Active, 0), (Prop::ModeId, 0)];
    let plane_off: &[(Prop, u64)] = &[(Prop::FbId, 0), (Prop::CrtcId, 0)];
    let conn_off: &[(Prop, u64)] = &[(Prop::CrtcId, 0)];
    assert_eq!(
        s.atomic(DRM_MODE_ATOMIC_ALLOW_MODESET, &[(CRTC_ID, off), (PLANE_ID, plane_off), (CONNECTOR_ID, conn_off)]),
        Ok(0)
    );
    assert!(!s.kernel.display().unwrap().state().active);
}

#[test]
fn protected_framebuffer_is_scanned_by_the_display_never_mapped_by_the_cpu() {
    let mut s = setup();
    let size = u64::from(W * H * 3 / 2);
    let buf = s.kernel.dma_heaps().open("protected,secure-video").unwrap().allocate(size, 0, 0).unwrap();
    assert!(buf.mmap(s.kernel.platform()).is_err(), "no CPU mapping of protected memory");
    // The secure world writes the frame; the display reads it as its own master.
    let frame: Vec<u8> = (0..buf.size().bytes() as usize).map(|i| (i * 7 % 256) as u8).collect();
    let mut at = 0usize;
    for r in buf.sg_table().ranges() {
        let n = r.len() as usize;
        s.kernel.platform().write(Master::SecureCpu, r.start(), &frame[at..at + n]).unwrap();
        at += n;
    }
    let fd = s.files.install(File::new(buf), 0).unwrap();
    let (r, p) = s.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, DrmPrimeHandle { fd, ..Default::default() });
    assert_eq!(r, Ok(0));
    let fb = s.addfb(p.handle, DRM_FORMAT_NV12, W, H).unwrap();
    assert_eq!(s.setcrtc(fb, Some(MODES[0])), Ok(0));
    assert_eq!(s.last_crc(), crc32fast::hash(&frame[..size as usize]));
    assert_eq!(s.kernel.platform().firewall().violation_count(), 0);
    // A recording buffer is not the display's to read: refused, logged, no CRC.
    let rec = s.kernel.dma_heaps().open("protected,secure-video-record").unwrap().allocate(size, 0, 0).unwrap();
    let fd = s.files.install(File::new(rec), 0).unwrap();
    let (_, p) = s.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, DrmPrimeHandle { fd, ..Default::default() });
    let fb2 = s.addfb(p.handle, DRM_FORMAT_NV12, W, H).unwrap();
    let crcs = s.kernel.display().unwrap().crcs().len();
    let flip = DrmModeCrtcPageFlip { crtc_id: CRTC_ID, fb_id: fb2, flags: 0, reserved: 0, user_data: 0 };
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_PAGE_FLIP, flip).0, Ok(0));
    assert_eq!(s.kernel.display().unwrap().crcs().len(), crcs);
    assert!(s.kernel.platform().firewall().violation_count() > 0);
    // ADDFB2 mistakes.
    assert_eq!(s.addfb(999, DRM_FORMAT_XRGB8888, W, H), Err(Errno::ENOENT));
    assert_eq!(s.addfb(p.handle, fourcc(b"YUYV"), W, H), Err(Errno::EINVAL));
    let (tiny, _) = s.dumb(64, 64, 32, |_| 0);
    assert_eq!(s.addfb(tiny, DRM_FORMAT_XRGB8888, W, H), Err(Errno::EINVAL), "buffer too small");
    let _ = UserPtr(0);
}

/// The caller's fd table, with a caller that has given up (a signal came).
struct GaveUp<'a>(&'a mut FdTable);

impl Files for GaveUp<'_> {
    fn install(&mut self, file: File, flags: u32) -> Result<i32, teeheap_kernel::Error> {
        self.0.install(file, flags)
    }
    fn lookup(&self, fd: i64) -> Result<File, teeheap_kernel::Error> {
        self.0.lookup(fd)
    }
    fn gave_up(&self) -> bool {
        true
    }
}

#[test]
fn hostile_atomic_calls_change_nothing_and_keep_the_event_space() {
    let mut s = setup();
    s.cap(DRM_CLIENT_CAP_ATOMIC, 1);
    // MODE_ID naming a mode the checks refuse is EINVAL, whatever the
    // reason (a clock past INT_MAX too), as drm_atomic_set_mode_prop_for_crtc.
    let mut bad = MODES[0];
    bad.clock = u32::MAX;
    let bad = s.mode_blob(&bad);
    let bad_mode: &[(Prop, u64)] = &[(Prop::ModeId, u64::from(bad)), (Prop::Active, 1)];
    assert_eq!(s.atomic(DRM_MODE_ATOMIC_ALLOW_MODESET, &[(CRTC_ID, bad_mode)]), Err(Errno::EINVAL));

    // With no free fd, a commit asking for an out-fence fails EMFILE and
    // leaves the display off.
    let blob = s.mode_blob(&MODES[0]);
    let fence_ptr = s.mem.map(&0i32.to_ne_bytes());
    let on: &[(Prop, u64)] = &[(Prop::ModeId, u64::from(blob)), (Prop::Active, 1), (Prop::OutFencePtr, fence_ptr.0)];
    let conn: &[(Prop, u64)] = &[(Prop::CrtcId, u64::from(CRTC_ID))];
    let flags = DRM_MODE_ATOMIC_ALLOW_MODESET | DRM_MODE_PAGE_FLIP_EVENT;
    let files = std::mem::replace(&mut s.files, FdTable::with_limit(0));
    assert_eq!(s.atomic(flags, &[(CRTC_ID, on), (CONNECTOR_ID, conn)]), Err(Errno::EMFILE));
    s.files = files;
    let display = Arc::clone(s.kernel.display().unwrap());
    assert!(!display.state().active && display.frames() == 0, "a failed commit changes nothing");
    assert_eq!(s.card.read_events(4096).unwrap_err().errno(), Errno::EAGAIN);
    assert_eq!(s.atomic(flags, &[(CRTC_ID, on), (CONNECTOR_ID, conn)]), Ok(0));
    assert_eq!(s.card.read_events(4096).unwrap().len(), 32);

    // An in-fence wait the caller gives up on is EINTR and shows nothing.
    let never = SyncFile::new(vec![teeheap_kernel::dma_buf::Fence::new("test", "never")]);
    let fd = s.files.install(File::new(never), 0).unwrap();
    let frames = display.frames();
    let (ids, counts, props, values) =
        ([PLANE_ID, CRTC_ID], [1u32, 1], [Prop::InFenceFd.id(), Prop::Active.id()], [fd as u64, 1]);
    let a = DrmModeAtomic {
        flags: DRM_MODE_PAGE_FLIP_EVENT,
        count_objs: 2,
        objs_ptr: s.mem.map(ids.as_bytes()).0,
        count_props_ptr: s.mem.map(counts.as_bytes()).0,
        props_ptr: s.mem.map(props.as_bytes()).0,
        prop_values_ptr: s.mem.map(values.as_bytes()).0,
        reserved: 0,
        user_data: 1,
    };
    let ptr = s.mem.map(a.as_bytes());
    let r = s.card.ioctl(DRM_IOCTL_MODE_ATOMIC, ptr, &s.mem, &mut GaveUp(&mut s.files));
    assert_eq!(r.unwrap_err().errno(), Errno::EINTR);
    assert_eq!(display.frames(), frames);
    // ... and gives its event room back: the whole space is still there.
    let flip: &[(Prop, u64)] = &[(Prop::Active, 1)];
    for i in 0..4096 / 32 {
        assert_eq!(s.atomic(DRM_MODE_PAGE_FLIP_EVENT, &[(CRTC_ID, flip)]), Ok(0), "event {i}");
    }
    assert_eq!(s.atomic(DRM_MODE_PAGE_FLIP_EVENT, &[(CRTC_ID, flip)]), Err(Errno::ENOMEM));
}

#[test]
fn getproperty_copies_an_array_whole_or_not_at_all() {
    let mut s = setup();
    // CRTC_W is a range: two values. Room for one: nothing is written.
    let values = s.mem.map(&[0xaau8; 16]);
    let (r, g) = s.ioctl(
        DRM_IOCTL_MODE_GETPROPERTY,
        DrmModeGetProperty { prop_id: Prop::CrtcW.id(), values_ptr: values.0, count_values: 1, ..Default::default() },
    );
    assert_eq!((r, g.count_values), (Ok(0), 2));
    assert_eq!(s.mem.contents(values).unwrap(), [0xaau8; 16]);
    // Too small a count with a bad pointer is not EFAULT: nothing is copied.
    let (r, g) = s.ioctl(
        DRM_IOCTL_MODE_GETPROPERTY,
        DrmModeGetProperty { prop_id: Prop::Dpms.id(), enum_blob_ptr: 8, count_enum_blobs: 1, ..Default::default() },
    );
    assert_eq!((r, g.count_enum_blobs), (Ok(0), 4));
}

#[test]
fn a_dropped_poll_watch_holds_no_waker() {
    let s = setup();
    let k = Arc::clone(s.card.kms().unwrap());
    for _ in 0..100 {
        let w = s.card.watch_ready(Box::new(|| panic!("a watch that is gone never wakes")));
        drop(w);
    }
    assert_eq!(k.events.waiting(), 0, "each dropped watch took its waker back");
    let woke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w2 = Arc::clone(&woke);
    let _kept = s.card.watch_ready(Box::new(move || w2.store(true, std::sync::atomic::Ordering::SeqCst)));
    assert_eq!(k.events.waiting(), 1);
}

#[test]
fn property_blobs_cannot_grow_the_daemon_without_bound() {
    use teeheap_kernel::drm::kms::{BLOB_BUDGET, MAX_BLOB};
    let mut s = setup();
    let data = s.mem.map_zeroed(MAX_BLOB as usize);
    let create = |s: &mut Setup| {
        let (r, b) =
            s.ioctl(DRM_IOCTL_MODE_CREATEPROPBLOB, DrmModeCreateBlob { data: data.0, length: MAX_BLOB, blob_id: 0 });
        r.map(|_| b.blob_id)
    };
    let mut ids = Vec::new();
    let err = loop {
        match create(&mut s) {
            Ok(id) => ids.push(id),
            Err(e) => break e,
        }
        assert!(ids.len() as u64 <= BLOB_BUDGET / u64::from(MAX_BLOB), "blobs past the budget");
    };
    assert_eq!(err, Errno::ENOMEM);
    assert_eq!(ids.len() as u64, BLOB_BUDGET / u64::from(MAX_BLOB) - 1);
    // Destroying one gives its room back.
    assert_eq!(s.ioctl(DRM_IOCTL_MODE_DESTROYPROPBLOB, DrmModeDestroyBlob { blob_id: ids[0] }).0, Ok(0));
    assert!(create(&mut s).is_ok());
}

#[test]
fn atomic_values_outside_a_property_range_are_einval_and_change_nothing() {
    let mut s = setup();
    s.cap(DRM_CLIENT_CAP_ATOMIC, 1);
    let cases: [(u32, Prop, u64); 7] = [
        (PLANE_ID, Prop::SrcW, (1 << 32) | (u64::from(W) << 16)),
        (PLANE_ID, Prop::CrtcX, 1 << 40),
        (PLANE_ID, Prop::CrtcW, u64::from(u32::MAX)),
        (PLANE_ID, Prop::FbId, 999),
        (PLANE_ID, Prop::InFenceFd, (1 << 32) | 3),
        (CRTC_ID, Prop::Active, 2),
        (CONNECTOR_ID, Prop::LinkStatus, 2),
    ];
    for (obj, prop, value) in cases {
        assert_eq!(s.atomic(0, &[(obj, &[(prop, value)])]), Err(Errno::EINVAL), "{prop:?} = {value:#x}");
    }
    let display = Arc::clone(s.kernel.display().unwrap());
    assert_eq!(display.frames(), 0, "no refused commit shows a frame");
    // link-status never goes from Good to Bad on a client's word.
    assert_eq!(s.atomic(0, &[(CONNECTOR_ID, &[(Prop::LinkStatus, 1)])]), Ok(0));
    assert!(!display.state().link_bad);
}

#[test]
fn setcrtc_refuses_aspect_ratio_bits_unless_the_client_asked_for_them() {
    let mut s = setup();
    let (h, _) = s.dumb(W, H, 32, |_| 0x11);
    let fb = s.addfb(h, DRM_FORMAT_XRGB8888, W, H).unwrap();
    let mut m = MODES[0];
    m.flags |= 2 << 19; // 16:9
    assert_eq!(s.setcrtc(fb, Some(m)), Err(Errno::EINVAL));
    assert_eq!(s.kernel.display().unwrap().frames(), 0, "nothing shown");
    s.cap(DRM_CLIENT_CAP_ASPECT_RATIO, 1);
    assert_eq!(s.setcrtc(fb, Some(m)), Ok(0));
    // A client without the cap reads the mode without its aspect-ratio bits.
    let other = s.kernel.drm_open("dri/card0").unwrap();
    let (r, c) = s.ioctl_on(&other, DRM_IOCTL_MODE_GETCRTC, DrmModeCrtc { crtc_id: CRTC_ID, ..Default::default() });
    assert_eq!((r, c.mode.flags), (Ok(0), MODES[0].flags));
}
