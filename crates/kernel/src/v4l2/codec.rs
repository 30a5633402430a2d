//! One open instance of the FWHT mem2mem codec (`vicodec`-like): an
//! encoder (`/dev/video0`: raw OUTPUT → FWHT CAPTURE) or a decoder
//! (`/dev/video1`: FWHT OUTPUT → raw CAPTURE), following the V4L2 stateful
//! codec interface.
//!
//! Each open file has its own formats, queues, controls and events, as a
//! `v4l2_m2m_ctx`. The device runs synchronously inside the call that
//! makes a job possible (QBUF, STREAMON, a drain command): one OUTPUT and
//! one CAPTURE buffer in, both done when the call returns. So a buffer is
//! never in flight between calls, and `DQBUF` never waits: with nothing
//! done it is `EAGAIN`, blocking file or not (documented in
//! docs/serving.md). Drain (`*_CMD_STOP`) marks the next CAPTURE buffer
//! `V4L2_BUF_FLAG_LAST` (empty) once every queued OUTPUT buffer is
//! processed and queues `V4L2_EVENT_EOS`; DQBUF after it is `EPIPE` until
//! `*_CMD_START` or STREAMOFF. A decoder that meets a frame of another size
//! than its format adopts it, returns an empty LAST buffer and queues
//! `V4L2_EVENT_SOURCE_CHANGE` (resolution); the OUTPUT buffer waits until
//! CAPTURE is restarted.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use teeheap_sync::Recover;

use teeheap_platform::devices::fwht::{self, RawFormat, RawFrame};
use teeheap_platform::devices::{DeviceError, fwht_codec, read_sg, write_sg};
use teeheap_platform::{Len, Master, Platform};
use teeheap_uapi::v4l2::*;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::prio::{FilePrio, PrioState};
use super::queue::{Queue, State};
use crate::dma_buf::DmaBuf;
use crate::dma_heap::DmaHeapOps;
use crate::dma_heap::system::SystemHeap;
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{File, FileKind, FileOps, Files, PollEvents};
use crate::uaccess::{UserMemory, UserPtr};

/// Which way the instance codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Raw frames in, FWHT out.
    Encoder,
    /// FWHT in, raw frames out.
    Decoder,
}

impl Role {
    /// The device's name (`VIDIOC_QUERYCAP`'s card).
    pub fn card(self) -> &'static str {
        match self {
            Role::Encoder => "vicodec-encoder",
            Role::Decoder => "vicodec-decoder",
        }
    }
}

/// Default width and height (vicodec's).
const DEFAULT_SIZE: (u32, u32) = (1280, 720);

/// The instance's negotiated formats: one geometry and one raw layout,
/// and the colorimetry the OUTPUT side set, which CAPTURE reports too
/// (mem2mem codecs pass it through, as vicodec).
#[derive(Clone, Copy, Debug)]
struct Formats {
    frame: RawFrame,
    color: Color,
}

/// `colorspace`, `xfer_func`, `ycbcr_enc`, `quantization` of a pix format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Color {
    colorspace: u32,
    xfer_func: u32,
    ycbcr_enc: u32,
    quantization: u32,
}

impl Color {
    const DEFAULT: Color = Color { colorspace: V4L2_COLORSPACE_REC709, xfer_func: 0, ycbcr_enc: 0, quantization: 0 };

    /// What a program asked for; the default colorspace for 0 (`DEFAULT`).
    fn asked(p: &V4l2PixFormat) -> Color {
        let colorspace = if p.colorspace == 0 { Color::DEFAULT.colorspace } else { p.colorspace };
        Color { colorspace, xfer_func: p.xfer_func, ycbcr_enc: p.ycbcr_enc, quantization: p.quantization }
    }

    fn fill(self, p: &mut V4l2PixFormat) {
        p.colorspace = self.colorspace;
        p.xfer_func = self.xfer_func;
        p.ycbcr_enc = self.ycbcr_enc;
        p.quantization = self.quantization;
    }
}

impl Formats {
    fn raw_fourcc(&self) -> u32 {
        match self.frame.format() {
            RawFormat::Nv12 => V4L2_PIX_FMT_NV12,
            RawFormat::Yuv420 => V4L2_PIX_FMT_YUV420,
        }
    }

    fn raw_pix(&self) -> V4l2PixFormat {
        let mut p = V4l2PixFormat {
            width: self.frame.width(),
            height: self.frame.height(),
            pixelformat: self.raw_fourcc(),
            field: V4L2_FIELD_NONE,
            bytesperline: self.frame.width(),
            sizeimage: self.frame.size() as u32,
            ..V4l2PixFormat::default()
        };
        self.color.fill(&mut p);
        p
    }

    fn coded_pix(&self) -> V4l2PixFormat {
        let mut p = V4l2PixFormat {
            width: self.frame.width(),
            height: self.frame.height(),
            pixelformat: V4L2_PIX_FMT_FWHT,
            field: V4L2_FIELD_NONE,
            bytesperline: 0,
            sizeimage: self.frame.max_coded_size() as u32,
            ..V4l2PixFormat::default()
        };
        self.color.fill(&mut p);
        p
    }
}

/// A control of the instance.
#[derive(Clone, Copy, Debug)]
struct Control {
    id: u32,
    name: &'static str,
    min: i32,
    max: i32,
    default: i32,
    read_only: bool,
}

const ENC_CONTROLS: [Control; 4] = [
    Control {
        id: V4L2_CID_MIN_BUFFERS_FOR_OUTPUT,
        name: "Min Number of Output Buffers",
        min: 1,
        max: 1,
        default: 1,
        read_only: true,
    },
    Control { id: V4L2_CID_MPEG_VIDEO_GOP_SIZE, name: "GOP Size", min: 1, max: 16, default: 10, read_only: false },
    Control {
        id: V4L2_CID_FWHT_I_FRAME_QP,
        name: "FWHT I-Frame QP Value",
        min: 1,
        max: 31,
        default: 20,
        read_only: false,
    },
    Control {
        id: V4L2_CID_FWHT_P_FRAME_QP,
        name: "FWHT P-Frame QP Value",
        min: 1,
        max: 31,
        default: 20,
        read_only: false,
    },
];
const DEC_CONTROLS: [Control; 1] = [Control {
    id: V4L2_CID_MIN_BUFFERS_FOR_CAPTURE,
    name: "Min Number of Capture Buffers",
    min: 1,
    max: 1,
    default: 1,
    read_only: true,
}];

/// Events kept per instance before the oldest is dropped.
const MAX_EVENTS: usize = 32;

#[derive(Debug)]
struct Instance {
    formats: Formats,
    out: Queue,
    cap: Queue,
    values: Vec<(u32, i32)>,
    subscribed: Vec<u32>,
    events: VecDeque<V4l2Event>,
    event_seq: u32,
    encoder: fwht::Encoder,
    decoder: fwht::Decoder,
    /// A drain was asked: LAST goes out once OUTPUT is empty.
    draining: bool,
    /// Drain complete, or a resolution change: CAPTURE stopped until restarted.
    stopped: bool,
    /// Decoder: the stream's first header was seen (and announced with
    /// `V4L2_EVENT_SOURCE_CHANGE` if CAPTURE was not set up yet).
    source_known: bool,
}

/// An open codec file.
#[derive(Debug)]
pub struct CodecFile {
    role: Role,
    platform: Arc<Platform>,
    system: Arc<SystemHeap>,
    prio: FilePrio,
    inner: Mutex<Instance>,
    /// Signalled after every request that may have completed a buffer or
    /// stopped a queue: a blocking DQBUF waits on it.
    changed: Condvar,
}

impl CodecFile {
    /// Opens an encoder or decoder instance on `platform`; MMAP buffers come
    /// from `system`'s memory; `prio` is the node's priority state.
    pub fn open(role: Role, platform: Arc<Platform>, system: Arc<SystemHeap>, prio: Arc<PrioState>) -> Arc<CodecFile> {
        let frame = RawFrame::new(RawFormat::Nv12, DEFAULT_SIZE.0, DEFAULT_SIZE.1).expect("the default size is valid");
        let controls: &[Control] = if role == Role::Encoder { &ENC_CONTROLS } else { &DEC_CONTROLS };
        let inner = Instance {
            formats: Formats { frame, color: Color::DEFAULT },
            out: Queue::new(V4L2_BUF_TYPE_VIDEO_OUTPUT),
            cap: Queue::new(V4L2_BUF_TYPE_VIDEO_CAPTURE),
            values: controls.iter().map(|c| (c.id, c.default)).collect(),
            subscribed: Vec::new(),
            events: VecDeque::new(),
            event_seq: 0,
            encoder: fwht::Encoder::new(frame, 10),
            decoder: fwht::Decoder::default(),
            draining: false,
            stopped: false,
            source_known: false,
        };
        Arc::new(CodecFile {
            role,
            platform,
            system,
            prio: FilePrio::open(prio),
            inner: Mutex::new(inner),
            changed: Condvar::new(),
        })
    }

    /// Encoder or decoder.
    pub fn role(&self) -> Role {
        self.role
    }

    fn controls(&self) -> &'static [Control] {
        if self.role == Role::Encoder { &ENC_CONTROLS } else { &DEC_CONTROLS }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Instance> {
        self.inner.lock().recover()
    }

    /// Readiness as V4L2's poll gives it for a mem2mem file: `POLLIN` when
    /// a CAPTURE buffer is done (or CAPTURE is stopped after LAST),
    /// `POLLOUT` when an OUTPUT buffer is done, `POLLPRI` when an event is
    /// pending. Bits are the kernel's `POLL*` values.
    pub fn poll(&self) -> u16 {
        const POLLIN: u16 = 0x1;
        const POLLPRI: u16 = 0x2;
        const POLLOUT: u16 = 0x4;
        let g = self.lock();
        let mut r = 0;
        if !g.cap.done.is_empty() || g.cap.last_dequeued {
            r |= POLLIN;
        }
        if !g.out.done.is_empty() {
            r |= POLLOUT;
        }
        if !g.events.is_empty() {
            r |= POLLPRI;
        }
        r
    }

    /// An ioctl, as `video_ioctl2`: the request must be one this file
    /// knows, with its exact size; its struct is copied in when the
    /// request writes, and out when it reads and succeeded.
    ///
    /// # Errors
    /// `ENOTTY` for an unknown request; `EFAULT` for unreadable or
    /// unwritable arguments; then each request's errno.
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        let r = self.request(cmd, arg, mem, files);
        // A buffer may be done or a queue stopped now: wake blocked DQBUFs.
        if cmd != VIDIOC_DQBUF {
            self.changed.notify_all();
        }
        r
    }

    fn request(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        // Requests that change the device need the file's priority
        // (`INFO_FL_PRIO`), checked after the copy-in, before the handler.
        let prio = || if PRIO_IOCTLS.contains(&cmd) { self.prio.check() } else { Ok(()) };
        match cmd {
            VIDIOC_QUERYCAP => call(mem, arg, cmd, prio, |c: &mut V4l2Capability| self.querycap(c)),
            VIDIOC_ENUM_FMT => call(mem, arg, cmd, prio, |f: &mut V4l2Fmtdesc| self.enum_fmt(f)),
            VIDIOC_G_FMT => call(mem, arg, cmd, prio, |f: &mut V4l2Format| self.g_fmt(f)),
            VIDIOC_TRY_FMT => call(mem, arg, cmd, prio, |f: &mut V4l2Format| self.try_fmt(f).map(drop)),
            VIDIOC_S_FMT => call(mem, arg, cmd, prio, |f: &mut V4l2Format| self.s_fmt(f)),
            VIDIOC_ENUM_FRAMESIZES => call(mem, arg, cmd, prio, |f: &mut V4l2Frmsizeenum| self.enum_framesizes(f)),
            VIDIOC_REQBUFS => call(mem, arg, cmd, prio, |r: &mut V4l2Requestbuffers| self.reqbufs(r)),
            VIDIOC_QUERYBUF => call(mem, arg, cmd, prio, |b: &mut V4l2Buffer| self.querybuf(b)),
            VIDIOC_QBUF => call(mem, arg, cmd, prio, |b: &mut V4l2Buffer| self.qbuf(b, mem, files)),
            VIDIOC_DQBUF => call(mem, arg, cmd, prio, |b: &mut V4l2Buffer| self.dqbuf(b, mem, &*files)),
            VIDIOC_EXPBUF => call(mem, arg, cmd, prio, |e: &mut V4l2Exportbuffer| self.expbuf(e, files)),
            VIDIOC_STREAMON => call(mem, arg, cmd, prio, |t: &mut u32| self.streamon(*t)),
            VIDIOC_STREAMOFF => call(mem, arg, cmd, prio, |t: &mut u32| self.streamoff(*t)),
            VIDIOC_QUERYCTRL => call(mem, arg, cmd, prio, |q: &mut V4l2Queryctrl| self.queryctrl(q)),
            VIDIOC_G_CTRL => call(mem, arg, cmd, prio, |c: &mut V4l2Control| self.g_ctrl(c)),
            VIDIOC_S_CTRL => call(mem, arg, cmd, prio, |c: &mut V4l2Control| self.s_ctrl(c)),
            VIDIOC_SUBSCRIBE_EVENT => {
                call(mem, arg, cmd, prio, |s: &mut V4l2EventSubscription| self.subscribe(s, true))
            }
            VIDIOC_UNSUBSCRIBE_EVENT => {
                call(mem, arg, cmd, prio, |s: &mut V4l2EventSubscription| self.subscribe(s, false))
            }
            VIDIOC_DQEVENT => call(mem, arg, cmd, prio, |e: &mut V4l2Event| self.dqevent(e)),
            VIDIOC_G_PRIORITY => call(mem, arg, cmd, prio, |p: &mut u32| {
                *p = self.prio.device_max();
                Ok(())
            }),
            VIDIOC_S_PRIORITY => call(mem, arg, cmd, prio, |p: &mut u32| self.prio.change(*p)),
            VIDIOC_ENCODER_CMD | VIDIOC_TRY_ENCODER_CMD if self.role == Role::Encoder => {
                let try_only = cmd == VIDIOC_TRY_ENCODER_CMD;
                call(mem, arg, cmd, prio, |c: &mut V4l2EncoderCmd| self.command(c.cmd, c.flags, try_only))
            }
            VIDIOC_DECODER_CMD | VIDIOC_TRY_DECODER_CMD if self.role == Role::Decoder => {
                let try_only = cmd == VIDIOC_TRY_DECODER_CMD;
                call(mem, arg, cmd, prio, |c: &mut V4l2DecoderCmd| self.command(c.cmd, c.flags, try_only))
            }
            _ => Err(Error::new(Errno::ENOTTY, "unknown V4L2 ioctl")),
        }
    }

    fn querycap(&self, c: &mut V4l2Capability) -> Result<()> {
        *c = V4l2Capability::default();
        put_str(&mut c.driver, "vicodec");
        put_str(&mut c.card, self.role.card());
        put_str(&mut c.bus_info, "platform:vicodec");
        c.version = 0x0006_0100;
        c.device_caps = V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING | V4L2_CAP_EXT_PIX_FORMAT;
        c.capabilities = c.device_caps | V4L2_CAP_DEVICE_CAPS;
        Ok(())
    }

    /// Whether `type_` is the coded (FWHT) side of this instance.
    fn is_coded(&self, type_: u32) -> Result<bool> {
        match (type_, self.role) {
            (V4L2_BUF_TYPE_VIDEO_OUTPUT, Role::Decoder) | (V4L2_BUF_TYPE_VIDEO_CAPTURE, Role::Encoder) => Ok(true),
            (V4L2_BUF_TYPE_VIDEO_OUTPUT, Role::Encoder) | (V4L2_BUF_TYPE_VIDEO_CAPTURE, Role::Decoder) => Ok(false),
            _ => Err(einval("buffer type not supported")),
        }
    }

    fn enum_fmt(&self, f: &mut V4l2Fmtdesc) -> Result<()> {
        let coded = self.is_coded(f.type_)?;
        let (fourcc, desc, flags) = match (coded, f.index) {
            // Descriptions as `v4l_fill_fmtdesc` gives them.
            (true, 0) => {
                let flags = if self.role == Role::Decoder {
                    V4L2_FMT_FLAG_COMPRESSED | V4L2_FMT_FLAG_DYN_RESOLUTION
                } else {
                    V4L2_FMT_FLAG_COMPRESSED
                };
                (V4L2_PIX_FMT_FWHT, "FWHT", flags)
            }
            (false, 0) => (V4L2_PIX_FMT_NV12, "Y/CbCr 4:2:0", 0),
            (false, 1) => (V4L2_PIX_FMT_YUV420, "Planar YUV 4:2:0", 0),
            _ => return Err(einval("format index out of range")),
        };
        let (index, type_) = (f.index, f.type_);
        *f = V4l2Fmtdesc { index, type_, flags, pixelformat: fourcc, ..V4l2Fmtdesc::default() };
        put_str(&mut f.description, desc);
        Ok(())
    }

    fn g_fmt(&self, f: &mut V4l2Format) -> Result<()> {
        let coded = self.is_coded(f.type_)?;
        let fm = self.lock().formats;
        f.pix = if coded { fm.coded_pix() } else { fm.raw_pix() };
        f.fmt_rest = [0; 152];
        Ok(())
    }

    /// Adjusts `f` to what the instance can do and returns the formats it
    /// stands for.
    fn try_fmt(&self, f: &mut V4l2Format) -> Result<Formats> {
        let coded = self.is_coded(f.type_)?;
        let cur = self.lock().formats;
        let clamp = |d: u32| (d.clamp(fwht::MIN_DIMENSION, fwht::MAX_DIMENSION)) & !1;
        let (w, h) = (clamp(f.pix.width), clamp(f.pix.height));
        let layout = if coded {
            cur.frame.format()
        } else if f.pix.pixelformat == V4L2_PIX_FMT_YUV420 {
            RawFormat::Yuv420
        } else {
            RawFormat::Nv12
        };
        // OUTPUT sets the colorimetry; CAPTURE reports the instance's.
        let color = if f.type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT { Color::asked(&f.pix) } else { cur.color };
        let fm = Formats { frame: RawFrame::new(layout, w, h).map_err(|_| einval("bad frame size"))?, color };
        f.pix = if coded { fm.coded_pix() } else { fm.raw_pix() };
        f.fmt_rest = [0; 152];
        Ok(fm)
    }

    fn s_fmt(&self, f: &mut V4l2Format) -> Result<()> {
        let fm = self.try_fmt(f)?;
        let coded = self.is_coded(f.type_)?;
        let mut g = self.lock();
        let q = if f.type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT { &g.out } else { &g.cap };
        if !q.bufs.is_empty() || q.streaming {
            return Err(Error::new(Errno::EBUSY, "queue has buffers"));
        }
        // The coded side sets the size of both; the raw side its layout
        // (and, on an encoder's OUTPUT, the size too).
        let size_from_raw = !coded && self.role == Role::Encoder;
        let layout = if coded { g.formats.frame.format() } else { fm.frame.format() };
        let (w, h) = if coded || size_from_raw {
            (fm.frame.width(), fm.frame.height())
        } else {
            (g.formats.frame.width(), g.formats.frame.height())
        };
        let frame = RawFrame::new(layout, w, h).map_err(|_| einval("bad frame size"))?;
        let color = if f.type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT { fm.color } else { g.formats.color };
        g.formats = Formats { frame, color };
        let gop = g.value(V4L2_CID_MPEG_VIDEO_GOP_SIZE).unwrap_or(10) as u32;
        g.encoder = fwht::Encoder::new(frame, gop);
        g.decoder.reset();
        drop(g);
        self.g_fmt(f)
    }

    fn enum_framesizes(&self, f: &mut V4l2Frmsizeenum) -> Result<()> {
        if f.index != 0 {
            return Err(einval("one stepwise range"));
        }
        if ![V4L2_PIX_FMT_FWHT, V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUV420].contains(&f.pixel_format) {
            return Err(einval("format not supported"));
        }
        // `video_ioctl2` clears everything after `pixel_format`.
        f.reserved = [0; 2];
        f.type_ = V4L2_FRMSIZE_TYPE_STEPWISE;
        f.stepwise = V4l2FrmsizeStepwise {
            min_width: fwht::MIN_DIMENSION,
            max_width: fwht::MAX_DIMENSION,
            step_width: 2,
            min_height: fwht::MIN_DIMENSION,
            max_height: fwht::MAX_DIMENSION,
            step_height: 2,
        };
        Ok(())
    }

    fn reqbufs(&self, r: &mut V4l2Requestbuffers) -> Result<()> {
        let coded = self.is_coded(r.type_)?;
        let mut g = self.lock();
        let fm = g.formats;
        let length = if coded { fm.coded_pix().sizeimage } else { fm.raw_pix().sizeimage };
        let system = Arc::clone(&self.system);
        let alloc = move |len: u32| -> Result<Arc<DmaBuf>> {
            let len = Len::page_align(u64::from(len)).ok_or(einval("empty buffer"))?;
            system.allocate(len, 0, 0)
        };
        let q = g.queue_mut(r.type_);
        r.count = q.reqbufs(r.count, r.memory, length, alloc)?;
        r.capabilities = Queue::CAPS;
        r.flags = 0;
        r.reserved = [0; 3];
        Ok(())
    }

    fn querybuf(&self, b: &mut V4l2Buffer) -> Result<()> {
        self.is_coded(b.type_)?;
        let g = self.lock();
        let q = g.queue(b.type_);
        let i = q.check(b, false)?;
        q.fill(i, b);
        Ok(())
    }

    fn qbuf(&self, b: &mut V4l2Buffer, user: &dyn UserMemory, files: &mut dyn Files) -> Result<()> {
        let coded = self.is_coded(b.type_)?;
        let mut g = self.lock();
        let q = g.queue(b.type_);
        let i = q.check(b, true)?;
        if q.bufs[i].state != State::Dequeued {
            return Err(einval("buffer already queued"));
        }
        let length = q.length;
        let mem = if q.memory == V4L2_MEMORY_DMABUF {
            let file = files.lookup(i64::from(b.fd()))?;
            let buf = file.as_dma_buf().ok_or(einval("not a dma-buf"))?;
            if buf.size().bytes() < u64::from(length) {
                return Err(einval("dma-buf smaller than the format needs"));
            }
            Some(buf)
        } else {
            None
        };
        let is_output = b.type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT;
        // vicodec's buf_prepare: a CAPTURE buffer must hold the current
        // format's image (the decoder's size may have grown since REQBUFS,
        // from the stream's first header).
        if !is_output {
            let need = if coded { g.formats.frame.max_coded_size() } else { g.formats.frame.size() };
            // The plane's size as vb2 sees it: a dma-buf's own size; a user
            // pointer's length, bounded here by the bounce buffer it goes
            // through; MMAP: the REQBUFS length.
            let have = match &mem {
                Some(d) => d.size().bytes(),
                None if q.memory == V4L2_MEMORY_USERPTR => u64::from(b.length.min(length)),
                None => u64::from(length),
            };
            if have < need as u64 {
                return Err(einval("buffer smaller than the format's image"));
            }
        }
        let bytesused = if is_output && b.bytesused == 0 { length } else { b.bytesused.min(length) };
        let timestamp = b.timestamp;
        let userptr = q.memory == V4L2_MEMORY_USERPTR;
        if userptr {
            // vb2: a user pointer is required and must hold the format's size.
            if b.m == 0 || b.length < length {
                return Err(einval("user pointer missing or too short"));
            }
            if is_output {
                let bounce = q.bufs[i].mem.clone().ok_or(einval("no memory"))?;
                let mut data = vec![0u8; bytesused as usize];
                user.read(UserPtr(b.m), &mut data).map_err(|_| efault("cannot read the user buffer"))?;
                write_sg(&self.platform, Master::NsCpu, bounce.sg_table().ranges(), 0, &data)
                    .map_err(|_| Error::new(Errno::EIO, "cannot fill the bounce buffer"))?;
            }
        }
        let q = g.queue_mut(b.type_);
        let buf = &mut q.bufs[i];
        if mem.is_some() {
            buf.mem = mem;
        }
        if userptr {
            buf.userptr = b.m;
        }
        buf.state = State::Queued;
        buf.flags = 0;
        if is_output {
            buf.bytesused = bytesused;
            buf.timestamp = timestamp;
        }
        q.queued.push_back(i);
        q.fill(i, b);
        g.run(self);
        Ok(())
    }

    /// `DQBUF`. On a blocking description with nothing done it waits
    /// (as vb2) until a buffer is done, the queue stops (`EINVAL`), the
    /// last buffer went (`EPIPE`) or the caller gives up (`EINTR`); jobs
    /// run inside other requests, so only another thread's call ends it.
    fn dqbuf(&self, b: &mut V4l2Buffer, user: &dyn UserMemory, files: &dyn Files) -> Result<()> {
        self.is_coded(b.type_)?;
        let mut g = self.lock();
        let i = loop {
            let q = g.queue_mut(b.type_);
            if b.type_ != q.type_ || b.memory != q.memory {
                return Err(einval("wrong buffer type or memory"));
            }
            if !q.streaming {
                return Err(einval("not streaming"));
            }
            if q.last_dequeued {
                return Err(Error::new(Errno::EPIPE, "the last buffer was dequeued"));
            }
            if let Some(&i) = q.done.front() {
                break i;
            }
            if files.nonblocking() {
                return Err(Error::new(Errno::EAGAIN, "no buffer done"));
            }
            if files.gave_up() {
                return Err(Error::new(Errno::EINTR, "the caller gave up"));
            }
            // The lock is released while waiting; the timeout re-asks
            // whether the caller is still there.
            g = self.changed.wait_timeout(g, Duration::from_millis(100)).map_or_else(|e| e.into_inner().0, |r| r.0);
        };
        let q = g.queue_mut(b.type_);
        if q.memory == V4L2_MEMORY_USERPTR && q.type_ == V4L2_BUF_TYPE_VIDEO_CAPTURE {
            // The device wrote the bounce buffer; the program's memory gets
            // the bytes now, by its own call (vb2 pins the pages instead).
            let buf = &q.bufs[i];
            let bounce = buf.mem.clone().ok_or(einval("no memory"))?;
            let mut data = vec![0u8; buf.bytesused as usize];
            read_sg(&self.platform, Master::NsCpu, bounce.sg_table().ranges(), 0, &mut data)
                .map_err(|_| Error::new(Errno::EIO, "cannot read the bounce buffer"))?;
            user.write(UserPtr(buf.userptr), &data).map_err(|_| efault("cannot write the user buffer"))?;
        }
        q.done.pop_front();
        q.bufs[i].state = State::Dequeued;
        if q.bufs[i].flags & V4L2_BUF_FLAG_LAST != 0 {
            q.last_dequeued = true;
        }
        // DMABUF: `m.fd` stays as the caller passed it in.
        q.fill(i, b);
        Ok(())
    }

    fn expbuf(&self, e: &mut V4l2Exportbuffer, files: &mut dyn Files) -> Result<()> {
        self.is_coded(e.type_)?;
        if e.plane != 0 {
            return Err(einval("single-planar"));
        }
        if e.flags & !(0o2000000 | 3) != 0 {
            return Err(einval("bad export flags"));
        }
        let g = self.lock();
        let q = g.queue(e.type_);
        if q.memory != V4L2_MEMORY_MMAP {
            return Err(einval("only MMAP buffers can be exported"));
        }
        let buf = q.bufs.get(e.index as usize).ok_or(einval("buffer index out of range"))?;
        let mem = buf.mem.clone().ok_or(einval("no memory"))?;
        drop(g);
        e.fd = files.install(File::from(mem), e.flags)?;
        Ok(())
    }

    fn streamon(&self, type_: u32) -> Result<()> {
        self.is_coded(type_)?;
        let mut g = self.lock();
        let q = g.queue_mut(type_);
        if q.bufs.is_empty() {
            return Err(einval("no buffers"));
        }
        if !q.streaming {
            q.streaming = true;
            q.sequence = 0;
        }
        if type_ == V4L2_BUF_TYPE_VIDEO_CAPTURE {
            g.stopped = false;
        }
        g.run(self);
        Ok(())
    }

    fn streamoff(&self, type_: u32) -> Result<()> {
        self.is_coded(type_)?;
        let mut g = self.lock();
        g.queue_mut(type_).stop();
        if type_ == V4L2_BUF_TYPE_VIDEO_CAPTURE {
            g.stopped = false;
            g.draining = false;
        } else {
            g.decoder.reset();
            g.source_known = false;
        }
        Ok(())
    }

    fn find_control(&self, id: u32) -> Result<&'static Control> {
        self.controls().iter().find(|c| c.id == id).ok_or(einval("no such control"))
    }

    fn queryctrl(&self, q: &mut V4l2Queryctrl) -> Result<()> {
        let c = if q.id & V4L2_CTRL_FLAG_NEXT_CTRL != 0 {
            let after = q.id & !(V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND);
            let mut sorted: Vec<&Control> = self.controls().iter().collect();
            sorted.sort_by_key(|c| c.id);
            *sorted.into_iter().find(|c| c.id > after).ok_or(einval("no more controls"))?
        } else {
            *self.find_control(q.id)?
        };
        *q = V4l2Queryctrl {
            id: c.id,
            type_: V4L2_CTRL_TYPE_INTEGER,
            minimum: c.min,
            maximum: c.max,
            step: 1,
            default_value: c.default,
            flags: if c.read_only { V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE } else { 0 },
            ..V4l2Queryctrl::default()
        };
        put_str(&mut q.name, c.name);
        Ok(())
    }

    fn g_ctrl(&self, c: &mut V4l2Control) -> Result<()> {
        self.find_control(c.id)?;
        c.value = self.lock().value(c.id).unwrap_or(0);
        Ok(())
    }

    fn s_ctrl(&self, c: &mut V4l2Control) -> Result<()> {
        let ctl = self.find_control(c.id)?;
        if ctl.read_only {
            return Err(Error::new(Errno::EACCES, "read-only control"));
        }
        let v = c.value.clamp(ctl.min, ctl.max);
        c.value = v;
        let mut g = self.lock();
        if let Some(slot) = g.values.iter_mut().find(|(id, _)| *id == c.id) {
            slot.1 = v;
        }
        if c.id == V4L2_CID_MPEG_VIDEO_GOP_SIZE && !g.cap.streaming && !g.out.streaming {
            let frame = g.formats.frame;
            g.encoder = fwht::Encoder::new(frame, v as u32);
        }
        Ok(())
    }

    fn subscribe(&self, s: &mut V4l2EventSubscription, on: bool) -> Result<()> {
        let mut g = self.lock();
        if !on && s.type_ == V4L2_EVENT_ALL {
            g.subscribed.clear();
            return Ok(());
        }
        match s.type_ {
            V4L2_EVENT_EOS => {}
            V4L2_EVENT_SOURCE_CHANGE if self.role == Role::Decoder => {}
            _ => return Err(einval("event type not supported")),
        }
        if on {
            if !g.subscribed.contains(&s.type_) {
                g.subscribed.push(s.type_);
            }
        } else {
            g.subscribed.retain(|t| *t != s.type_);
            let t = s.type_;
            g.events.retain(|e| e.type_ != t);
        }
        Ok(())
    }

    fn dqevent(&self, e: &mut V4l2Event) -> Result<()> {
        let mut g = self.lock();
        let mut ev = g.events.pop_front().ok_or(Error::new(Errno::ENOENT, "no event pending"))?;
        ev.pending = g.events.len() as u32;
        *e = ev;
        Ok(())
    }

    fn command(&self, cmd: u32, flags: u32, try_only: bool) -> Result<()> {
        match cmd {
            V4L2_ENC_CMD_STOP | V4L2_ENC_CMD_START if flags == 0 => {}
            V4L2_ENC_CMD_STOP | V4L2_ENC_CMD_START => return Err(einval("command flags not supported")),
            _ => return Err(einval("command not supported")),
        }
        if try_only {
            return Ok(());
        }
        let mut g = self.lock();
        if cmd == V4L2_ENC_CMD_STOP {
            if !g.out.streaming || !g.cap.streaming {
                return Ok(());
            }
            g.draining = true;
        } else {
            g.draining = false;
            g.stopped = false;
            g.cap.last_dequeued = false;
        }
        g.run(self);
        Ok(())
    }
}

impl Instance {
    fn queue(&self, type_: u32) -> &Queue {
        if type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT { &self.out } else { &self.cap }
    }

    fn queue_mut(&mut self, type_: u32) -> &mut Queue {
        if type_ == V4L2_BUF_TYPE_VIDEO_OUTPUT { &mut self.out } else { &mut self.cap }
    }

    fn value(&self, id: u32) -> Option<i32> {
        self.values.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    fn event(&mut self, type_: u32, changes: u32) {
        if !self.subscribed.contains(&type_) {
            return;
        }
        let mut ev = V4l2Event { type_, sequence: self.event_seq, ..V4l2Event::default() };
        ev.u[..4].copy_from_slice(&changes.to_ne_bytes());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        ev.timestamp = Timespec { tv_sec: now.as_secs() as i64, tv_nsec: i64::from(now.subsec_nanos()) };
        self.event_seq = self.event_seq.wrapping_add(1);
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    /// The header of OUTPUT buffer `src`, if it has a valid one.
    fn peek_header(&self, file: &CodecFile, src: usize) -> Option<fwht::Header> {
        let mem = self.out.bufs[src].mem.as_ref()?;
        let mut head = [0u8; fwht::HEADER_LEN];
        read_sg(&file.platform, Master::VideoDecoder, mem.sg_table().ranges(), 0, &mut head).ok()?;
        fwht::Header::parse(&head).ok()
    }

    /// Decoder initialisation (the stateful decoder interface): with
    /// OUTPUT streaming and CAPTURE not set up, the first header gives the
    /// stream's size, which the CAPTURE format takes, and
    /// `V4L2_EVENT_SOURCE_CHANGE` tells the program to set CAPTURE up.
    fn initial_source(&mut self, file: &CodecFile) {
        if file.role != Role::Decoder || self.source_known || !self.out.streaming || self.cap.streaming {
            return;
        }
        let Some(&src) = self.out.queued.front() else { return };
        let Some(h) = self.peek_header(file, src) else { return };
        if let Ok(nf) = RawFrame::new(self.formats.frame.format(), h.width, h.height) {
            self.formats.frame = nf;
            self.decoder.reset();
        }
        self.source_known = true;
        self.event(V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION);
    }

    /// Runs jobs while one OUTPUT and one CAPTURE buffer are queued, then
    /// finishes a drain.
    fn run(&mut self, file: &CodecFile) {
        self.initial_source(file);
        while self.out.streaming && self.cap.streaming && !self.stopped {
            let (Some(&src), Some(&dst)) = (self.out.queued.front(), self.cap.queued.front()) else { break };
            self.job(file, src, dst);
        }
        if self.draining && self.out.queued.is_empty() && self.cap.streaming && !self.stopped {
            if let Some(dst) = self.cap.queued.pop_front() {
                self.cap.complete(dst, 0, V4L2_BUF_FLAG_LAST, Timeval::default());
                self.draining = false;
                self.stopped = true;
                self.event(V4L2_EVENT_EOS, 0);
            }
        }
    }

    fn job(&mut self, file: &CodecFile, src: usize, dst: usize) {
        let frame = self.formats.frame;
        let src_buf = self.out.bufs[src].mem.clone();
        let dst_buf = self.cap.bufs[dst].mem.clone();
        let (Some(src_mem), Some(dst_mem)) = (src_buf, dst_buf) else { return };
        let (src_sg, dst_sg) = (src_mem.sg_table().ranges().to_vec(), dst_mem.sg_table().ranges().to_vec());
        let ts = self.out.bufs[src].timestamp;
        let used = u64::from(self.out.bufs[src].bytesused);
        if file.role == Role::Decoder {
            // A new resolution: adopt it and tell the program first.
            let mut head = [0u8; fwht::HEADER_LEN];
            let peek = read_sg(&file.platform, Master::VideoDecoder, &src_sg, 0, &mut head);
            if peek.is_ok()
                && let Ok(h) = fwht::Header::parse(&head)
                && (h.width, h.height) != (frame.width(), frame.height())
                && let Ok(nf) = RawFrame::new(frame.format(), h.width, h.height)
            {
                self.formats = Formats { frame: nf, color: self.formats.color };
                self.decoder.reset();
                self.cap.queued.pop_front();
                self.cap.complete(dst, 0, V4L2_BUF_FLAG_LAST, ts);
                self.stopped = true;
                self.event(V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION);
                return;
            }
        }
        self.out.queued.pop_front();
        self.cap.queued.pop_front();
        self.source_known = true;
        // MMAP and USERPTR buffers were sized for the format at REQBUFS (a
        // dma-buf has its own size); a stream whose first header was larger
        // (adopted before CAPTURE started) must not fill the bounce
        // buffer's page slack, which a USERPTR DQBUF would copy past the
        // program's buffer.
        let cap_len =
            if self.cap.memory == V4L2_MEMORY_DMABUF { dst_mem.size().bytes() } else { u64::from(self.cap.length) };
        let r = match file.role {
            Role::Decoder if frame.size() as u64 > cap_len => Err(DeviceError::BufferTooSmall {
                device: Master::VideoDecoder,
                needed: frame.size() as u64,
                have: cap_len,
            }),
            Role::Decoder => {
                fwht_codec::decode(&file.platform, &mut self.decoder, frame, &src_sg, used, &dst_sg).map(|h| {
                    let kind = if h.is_key_frame() { V4L2_BUF_FLAG_KEYFRAME } else { V4L2_BUF_FLAG_PFRAME };
                    (frame.size() as u32, kind)
                })
            }
            Role::Encoder => {
                let qp = |id| self.value(id).unwrap_or(20) as u16;
                let qps = (qp(V4L2_CID_FWHT_I_FRAME_QP), qp(V4L2_CID_FWHT_P_FRAME_QP));
                fwht_codec::encode(&file.platform, &mut self.encoder, frame, &src_sg, &dst_sg, qps).map(|(n, h)| {
                    let kind = if h.is_key_frame() { V4L2_BUF_FLAG_KEYFRAME } else { V4L2_BUF_FLAG_PFRAME };
                    (n as u32, kind)
                })
            }
        };
        let out_used = self.out.bufs[src].bytesused;
        match r {
            Ok((n, kind)) => {
                self.out.complete(src, out_used, 0, ts);
                self.cap.complete(dst, n, kind, ts);
            }
            Err(e) => {
                tracing::info!(error = %e, "codec job failed: buffers returned with the error flag");
                self.out.complete(src, out_used, V4L2_BUF_FLAG_ERROR, ts);
                self.cap.complete(dst, 0, V4L2_BUF_FLAG_ERROR, ts);
            }
        }
    }
}

impl CodecFile {
    /// The kind of a V4L2 codec file.
    pub const KIND: FileKind = FileKind::new("v4l2-codec");
}

/// An open codec node: the V4L2 ioctls and poll readiness.
impl FileOps for CodecFile {
    fn kind(&self) -> FileKind {
        CodecFile::KIND
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        CodecFile::ioctl(self, cmd, arg, mem, files)
    }

    fn poll(&self) -> PollEvents {
        PollEvents(CodecFile::poll(self))
    }
}

/// The requests `video_ioctl2` checks the file's priority for.
/// (S_PARM, S_CROP, S_INPUT, ... are not served: `ENOTTY` comes first.)
const PRIO_IOCTLS: [u32; 11] = [
    VIDIOC_S_FMT,
    VIDIOC_REQBUFS,
    VIDIOC_CREATE_BUFS,
    VIDIOC_STREAMON,
    VIDIOC_STREAMOFF,
    VIDIOC_S_CTRL,
    VIDIOC_S_EXT_CTRLS,
    VIDIOC_S_PRIORITY,
    VIDIOC_S_SELECTION,
    VIDIOC_ENCODER_CMD,
    VIDIOC_DECODER_CMD,
];

/// `video_usercopy` for one request: the struct in (when the request
/// writes), the priority check, the handler, the struct out (when it
/// reads and succeeded).
fn call<T: FromBytes + IntoBytes + Immutable + KnownLayout>(
    mem: &dyn UserMemory,
    arg: UserPtr,
    cmd: u32,
    prio: impl FnOnce() -> Result<()>,
    f: impl FnOnce(&mut T) -> Result<()>,
) -> Result<i64> {
    use teeheap_uapi::ioc;
    let mut v = T::new_zeroed();
    if ioc::dir(cmd) & ioc::IOC_WRITE != 0 {
        mem.read(arg, v.as_mut_bytes()).map_err(|_| efault("cannot read the ioctl argument"))?;
    }
    prio()?;
    f(&mut v)?;
    if ioc::dir(cmd) & ioc::IOC_READ != 0 {
        mem.write(arg, v.as_bytes()).map_err(|_| efault("cannot write the ioctl argument"))?;
    }
    Ok(0)
}

/// Copies `s` into a NUL-padded fixed field.
fn put_str(field: &mut [u8], s: &str) {
    field.fill(0);
    let n = s.len().min(field.len() - 1);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}
