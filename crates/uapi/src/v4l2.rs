//! `linux/videodev2.h` and `linux/v4l2-controls.h` (subset): what a
//! single-planar V4L2 memory-to-memory codec (like `vicodec`) answers.
//!
//! Layouts are those of a 64-bit kernel (pointers, `long` and `struct
//! timeval` fields are 8 bytes). Every request uses the type byte
//! [`VIDIOC_BASE`]. Unions are kept as fields of their largest or most used
//! member, with the byte offsets of C.

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioc::{ior, iow, iowr};

const _: () = assert!(size_of::<usize>() == 8, "the V4L2 layouts here are those of a 64-bit kernel");

/// ioctl type byte of V4L2 fds, `'V'`.
pub const VIDIOC_BASE: u8 = b'V';

/// Driver and device capabilities; takes a [`V4l2Capability`].
pub const VIDIOC_QUERYCAP: u32 = ior(VIDIOC_BASE, 0, size_of::<V4l2Capability>());
/// Enumerates the formats of a queue; takes a [`V4l2Fmtdesc`].
pub const VIDIOC_ENUM_FMT: u32 = iowr(VIDIOC_BASE, 2, size_of::<V4l2Fmtdesc>());
/// A queue's format; takes a [`V4l2Format`].
pub const VIDIOC_G_FMT: u32 = iowr(VIDIOC_BASE, 4, size_of::<V4l2Format>());
/// Sets a queue's format (adjusted to what the device can); takes a [`V4l2Format`].
pub const VIDIOC_S_FMT: u32 = iowr(VIDIOC_BASE, 5, size_of::<V4l2Format>());
/// Allocates (or frees, count 0) a queue's buffers; takes a [`V4l2Requestbuffers`].
pub const VIDIOC_REQBUFS: u32 = iowr(VIDIOC_BASE, 8, size_of::<V4l2Requestbuffers>());
/// A buffer's state and mmap offset; takes a [`V4l2Buffer`].
pub const VIDIOC_QUERYBUF: u32 = iowr(VIDIOC_BASE, 9, size_of::<V4l2Buffer>());
/// Queues a buffer to the device; takes a [`V4l2Buffer`].
pub const VIDIOC_QBUF: u32 = iowr(VIDIOC_BASE, 15, size_of::<V4l2Buffer>());
/// Exports an MMAP buffer as a dma-buf fd; takes a [`V4l2Exportbuffer`].
pub const VIDIOC_EXPBUF: u32 = iowr(VIDIOC_BASE, 16, size_of::<V4l2Exportbuffer>());
/// Dequeues a done buffer; takes a [`V4l2Buffer`].
pub const VIDIOC_DQBUF: u32 = iowr(VIDIOC_BASE, 17, size_of::<V4l2Buffer>());
/// Starts streaming on a queue; takes the buffer type (`int`).
pub const VIDIOC_STREAMON: u32 = iow(VIDIOC_BASE, 18, size_of::<i32>());
/// Stops streaming on a queue and returns its buffers; takes the buffer type (`int`).
pub const VIDIOC_STREAMOFF: u32 = iow(VIDIOC_BASE, 19, size_of::<i32>());
/// A control's value; takes a [`V4l2Control`].
pub const VIDIOC_G_CTRL: u32 = iowr(VIDIOC_BASE, 27, size_of::<V4l2Control>());
/// Sets a control's value; takes a [`V4l2Control`].
pub const VIDIOC_S_CTRL: u32 = iowr(VIDIOC_BASE, 28, size_of::<V4l2Control>());
/// A control's description; takes a [`V4l2Queryctrl`].
pub const VIDIOC_QUERYCTRL: u32 = iowr(VIDIOC_BASE, 36, size_of::<V4l2Queryctrl>());
/// One item of a menu control; takes a [`V4l2Querymenu`].
pub const VIDIOC_QUERYMENU: u32 = iowr(VIDIOC_BASE, 37, size_of::<V4l2Querymenu>());
/// Checks a format without setting it; takes a [`V4l2Format`].
pub const VIDIOC_TRY_FMT: u32 = iowr(VIDIOC_BASE, 64, size_of::<V4l2Format>());
/// The file's access priority; takes a `u32`.
pub const VIDIOC_G_PRIORITY: u32 = ior(VIDIOC_BASE, 67, size_of::<u32>());
/// Sets the file's access priority; takes a `u32`.
pub const VIDIOC_S_PRIORITY: u32 = iow(VIDIOC_BASE, 68, size_of::<u32>());
/// Several controls' values; takes a [`V4l2ExtControls`].
pub const VIDIOC_G_EXT_CTRLS: u32 = iowr(VIDIOC_BASE, 71, size_of::<V4l2ExtControls>());
/// Sets several controls at once; takes a [`V4l2ExtControls`].
pub const VIDIOC_S_EXT_CTRLS: u32 = iowr(VIDIOC_BASE, 72, size_of::<V4l2ExtControls>());
/// Checks several control values; takes a [`V4l2ExtControls`].
pub const VIDIOC_TRY_EXT_CTRLS: u32 = iowr(VIDIOC_BASE, 73, size_of::<V4l2ExtControls>());
/// Enumerates frame sizes of a pixel format; takes a [`V4l2Frmsizeenum`].
pub const VIDIOC_ENUM_FRAMESIZES: u32 = iowr(VIDIOC_BASE, 74, size_of::<V4l2Frmsizeenum>());
/// An encoder command (start, stop/drain ...); takes a [`V4l2EncoderCmd`].
pub const VIDIOC_ENCODER_CMD: u32 = iowr(VIDIOC_BASE, 77, size_of::<V4l2EncoderCmd>());
/// Checks an encoder command; takes a [`V4l2EncoderCmd`].
pub const VIDIOC_TRY_ENCODER_CMD: u32 = iowr(VIDIOC_BASE, 78, size_of::<V4l2EncoderCmd>());
/// Dequeues an event; takes a [`V4l2Event`].
pub const VIDIOC_DQEVENT: u32 = ior(VIDIOC_BASE, 89, size_of::<V4l2Event>());
/// Subscribes to an event; takes a [`V4l2EventSubscription`].
pub const VIDIOC_SUBSCRIBE_EVENT: u32 = iow(VIDIOC_BASE, 90, size_of::<V4l2EventSubscription>());
/// Unsubscribes from an event; takes a [`V4l2EventSubscription`].
pub const VIDIOC_UNSUBSCRIBE_EVENT: u32 = iow(VIDIOC_BASE, 91, size_of::<V4l2EventSubscription>());
/// Adds buffers to a queue; takes a [`V4l2CreateBuffers`].
pub const VIDIOC_CREATE_BUFS: u32 = iowr(VIDIOC_BASE, 92, size_of::<V4l2CreateBuffers>());
/// Prepares a buffer without queueing it; takes a [`V4l2Buffer`].
pub const VIDIOC_PREPARE_BUF: u32 = iowr(VIDIOC_BASE, 93, size_of::<V4l2Buffer>());
/// A crop or compose rectangle; takes a [`V4l2Selection`].
pub const VIDIOC_G_SELECTION: u32 = iowr(VIDIOC_BASE, 94, size_of::<V4l2Selection>());
/// Sets a crop or compose rectangle; takes a [`V4l2Selection`].
pub const VIDIOC_S_SELECTION: u32 = iowr(VIDIOC_BASE, 95, size_of::<V4l2Selection>());
/// A decoder command (start, stop/drain ...); takes a [`V4l2DecoderCmd`].
pub const VIDIOC_DECODER_CMD: u32 = iowr(VIDIOC_BASE, 96, size_of::<V4l2DecoderCmd>());
/// Checks a decoder command; takes a [`V4l2DecoderCmd`].
pub const VIDIOC_TRY_DECODER_CMD: u32 = iowr(VIDIOC_BASE, 97, size_of::<V4l2DecoderCmd>());
/// A control's extended description; takes a [`V4l2QueryExtCtrl`].
pub const VIDIOC_QUERY_EXT_CTRL: u32 = iowr(VIDIOC_BASE, 103, size_of::<V4l2QueryExtCtrl>());

/// Capability: single-planar memory-to-memory device.
pub const V4L2_CAP_VIDEO_M2M: u32 = 0x0000_8000;
/// Capability: multi-planar memory-to-memory device.
pub const V4L2_CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
/// Capability: the extended pixel format fields are honoured.
pub const V4L2_CAP_EXT_PIX_FORMAT: u32 = 0x0020_0000;
/// Capability: streaming I/O (`REQBUFS`, `QBUF` ...).
pub const V4L2_CAP_STREAMING: u32 = 0x0400_0000;
/// Capability: `device_caps` is filled in.
pub const V4L2_CAP_DEVICE_CAPS: u32 = 0x8000_0000;

/// Buffer type: frames the device produces (decoded frames, encoded stream).
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
/// Buffer type: frames the device consumes (bitstream to decode, raw frames to encode).
pub const V4L2_BUF_TYPE_VIDEO_OUTPUT: u32 = 2;

/// Memory: buffers the driver allocates and the program maps.
pub const V4L2_MEMORY_MMAP: u32 = 1;
/// Memory: the program's own memory by pointer.
pub const V4L2_MEMORY_USERPTR: u32 = 2;
/// Memory: dma-buf fds the program passes in.
pub const V4L2_MEMORY_DMABUF: u32 = 4;

/// Buffer flag: mapped by the program.
pub const V4L2_BUF_FLAG_MAPPED: u32 = 0x0000_0001;
/// Buffer flag: queued to the driver.
pub const V4L2_BUF_FLAG_QUEUED: u32 = 0x0000_0002;
/// Buffer flag: done, waiting to be dequeued.
pub const V4L2_BUF_FLAG_DONE: u32 = 0x0000_0004;
/// Buffer flag: a key frame.
pub const V4L2_BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
/// Buffer flag: a predicted frame.
pub const V4L2_BUF_FLAG_PFRAME: u32 = 0x0000_0010;
/// Buffer flag: the data is bad (the device failed on it).
pub const V4L2_BUF_FLAG_ERROR: u32 = 0x0000_0040;
/// Buffer flag: prepared by `PREPARE_BUF`.
pub const V4L2_BUF_FLAG_PREPARED: u32 = 0x0000_0400;
/// Timestamp kind mask.
pub const V4L2_BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
/// Timestamp kind: copied from the OUTPUT buffer to the CAPTURE buffer.
pub const V4L2_BUF_FLAG_TIMESTAMP_COPY: u32 = 0x0000_4000;
/// Buffer flag: the last buffer of a drain.
pub const V4L2_BUF_FLAG_LAST: u32 = 0x0010_0000;

/// Queue capability: MMAP buffers.
pub const V4L2_BUF_CAP_SUPPORTS_MMAP: u32 = 1 << 0;
/// Queue capability: USERPTR buffers.
pub const V4L2_BUF_CAP_SUPPORTS_USERPTR: u32 = 1 << 1;
/// Queue capability: DMABUF buffers.
pub const V4L2_BUF_CAP_SUPPORTS_DMABUF: u32 = 1 << 2;
/// Queue capability: buffers survive REQBUFS(0) while mapped.
pub const V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS: u32 = 1 << 4;

/// Field order: the driver chooses.
pub const V4L2_FIELD_ANY: u32 = 0;
/// Field order: progressive frames.
pub const V4L2_FIELD_NONE: u32 = 1;
/// Colorspace: Rec. 709.
pub const V4L2_COLORSPACE_REC709: u32 = 3;
/// Colorspace: sRGB.
pub const V4L2_COLORSPACE_SRGB: u32 = 8;

/// Format flag: a compressed format.
pub const V4L2_FMT_FLAG_COMPRESSED: u32 = 0x0001;
/// Format flag: the decoder parses a continuous byte stream.
pub const V4L2_FMT_FLAG_CONTINUOUS_BYTESTREAM: u32 = 0x0004;
/// Format flag: the decoder follows resolution changes.
pub const V4L2_FMT_FLAG_DYN_RESOLUTION: u32 = 0x0008;

/// `v4l2_fourcc(a, b, c, d)`.
pub const fn v4l2_fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// Compressed format: the Fast Walsh-Hadamard Transform codec of `vicodec`.
pub const V4L2_PIX_FMT_FWHT: u32 = v4l2_fourcc(b"FWHT");
/// Raw format: Y plane, then interleaved Cb/Cr at half resolution (4:2:0).
pub const V4L2_PIX_FMT_NV12: u32 = v4l2_fourcc(b"NV12");
/// Raw format: Y plane, then the Cb plane, then the Cr plane (4:2:0).
pub const V4L2_PIX_FMT_YUV420: u32 = v4l2_fourcc(b"YU12");

/// Frame size kind: a list of sizes.
pub const V4L2_FRMSIZE_TYPE_DISCRETE: u32 = 1;
/// Frame size kind: any size between bounds.
pub const V4L2_FRMSIZE_TYPE_CONTINUOUS: u32 = 2;
/// Frame size kind: sizes between bounds in steps.
pub const V4L2_FRMSIZE_TYPE_STEPWISE: u32 = 3;

/// Event: all events (unsubscribe only).
pub const V4L2_EVENT_ALL: u32 = 0;
/// Event: end of stream.
pub const V4L2_EVENT_EOS: u32 = 2;
/// Event: a control changed.
pub const V4L2_EVENT_CTRL: u32 = 3;
/// Event: the source (e.g. the decoded resolution) changed.
pub const V4L2_EVENT_SOURCE_CHANGE: u32 = 5;
/// Source change kind: the resolution changed.
pub const V4L2_EVENT_SRC_CH_RESOLUTION: u32 = 1;
/// Subscription flag: send the current state at once.
pub const V4L2_EVENT_SUB_FL_SEND_INITIAL: u32 = 1;

/// Encoder command: start or resume after a drain.
pub const V4L2_ENC_CMD_START: u32 = 0;
/// Encoder command: drain (encode what is queued, mark the last buffer).
pub const V4L2_ENC_CMD_STOP: u32 = 1;
/// Encoder command: pause.
pub const V4L2_ENC_CMD_PAUSE: u32 = 2;
/// Encoder command: resume after a pause.
pub const V4L2_ENC_CMD_RESUME: u32 = 3;
/// Decoder command: start or resume after a drain.
pub const V4L2_DEC_CMD_START: u32 = 0;
/// Decoder command: drain (decode what is queued, mark the last buffer).
pub const V4L2_DEC_CMD_STOP: u32 = 1;
/// Decoder command: pause.
pub const V4L2_DEC_CMD_PAUSE: u32 = 2;
/// Decoder command: resume after a pause.
pub const V4L2_DEC_CMD_RESUME: u32 = 3;

/// Control type: integer.
pub const V4L2_CTRL_TYPE_INTEGER: u32 = 1;
/// Control type: boolean.
pub const V4L2_CTRL_TYPE_BOOLEAN: u32 = 2;
/// Control type: menu.
pub const V4L2_CTRL_TYPE_MENU: u32 = 3;
/// Control type: the heading of a control class.
pub const V4L2_CTRL_TYPE_CTRL_CLASS: u32 = 6;
/// Control flag: read-only.
pub const V4L2_CTRL_FLAG_READ_ONLY: u32 = 0x0004;
/// Control flag: volatile (read from the device every time).
pub const V4L2_CTRL_FLAG_VOLATILE: u32 = 0x0080;
/// Query flag: the next control after `id`.
pub const V4L2_CTRL_FLAG_NEXT_CTRL: u32 = 0x8000_0000;
/// Query flag: the next compound control after `id`.
pub const V4L2_CTRL_FLAG_NEXT_COMPOUND: u32 = 0x4000_0000;
/// `which`: the current values.
pub const V4L2_CTRL_WHICH_CUR_VAL: u32 = 0;
/// `which`: the default values.
pub const V4L2_CTRL_WHICH_DEF_VAL: u32 = 0x0f00_0000;
/// Control class: user controls.
pub const V4L2_CTRL_CLASS_USER: u32 = 0x0098_0000;
/// Control class: codec controls.
pub const V4L2_CTRL_CLASS_CODEC: u32 = 0x0099_0000;
/// First user control.
pub const V4L2_CID_BASE: u32 = V4L2_CTRL_CLASS_USER | 0x900;
/// First codec control.
pub const V4L2_CID_CODEC_BASE: u32 = V4L2_CTRL_CLASS_CODEC | 0x900;
/// Read-only: CAPTURE buffers the device needs.
pub const V4L2_CID_MIN_BUFFERS_FOR_CAPTURE: u32 = V4L2_CID_BASE + 39;
/// Read-only: OUTPUT buffers the device needs.
pub const V4L2_CID_MIN_BUFFERS_FOR_OUTPUT: u32 = V4L2_CID_BASE + 40;
/// Encoder: frames per group of pictures (an I frame, then P frames).
pub const V4L2_CID_MPEG_VIDEO_GOP_SIZE: u32 = V4L2_CID_CODEC_BASE + 203;
/// FWHT encoder: quantisation parameter of I frames (1..=16).
pub const V4L2_CID_FWHT_I_FRAME_QP: u32 = V4L2_CID_CODEC_BASE + 290;
/// FWHT encoder: quantisation parameter of P frames (1..=16).
pub const V4L2_CID_FWHT_P_FRAME_QP: u32 = V4L2_CID_CODEC_BASE + 291;

/// Selection target: the crop rectangle.
pub const V4L2_SEL_TGT_CROP: u32 = 0x0000;
/// Selection target: the default crop rectangle.
pub const V4L2_SEL_TGT_CROP_DEFAULT: u32 = 0x0001;
/// Selection target: the crop bounds.
pub const V4L2_SEL_TGT_CROP_BOUNDS: u32 = 0x0002;
/// Selection target: the compose rectangle.
pub const V4L2_SEL_TGT_COMPOSE: u32 = 0x0100;
/// Selection target: the default compose rectangle.
pub const V4L2_SEL_TGT_COMPOSE_DEFAULT: u32 = 0x0101;
/// Selection target: the compose bounds.
pub const V4L2_SEL_TGT_COMPOSE_BOUNDS: u32 = 0x0102;

/// `struct v4l2_capability`: the argument of [`VIDIOC_QUERYCAP`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Capability {
    /// Driver name, NUL-terminated.
    pub driver: [u8; 16],
    /// Device name, NUL-terminated.
    pub card: [u8; 32],
    /// Bus location, NUL-terminated (e.g. `platform:vicodec`).
    pub bus_info: [u8; 32],
    /// `KERNEL_VERSION` of the driver.
    pub version: u32,
    /// Capabilities of the whole driver.
    pub capabilities: u32,
    /// Capabilities of this node.
    pub device_caps: u32,
    /// Zero.
    pub reserved: [u32; 3],
}
const _: () = assert!(size_of::<V4l2Capability>() == 104);

/// `struct v4l2_fmtdesc`: the argument of [`VIDIOC_ENUM_FMT`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Fmtdesc {
    /// In: index in the list.
    pub index: u32,
    /// In: buffer type.
    pub type_: u32,
    /// Out: `V4L2_FMT_FLAG_*`.
    pub flags: u32,
    /// Out: description, NUL-terminated.
    pub description: [u8; 32],
    /// Out: the fourcc.
    pub pixelformat: u32,
    /// In: media bus code filter (0: none).
    pub mbus_code: u32,
    /// Zero.
    pub reserved: [u32; 3],
}
const _: () = assert!(size_of::<V4l2Fmtdesc>() == 64);

/// `struct v4l2_frmsize_stepwise`, the union of `struct v4l2_frmsizeenum`
/// (a discrete size uses `min_width`/`max_width` as width/height).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2FrmsizeStepwise {
    /// Smallest width (discrete: the width).
    pub min_width: u32,
    /// Largest width (discrete: the height).
    pub max_width: u32,
    /// Width step.
    pub step_width: u32,
    /// Smallest height.
    pub min_height: u32,
    /// Largest height.
    pub max_height: u32,
    /// Height step.
    pub step_height: u32,
}

/// `struct v4l2_frmsizeenum`: the argument of [`VIDIOC_ENUM_FRAMESIZES`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Frmsizeenum {
    /// In: index in the list.
    pub index: u32,
    /// In: the fourcc.
    pub pixel_format: u32,
    /// Out: `V4L2_FRMSIZE_TYPE_*`.
    pub type_: u32,
    /// Out: the sizes (C: the anonymous union of `discrete` and `stepwise`).
    pub stepwise: V4l2FrmsizeStepwise,
    /// Zero.
    pub reserved: [u32; 2],
}
const _: () = assert!(size_of::<V4l2Frmsizeenum>() == 44);

/// `struct v4l2_pix_format`: a single-planar image format.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2PixFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The fourcc.
    pub pixelformat: u32,
    /// `V4L2_FIELD_*`.
    pub field: u32,
    /// Bytes per row of the first plane (0 for compressed formats).
    pub bytesperline: u32,
    /// Bytes a buffer needs.
    pub sizeimage: u32,
    /// `V4L2_COLORSPACE_*`.
    pub colorspace: u32,
    /// `V4L2_PIX_FMT_PRIV_MAGIC` when the fields below are valid.
    pub priv_: u32,
    /// `V4L2_PIX_FMT_FLAG_*`.
    pub flags: u32,
    /// Y'CbCr encoding (C: union with `hsv_enc`).
    pub ycbcr_enc: u32,
    /// Quantization range.
    pub quantization: u32,
    /// Transfer function.
    pub xfer_func: u32,
}
const _: () = assert!(size_of::<V4l2PixFormat>() == 48);

/// `struct v4l2_format`: the argument of G/S/TRY_FMT. Only the
/// single-planar `fmt.pix` member is named; the rest of the 200-byte union
/// is kept as bytes.
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Format {
    /// Buffer type.
    pub type_: u32,
    /// Padding before the 8-aligned union.
    pub _pad: u32,
    /// `fmt.pix`.
    pub pix: V4l2PixFormat,
    /// The rest of the union `fmt`.
    pub fmt_rest: [u8; 152],
}
const _: () = assert!(size_of::<V4l2Format>() == 208);

impl Default for V4l2Format {
    fn default() -> Self {
        V4l2Format { type_: 0, _pad: 0, pix: V4l2PixFormat::default(), fmt_rest: [0; 152] }
    }
}

/// `struct v4l2_requestbuffers`: the argument of [`VIDIOC_REQBUFS`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Requestbuffers {
    /// In: buffers wanted; out: buffers allocated.
    pub count: u32,
    /// In: buffer type.
    pub type_: u32,
    /// In: `V4L2_MEMORY_*`.
    pub memory: u32,
    /// Out: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
    /// In: `V4L2_MEMORY_FLAG_*`.
    pub flags: u8,
    /// Zero.
    pub reserved: [u8; 3],
}
const _: () = assert!(size_of::<V4l2Requestbuffers>() == 20);

/// `struct timeval` of a 64-bit kernel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds.
    pub tv_usec: i64,
}

/// `struct timespec` of a 64-bit kernel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: i64,
}

/// `struct v4l2_timecode`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Timecode {
    /// `V4L2_TC_TYPE_*`.
    pub type_: u32,
    /// `V4L2_TC_FLAG_*`.
    pub flags: u32,
    /// Frames.
    pub frames: u8,
    /// Seconds.
    pub seconds: u8,
    /// Minutes.
    pub minutes: u8,
    /// Hours.
    pub hours: u8,
    /// User bits.
    pub userbits: [u8; 4],
}
const _: () = assert!(size_of::<V4l2Timecode>() == 16);

/// `struct v4l2_buffer`: the argument of QUERYBUF, QBUF, DQBUF and PREPARE_BUF.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Buffer {
    /// Index in the queue.
    pub index: u32,
    /// Buffer type.
    pub type_: u32,
    /// Bytes of data in the buffer.
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// `V4L2_FIELD_*`.
    pub field: u32,
    /// Padding before the timestamp.
    pub _pad0: u32,
    /// Timestamp (copied from OUTPUT to CAPTURE by a mem2mem device).
    pub timestamp: Timeval,
    /// Timecode.
    pub timecode: V4l2Timecode,
    /// Frame counter.
    pub sequence: u32,
    /// `V4L2_MEMORY_*`.
    pub memory: u32,
    /// C union `m`: `offset` (MMAP, low 32 bits), `userptr`, `planes` or
    /// `fd` (DMABUF, low 32 bits); see [`V4l2Buffer::offset`] and [`V4l2Buffer::fd`].
    pub m: u64,
    /// Size of the buffer in bytes.
    pub length: u32,
    /// Zero.
    pub reserved2: u32,
    /// Request fd (C: union with `reserved`).
    pub request_fd: i32,
    /// Tail padding of the C struct.
    pub _pad1: u32,
}
const _: () = assert!(size_of::<V4l2Buffer>() == 88);

impl V4l2Buffer {
    /// `m.offset` (MMAP buffers).
    pub const fn offset(&self) -> u32 {
        self.m as u32
    }

    /// `m.fd` (DMABUF buffers).
    pub const fn fd(&self) -> i32 {
        self.m as u32 as i32
    }

    /// Sets `m.offset`, clearing the rest of the union.
    pub fn set_offset(&mut self, offset: u32) {
        self.m = u64::from(offset);
    }
}

/// `struct v4l2_exportbuffer`: the argument of [`VIDIOC_EXPBUF`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Exportbuffer {
    /// In: buffer type.
    pub type_: u32,
    /// In: buffer index.
    pub index: u32,
    /// In: plane (0 for single-planar).
    pub plane: u32,
    /// In: `O_CLOEXEC` and access mode of the new fd.
    pub flags: u32,
    /// Out: the dma-buf fd.
    pub fd: i32,
    /// Zero.
    pub reserved: [u32; 11],
}
const _: () = assert!(size_of::<V4l2Exportbuffer>() == 64);

/// `struct v4l2_create_buffers`: the argument of [`VIDIOC_CREATE_BUFS`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2CreateBuffers {
    /// Out: index of the first new buffer.
    pub index: u32,
    /// In: buffers wanted; out: buffers created.
    pub count: u32,
    /// In: `V4L2_MEMORY_*`.
    pub memory: u32,
    /// Padding before the 8-aligned format.
    pub _pad: u32,
    /// In: the format the buffers must hold.
    pub format: V4l2Format,
    /// Out: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
    /// In: `V4L2_MEMORY_FLAG_*`.
    pub flags: u32,
    /// Zero (newer headers: `max_num_buffers` first).
    pub reserved: [u32; 6],
}
const _: () = assert!(size_of::<V4l2CreateBuffers>() == 256);

/// `struct v4l2_control`: the argument of G/S_CTRL.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Control {
    /// The control.
    pub id: u32,
    /// Its value.
    pub value: i32,
}
const _: () = assert!(size_of::<V4l2Control>() == 8);

/// `struct v4l2_queryctrl`: the argument of [`VIDIOC_QUERYCTRL`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Queryctrl {
    /// In: the control (with `V4L2_CTRL_FLAG_NEXT_*`); out: the control.
    pub id: u32,
    /// Out: `V4L2_CTRL_TYPE_*`.
    pub type_: u32,
    /// Out: name, NUL-terminated.
    pub name: [u8; 32],
    /// Out: smallest value.
    pub minimum: i32,
    /// Out: largest value.
    pub maximum: i32,
    /// Out: step.
    pub step: i32,
    /// Out: default value.
    pub default_value: i32,
    /// Out: `V4L2_CTRL_FLAG_*`.
    pub flags: u32,
    /// Zero.
    pub reserved: [u32; 2],
}
const _: () = assert!(size_of::<V4l2Queryctrl>() == 68);

/// `struct v4l2_query_ext_ctrl`: the argument of [`VIDIOC_QUERY_EXT_CTRL`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2QueryExtCtrl {
    /// In: the control (with `V4L2_CTRL_FLAG_NEXT_*`); out: the control.
    pub id: u32,
    /// Out: `V4L2_CTRL_TYPE_*`.
    pub type_: u32,
    /// Out: name, NUL-terminated.
    pub name: [u8; 32],
    /// Out: smallest value.
    pub minimum: i64,
    /// Out: largest value.
    pub maximum: i64,
    /// Out: step.
    pub step: u64,
    /// Out: default value.
    pub default_value: i64,
    /// Out: `V4L2_CTRL_FLAG_*`.
    pub flags: u32,
    /// Out: bytes of one element.
    pub elem_size: u32,
    /// Out: elements.
    pub elems: u32,
    /// Out: dimensions in use.
    pub nr_of_dims: u32,
    /// Out: size of each dimension.
    pub dims: [u32; 4],
    /// Zero.
    pub reserved: [u32; 32],
}
const _: () = assert!(size_of::<V4l2QueryExtCtrl>() == 232);

/// `struct v4l2_querymenu` (packed): the argument of [`VIDIOC_QUERYMENU`].
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Querymenu {
    /// In: the control.
    pub id: u32,
    /// In: the menu item.
    pub index: u32,
    /// Out: the item's name (C: union with `value` of integer menus).
    pub name: [u8; 32],
    /// Zero.
    pub reserved: u32,
}
const _: () = assert!(size_of::<V4l2Querymenu>() == 44);

/// `struct v4l2_ext_control` (packed): one element of a [`V4l2ExtControls`] array.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2ExtControl {
    /// The control.
    pub id: u32,
    /// Bytes at `ptr` for compound controls, else 0.
    pub size: u32,
    /// Zero.
    pub reserved2: [u32; 1],
    /// The value (C: union of `value`, `value64`, `string` and pointers;
    /// a 32-bit `value` is the low half).
    pub value64: i64,
}
const _: () = assert!(size_of::<V4l2ExtControl>() == 20);

/// `struct v4l2_ext_controls`: the argument of G/S/TRY_EXT_CTRLS.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2ExtControls {
    /// Which values: a control class, `V4L2_CTRL_WHICH_*` (C: union with `ctrl_class`).
    pub which: u32,
    /// Elements at `controls`.
    pub count: u32,
    /// Out: index of the failing control (`count` if none or before validation).
    pub error_idx: u32,
    /// Request fd (`V4L2_CTRL_WHICH_REQUEST_VAL`).
    pub request_fd: i32,
    /// Zero.
    pub reserved: [u32; 1],
    /// Padding before the pointer.
    pub _pad: u32,
    /// User array of [`V4l2ExtControl`].
    pub controls: u64,
}
const _: () = assert!(size_of::<V4l2ExtControls>() == 32);

/// `struct v4l2_rect`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Rect {
    /// Left edge.
    pub left: i32,
    /// Top edge.
    pub top: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// `struct v4l2_selection`: the argument of G/S_SELECTION.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Selection {
    /// Buffer type.
    pub type_: u32,
    /// `V4L2_SEL_TGT_*`.
    pub target: u32,
    /// `V4L2_SEL_FLAG_*`.
    pub flags: u32,
    /// The rectangle.
    pub r: V4l2Rect,
    /// Zero.
    pub reserved: [u32; 9],
}
const _: () = assert!(size_of::<V4l2Selection>() == 64);

/// `struct v4l2_encoder_cmd`: the argument of (TRY_)ENCODER_CMD.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2EncoderCmd {
    /// `V4L2_ENC_CMD_*`.
    pub cmd: u32,
    /// `V4L2_ENC_CMD_*` flags.
    pub flags: u32,
    /// C: `raw.data`.
    pub raw: [u32; 8],
}
const _: () = assert!(size_of::<V4l2EncoderCmd>() == 40);

/// `struct v4l2_decoder_cmd`: the argument of (TRY_)DECODER_CMD.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2DecoderCmd {
    /// `V4L2_DEC_CMD_*`.
    pub cmd: u32,
    /// `V4L2_DEC_CMD_*` flags.
    pub flags: u32,
    /// C: the union of `stop.pts`, `start` and `raw.data`; `stop.pts` is the first u64.
    pub raw: [u64; 8],
}
const _: () = assert!(size_of::<V4l2DecoderCmd>() == 72);

/// `struct v4l2_event_subscription`: the argument of (UN)SUBSCRIBE_EVENT.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2EventSubscription {
    /// `V4L2_EVENT_*`.
    pub type_: u32,
    /// Control id for [`V4L2_EVENT_CTRL`], else 0.
    pub id: u32,
    /// `V4L2_EVENT_SUB_FL_*`.
    pub flags: u32,
    /// Zero.
    pub reserved: [u32; 5],
}
const _: () = assert!(size_of::<V4l2EventSubscription>() == 32);

/// `struct v4l2_event`: the argument of [`VIDIOC_DQEVENT`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct V4l2Event {
    /// `V4L2_EVENT_*`.
    pub type_: u32,
    /// Padding before the 8-aligned union.
    pub _pad0: u32,
    /// C union `u`; for [`V4L2_EVENT_SOURCE_CHANGE`] its first u32 is `changes`.
    pub u: [u8; 64],
    /// Events still pending after this one.
    pub pending: u32,
    /// Event counter.
    pub sequence: u32,
    /// `CLOCK_MONOTONIC` time of the event.
    pub timestamp: Timespec,
    /// Control id or 0.
    pub id: u32,
    /// Zero.
    pub reserved: [u32; 8],
    /// Tail padding of the C struct.
    pub _pad1: u32,
}
const _: () = assert!(size_of::<V4l2Event>() == 136);

impl Default for V4l2Event {
    fn default() -> Self {
        V4l2Event {
            type_: 0,
            _pad0: 0,
            u: [0; 64],
            pending: 0,
            sequence: 0,
            timestamp: Timespec::default(),
            id: 0,
            reserved: [0; 8],
            _pad1: 0,
        }
    }
}
