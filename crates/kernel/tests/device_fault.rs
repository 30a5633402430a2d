//! An injected firewall fault on a device master reaches the program
//! through the device's own UAPI (docs/fault-injection.md): while the
//! video decoder's accesses are refused, its V4L2 job fails and both
//! buffers come back with `V4L2_BUF_FLAG_ERROR`, each refusal is in the
//! firewall's log, and the next job decodes again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use teeheap_kernel::file::{FdTable, File, Files};
use teeheap_kernel::uaccess::SimUserMemory;
use teeheap_kernel::v4l2::CodecFile;
use teeheap_kernel::{Errno, Kernel, backend::builtin::BuiltinBackend};
use teeheap_platform::Master;
use teeheap_platform::devices::fwht::{Encoder, RawFormat, RawFrame};
use teeheap_platform::devices::write_sg;
use teeheap_platform::fault::{Fault, Injector, Point};
use teeheap_uapi::v4l2::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Refuses every access by the video decoder while `armed`, counting them.
#[derive(Debug, Default)]
struct DecoderFaults {
    armed: AtomicBool,
    refused: AtomicU32,
}

impl Injector for DecoderFaults {
    fn at(&self, p: &Point<'_>) -> Option<Fault> {
        let hit = self.armed.load(Ordering::SeqCst) && matches!(p, Point::Access { master: Master::VideoDecoder });
        if hit {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        hit.then_some(Fault::Fail)
    }
}

fn io<T: FromBytes + IntoBytes + Immutable>(
    mem: &SimUserMemory,
    files: &mut FdTable,
    dev: &CodecFile,
    cmd: u32,
    arg: T,
) -> Result<T, Errno> {
    let ptr = mem.map(arg.as_bytes());
    dev.ioctl(cmd, ptr, mem, files).map_err(|e| e.errno())?;
    Ok(T::read_from_bytes(&mem.contents(ptr).unwrap()).unwrap())
}

#[test]
fn a_decoder_fault_is_the_buffers_error_flag_once() {
    let kernel = Kernel::boot(Arc::new(common::three_carveouts()));
    let _backend = BuiltinBackend::probe(&kernel).unwrap();
    let injector = Arc::new(DecoderFaults::default());
    assert!(kernel.platform().faults().install(Arc::clone(&injector) as _));
    let (mem, mut files) = (SimUserMemory::new(), FdTable::default());
    let p = Arc::clone(kernel.platform());
    let f = RawFrame::new(RawFormat::Nv12, 64, 32).unwrap();
    let raw: Vec<u8> = (0..f.size()).map(|i| (i % 200) as u8).collect();
    let coded = Encoder::new(f, 1).encode(&raw, 4, 4).unwrap();

    let dec = kernel.v4l2_open("video1").unwrap();
    let (out, cap, dmabuf) = (V4L2_BUF_TYPE_VIDEO_OUTPUT, V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_DMABUF);
    let mut fmt = V4l2Format { type_: out, ..V4l2Format::default() };
    fmt.pix = V4l2PixFormat { width: 64, height: 32, pixelformat: V4L2_PIX_FMT_FWHT, ..V4l2PixFormat::default() };
    io(&mem, &mut files, &dec, VIDIOC_S_FMT, fmt).unwrap();
    for type_ in [out, cap] {
        let r = V4l2Requestbuffers { count: 1, type_, memory: dmabuf, ..Default::default() };
        io(&mem, &mut files, &dec, VIDIOC_REQBUFS, r).unwrap();
    }
    let heap = kernel.dma_heaps().open("system").unwrap();
    let (bits, fb) = (heap.allocate(0x2000, 0, 0).unwrap(), heap.allocate(0x2000, 0, 0).unwrap());
    write_sg(&p, Master::NsCpu, bits.sg_table().ranges(), 0, &coded).unwrap();
    let bits_fd = files.install(File::new(bits), 0).unwrap();
    let fb_fd = files.install(File::new(fb), 0).unwrap();
    for type_ in [out, cap] {
        io(&mem, &mut files, &dec, VIDIOC_STREAMON, type_).unwrap();
    }
    let job = |files: &mut FdTable| {
        let mut ob = V4l2Buffer { type_: out, memory: dmabuf, ..Default::default() };
        ob.m = bits_fd as u64;
        ob.bytesused = coded.len() as u32;
        let mut cb = V4l2Buffer { type_: cap, memory: dmabuf, ..Default::default() };
        cb.m = fb_fd as u64;
        io(&mem, files, &dec, VIDIOC_QBUF, cb).unwrap();
        io(&mem, files, &dec, VIDIOC_QBUF, ob).unwrap();
        let o = io(&mem, files, &dec, VIDIOC_DQBUF, V4l2Buffer { type_: out, memory: dmabuf, ..Default::default() });
        let c = io(&mem, files, &dec, VIDIOC_DQBUF, V4l2Buffer { type_: cap, memory: dmabuf, ..Default::default() });
        (o.unwrap().flags & V4L2_BUF_FLAG_ERROR, c.unwrap())
    };

    assert_eq!(job(&mut files).0, 0, "no fault before it is armed");
    injector.armed.store(true, Ordering::SeqCst);
    let before = p.firewall().violation_count();
    let (out_err, c) = job(&mut files);
    injector.armed.store(false, Ordering::SeqCst);
    assert_eq!((out_err, c.flags & V4L2_BUF_FLAG_ERROR, c.bytesused), (V4L2_BUF_FLAG_ERROR, V4L2_BUF_FLAG_ERROR, 0));
    // The header peek and the bitstream read were refused, each logged.
    let refused = u64::from(injector.refused.load(Ordering::SeqCst));
    assert!(refused >= 1);
    assert_eq!(p.firewall().violation_count(), before + refused);
    let last = p.firewall().violations().pop().unwrap();
    assert_eq!((last.master, last.region.as_str()), (Master::VideoDecoder, "an injected fault"));
    let (out_err, c) = job(&mut files);
    assert_eq!((out_err, c.flags & V4L2_BUF_FLAG_ERROR, c.bytesused as usize), (0, 0, f.size()));
}
