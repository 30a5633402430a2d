//! Checks every struct layout, ioctl number and constant of teeheap-uapi
//! against the C compiler and the system's `<linux/*.h>` headers.
//!
//! One table lists each check once; from it the test writes a C program that
//! prints `name value` lines, compiles and runs it with `$CC` (default `cc`),
//! and compares each line with the Rust value. A missing compiler fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use teeheap_uapi::dma_buf::*;
use teeheap_uapi::dma_heap::*;
use teeheap_uapi::drm::*;
use teeheap_uapi::sync_file::*;
use teeheap_uapi::tee::*;
use teeheap_uapi::v4l2::*;

/// One value computed by both sides.
struct Check {
    /// What the C program prints before the value; unique in the table.
    name: String,
    /// The C expression for the value.
    c_expr: String,
    /// The value as the Rust crate has it.
    ours: u64,
    /// `Some(macro)`: only checked when the headers define `macro` (newer UAPI).
    only_if_defined: Option<&'static str>,
}

fn to_u64<T: TryInto<u64>>(v: T) -> u64
where
    T::Error: Debug,
{
    v.try_into().expect("value fits in u64")
}

/// `layout!(RustType = "struct c_name" { field, ... })`: sizeof, alignof and
/// offsetof of every field (field names are the same on both sides, except
/// that a C name which is a Rust keyword gets a trailing `_`: `type_`).
macro_rules! layout {
    ($t:ty = $c:literal { $($f:ident),* $(,)? }) => {
        vec![
            Check {
                name: format!("sizeof({})", $c),
                c_expr: format!("sizeof({})", $c),
                ours: to_u64(size_of::<$t>()),
                only_if_defined: None,
            },
            Check {
                name: format!("alignof({})", $c),
                c_expr: format!("_Alignof({})", $c),
                ours: to_u64(align_of::<$t>()),
                only_if_defined: None,
            },
            $(Check {
                name: format!("offsetof({}, {})", $c, stringify!($f).trim_end_matches('_')),
                c_expr: format!("offsetof({}, {})", $c, stringify!($f).trim_end_matches('_')),
                ours: to_u64(offset_of!($t, $f)),
                only_if_defined: None,
            },)*
        ]
    };
}

/// `konst!(NAME, ...)`: a macro that every supported header version defines,
/// with the same name as the Rust constant.
macro_rules! konst {
    ($($k:ident),* $(,)?) => {
        vec![$(Check {
            name: stringify!($k).to_string(),
            c_expr: stringify!($k).to_string(),
            ours: to_u64($k),
            only_if_defined: None,
        }),*]
    };
}

/// `newer!(NAME, ...)`: like `konst!`, for macros that only newer headers
/// define; compared when present.
macro_rules! newer {
    ($($k:ident),* $(,)?) => {
        vec![$(Check {
            name: stringify!($k).to_string(),
            c_expr: stringify!($k).to_string(),
            ours: to_u64($k),
            only_if_defined: Some(stringify!($k)),
        }),*]
    };
}

/// `expr!("c expression", rust value)`: anything else.
macro_rules! expr {
    ($c:literal, $ours:expr) => {
        vec![Check { name: $c.to_string(), c_expr: $c.to_string(), ours: to_u64($ours), only_if_defined: None }]
    };
}

fn table() -> Vec<Check> {
    [
        // linux/dma-heap.h
        layout!(DmaHeapAllocationData = "struct dma_heap_allocation_data" {
            len, fd, fd_flags, heap_flags
        }),
        konst!(
            DMA_HEAP_IOC_MAGIC,
            DMA_HEAP_IOCTL_ALLOC,
            DMA_HEAP_VALID_FD_FLAGS,
            DMA_HEAP_VALID_HEAP_FLAGS,
            O_CLOEXEC,
            O_ACCMODE,
        ),
        // linux/dma-buf.h
        layout!(DmaBufSync = "struct dma_buf_sync" { flags }),
        layout!(DmaBufExportSyncFile = "struct dma_buf_export_sync_file" { flags, fd }),
        layout!(DmaBufImportSyncFile = "struct dma_buf_import_sync_file" { flags, fd }),
        konst!(
            DMA_BUF_BASE,
            DMA_BUF_NAME_LEN,
            DMA_BUF_SYNC_READ,
            DMA_BUF_SYNC_WRITE,
            DMA_BUF_SYNC_RW,
            DMA_BUF_SYNC_START,
            DMA_BUF_SYNC_END,
            DMA_BUF_SYNC_VALID_FLAGS_MASK,
            DMA_BUF_IOCTL_SYNC,
            DMA_BUF_SET_NAME,
            DMA_BUF_SET_NAME_A,
            DMA_BUF_SET_NAME_B,
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
        ),
        // linux/sync_file.h
        layout!(SyncMergeData = "struct sync_merge_data" { name, fd2, fence, flags, pad }),
        layout!(SyncFenceInfo = "struct sync_fence_info" { obj_name, driver_name, status, flags, timestamp_ns }),
        layout!(SyncFileInfo = "struct sync_file_info" { name, status, flags, num_fences, pad, sync_fence_info }),
        layout!(SyncSetDeadline = "struct sync_set_deadline" { deadline_ns, pad }),
        expr!("sizeof(((struct sync_merge_data *)0)->name)", SYNC_NAME_LEN),
        konst!(SYNC_IOC_MAGIC, SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO, SYNC_IOC_SET_DEADLINE),
        // linux/tee.h: structs
        layout!(TeeIoctlVersionData = "struct tee_ioctl_version_data" {
            impl_id, impl_caps, gen_caps
        }),
        layout!(TeeIoctlShmAllocData = "struct tee_ioctl_shm_alloc_data" { size, flags, id }),
        layout!(TeeIoctlBufData = "struct tee_ioctl_buf_data" { buf_ptr, buf_len }),
        layout!(TeeIoctlParam = "struct tee_ioctl_param" { attr, a, b, c }),
        layout!(TeeIoctlOpenSessionArg = "struct tee_ioctl_open_session_arg" {
            uuid, clnt_uuid, clnt_login, cancel_id, session, ret, ret_origin, num_params
        }),
        layout!(TeeIoctlInvokeArg = "struct tee_ioctl_invoke_arg" {
            func, session, cancel_id, ret, ret_origin, num_params
        }),
        layout!(TeeIoctlCancelArg = "struct tee_ioctl_cancel_arg" { cancel_id, session }),
        layout!(TeeIoctlCloseSessionArg = "struct tee_ioctl_close_session_arg" { session }),
        layout!(TeeIoctlSupplRecvArg = "struct tee_iocl_supp_recv_arg" { func, num_params }),
        layout!(TeeIoctlSupplSendArg = "struct tee_iocl_supp_send_arg" { ret, num_params }),
        layout!(TeeIoctlShmRegisterData = "struct tee_ioctl_shm_register_data" {
            addr, length, flags, id
        }),
        layout!(TeeIoctlShmRegisterFdData = "struct tee_ioctl_shm_register_fd_data" {
            fd, size, flags, id
        }),
        // Params start right after each fixed header.
        expr!("offsetof(struct tee_ioctl_open_session_arg, params)", size_of::<TeeIoctlOpenSessionArg>()),
        expr!("offsetof(struct tee_ioctl_invoke_arg, params)", size_of::<TeeIoctlInvokeArg>()),
        expr!("offsetof(struct tee_iocl_supp_recv_arg, params)", size_of::<TeeIoctlSupplRecvArg>()),
        expr!("offsetof(struct tee_iocl_supp_send_arg, params)", size_of::<TeeIoctlSupplSendArg>()),
        expr!("sizeof(((struct tee_ioctl_open_session_arg *)0)->uuid)", TEE_IOCTL_UUID_LEN),
        // linux/tee.h: numbers
        konst!(
            TEE_IOC_MAGIC,
            TEE_IOC_BASE,
            TEE_IOC_VERSION,
            TEE_IOC_SHM_ALLOC,
            TEE_IOC_OPEN_SESSION,
            TEE_IOC_INVOKE,
            TEE_IOC_CANCEL,
            TEE_IOC_CLOSE_SESSION,
            TEE_IOC_SUPPL_RECV,
            TEE_IOC_SUPPL_SEND,
            TEE_IOC_SHM_REGISTER_FD,
            TEE_IOC_SHM_REGISTER,
            TEE_MAX_ARG_SIZE,
            TEE_IOCTL_UUID_LEN,
            TEE_GEN_CAP_GP,
            TEE_GEN_CAP_PRIVILEGED,
            TEE_GEN_CAP_REG_MEM,
            TEE_GEN_CAP_MEMREF_NULL,
            TEE_MEMREF_NULL,
            TEE_IMPL_ID_OPTEE,
            TEE_IMPL_ID_AMDTEE,
            TEE_OPTEE_CAP_TZ,
            TEE_IOCTL_PARAM_ATTR_TYPE_NONE,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MASK,
            TEE_IOCTL_PARAM_ATTR_META,
            TEE_IOCTL_PARAM_ATTR_MASK,
            TEE_IOCTL_LOGIN_PUBLIC,
            TEE_IOCTL_LOGIN_USER,
            TEE_IOCTL_LOGIN_GROUP,
            TEE_IOCTL_LOGIN_APPLICATION,
            TEE_IOCTL_LOGIN_USER_APPLICATION,
            TEE_IOCTL_LOGIN_GROUP_APPLICATION,
            TEE_IOCTL_LOGIN_REE_KERNEL_MIN,
            TEE_IOCTL_LOGIN_REE_KERNEL_MAX,
            TEE_IOCTL_LOGIN_REE_KERNEL,
        ),
        // Dropped from the UAPI header for a while, back with protected heaps.
        newer!(TEE_IOCTL_SHM_MAPPED, TEE_IOCTL_SHM_DMA_BUF),
        drm_table(),
        v4l2_table(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `drm/drm.h`, `drm/drm_mode.h`, `drm/drm_fourcc.h` (libdrm's copies of the UAPI headers).
fn drm_table() -> Vec<Check> {
    [
        layout!(DrmVersion = "struct drm_version" {
            version_major, version_minor, version_patchlevel, name_len, name, date_len, date, desc_len, desc
        }),
        layout!(DrmUnique = "struct drm_unique" { unique_len, unique }),
        layout!(DrmAuth = "struct drm_auth" { magic }),
        layout!(DrmGemClose = "struct drm_gem_close" { handle, pad }),
        layout!(DrmGetCap = "struct drm_get_cap" { capability, value }),
        layout!(DrmSetClientCap = "struct drm_set_client_cap" { capability, value }),
        layout!(DrmPrimeHandle = "struct drm_prime_handle" { handle, flags, fd }),
        layout!(DrmEvent = "struct drm_event" { type_, length }),
        layout!(DrmEventVblank = "struct drm_event_vblank" { base, user_data, tv_sec, tv_usec, sequence, crtc_id }),
        layout!(DrmModeModeinfo = "struct drm_mode_modeinfo" {
            clock, hdisplay, hsync_start, hsync_end, htotal, hskew, vdisplay, vsync_start, vsync_end, vtotal,
            vscan, vrefresh, flags, type_, name
        }),
        layout!(DrmModeCardRes = "struct drm_mode_card_res" {
            fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr, count_fbs, count_crtcs, count_connectors,
            count_encoders, min_width, max_width, min_height, max_height
        }),
        layout!(DrmModeCrtc = "struct drm_mode_crtc" {
            set_connectors_ptr, count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid, mode
        }),
        layout!(DrmModeGetEncoder = "struct drm_mode_get_encoder" {
            encoder_id, encoder_type, crtc_id, possible_crtcs, possible_clones
        }),
        layout!(DrmModeGetConnector = "struct drm_mode_get_connector" {
            encoders_ptr, modes_ptr, props_ptr, prop_values_ptr, count_modes, count_props, count_encoders,
            encoder_id, connector_id, connector_type, connector_type_id, connection, mm_width, mm_height,
            subpixel, pad
        }),
        layout!(DrmModeGetProperty = "struct drm_mode_get_property" {
            values_ptr, enum_blob_ptr, prop_id, flags, name, count_values, count_enum_blobs
        }),
        layout!(DrmModePropertyEnum = "struct drm_mode_property_enum" { value, name }),
        layout!(DrmModeGetBlob = "struct drm_mode_get_blob" { blob_id, length, data }),
        layout!(DrmModeCrtcPageFlip = "struct drm_mode_crtc_page_flip" { crtc_id, fb_id, flags, reserved, user_data }),
        layout!(DrmModeCreateDumb = "struct drm_mode_create_dumb" { height, width, bpp, flags, handle, pitch, size }),
        layout!(DrmModeMapDumb = "struct drm_mode_map_dumb" { handle, pad, offset }),
        layout!(DrmModeDestroyDumb = "struct drm_mode_destroy_dumb" { handle }),
        layout!(DrmModeGetPlaneRes = "struct drm_mode_get_plane_res" { plane_id_ptr, count_planes }),
        layout!(DrmModeGetPlane = "struct drm_mode_get_plane" {
            plane_id, crtc_id, fb_id, possible_crtcs, gamma_size, count_format_types, format_type_ptr
        }),
        layout!(DrmModeSetPlane = "struct drm_mode_set_plane" {
            plane_id, crtc_id, fb_id, flags, crtc_x, crtc_y, crtc_w, crtc_h, src_x, src_y, src_h, src_w
        }),
        layout!(DrmModeFbCmd2 = "struct drm_mode_fb_cmd2" {
            fb_id, width, height, pixel_format, flags, handles, pitches, offsets, modifier
        }),
        layout!(DrmModeObjGetProperties = "struct drm_mode_obj_get_properties" {
            props_ptr, prop_values_ptr, count_props, obj_id, obj_type
        }),
        layout!(DrmModeAtomic = "struct drm_mode_atomic" {
            flags, count_objs, objs_ptr, count_props_ptr, props_ptr, prop_values_ptr, reserved, user_data
        }),
        layout!(DrmModeCreateBlob = "struct drm_mode_create_blob" { data, length, blob_id }),
        layout!(DrmModeDestroyBlob = "struct drm_mode_destroy_blob" { blob_id }),
        layout!(DrmModeCrtcLut = "struct drm_mode_crtc_lut" { crtc_id, gamma_size, red, green, blue }),
        konst!(
            DRM_IOCTL_BASE,
            DRM_COMMAND_BASE,
            DRM_IOCTL_VERSION,
            DRM_IOCTL_GET_UNIQUE,
            DRM_IOCTL_GET_MAGIC,
            DRM_IOCTL_AUTH_MAGIC,
            DRM_IOCTL_GEM_CLOSE,
            DRM_IOCTL_GET_CAP,
            DRM_IOCTL_SET_CLIENT_CAP,
            DRM_IOCTL_SET_MASTER,
            DRM_IOCTL_DROP_MASTER,
            DRM_IOCTL_PRIME_HANDLE_TO_FD,
            DRM_IOCTL_PRIME_FD_TO_HANDLE,
            DRM_IOCTL_MODE_GETRESOURCES,
            DRM_IOCTL_MODE_GETCRTC,
            DRM_IOCTL_MODE_SETCRTC,
            DRM_IOCTL_MODE_GETENCODER,
            DRM_IOCTL_MODE_GETCONNECTOR,
            DRM_IOCTL_MODE_GETPROPERTY,
            DRM_IOCTL_MODE_GETPROPBLOB,
            DRM_IOCTL_MODE_RMFB,
            DRM_IOCTL_MODE_PAGE_FLIP,
            DRM_IOCTL_MODE_CREATE_DUMB,
            DRM_IOCTL_MODE_MAP_DUMB,
            DRM_IOCTL_MODE_DESTROY_DUMB,
            DRM_IOCTL_MODE_GETPLANERESOURCES,
            DRM_IOCTL_MODE_GETPLANE,
            DRM_IOCTL_MODE_SETPLANE,
            DRM_IOCTL_MODE_ADDFB2,
            DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
            DRM_IOCTL_MODE_ATOMIC,
            DRM_IOCTL_MODE_CREATEPROPBLOB,
            DRM_IOCTL_MODE_DESTROYPROPBLOB,
            DRM_IOCTL_MODE_SETGAMMA,
            DRM_CAP_DUMB_BUFFER,
            DRM_CAP_VBLANK_HIGH_CRTC,
            DRM_CAP_DUMB_PREFERRED_DEPTH,
            DRM_CAP_DUMB_PREFER_SHADOW,
            DRM_CAP_PRIME,
            DRM_CAP_TIMESTAMP_MONOTONIC,
            DRM_CAP_ASYNC_PAGE_FLIP,
            DRM_CAP_CURSOR_WIDTH,
            DRM_CAP_CURSOR_HEIGHT,
            DRM_CAP_ADDFB2_MODIFIERS,
            DRM_CAP_PAGE_FLIP_TARGET,
            DRM_CAP_CRTC_IN_VBLANK_EVENT,
            DRM_CAP_SYNCOBJ,
            DRM_PRIME_CAP_IMPORT,
            DRM_PRIME_CAP_EXPORT,
            DRM_CLIENT_CAP_STEREO_3D,
            DRM_CLIENT_CAP_UNIVERSAL_PLANES,
            DRM_CLIENT_CAP_ATOMIC,
            DRM_CLIENT_CAP_ASPECT_RATIO,
            DRM_CLIENT_CAP_WRITEBACK_CONNECTORS,
            DRM_CLOEXEC,
            DRM_RDWR,
            DRM_EVENT_VBLANK,
            DRM_EVENT_FLIP_COMPLETE,
            DRM_MODE_PAGE_FLIP_EVENT,
            DRM_MODE_PAGE_FLIP_ASYNC,
            DRM_MODE_ATOMIC_TEST_ONLY,
            DRM_MODE_ATOMIC_NONBLOCK,
            DRM_MODE_ATOMIC_ALLOW_MODESET,
            DRM_MODE_OBJECT_CRTC,
            DRM_MODE_OBJECT_CONNECTOR,
            DRM_MODE_OBJECT_ENCODER,
            DRM_MODE_OBJECT_MODE,
            DRM_MODE_OBJECT_PROPERTY,
            DRM_MODE_OBJECT_FB,
            DRM_MODE_OBJECT_BLOB,
            DRM_MODE_OBJECT_PLANE,
            DRM_MODE_OBJECT_ANY,
            DRM_MODE_CONNECTOR_VIRTUAL,
            DRM_MODE_ENCODER_VIRTUAL,
            DRM_MODE_TYPE_PREFERRED,
            DRM_MODE_TYPE_DRIVER,
            DRM_MODE_FLAG_PHSYNC,
            DRM_MODE_FLAG_PVSYNC,
            DRM_DISPLAY_MODE_LEN,
            DRM_PROP_NAME_LEN,
            DRM_MODE_PROP_RANGE,
            DRM_MODE_PROP_IMMUTABLE,
            DRM_MODE_PROP_ENUM,
            DRM_MODE_PROP_BLOB,
            DRM_MODE_PROP_OBJECT,
            DRM_MODE_PROP_SIGNED_RANGE,
            DRM_MODE_PROP_ATOMIC,
            DRM_FORMAT_XRGB8888,
            DRM_FORMAT_ARGB8888,
            DRM_FORMAT_NV12,
            DRM_FORMAT_MOD_LINEAR,
            DRM_MODE_FB_MODIFIERS,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `linux/videodev2.h`, `linux/v4l2-controls.h`.
fn v4l2_table() -> Vec<Check> {
    [
        layout!(V4l2Capability = "struct v4l2_capability" {
            driver, card, bus_info, version, capabilities, device_caps, reserved
        }),
        layout!(V4l2Fmtdesc = "struct v4l2_fmtdesc" {
            index, type_, flags, description, pixelformat, mbus_code, reserved
        }),
        layout!(V4l2FrmsizeStepwise = "struct v4l2_frmsize_stepwise" {
            min_width, max_width, step_width, min_height, max_height, step_height
        }),
        layout!(V4l2Frmsizeenum = "struct v4l2_frmsizeenum" { index, pixel_format, type_, stepwise, reserved }),
        expr!("offsetof(struct v4l2_frmsizeenum, discrete)", offset_of!(V4l2Frmsizeenum, stepwise)),
        layout!(V4l2PixFormat = "struct v4l2_pix_format" {
            width, height, pixelformat, field, bytesperline, sizeimage, colorspace, priv_, flags, ycbcr_enc,
            quantization, xfer_func
        }),
        layout!(V4l2Format = "struct v4l2_format" { type_ }),
        expr!("offsetof(struct v4l2_format, fmt)", offset_of!(V4l2Format, pix)),
        expr!("offsetof(struct v4l2_format, fmt.pix)", offset_of!(V4l2Format, pix)),
        expr!("sizeof(((struct v4l2_format *)0)->fmt)", size_of::<V4l2PixFormat>() + 152),
        layout!(V4l2Requestbuffers = "struct v4l2_requestbuffers" {
            count, type_, memory, capabilities, flags, reserved
        }),
        layout!(V4l2Timecode = "struct v4l2_timecode" { type_, flags, frames, seconds, minutes, hours, userbits }),
        layout!(V4l2Buffer = "struct v4l2_buffer" {
            index, type_, bytesused, flags, field, timestamp, timecode, sequence, memory, m, length, reserved2,
            request_fd
        }),
        expr!("sizeof(((struct v4l2_buffer *)0)->timestamp)", size_of::<Timeval>()),
        expr!("sizeof(((struct v4l2_buffer *)0)->m)", size_of::<u64>()),
        layout!(V4l2Exportbuffer = "struct v4l2_exportbuffer" { type_, index, plane, flags, fd, reserved }),
        layout!(V4l2CreateBuffers = "struct v4l2_create_buffers" {
            index, count, memory, format, capabilities, flags, reserved
        }),
        layout!(V4l2Control = "struct v4l2_control" { id, value }),
        layout!(V4l2Queryctrl = "struct v4l2_queryctrl" {
            id, type_, name, minimum, maximum, step, default_value, flags, reserved
        }),
        layout!(V4l2QueryExtCtrl = "struct v4l2_query_ext_ctrl" {
            id, type_, name, minimum, maximum, step, default_value, flags, elem_size, elems, nr_of_dims, dims,
            reserved
        }),
        layout!(V4l2Querymenu = "struct v4l2_querymenu" { id, index, name, reserved }),
        layout!(V4l2ExtControl = "struct v4l2_ext_control" { id, size, reserved2, value64 }),
        layout!(V4l2ExtControls = "struct v4l2_ext_controls" {
            which, count, error_idx, request_fd, reserved, controls
        }),
        layout!(V4l2Rect = "struct v4l2_rect" { left, top, width, height }),
        layout!(V4l2Selection = "struct v4l2_selection" { type_, target, flags, r, reserved }),
        layout!(V4l2EncoderCmd = "struct v4l2_encoder_cmd" { cmd, flags, raw }),
        layout!(V4l2DecoderCmd = "struct v4l2_decoder_cmd" { cmd, flags, raw }),
        expr!("offsetof(struct v4l2_decoder_cmd, stop.pts)", offset_of!(V4l2DecoderCmd, raw)),
        layout!(V4l2EventSubscription = "struct v4l2_event_subscription" { type_, id, flags, reserved }),
        layout!(V4l2Event = "struct v4l2_event" { type_, u, pending, sequence, timestamp, id, reserved }),
        expr!("offsetof(struct v4l2_event, u.src_change.changes)", offset_of!(V4l2Event, u)),
        konst!(
            VIDIOC_QUERYCAP,
            VIDIOC_ENUM_FMT,
            VIDIOC_G_FMT,
            VIDIOC_S_FMT,
            VIDIOC_REQBUFS,
            VIDIOC_QUERYBUF,
            VIDIOC_QBUF,
            VIDIOC_EXPBUF,
            VIDIOC_DQBUF,
            VIDIOC_STREAMON,
            VIDIOC_STREAMOFF,
            VIDIOC_G_CTRL,
            VIDIOC_S_CTRL,
            VIDIOC_QUERYCTRL,
            VIDIOC_QUERYMENU,
            VIDIOC_TRY_FMT,
            VIDIOC_G_PRIORITY,
            VIDIOC_S_PRIORITY,
            VIDIOC_G_EXT_CTRLS,
            VIDIOC_S_EXT_CTRLS,
            VIDIOC_TRY_EXT_CTRLS,
            VIDIOC_ENUM_FRAMESIZES,
            VIDIOC_ENCODER_CMD,
            VIDIOC_TRY_ENCODER_CMD,
            VIDIOC_DQEVENT,
            VIDIOC_SUBSCRIBE_EVENT,
            VIDIOC_UNSUBSCRIBE_EVENT,
            VIDIOC_CREATE_BUFS,
            VIDIOC_PREPARE_BUF,
            VIDIOC_G_SELECTION,
            VIDIOC_S_SELECTION,
            VIDIOC_DECODER_CMD,
            VIDIOC_TRY_DECODER_CMD,
            VIDIOC_QUERY_EXT_CTRL,
            V4L2_CAP_VIDEO_M2M,
            V4L2_CAP_VIDEO_M2M_MPLANE,
            V4L2_CAP_EXT_PIX_FORMAT,
            V4L2_CAP_STREAMING,
            V4L2_CAP_DEVICE_CAPS,
            V4L2_BUF_TYPE_VIDEO_CAPTURE,
            V4L2_BUF_TYPE_VIDEO_OUTPUT,
            V4L2_MEMORY_MMAP,
            V4L2_MEMORY_USERPTR,
            V4L2_MEMORY_DMABUF,
            V4L2_BUF_FLAG_MAPPED,
            V4L2_BUF_FLAG_QUEUED,
            V4L2_BUF_FLAG_DONE,
            V4L2_BUF_FLAG_KEYFRAME,
            V4L2_BUF_FLAG_PFRAME,
            V4L2_BUF_FLAG_ERROR,
            V4L2_BUF_FLAG_PREPARED,
            V4L2_BUF_FLAG_TIMESTAMP_MASK,
            V4L2_BUF_FLAG_TIMESTAMP_COPY,
            V4L2_BUF_FLAG_LAST,
            V4L2_BUF_CAP_SUPPORTS_MMAP,
            V4L2_BUF_CAP_SUPPORTS_USERPTR,
            V4L2_BUF_CAP_SUPPORTS_DMABUF,
            V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS,
            V4L2_FIELD_ANY,
            V4L2_FIELD_NONE,
            V4L2_COLORSPACE_REC709,
            V4L2_COLORSPACE_SRGB,
            V4L2_FMT_FLAG_COMPRESSED,
            V4L2_FMT_FLAG_CONTINUOUS_BYTESTREAM,
            V4L2_FMT_FLAG_DYN_RESOLUTION,
            V4L2_PIX_FMT_FWHT,
            V4L2_PIX_FMT_NV12,
            V4L2_PIX_FMT_YUV420,
            V4L2_FRMSIZE_TYPE_DISCRETE,
            V4L2_FRMSIZE_TYPE_CONTINUOUS,
            V4L2_FRMSIZE_TYPE_STEPWISE,
            V4L2_EVENT_ALL,
            V4L2_EVENT_EOS,
            V4L2_EVENT_CTRL,
            V4L2_EVENT_SOURCE_CHANGE,
            V4L2_EVENT_SRC_CH_RESOLUTION,
            V4L2_EVENT_SUB_FL_SEND_INITIAL,
            V4L2_ENC_CMD_START,
            V4L2_ENC_CMD_STOP,
            V4L2_ENC_CMD_PAUSE,
            V4L2_ENC_CMD_RESUME,
            V4L2_DEC_CMD_START,
            V4L2_DEC_CMD_STOP,
            V4L2_DEC_CMD_PAUSE,
            V4L2_DEC_CMD_RESUME,
            V4L2_CTRL_TYPE_INTEGER,
            V4L2_CTRL_TYPE_BOOLEAN,
            V4L2_CTRL_TYPE_MENU,
            V4L2_CTRL_TYPE_CTRL_CLASS,
            V4L2_CTRL_FLAG_READ_ONLY,
            V4L2_CTRL_FLAG_VOLATILE,
            V4L2_CTRL_FLAG_NEXT_CTRL,
            V4L2_CTRL_FLAG_NEXT_COMPOUND,
            V4L2_CTRL_WHICH_CUR_VAL,
            V4L2_CTRL_WHICH_DEF_VAL,
            V4L2_CTRL_CLASS_USER,
            V4L2_CTRL_CLASS_CODEC,
            V4L2_CID_BASE,
            V4L2_CID_CODEC_BASE,
            V4L2_CID_MIN_BUFFERS_FOR_CAPTURE,
            V4L2_CID_MIN_BUFFERS_FOR_OUTPUT,
            V4L2_CID_MPEG_VIDEO_GOP_SIZE,
            V4L2_CID_FWHT_I_FRAME_QP,
            V4L2_CID_FWHT_P_FRAME_QP,
            V4L2_SEL_TGT_CROP,
            V4L2_SEL_TGT_CROP_DEFAULT,
            V4L2_SEL_TGT_CROP_BOUNDS,
            V4L2_SEL_TGT_COMPOSE,
            V4L2_SEL_TGT_COMPOSE_DEFAULT,
            V4L2_SEL_TGT_COMPOSE_BOUNDS,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Headers older than the protected-heap series (e.g. Debian's 6.1) lack
/// SHM_REGISTER_FD; this mirror of its UAPI definition stands in for them.
const C_PRELUDE: &str = r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <linux/tee.h>
#include <linux/videodev2.h>
#include <libdrm/drm.h>
#include <libdrm/drm_mode.h>
#include <libdrm/drm_fourcc.h>

/* Headers before 6.3 lack SYNC_IOC_SET_DEADLINE; its UAPI definition. */
#ifndef SYNC_IOC_SET_DEADLINE
struct sync_set_deadline {
	__u64 deadline_ns;
	__u64 pad;
};
#define SYNC_IOC_SET_DEADLINE _IOW(SYNC_IOC_MAGIC, 5, struct sync_set_deadline)
#endif

#ifndef TEE_IOC_SHM_REGISTER_FD
struct tee_ioctl_shm_register_fd_data {
	__s64 fd;
	__u64 size;
	__u32 flags;
	__s32 id;
} __attribute__((aligned(8)));
#define TEE_IOC_SHM_REGISTER_FD \
	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, struct tee_ioctl_shm_register_fd_data)
#endif

int main(void)
{
"#;

fn c_program(checks: &[Check]) -> String {
    let mut src = String::from(C_PRELUDE);
    for check in checks {
        if let Some(mac) = check.only_if_defined {
            writeln!(src, "#ifdef {mac}").unwrap();
        }
        writeln!(src, "\tprintf(\"%s %llu\\n\", \"{}\", (unsigned long long)({}));", check.name, check.c_expr).unwrap();
        if check.only_if_defined.is_some() {
            src.push_str("#endif\n");
        }
    }
    src.push_str("\treturn 0;\n}\n");
    src
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("teeheap-uapi-c-layout-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles and runs `src`; returns what it printed as `name -> value`.
fn run_c(src: &str) -> BTreeMap<String, u64> {
    let dir = TempDir::new();
    let c_file = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&c_file, src).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut words = cc.split_whitespace();
    let prog = words.next().expect("$CC is empty");
    let out = Command::new(prog)
        .args(words)
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&c_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` (set $CC): {e}"));
    assert!(
        out.status.success(),
        "`{cc}` failed on the generated program:\n{}\n--- program ---\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "layout program failed: {run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let mut values = BTreeMap::new();
    for line in stdout.lines() {
        let (name, value) = line.rsplit_once(' ').expect("`name value` line");
        let value = value.parse().expect("decimal value");
        assert!(values.insert(name.to_string(), value).is_none(), "{name} printed twice");
    }
    values
}

#[test]
fn table_names_are_unique() {
    let mut seen = BTreeSet::new();
    for check in table() {
        assert!(seen.insert(check.name.clone()), "{} listed twice", check.name);
    }
}

#[test]
fn layouts_and_numbers_match_c_headers() {
    let checks = table();
    let c_values = run_c(&c_program(&checks));

    let mut mismatches = Vec::new();
    let mut compared = 0;
    for check in &checks {
        match (c_values.get(&check.name), check.only_if_defined) {
            (Some(&c), _) => {
                compared += 1;
                if c != check.ours {
                    mismatches.push(format!("{}: C {c:#x}, Rust {:#x}", check.name, check.ours));
                }
            }
            (None, Some(mac)) => eprintln!("note: {mac} not in these headers, not compared"),
            (None, None) => mismatches.push(format!("{}: not printed by C", check.name)),
        }
    }
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), checks.len(), mismatches.join("\n"));
    assert_eq!(compared, c_values.len(), "C printed names not in the table");
    eprintln!("{compared} values compared with C");
}
