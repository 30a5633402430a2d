//! `drm/drm.h`, `drm/drm_mode.h` and `drm/drm_fourcc.h` (subset): the ioctls
//! of a DRM device fd that a GEM driver (vgem) and a KMS display (vkms)
//! answer, and the events read from the fd.
//!
//! Layouts are those of a 64-bit kernel (pointers and `size_t` are 8 bytes).
//! Every request uses the type byte [`DRM_IOCTL_BASE`].

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::{io, ior, iow, iowr};

const _: () = assert!(size_of::<usize>() == 8, "the DRM layouts here are those of a 64-bit kernel");

/// ioctl type byte of DRM fds, `'d'`.
pub const DRM_IOCTL_BASE: u8 = b'd';
/// First driver-private command number (`DRM_COMMAND_BASE`).
pub const DRM_COMMAND_BASE: u8 = 0x40;

/// Driver name, version and description; takes a [`DrmVersion`].
pub const DRM_IOCTL_VERSION: u32 = iowr(DRM_IOCTL_BASE, 0x00, size_of::<DrmVersion>());
/// The bus id of the device; takes a [`DrmUnique`].
pub const DRM_IOCTL_GET_UNIQUE: u32 = iowr(DRM_IOCTL_BASE, 0x01, size_of::<DrmUnique>());
/// An authentication token of this open file; takes a [`DrmAuth`].
pub const DRM_IOCTL_GET_MAGIC: u32 = ior(DRM_IOCTL_BASE, 0x02, size_of::<DrmAuth>());
/// Authenticates another file by its token (master only); takes a [`DrmAuth`].
pub const DRM_IOCTL_AUTH_MAGIC: u32 = iow(DRM_IOCTL_BASE, 0x11, size_of::<DrmAuth>());
/// Releases a GEM handle of this file; takes a [`DrmGemClose`].
pub const DRM_IOCTL_GEM_CLOSE: u32 = iow(DRM_IOCTL_BASE, 0x09, size_of::<DrmGemClose>());
/// Asks a device capability (`DRM_CAP_*`); takes a [`DrmGetCap`].
pub const DRM_IOCTL_GET_CAP: u32 = iowr(DRM_IOCTL_BASE, 0x0c, size_of::<DrmGetCap>());
/// Opts this file into a feature (`DRM_CLIENT_CAP_*`); takes a [`DrmSetClientCap`].
pub const DRM_IOCTL_SET_CLIENT_CAP: u32 = iow(DRM_IOCTL_BASE, 0x0d, size_of::<DrmSetClientCap>());
/// Becomes the display's master.
pub const DRM_IOCTL_SET_MASTER: u32 = io(DRM_IOCTL_BASE, 0x1e);
/// Gives up being master.
pub const DRM_IOCTL_DROP_MASTER: u32 = io(DRM_IOCTL_BASE, 0x1f);
/// Exports a GEM handle as a dma-buf fd; takes a [`DrmPrimeHandle`].
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u32 = iowr(DRM_IOCTL_BASE, 0x2d, size_of::<DrmPrimeHandle>());
/// Imports a dma-buf fd as a GEM handle; takes a [`DrmPrimeHandle`].
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u32 = iowr(DRM_IOCTL_BASE, 0x2e, size_of::<DrmPrimeHandle>());

/// Lists framebuffers, CRTCs, connectors, encoders; takes a [`DrmModeCardRes`].
pub const DRM_IOCTL_MODE_GETRESOURCES: u32 = iowr(DRM_IOCTL_BASE, 0xa0, size_of::<DrmModeCardRes>());
/// A CRTC's state; takes a [`DrmModeCrtc`].
pub const DRM_IOCTL_MODE_GETCRTC: u32 = iowr(DRM_IOCTL_BASE, 0xa1, size_of::<DrmModeCrtc>());
/// Sets a CRTC's mode, framebuffer and connectors; takes a [`DrmModeCrtc`].
pub const DRM_IOCTL_MODE_SETCRTC: u32 = iowr(DRM_IOCTL_BASE, 0xa2, size_of::<DrmModeCrtc>());
/// An encoder; takes a [`DrmModeGetEncoder`].
pub const DRM_IOCTL_MODE_GETENCODER: u32 = iowr(DRM_IOCTL_BASE, 0xa6, size_of::<DrmModeGetEncoder>());
/// A connector, its modes and properties; takes a [`DrmModeGetConnector`].
pub const DRM_IOCTL_MODE_GETCONNECTOR: u32 = iowr(DRM_IOCTL_BASE, 0xa7, size_of::<DrmModeGetConnector>());
/// A property's name, kind and values; takes a [`DrmModeGetProperty`].
pub const DRM_IOCTL_MODE_GETPROPERTY: u32 = iowr(DRM_IOCTL_BASE, 0xaa, size_of::<DrmModeGetProperty>());
/// A blob property's bytes; takes a [`DrmModeGetBlob`].
pub const DRM_IOCTL_MODE_GETPROPBLOB: u32 = iowr(DRM_IOCTL_BASE, 0xac, size_of::<DrmModeGetBlob>());
/// Removes a framebuffer; takes its id (`unsigned int`).
pub const DRM_IOCTL_MODE_RMFB: u32 = iowr(DRM_IOCTL_BASE, 0xaf, size_of::<u32>());
/// Flips a CRTC to another framebuffer; takes a [`DrmModeCrtcPageFlip`].
pub const DRM_IOCTL_MODE_PAGE_FLIP: u32 = iowr(DRM_IOCTL_BASE, 0xb0, size_of::<DrmModeCrtcPageFlip>());
/// Creates a dumb (CPU-mappable scanout) buffer; takes a [`DrmModeCreateDumb`].
pub const DRM_IOCTL_MODE_CREATE_DUMB: u32 = iowr(DRM_IOCTL_BASE, 0xb2, size_of::<DrmModeCreateDumb>());
/// The mmap offset of a dumb buffer; takes a [`DrmModeMapDumb`].
pub const DRM_IOCTL_MODE_MAP_DUMB: u32 = iowr(DRM_IOCTL_BASE, 0xb3, size_of::<DrmModeMapDumb>());
/// Destroys a dumb buffer's handle; takes a [`DrmModeDestroyDumb`].
pub const DRM_IOCTL_MODE_DESTROY_DUMB: u32 = iowr(DRM_IOCTL_BASE, 0xb4, size_of::<DrmModeDestroyDumb>());
/// Lists planes; takes a [`DrmModeGetPlaneRes`].
pub const DRM_IOCTL_MODE_GETPLANERESOURCES: u32 = iowr(DRM_IOCTL_BASE, 0xb5, size_of::<DrmModeGetPlaneRes>());
/// A plane and its formats; takes a [`DrmModeGetPlane`].
pub const DRM_IOCTL_MODE_GETPLANE: u32 = iowr(DRM_IOCTL_BASE, 0xb6, size_of::<DrmModeGetPlane>());
/// Shows a framebuffer on a plane; takes a [`DrmModeSetPlane`].
pub const DRM_IOCTL_MODE_SETPLANE: u32 = iowr(DRM_IOCTL_BASE, 0xb7, size_of::<DrmModeSetPlane>());
/// Creates a framebuffer from GEM handles; takes a [`DrmModeFbCmd2`].
pub const DRM_IOCTL_MODE_ADDFB2: u32 = iowr(DRM_IOCTL_BASE, 0xb8, size_of::<DrmModeFbCmd2>());
/// An object's properties and values; takes a [`DrmModeObjGetProperties`].
pub const DRM_IOCTL_MODE_OBJ_GETPROPERTIES: u32 = iowr(DRM_IOCTL_BASE, 0xb9, size_of::<DrmModeObjGetProperties>());
/// An atomic commit; takes a [`DrmModeAtomic`].
pub const DRM_IOCTL_MODE_ATOMIC: u32 = iowr(DRM_IOCTL_BASE, 0xbc, size_of::<DrmModeAtomic>());
/// Creates a blob property value (e.g. a mode); takes a [`DrmModeCreateBlob`].
pub const DRM_IOCTL_MODE_CREATEPROPBLOB: u32 = iowr(DRM_IOCTL_BASE, 0xbd, size_of::<DrmModeCreateBlob>());
/// Destroys a blob; takes a [`DrmModeDestroyBlob`].
pub const DRM_IOCTL_MODE_DESTROYPROPBLOB: u32 = iowr(DRM_IOCTL_BASE, 0xbe, size_of::<DrmModeDestroyBlob>());
/// Sets a CRTC's gamma ramp; takes a [`DrmModeCrtcLut`].
pub const DRM_IOCTL_MODE_SETGAMMA: u32 = iowr(DRM_IOCTL_BASE, 0xa5, size_of::<DrmModeCrtcLut>());

/// Capability: dumb buffers are supported.
pub const DRM_CAP_DUMB_BUFFER: u64 = 0x1;
/// Capability: vblank waits on CRTCs past the second.
pub const DRM_CAP_VBLANK_HIGH_CRTC: u64 = 0x2;
/// Capability: the preferred depth of dumb buffers.
pub const DRM_CAP_DUMB_PREFERRED_DEPTH: u64 = 0x3;
/// Capability: dumb buffers are better drawn in a shadow copy.
pub const DRM_CAP_DUMB_PREFER_SHADOW: u64 = 0x4;
/// Capability: PRIME import/export bits (`DRM_PRIME_CAP_*`).
pub const DRM_CAP_PRIME: u64 = 0x5;
/// Capability: event timestamps are `CLOCK_MONOTONIC`.
pub const DRM_CAP_TIMESTAMP_MONOTONIC: u64 = 0x6;
/// Capability: `DRM_MODE_PAGE_FLIP_ASYNC`.
pub const DRM_CAP_ASYNC_PAGE_FLIP: u64 = 0x7;
/// Capability: cursor width.
pub const DRM_CAP_CURSOR_WIDTH: u64 = 0x8;
/// Capability: cursor height.
pub const DRM_CAP_CURSOR_HEIGHT: u64 = 0x9;
/// Capability: framebuffer modifiers in ADDFB2.
pub const DRM_CAP_ADDFB2_MODIFIERS: u64 = 0x10;
/// Capability: page flips to a target vblank.
pub const DRM_CAP_PAGE_FLIP_TARGET: u64 = 0x11;
/// Capability: vblank events carry the CRTC id.
pub const DRM_CAP_CRTC_IN_VBLANK_EVENT: u64 = 0x12;
/// Capability: sync objects.
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
/// [`DRM_CAP_PRIME`] bit: dma-bufs can be imported.
pub const DRM_PRIME_CAP_IMPORT: u64 = 0x1;
/// [`DRM_CAP_PRIME`] bit: GEM objects can be exported.
pub const DRM_PRIME_CAP_EXPORT: u64 = 0x2;

/// Client capability: stereo 3D modes.
pub const DRM_CLIENT_CAP_STEREO_3D: u64 = 1;
/// Client capability: every plane (primary and cursor too) is listed.
pub const DRM_CLIENT_CAP_UNIVERSAL_PLANES: u64 = 2;
/// Client capability: atomic commits (implies universal planes).
pub const DRM_CLIENT_CAP_ATOMIC: u64 = 3;
/// Client capability: aspect ratios in modes.
pub const DRM_CLIENT_CAP_ASPECT_RATIO: u64 = 4;
/// Client capability: writeback connectors.
pub const DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: u64 = 5;

/// [`DrmPrimeHandle::flags`]: the exported fd is close-on-exec (`O_CLOEXEC`).
pub const DRM_CLOEXEC: u32 = 0o2000000;
/// [`DrmPrimeHandle::flags`]: the exported fd is read-write (`O_RDWR`).
pub const DRM_RDWR: u32 = 0o2;

/// Event read from the fd: a vblank (`drm_event_vblank`).
pub const DRM_EVENT_VBLANK: u32 = 0x01;
/// Event read from the fd: a page flip completed (`drm_event_vblank`).
pub const DRM_EVENT_FLIP_COMPLETE: u32 = 0x02;

/// Page flip flag: send a [`DRM_EVENT_FLIP_COMPLETE`] when done.
pub const DRM_MODE_PAGE_FLIP_EVENT: u32 = 0x01;
/// Page flip flag: flip without waiting for vblank.
pub const DRM_MODE_PAGE_FLIP_ASYNC: u32 = 0x02;
/// Atomic flag: check only, change nothing.
pub const DRM_MODE_ATOMIC_TEST_ONLY: u32 = 0x0100;
/// Atomic flag: do not wait for the commit to finish.
pub const DRM_MODE_ATOMIC_NONBLOCK: u32 = 0x0200;
/// Atomic flag: a mode change is allowed.
pub const DRM_MODE_ATOMIC_ALLOW_MODESET: u32 = 0x0400;

/// Object type: CRTC.
pub const DRM_MODE_OBJECT_CRTC: u32 = 0xcccc_cccc;
/// Object type: connector.
pub const DRM_MODE_OBJECT_CONNECTOR: u32 = 0xc0c0_c0c0;
/// Object type: encoder.
pub const DRM_MODE_OBJECT_ENCODER: u32 = 0xe0e0_e0e0;
/// Object type: mode.
pub const DRM_MODE_OBJECT_MODE: u32 = 0xdede_dede;
/// Object type: property.
pub const DRM_MODE_OBJECT_PROPERTY: u32 = 0xb0b0_b0b0;
/// Object type: framebuffer.
pub const DRM_MODE_OBJECT_FB: u32 = 0xfbfb_fbfb;
/// Object type: blob.
pub const DRM_MODE_OBJECT_BLOB: u32 = 0xbbbb_bbbb;
/// Object type: plane.
pub const DRM_MODE_OBJECT_PLANE: u32 = 0xeeee_eeee;
/// Object type: any.
pub const DRM_MODE_OBJECT_ANY: u32 = 0;

/// Connector type of a virtual display.
pub const DRM_MODE_CONNECTOR_VIRTUAL: u32 = 15;
/// Encoder type of a virtual display.
pub const DRM_MODE_ENCODER_VIRTUAL: u32 = 5;
/// Connector state: connected (`enum drm_connector_status` of the kernel; no UAPI macro).
pub const DRM_MODE_CONNECTED: u32 = 1;
/// Mode type bit: the connector's preferred mode.
pub const DRM_MODE_TYPE_PREFERRED: u32 = 1 << 3;
/// Mode type bit: the mode comes from the driver.
pub const DRM_MODE_TYPE_DRIVER: u32 = 1 << 6;
/// Mode flag: positive horizontal sync.
pub const DRM_MODE_FLAG_PHSYNC: u32 = 1 << 0;
/// Mode flag: positive vertical sync.
pub const DRM_MODE_FLAG_PVSYNC: u32 = 1 << 2;
/// Longest mode name, with its NUL.
pub const DRM_DISPLAY_MODE_LEN: usize = 32;
/// Longest property name, with its NUL.
pub const DRM_PROP_NAME_LEN: usize = 32;

/// Property kind: a range of unsigned values.
pub const DRM_MODE_PROP_RANGE: u32 = 1 << 1;
/// Property flag: read-only.
pub const DRM_MODE_PROP_IMMUTABLE: u32 = 1 << 2;
/// Property kind: one of named values.
pub const DRM_MODE_PROP_ENUM: u32 = 1 << 3;
/// Property kind: a blob id.
pub const DRM_MODE_PROP_BLOB: u32 = 1 << 4;
/// Property kind: an object id (`DRM_MODE_PROP_TYPE(1)`).
pub const DRM_MODE_PROP_OBJECT: u32 = 1 << 6;
/// Property kind: a range of signed values (`DRM_MODE_PROP_TYPE(2)`).
pub const DRM_MODE_PROP_SIGNED_RANGE: u32 = 2 << 6;
/// Property flag: only for atomic clients.
pub const DRM_MODE_PROP_ATOMIC: u32 = 0x8000_0000;

/// `fourcc_code(a, b, c, d)` of `drm_fourcc.h` (also V4L2's `v4l2_fourcc`).
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// 32-bit RGB, 8 bits per channel, byte order B, G, R, X in memory.
pub const DRM_FORMAT_XRGB8888: u32 = fourcc(b"XR24");
/// 32-bit RGB with alpha, byte order B, G, R, A in memory.
pub const DRM_FORMAT_ARGB8888: u32 = fourcc(b"AR24");
/// 2-plane YUV 4:2:0: a Y plane, then interleaved Cb/Cr at half resolution.
pub const DRM_FORMAT_NV12: u32 = fourcc(b"NV12");
/// Linear (untiled) layout modifier.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
/// ADDFB2 flag: `modifier` is meaningful.
pub const DRM_MODE_FB_MODIFIERS: u32 = 1 << 1;

/// `struct drm_version`: the argument of [`DRM_IOCTL_VERSION`]. The kernel
/// copies at most `*_len` bytes of each string to its user pointer (no NUL
/// added) and sets `*_len` to the string's full length.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmVersion {
    /// Out: major version.
    pub version_major: i32,
    /// Out: minor version.
    pub version_minor: i32,
    /// Out: patch level.
    pub version_patchlevel: i32,
    /// Padding before the 8-byte fields.
    pub _pad: u32,
    /// In: room at `name`; out: the name's length.
    pub name_len: u64,
    /// In: user pointer for the driver name.
    pub name: u64,
    /// In: room at `date`; out: the date's length.
    pub date_len: u64,
    /// In: user pointer for the date.
    pub date: u64,
    /// In: room at `desc`; out: the description's length.
    pub desc_len: u64,
    /// In: user pointer for the description.
    pub desc: u64,
}
const _: () = assert!(size_of::<DrmVersion>() == 64);

/// `struct drm_unique`: the argument of [`DRM_IOCTL_GET_UNIQUE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmUnique {
    /// In: room at `unique`; out: the id's length.
    pub unique_len: u64,
    /// In: user pointer for the bus id.
    pub unique: u64,
}
const _: () = assert!(size_of::<DrmUnique>() == 16);

/// `struct drm_auth`: the argument of [`DRM_IOCTL_GET_MAGIC`] / [`DRM_IOCTL_AUTH_MAGIC`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmAuth {
    /// The token.
    pub magic: u32,
}
const _: () = assert!(size_of::<DrmAuth>() == 4);

/// `struct drm_gem_close`: the argument of [`DRM_IOCTL_GEM_CLOSE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmGemClose {
    /// In: the handle to release.
    pub handle: u32,
    /// In: unused.
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmGemClose>() == 8);

/// `struct drm_get_cap`: the argument of [`DRM_IOCTL_GET_CAP`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmGetCap {
    /// In: `DRM_CAP_*`.
    pub capability: u64,
    /// Out: its value.
    pub value: u64,
}
const _: () = assert!(size_of::<DrmGetCap>() == 16);

/// `struct drm_set_client_cap`: the argument of [`DRM_IOCTL_SET_CLIENT_CAP`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmSetClientCap {
    /// In: `DRM_CLIENT_CAP_*`.
    pub capability: u64,
    /// In: 0 or 1.
    pub value: u64,
}
const _: () = assert!(size_of::<DrmSetClientCap>() == 16);

/// `struct drm_prime_handle`: the argument of the PRIME ioctls.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmPrimeHandle {
    /// The GEM handle (in for export, out for import).
    pub handle: u32,
    /// In (export): [`DRM_CLOEXEC`] and [`DRM_RDWR`] only.
    pub flags: u32,
    /// The dma-buf fd (out for export, in for import).
    pub fd: i32,
}
const _: () = assert!(size_of::<DrmPrimeHandle>() == 12);

/// `struct drm_event`: the header of every event read from a DRM fd.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmEvent {
    /// `DRM_EVENT_*`.
    pub type_: u32,
    /// Length of the whole event in bytes.
    pub length: u32,
}
const _: () = assert!(size_of::<DrmEvent>() == 8);

/// `struct drm_event_vblank`: a vblank or flip-complete event.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmEventVblank {
    /// Header: type and length (32).
    pub base: DrmEvent,
    /// The `user_data` of the request.
    pub user_data: u64,
    /// Seconds of the vblank's timestamp.
    pub tv_sec: u32,
    /// Microseconds of the vblank's timestamp.
    pub tv_usec: u32,
    /// The vblank counter.
    pub sequence: u32,
    /// The CRTC (with [`DRM_CAP_CRTC_IN_VBLANK_EVENT`]).
    pub crtc_id: u32,
}
const _: () = assert!(size_of::<DrmEventVblank>() == 32);

/// `struct drm_mode_modeinfo`: a display mode.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeModeinfo {
    /// Pixel clock in kHz.
    pub clock: u32,
    /// Visible width.
    pub hdisplay: u16,
    /// Horizontal sync start.
    pub hsync_start: u16,
    /// Horizontal sync end.
    pub hsync_end: u16,
    /// Total line length.
    pub htotal: u16,
    /// Horizontal skew.
    pub hskew: u16,
    /// Visible height.
    pub vdisplay: u16,
    /// Vertical sync start.
    pub vsync_start: u16,
    /// Vertical sync end.
    pub vsync_end: u16,
    /// Total lines.
    pub vtotal: u16,
    /// Vertical scan.
    pub vscan: u16,
    /// Refresh rate in Hz.
    pub vrefresh: u32,
    /// `DRM_MODE_FLAG_*`.
    pub flags: u32,
    /// `DRM_MODE_TYPE_*`.
    pub type_: u32,
    /// NUL-terminated name, e.g. `1920x1080`.
    pub name: [u8; DRM_DISPLAY_MODE_LEN],
}
const _: () = assert!(size_of::<DrmModeModeinfo>() == 68);

/// `struct drm_mode_card_res`: the argument of [`DRM_IOCTL_MODE_GETRESOURCES`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCardRes {
    /// User array of `count_fbs` framebuffer ids.
    pub fb_id_ptr: u64,
    /// User array of `count_crtcs` CRTC ids.
    pub crtc_id_ptr: u64,
    /// User array of `count_connectors` connector ids.
    pub connector_id_ptr: u64,
    /// User array of `count_encoders` encoder ids.
    pub encoder_id_ptr: u64,
    /// In: room; out: how many.
    pub count_fbs: u32,
    /// In: room; out: how many.
    pub count_crtcs: u32,
    /// In: room; out: how many.
    pub count_connectors: u32,
    /// In: room; out: how many.
    pub count_encoders: u32,
    /// Out: smallest framebuffer width.
    pub min_width: u32,
    /// Out: largest framebuffer width.
    pub max_width: u32,
    /// Out: smallest framebuffer height.
    pub min_height: u32,
    /// Out: largest framebuffer height.
    pub max_height: u32,
}
const _: () = assert!(size_of::<DrmModeCardRes>() == 64);

/// `struct drm_mode_crtc`: the argument of GETCRTC and SETCRTC.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCrtc {
    /// In (SETCRTC): user array of connector ids.
    pub set_connectors_ptr: u64,
    /// In (SETCRTC): entries at `set_connectors_ptr`.
    pub count_connectors: u32,
    /// The CRTC.
    pub crtc_id: u32,
    /// The framebuffer scanned out (0: none; SETCRTC with -1 keeps it).
    pub fb_id: u32,
    /// Source x in the framebuffer.
    pub x: u32,
    /// Source y in the framebuffer.
    pub y: u32,
    /// Gamma table size.
    pub gamma_size: u32,
    /// Whether `mode` is set.
    pub mode_valid: u32,
    /// The mode.
    pub mode: DrmModeModeinfo,
}
const _: () = assert!(size_of::<DrmModeCrtc>() == 104);

/// `struct drm_mode_get_encoder`: the argument of [`DRM_IOCTL_MODE_GETENCODER`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetEncoder {
    /// In: the encoder.
    pub encoder_id: u32,
    /// Out: `DRM_MODE_ENCODER_*`.
    pub encoder_type: u32,
    /// Out: the CRTC it is bound to (0: none).
    pub crtc_id: u32,
    /// Out: bit mask of CRTC indexes it can drive.
    pub possible_crtcs: u32,
    /// Out: bit mask of encoders it can clone.
    pub possible_clones: u32,
}
const _: () = assert!(size_of::<DrmModeGetEncoder>() == 20);

/// `struct drm_mode_get_connector`: the argument of [`DRM_IOCTL_MODE_GETCONNECTOR`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetConnector {
    /// User array of encoder ids.
    pub encoders_ptr: u64,
    /// User array of [`DrmModeModeinfo`].
    pub modes_ptr: u64,
    /// User array of property ids.
    pub props_ptr: u64,
    /// User array of property values (u64).
    pub prop_values_ptr: u64,
    /// In: room; out: how many.
    pub count_modes: u32,
    /// In: room; out: how many.
    pub count_props: u32,
    /// In: room; out: how many.
    pub count_encoders: u32,
    /// Out: the current encoder.
    pub encoder_id: u32,
    /// In: the connector.
    pub connector_id: u32,
    /// Out: `DRM_MODE_CONNECTOR_*`.
    pub connector_type: u32,
    /// Out: index among connectors of this type.
    pub connector_type_id: u32,
    /// Out: `DRM_MODE_CONNECTED` etc.
    pub connection: u32,
    /// Out: width in mm.
    pub mm_width: u32,
    /// Out: height in mm.
    pub mm_height: u32,
    /// Out: subpixel order.
    pub subpixel: u32,
    /// Unused.
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmModeGetConnector>() == 80);

/// `struct drm_mode_get_property`: the argument of [`DRM_IOCTL_MODE_GETPROPERTY`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetProperty {
    /// User array of u64 values (range bounds, enum values).
    pub values_ptr: u64,
    /// User array of `drm_mode_property_enum`.
    pub enum_blob_ptr: u64,
    /// In: the property.
    pub prop_id: u32,
    /// Out: `DRM_MODE_PROP_*`.
    pub flags: u32,
    /// Out: NUL-terminated name.
    pub name: [u8; DRM_PROP_NAME_LEN],
    /// In: room; out: how many.
    pub count_values: u32,
    /// In: room; out: how many.
    pub count_enum_blobs: u32,
}
const _: () = assert!(size_of::<DrmModeGetProperty>() == 64);

/// `struct drm_mode_property_enum`: one named value of an enum property.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModePropertyEnum {
    /// The value.
    pub value: u64,
    /// NUL-terminated name.
    pub name: [u8; DRM_PROP_NAME_LEN],
}
const _: () = assert!(size_of::<DrmModePropertyEnum>() == 40);

/// `struct drm_mode_get_blob`: the argument of [`DRM_IOCTL_MODE_GETPROPBLOB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetBlob {
    /// In: the blob.
    pub blob_id: u32,
    /// In: room at `data`; out: the blob's length.
    pub length: u32,
    /// User pointer for the bytes.
    pub data: u64,
}
const _: () = assert!(size_of::<DrmModeGetBlob>() == 16);

/// `struct drm_mode_crtc_page_flip`: the argument of [`DRM_IOCTL_MODE_PAGE_FLIP`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCrtcPageFlip {
    /// The CRTC.
    pub crtc_id: u32,
    /// The framebuffer to show.
    pub fb_id: u32,
    /// `DRM_MODE_PAGE_FLIP_*`.
    pub flags: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Returned in the flip event.
    pub user_data: u64,
}
const _: () = assert!(size_of::<DrmModeCrtcPageFlip>() == 24);

/// `struct drm_mode_create_dumb`: the argument of [`DRM_IOCTL_MODE_CREATE_DUMB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCreateDumb {
    /// In: rows.
    pub height: u32,
    /// In: pixels per row.
    pub width: u32,
    /// In: bits per pixel.
    pub bpp: u32,
    /// In: must be 0.
    pub flags: u32,
    /// Out: the GEM handle.
    pub handle: u32,
    /// Out: bytes per row.
    pub pitch: u32,
    /// Out: bytes of the buffer.
    pub size: u64,
}
const _: () = assert!(size_of::<DrmModeCreateDumb>() == 32);

/// `struct drm_mode_map_dumb`: the argument of [`DRM_IOCTL_MODE_MAP_DUMB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeMapDumb {
    /// In: the GEM handle.
    pub handle: u32,
    /// Unused.
    pub pad: u32,
    /// Out: the offset to pass to `mmap` on the DRM fd.
    pub offset: u64,
}
const _: () = assert!(size_of::<DrmModeMapDumb>() == 16);

/// `struct drm_mode_destroy_dumb`: the argument of [`DRM_IOCTL_MODE_DESTROY_DUMB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeDestroyDumb {
    /// In: the GEM handle.
    pub handle: u32,
}
const _: () = assert!(size_of::<DrmModeDestroyDumb>() == 4);

/// `struct drm_mode_get_plane_res`: the argument of [`DRM_IOCTL_MODE_GETPLANERESOURCES`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetPlaneRes {
    /// User array of plane ids.
    pub plane_id_ptr: u64,
    /// In: room; out: how many.
    pub count_planes: u32,
    /// Tail padding of the C struct.
    pub _pad: u32,
}
const _: () = assert!(size_of::<DrmModeGetPlaneRes>() == 16);

/// `struct drm_mode_get_plane`: the argument of [`DRM_IOCTL_MODE_GETPLANE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeGetPlane {
    /// In: the plane.
    pub plane_id: u32,
    /// Out: the CRTC it shows on (0: none).
    pub crtc_id: u32,
    /// Out: the framebuffer it shows (0: none).
    pub fb_id: u32,
    /// Out: bit mask of CRTC indexes it can show on.
    pub possible_crtcs: u32,
    /// Out: gamma table size.
    pub gamma_size: u32,
    /// In: room; out: how many formats.
    pub count_format_types: u32,
    /// User array of fourcc formats.
    pub format_type_ptr: u64,
}
const _: () = assert!(size_of::<DrmModeGetPlane>() == 32);

/// `struct drm_mode_set_plane`: the argument of [`DRM_IOCTL_MODE_SETPLANE`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeSetPlane {
    /// The plane.
    pub plane_id: u32,
    /// The CRTC.
    pub crtc_id: u32,
    /// The framebuffer (0: disable the plane).
    pub fb_id: u32,
    /// Unused.
    pub flags: u32,
    /// Destination x on the CRTC.
    pub crtc_x: i32,
    /// Destination y on the CRTC.
    pub crtc_y: i32,
    /// Destination width.
    pub crtc_w: u32,
    /// Destination height.
    pub crtc_h: u32,
    /// Source x, 16.16 fixed point.
    pub src_x: u32,
    /// Source y, 16.16 fixed point.
    pub src_y: u32,
    /// Source height, 16.16 fixed point.
    pub src_h: u32,
    /// Source width, 16.16 fixed point.
    pub src_w: u32,
}
const _: () = assert!(size_of::<DrmModeSetPlane>() == 48);

/// `struct drm_mode_fb_cmd2`: the argument of [`DRM_IOCTL_MODE_ADDFB2`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeFbCmd2 {
    /// Out: the framebuffer id.
    pub fb_id: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `DRM_FORMAT_*` fourcc.
    pub pixel_format: u32,
    /// [`DRM_MODE_FB_MODIFIERS`] or 0.
    pub flags: u32,
    /// GEM handle of each plane.
    pub handles: [u32; 4],
    /// Bytes per row of each plane.
    pub pitches: [u32; 4],
    /// Offset of each plane in its buffer.
    pub offsets: [u32; 4],
    /// Padding before `modifier`.
    pub _pad: u32,
    /// Layout modifier of each plane.
    pub modifier: [u64; 4],
}
const _: () = assert!(size_of::<DrmModeFbCmd2>() == 104);

/// `struct drm_mode_obj_get_properties`: the argument of [`DRM_IOCTL_MODE_OBJ_GETPROPERTIES`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeObjGetProperties {
    /// User array of property ids.
    pub props_ptr: u64,
    /// User array of u64 values.
    pub prop_values_ptr: u64,
    /// In: room; out: how many.
    pub count_props: u32,
    /// In: the object.
    pub obj_id: u32,
    /// In: `DRM_MODE_OBJECT_*`.
    pub obj_type: u32,
    /// Tail padding of the C struct.
    pub _pad: u32,
}
const _: () = assert!(size_of::<DrmModeObjGetProperties>() == 32);

/// `struct drm_mode_atomic`: the argument of [`DRM_IOCTL_MODE_ATOMIC`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeAtomic {
    /// `DRM_MODE_ATOMIC_*` and `DRM_MODE_PAGE_FLIP_EVENT`.
    pub flags: u32,
    /// Objects in `objs_ptr`.
    pub count_objs: u32,
    /// User array of object ids.
    pub objs_ptr: u64,
    /// User array of property counts, one per object.
    pub count_props_ptr: u64,
    /// User array of property ids, all objects in a row.
    pub props_ptr: u64,
    /// User array of u64 values, one per property id.
    pub prop_values_ptr: u64,
    /// Must be 0.
    pub reserved: u64,
    /// Returned in the flip events.
    pub user_data: u64,
}
const _: () = assert!(size_of::<DrmModeAtomic>() == 56);

/// `struct drm_mode_create_blob`: the argument of [`DRM_IOCTL_MODE_CREATEPROPBLOB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCreateBlob {
    /// User pointer to the bytes.
    pub data: u64,
    /// Bytes at `data`.
    pub length: u32,
    /// Out: the blob id.
    pub blob_id: u32,
}
const _: () = assert!(size_of::<DrmModeCreateBlob>() == 16);

/// `struct drm_mode_destroy_blob`: the argument of [`DRM_IOCTL_MODE_DESTROYPROPBLOB`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeDestroyBlob {
    /// The blob.
    pub blob_id: u32,
}
const _: () = assert!(size_of::<DrmModeDestroyBlob>() == 4);

/// `struct drm_mode_crtc_lut`: the argument of [`DRM_IOCTL_MODE_SETGAMMA`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DrmModeCrtcLut {
    /// The CRTC.
    pub crtc_id: u32,
    /// Entries per channel.
    pub gamma_size: u32,
    /// User pointer to the red ramp (`u16`s).
    pub red: u64,
    /// User pointer to the green ramp.
    pub green: u64,
    /// User pointer to the blue ramp.
    pub blue: u64,
}
const _: () = assert!(size_of::<DrmModeCrtcLut>() == 32);
