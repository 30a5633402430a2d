//! The FWHT mem2mem codec pair through its V4L2 ioctls in the kernel
//! model: formats, MMAP and DMABUF queues, encode → decode round trip equal
//! to the codec's own reference, drain with LAST and EOS, a resolution
//! change, controls, and secure mode (protected bitstream into normal
//! CAPTURE memory: error flag and a logged violation).

mod common;

use common::{Setup, setup};

use std::sync::Arc;

use teeheap_kernel::Errno;
use teeheap_kernel::dma_buf::DmaBuf;
use teeheap_kernel::file::{File, Files};
use teeheap_kernel::v4l2::CodecFile;
use teeheap_platform::Master;
use teeheap_platform::devices::fwht::{Decoder, Encoder, RawFormat, RawFrame};
use teeheap_platform::devices::{read_sg, write_sg};
use teeheap_uapi::v4l2::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

const OUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const CAP: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE;

impl Setup {
    fn io<T: FromBytes + IntoBytes + Immutable>(&mut self, dev: &CodecFile, cmd: u32, arg: T) -> Result<T, Errno> {
        let ptr = self.mem.map(arg.as_bytes());
        dev.ioctl(cmd, ptr, &self.mem, &mut self.files).map_err(|e| e.errno())?;
        Ok(T::read_from_bytes(&self.mem.contents(ptr).unwrap()).unwrap())
    }

    fn s_fmt(&mut self, dev: &CodecFile, type_: u32, fourcc: u32, w: u32, h: u32) -> V4l2PixFormat {
        let mut f = V4l2Format { type_, ..V4l2Format::default() };
        f.pix = V4l2PixFormat { width: w, height: h, pixelformat: fourcc, ..V4l2PixFormat::default() };
        self.io(dev, VIDIOC_S_FMT, f).unwrap().pix
    }

    fn reqbufs(&mut self, dev: &CodecFile, type_: u32, memory: u32, count: u32) -> u32 {
        let r = V4l2Requestbuffers { count, type_, memory, ..Default::default() };
        self.io(dev, VIDIOC_REQBUFS, r).unwrap().count
    }

    fn qbuf(&mut self, dev: &CodecFile, b: V4l2Buffer) -> Result<V4l2Buffer, Errno> {
        self.io(dev, VIDIOC_QBUF, b)
    }

    fn dqbuf(&mut self, dev: &CodecFile, type_: u32, memory: u32) -> Result<V4l2Buffer, Errno> {
        self.io(dev, VIDIOC_DQBUF, V4l2Buffer { type_, memory, ..Default::default() })
    }

    fn stream(&mut self, dev: &CodecFile, cmd: u32, type_: u32) -> Result<(), Errno> {
        self.io(dev, cmd, type_).map(drop)
    }

    /// The dma-buf of MMAP buffer `index` (through EXPBUF).
    fn export(&mut self, dev: &CodecFile, type_: u32, index: u32) -> Arc<DmaBuf> {
        let e = self.io(dev, VIDIOC_EXPBUF, V4l2Exportbuffer { type_, index, ..Default::default() }).unwrap();
        self.files.get(e.fd).unwrap().as_dma_buf().unwrap()
    }

    fn heap_buf(&mut self, heap: &str, len: u64) -> (i32, Arc<DmaBuf>) {
        let buf = self.kernel.dma_heaps().open(heap).unwrap().allocate(len, 0, 0).unwrap();
        (self.files.install(File::new(Arc::clone(&buf)), 0).unwrap(), buf)
    }
}

fn frame_bytes(f: RawFrame, n: usize) -> Vec<u8> {
    (0..f.size()).map(|i| ((i % f.width() as usize + i / 64 + n * 5) % 230) as u8).collect()
}

fn buf(type_: u32, memory: u32, index: u32) -> V4l2Buffer {
    V4l2Buffer { type_, memory, index, ..Default::default() }
}

#[test]
fn caps_formats_and_controls() {
    let mut s = setup();
    let enc = s.kernel.v4l2_open("video0").unwrap();
    let dec = s.kernel.v4l2_open("video1").unwrap();
    let cap = s.io(&enc, VIDIOC_QUERYCAP, V4l2Capability::default()).unwrap();
    assert_eq!(&cap.driver[..8], b"vicodec\0");
    assert_eq!(cap.device_caps & V4L2_CAP_VIDEO_M2M, V4L2_CAP_VIDEO_M2M);
    let fd = |t, i| V4l2Fmtdesc { type_: t, index: i, ..Default::default() };
    assert_eq!(s.io(&enc, VIDIOC_ENUM_FMT, fd(CAP, 0)).unwrap().pixelformat, V4L2_PIX_FMT_FWHT);
    assert_eq!(s.io(&enc, VIDIOC_ENUM_FMT, fd(OUT, 1)).unwrap().pixelformat, V4L2_PIX_FMT_YUV420);
    assert_eq!(s.io(&enc, VIDIOC_ENUM_FMT, fd(OUT, 2)).unwrap_err(), Errno::EINVAL);
    let d = s.io(&dec, VIDIOC_ENUM_FMT, fd(OUT, 0)).unwrap();
    assert_eq!(d.flags & V4L2_FMT_FLAG_COMPRESSED, V4L2_FMT_FLAG_COMPRESSED);
    // TRY_FMT adjusts; S_FMT on the decoder's OUTPUT sets the size of both.
    let pix = s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 101, 5);
    assert_eq!((pix.width, pix.height), (100, 16));
    let mut g = V4l2Format { type_: CAP, ..V4l2Format::default() };
    g = s.io(&dec, VIDIOC_G_FMT, g).unwrap();
    assert_eq!((g.pix.width, g.pix.height, g.pix.sizeimage), (100, 16, 2400));
    assert_eq!(s.io(&dec, 0xc0d8_5604, [0u8; 0xd8]).unwrap_err(), Errno::ENOTTY, "G_FMT of another size");
    // Controls.
    let q = s.io(&enc, VIDIOC_QUERYCTRL, V4l2Queryctrl { id: V4L2_CID_FWHT_I_FRAME_QP, ..Default::default() }).unwrap();
    assert_eq!((q.minimum, q.maximum, q.default_value), (1, 31, 20));
    let c = s.io(&enc, VIDIOC_S_CTRL, V4l2Control { id: V4L2_CID_FWHT_I_FRAME_QP, value: 99 }).unwrap();
    assert_eq!(c.value, 31);
    let c = V4l2Control { id: V4L2_CID_MIN_BUFFERS_FOR_OUTPUT, value: 3 };
    assert_eq!(s.io(&enc, VIDIOC_S_CTRL, c).unwrap_err(), Errno::EACCES);
    assert_eq!(
        s.io(&dec, VIDIOC_G_CTRL, V4l2Control { id: V4L2_CID_MIN_BUFFERS_FOR_CAPTURE, value: 0 }).unwrap().value,
        1
    );
    let mut ids = Vec::new();
    let mut id = V4L2_CTRL_FLAG_NEXT_CTRL;
    while let Ok(q) = s.io(&enc, VIDIOC_QUERYCTRL, V4l2Queryctrl { id, ..Default::default() }) {
        ids.push(q.id);
        id = q.id | V4L2_CTRL_FLAG_NEXT_CTRL;
    }
    assert_eq!(ids.len(), 4);
    assert_eq!(
        s.io(&dec, VIDIOC_DECODER_CMD, V4l2DecoderCmd { cmd: 9, ..Default::default() }).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(s.io(&enc, VIDIOC_DECODER_CMD, V4l2DecoderCmd::default()).unwrap_err(), Errno::ENOTTY);
}

#[test]
fn encode_mmap_then_decode_dmabuf_equals_the_reference() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let f = RawFrame::new(RawFormat::Nv12, 64, 48).unwrap();
    let enc = s.kernel.v4l2_open("video0").unwrap();
    s.s_fmt(&enc, OUT, V4L2_PIX_FMT_NV12, 64, 48);
    let coded_size = s.s_fmt(&enc, CAP, V4L2_PIX_FMT_FWHT, 64, 48).sizeimage;
    assert_eq!(s.reqbufs(&enc, OUT, V4L2_MEMORY_MMAP, 2), 2);
    assert_eq!(s.reqbufs(&enc, CAP, V4L2_MEMORY_MMAP, 2), 2);
    let q = s.io(&enc, VIDIOC_QUERYBUF, buf(CAP, V4L2_MEMORY_MMAP, 1)).unwrap();
    assert_eq!((q.length, q.offset() >= 1 << 30), (coded_size, true));
    let raw_bufs = [s.export(&enc, OUT, 0), s.export(&enc, OUT, 1)];
    let cap_bufs = [s.export(&enc, CAP, 0), s.export(&enc, CAP, 1)];
    s.stream(&enc, VIDIOC_STREAMON, OUT).unwrap();
    s.stream(&enc, VIDIOC_STREAMON, CAP).unwrap();
    assert_eq!(s.dqbuf(&enc, CAP, V4L2_MEMORY_MMAP).unwrap_err(), Errno::EAGAIN);

    let mut reference = Encoder::new(f, 10);
    let mut stream = Vec::new();
    for n in 0..4usize {
        let i = (n % 2) as u32;
        let raw = frame_bytes(f, n);
        write_sg(&p, Master::NsCpu, raw_bufs[i as usize].sg_table().ranges(), 0, &raw).unwrap();
        let mut ob = buf(OUT, V4L2_MEMORY_MMAP, i);
        ob.bytesused = f.size() as u32;
        ob.timestamp.tv_usec = n as i64 + 1;
        s.qbuf(&enc, buf(CAP, V4L2_MEMORY_MMAP, i)).unwrap();
        s.qbuf(&enc, ob).unwrap();
        assert_eq!(enc.poll() & 0x5, 0x5, "both sides done");
        let o = s.dqbuf(&enc, OUT, V4L2_MEMORY_MMAP).unwrap();
        let c = s.dqbuf(&enc, CAP, V4L2_MEMORY_MMAP).unwrap();
        assert_eq!((o.index, c.index, c.timestamp.tv_usec, c.sequence), (i, i, n as i64 + 1, n as u32));
        let want = reference.encode(&raw, 20, 20).unwrap();
        assert_eq!(c.flags & V4L2_BUF_FLAG_KEYFRAME != 0, n == 0);
        let mut got = vec![0; c.bytesused as usize];
        read_sg(&p, Master::NsCpu, cap_bufs[i as usize].sg_table().ranges(), 0, &mut got).unwrap();
        assert_eq!(got, want, "frame {n}: the device codes as the codec does");
        stream.push(got);
    }

    // Decode with DMABUF buffers from the system heap.
    let dec = s.kernel.v4l2_open("video1").unwrap();
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 48);
    s.s_fmt(&dec, CAP, V4L2_PIX_FMT_NV12, 64, 48);
    s.reqbufs(&dec, OUT, V4L2_MEMORY_DMABUF, 1);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_DMABUF, 1);
    let (bits_fd, bits) = s.heap_buf("system", 0x4000);
    let (fb_fd, fb) = s.heap_buf("system", 0x2000);
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    let mut refdec = Decoder::default();
    for (n, coded) in stream.iter().enumerate() {
        write_sg(&p, Master::NsCpu, bits.sg_table().ranges(), 0, coded).unwrap();
        let mut ob = buf(OUT, V4L2_MEMORY_DMABUF, 0);
        ob.m = bits_fd as u64;
        ob.bytesused = coded.len() as u32;
        let mut cb = buf(CAP, V4L2_MEMORY_DMABUF, 0);
        cb.m = fb_fd as u64;
        s.qbuf(&dec, cb).unwrap();
        s.qbuf(&dec, ob).unwrap();
        s.dqbuf(&dec, OUT, V4L2_MEMORY_DMABUF).unwrap();
        let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap();
        assert_eq!((c.bytesused as usize, c.flags & V4L2_BUF_FLAG_ERROR), (f.size(), 0));
        let mut want = vec![0; f.size()];
        refdec.decode(coded, f, &mut want).unwrap();
        let mut got = vec![0; f.size()];
        read_sg(&p, Master::NsCpu, fb.sg_table().ranges(), 0, &mut got).unwrap();
        assert_eq!(got, want, "frame {n} decodes byte-exact to the reference");
    }

    // Drain: the next CAPTURE buffer comes back empty with LAST, and EOS.
    s.io(&dec, VIDIOC_SUBSCRIBE_EVENT, V4l2EventSubscription { type_: V4L2_EVENT_EOS, ..Default::default() }).unwrap();
    s.io(&dec, VIDIOC_DECODER_CMD, V4l2DecoderCmd { cmd: V4L2_DEC_CMD_STOP, ..Default::default() }).unwrap();
    let mut cb = buf(CAP, V4L2_MEMORY_DMABUF, 0);
    cb.m = fb_fd as u64;
    s.qbuf(&dec, cb).unwrap();
    let last = s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap();
    assert_eq!((last.bytesused, last.flags & V4L2_BUF_FLAG_LAST), (0, V4L2_BUF_FLAG_LAST));
    assert_eq!(s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap_err(), Errno::EPIPE);
    assert_eq!(s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap().type_, V4L2_EVENT_EOS);
    assert_eq!(s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap_err(), Errno::ENOENT);
    s.io(&dec, VIDIOC_DECODER_CMD, V4l2DecoderCmd { cmd: V4L2_DEC_CMD_START, ..Default::default() }).unwrap();
    assert_eq!(s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap_err(), Errno::EAGAIN);
}

#[test]
fn resolution_change_and_queue_rules() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let dec = s.kernel.v4l2_open("video1").unwrap();
    s.io(&dec, VIDIOC_SUBSCRIBE_EVENT, V4l2EventSubscription { type_: V4L2_EVENT_SOURCE_CHANGE, ..Default::default() })
        .unwrap();
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 64);
    assert_eq!(s.reqbufs(&dec, OUT, V4L2_MEMORY_MMAP, 99), 32, "clamped to VB2_MAX_FRAME");
    assert_eq!(
        s.io(
            &dec,
            VIDIOC_REQBUFS,
            // V4L2_MEMORY_OVERLAY: not for these queues.
            V4l2Requestbuffers { count: 1, type_: OUT, memory: 3, ..Default::default() }
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    s.reqbufs(&dec, OUT, V4L2_MEMORY_MMAP, 1);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_MMAP, 1);
    let mut f = V4l2Format { type_: OUT, ..V4l2Format::default() };
    f.pix.pixelformat = V4L2_PIX_FMT_FWHT;
    assert_eq!(s.io(&dec, VIDIOC_S_FMT, f).unwrap_err(), Errno::EBUSY, "buffers allocated");
    assert_eq!(s.qbuf(&dec, buf(OUT, V4L2_MEMORY_DMABUF, 0)).unwrap_err(), Errno::EINVAL, "wrong memory");
    assert_eq!(s.qbuf(&dec, buf(OUT, V4L2_MEMORY_MMAP, 1)).unwrap_err(), Errno::EINVAL, "index");
    // A 32x32 stream while the format says 64x64.
    let small = RawFrame::new(RawFormat::Nv12, 32, 32).unwrap();
    let coded = Encoder::new(small, 1).encode(&frame_bytes(small, 0), 5, 5).unwrap();
    let bits = s.export(&dec, OUT, 0);
    write_sg(&p, Master::NsCpu, bits.sg_table().ranges(), 0, &coded).unwrap();
    let mut ob = buf(OUT, V4L2_MEMORY_MMAP, 0);
    ob.bytesused = coded.len() as u32;
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    s.qbuf(&dec, ob).unwrap();
    assert_eq!(s.qbuf(&dec, ob).unwrap_err(), Errno::EINVAL, "queued twice");
    s.qbuf(&dec, buf(CAP, V4L2_MEMORY_MMAP, 0)).unwrap();
    let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_MMAP).unwrap();
    assert_eq!((c.bytesused, c.flags & V4L2_BUF_FLAG_LAST), (0, V4L2_BUF_FLAG_LAST));
    let ev = s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap();
    assert_eq!((ev.type_, ev.u[0] as u32), (V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION));
    let g = s.io(&dec, VIDIOC_G_FMT, V4l2Format { type_: CAP, ..V4l2Format::default() }).unwrap();
    assert_eq!((g.pix.width, g.pix.height), (32, 32));
    // Restart CAPTURE with the new size: the waiting frame decodes.
    s.stream(&dec, VIDIOC_STREAMOFF, CAP).unwrap();
    s.reqbufs(&dec, CAP, V4L2_MEMORY_MMAP, 0);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_MMAP, 1);
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    s.qbuf(&dec, buf(CAP, V4L2_MEMORY_MMAP, 0)).unwrap();
    let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_MMAP).unwrap();
    assert_eq!((c.bytesused as usize, c.flags & V4L2_BUF_FLAG_ERROR), (small.size(), 0));
}

#[test]
fn secure_decode_refuses_normal_capture_memory() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let f = RawFrame::new(RawFormat::Nv12, 64, 32).unwrap();
    let coded = Encoder::new(f, 1).encode(&frame_bytes(f, 1), 4, 4).unwrap();
    let dec = s.kernel.v4l2_open("video1").unwrap();
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 32);
    s.reqbufs(&dec, OUT, V4L2_MEMORY_DMABUF, 1);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_DMABUF, 1);
    let (bits_fd, bits) = s.heap_buf("protected,secure-video", 0x2000);
    // The secure world places the (decrypted) bitstream.
    write_sg(&p, Master::SecureCpu, bits.sg_table().ranges(), 0, &coded).unwrap();
    let (sec_fd, sec) = s.heap_buf("protected,secure-video", 0x2000);
    let (norm_fd, norm) = s.heap_buf("system", 0x2000);
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    let run = |s: &mut Setup, fb_fd: i32| {
        let mut ob = buf(OUT, V4L2_MEMORY_DMABUF, 0);
        ob.m = bits_fd as u64;
        ob.bytesused = coded.len() as u32;
        let mut cb = buf(CAP, V4L2_MEMORY_DMABUF, 0);
        cb.m = fb_fd as u64;
        s.qbuf(&dec, cb).unwrap();
        s.qbuf(&dec, ob).unwrap();
        s.dqbuf(&dec, OUT, V4L2_MEMORY_DMABUF).unwrap();
        s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap()
    };
    let before = p.firewall().violation_count();
    let c = run(&mut s, sec_fd);
    assert_eq!((c.flags & V4L2_BUF_FLAG_ERROR, c.bytesused as usize), (0, f.size()));
    assert_eq!(p.firewall().violation_count(), before);
    // Decoded into protected memory: the secure world sees the reference frame.
    let mut want = vec![0; f.size()];
    Decoder::default().decode(&coded, f, &mut want).unwrap();
    let mut got = vec![0; f.size()];
    read_sg(&p, Master::SecureCpu, sec.sg_table().ranges(), 0, &mut got).unwrap();
    assert_eq!(got, want);
    assert!(read_sg(&p, Master::NsCpu, sec.sg_table().ranges(), 0, &mut got).is_err(), "CPU refused");
    // Into normal memory: error flag, a violation, nothing written.
    let c = run(&mut s, norm_fd);
    assert_eq!((c.flags & V4L2_BUF_FLAG_ERROR, c.bytesused), (V4L2_BUF_FLAG_ERROR, 0));
    assert!(p.firewall().violation_count() > before + 1);
    let mut back = vec![1u8; 64];
    read_sg(&p, Master::NsCpu, norm.sg_table().ranges(), 0, &mut back).unwrap();
    assert!(back.iter().all(|b| *b == 0));
}

/// Stateful decoder initialisation: OUTPUT streams a header before CAPTURE
/// is set up; the decoder takes the stream's size and says so with
/// `V4L2_EVENT_SOURCE_CHANGE`, once.
#[test]
fn first_header_announces_the_source_before_capture_is_set_up() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let dec = s.kernel.v4l2_open("video1").unwrap();
    s.io(&dec, VIDIOC_SUBSCRIBE_EVENT, V4l2EventSubscription { type_: V4L2_EVENT_SOURCE_CHANGE, ..Default::default() })
        .unwrap();
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 64);
    s.reqbufs(&dec, OUT, V4L2_MEMORY_MMAP, 2);
    let small = RawFrame::new(RawFormat::Nv12, 32, 16).unwrap();
    let mut enc = Encoder::new(small, 1);
    for i in 0..2 {
        let coded = enc.encode(&frame_bytes(small, i), 5, 5).unwrap();
        write_sg(&p, Master::NsCpu, s.export(&dec, OUT, i as u32).sg_table().ranges(), 0, &coded).unwrap();
    }
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    assert_eq!(s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap_err(), Errno::ENOENT, "nothing queued yet");
    s.qbuf(&dec, buf(OUT, V4L2_MEMORY_MMAP, 0)).unwrap();
    s.qbuf(&dec, buf(OUT, V4L2_MEMORY_MMAP, 1)).unwrap();
    let ev = s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap();
    assert_eq!((ev.type_, ev.u[0] as u32), (V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION));
    assert_eq!(s.io(&dec, VIDIOC_DQEVENT, V4l2Event::default()).unwrap_err(), Errno::ENOENT, "once");
    let g = s.io(&dec, VIDIOC_G_FMT, V4l2Format { type_: CAP, ..V4l2Format::default() }).unwrap();
    assert_eq!((g.pix.width, g.pix.height), (32, 16));
    s.reqbufs(&dec, CAP, V4L2_MEMORY_MMAP, 1);
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    s.qbuf(&dec, buf(CAP, V4L2_MEMORY_MMAP, 0)).unwrap();
    let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_MMAP).unwrap();
    assert_eq!((c.bytesused as usize, c.flags & V4L2_BUF_FLAG_ERROR), (small.size(), 0));
}

/// A USERPTR CAPTURE buffer queued for the old size, then a stream whose
/// first header is larger (but within the bounce buffer's page): the
/// decoder must not write past the length the program gave, neither into
/// the bounce buffer's slack nor, at DQBUF, into the program's memory; and
/// once the size is known, a buffer that small is refused at QBUF.
#[test]
fn userptr_capture_smaller_than_the_stream_is_never_overrun() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let dec = s.kernel.v4l2_open("video1").unwrap();
    // 64x64 NV12: 6144 bytes, one 8192-byte bounce buffer; 64x80 is 7680.
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 64);
    s.reqbufs(&dec, OUT, V4L2_MEMORY_MMAP, 1);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_USERPTR, 1);
    let big = RawFrame::new(RawFormat::Nv12, 64, 80).unwrap();
    let coded = Encoder::new(big, 1).encode(&frame_bytes(big, 0), 5, 5).unwrap();
    write_sg(&p, Master::NsCpu, s.export(&dec, OUT, 0).sg_table().ranges(), 0, &coded).unwrap();
    // The program's buffer: 6144 bytes, then bytes of its own.
    let user = s.mem.map(&[0xa5u8; 8192]);
    let mut cb = buf(CAP, V4L2_MEMORY_USERPTR, 0);
    cb.m = user.0;
    cb.length = 6144;
    s.qbuf(&dec, cb).unwrap();
    let mut ob = buf(OUT, V4L2_MEMORY_MMAP, 0);
    ob.bytesused = coded.len() as u32;
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    s.qbuf(&dec, ob).unwrap();
    let g = s.io(&dec, VIDIOC_G_FMT, V4l2Format { type_: CAP, ..V4l2Format::default() }).unwrap();
    assert_eq!((g.pix.width, g.pix.height), (64, 80), "the first header's size");
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_USERPTR).unwrap();
    assert!(c.bytesused <= 6144, "bytesused {} past the buffer's length", c.bytesused);
    assert_eq!(c.flags & V4L2_BUF_FLAG_ERROR, V4L2_BUF_FLAG_ERROR, "a buffer too small for the frame");
    let after = s.mem.contents(user).unwrap();
    assert!(after[6144..].iter().all(|&b| b == 0xa5), "the program's memory past its buffer was written");
    assert_eq!(s.qbuf(&dec, cb).unwrap_err(), Errno::EINVAL, "smaller than the format's image");
}

/// The same larger first header with a DMABUF CAPTURE buffer big enough
/// for it: the plane is the dma-buf's size (vb2), so the frame decodes.
#[test]
fn dmabuf_capture_large_enough_for_the_first_header_decodes() {
    let mut s = setup();
    let p = Arc::clone(s.kernel.platform());
    let dec = s.kernel.v4l2_open("video1").unwrap();
    s.s_fmt(&dec, OUT, V4L2_PIX_FMT_FWHT, 64, 64);
    s.reqbufs(&dec, OUT, V4L2_MEMORY_MMAP, 1);
    s.reqbufs(&dec, CAP, V4L2_MEMORY_DMABUF, 2);
    let big = RawFrame::new(RawFormat::Nv12, 64, 80).unwrap();
    let coded = Encoder::new(big, 1).encode(&frame_bytes(big, 0), 5, 5).unwrap();
    write_sg(&p, Master::NsCpu, s.export(&dec, OUT, 0).sg_table().ranges(), 0, &coded).unwrap();
    let (fd, _fb) = s.heap_buf("system", 0x4000);
    let mut cb = buf(CAP, V4L2_MEMORY_DMABUF, 0);
    cb.m = fd as u64;
    s.qbuf(&dec, cb).unwrap();
    let mut ob = buf(OUT, V4L2_MEMORY_MMAP, 0);
    ob.bytesused = coded.len() as u32;
    s.stream(&dec, VIDIOC_STREAMON, OUT).unwrap();
    s.qbuf(&dec, ob).unwrap();
    s.stream(&dec, VIDIOC_STREAMON, CAP).unwrap();
    let c = s.dqbuf(&dec, CAP, V4L2_MEMORY_DMABUF).unwrap();
    assert_eq!((c.bytesused as usize, c.flags & V4L2_BUF_FLAG_ERROR), (big.size(), 0));
    // Queued after the size is known: a dma-buf of the new size is taken.
    cb.index = 1;
    s.qbuf(&dec, cb).unwrap();
}
