//! A program written only against the kernel UAPI that opens, ioctls and
//! mmaps through rustix's raw-syscall backend, so no preloaded library could
//! catch its calls. teeheap's tests run it under `teeheap run`; it prints
//! one `ok`/`FAIL` line per check and exits non-zero on any failure.
//!
//! `rustix-client reader FD` is its second process: it receives a dma-buf
//! fd over the socket `FD` (SCM_RIGHTS), checks what the first wrote and
//! answers through the same mapping.

use std::ffi::c_void;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, opcode};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketFlags, SocketType,
};

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct AllocData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

/// `struct tee_ioctl_version_data`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TeeVersion {
    impl_id: u32,
    impl_caps: u32,
    gen_caps: u32,
}

const O_RDWR: u32 = 2;
const O_CLOEXEC: u32 = 0o2_000_000;
const TEE_GEN_CAP_GP: u32 = 1;

/// An ioctl with a raw argument pointer (also a bad one, for EFAULT).
struct Raw {
    op: Opcode,
    arg: *mut c_void,
}

// SAFETY: `Raw` passes the pointer it was given; callers guarantee it is
// either valid for the opcode's struct or deliberately bad (the kernel —
// here teeheap — must then answer EFAULT without touching memory).
unsafe impl Ioctl for Raw {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> Opcode {
        self.op
    }
    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

fn ioctl_raw(fd: impl AsFd, op: Opcode, arg: *mut c_void) -> rustix::io::Result<IoctlOutput> {
    // SAFETY: see `Raw`; every caller passes a live struct of the size the
    // opcode encodes, or an address that is not mapped.
    unsafe { rustix::ioctl::ioctl(fd, Raw { op, arg }) }
}

/// ALLOC with a struct of `size` bytes whose first 24 are `data`.
fn alloc_sized(heap: impl AsFd, data: AllocData, size: usize, fill: u8) -> (rustix::io::Result<i32>, Vec<u8>) {
    let mut bytes = vec![fill; size.max(24)];
    // SAFETY: `AllocData` is 24 bytes of plain integers; copying its bytes
    // into a buffer of at least 24 bytes is sound.
    unsafe { std::ptr::copy_nonoverlapping((&data as *const AllocData).cast::<u8>(), bytes.as_mut_ptr(), 24) };
    // _IOWR('H', 0, size), built by hand: rustix's typed helpers take the
    // size from a Rust type.
    let op = (3 << 30) | ((size as Opcode & 0x3fff) << 16) | ((b'H' as Opcode) << 8);
    let r = ioctl_raw(&heap, op, bytes.as_mut_ptr().cast());
    let fd = u32::from_ne_bytes(bytes[8..12].try_into().unwrap()) as i32;
    (r.map(|_| fd), bytes)
}

fn alloc(heap: impl AsFd, len: u64, fd_flags: u32) -> rustix::io::Result<OwnedFd> {
    let (r, _) = alloc_sized(heap, AllocData { len, fd_flags, ..AllocData::default() }, 24, 0);
    // SAFETY: on success the kernel installed this new fd for us.
    r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Debug) {
        if ok {
            println!("ok {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail:?}");
        }
    }
}

fn open(path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
}

fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> rustix::io::Result<usize> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(sock, &[IoSlice::new(b"F")], &mut anc, SendFlags::empty())
}

fn recv_fd(sock: BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut b = [0u8; 1];
    rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut b)], &mut anc, RecvFlags::CMSG_CLOEXEC).ok()?;
    anc.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut r) => r.next(),
        _ => None,
    })
}

/// The second process: map the received buffer, check, answer.
fn reader(sock_fd: i32) -> i32 {
    // SAFETY: the parent passed us this inherited socket's number.
    let sock = unsafe { OwnedFd::from_raw_fd(sock_fd) };
    let Some(buf) = recv_fd(sock.as_fd()) else { return 2 };
    // SAFETY: a fresh shared mapping of the buffer at an address the kernel
    // picks; it aliases nothing.
    let p = match unsafe {
        rustix::mm::mmap(std::ptr::null_mut(), 8192, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &buf, 0)
    } {
        Ok(p) => p.cast::<u8>(),
        Err(_) => return 3,
    };
    // SAFETY: the mapping is 8192 bytes long and stays mapped until exit.
    let (seen, code) = unsafe {
        let seen = std::slice::from_raw_parts(p.add(4096), 16).to_vec();
        std::ptr::copy_nonoverlapping(c"reader was here".as_ptr().cast::<u8>(), p, 16);
        let code = if &seen[..] == b"written by first" { 0 } else { 4 };
        (seen, code)
    };
    let _ = rustix::io::write(&sock, b"D");
    if code != 0 {
        eprintln!("reader saw {seen:?}");
    }
    code
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("reader") {
        std::process::exit(reader(args[2].parse().unwrap()));
    }
    let mut c = Checks { failed: 0 };

    let mut heaps: Vec<String> = std::fs::read_dir("/dev/dma_heap")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    heaps.sort();
    c.check("list", heaps.iter().any(|h| h == "system") && heaps.iter().any(|h| h.starts_with("protected,")), &heaps);

    for h in &heaps {
        let path = format!("/dev/dma_heap/{h}");
        let r = open(&path).and_then(|heap| alloc(&heap, 8000, O_RDWR | O_CLOEXEC));
        let size = r.as_ref().ok().and_then(|b| rustix::fs::seek(b, SeekFrom::End(0)).ok());
        c.check(&format!("alloc {h}"), size == Some(8192), (&r, size));
        if let Ok(b) = &r {
            if h.starts_with("protected,") {
                // SAFETY: a mapping request the kernel (teeheap) must refuse.
                let m =
                    unsafe { rustix::mm::mmap(std::ptr::null_mut(), 8192, ProtFlags::READ, MapFlags::SHARED, b, 0) };
                c.check(&format!("mmap {h} is EINVAL"), m.err() == Some(Errno::INVAL), m.is_ok());
            }
        }
    }

    let sys = open("/dev/dma_heap/system").expect("open system heap");
    let einval = |data: AllocData| alloc_sized(&sys, data, 24, 0).0.err() == Some(Errno::INVAL);
    let base = AllocData { len: 4096, fd_flags: O_RDWR, ..AllocData::default() };
    c.check("alloc fd!=0 is EINVAL", einval(AllocData { fd: 3, ..base }), ());
    c.check("alloc bad fd_flags is EINVAL", einval(AllocData { fd_flags: O_RDWR | 0o4000, ..base }), ());
    c.check("alloc heap_flags is EINVAL", einval(AllocData { heap_flags: 1, ..base }), ());
    c.check("alloc len 0 is EINVAL", einval(AllocData { len: 0, ..base }), ());

    let (r16, _) = alloc_sized(&sys, base, 16, 0);
    let ok16 = r16.as_ref().is_ok_and(|&fd| fd > 2);
    c.check("alloc 16-byte struct", ok16, r16);
    let (r48, b48) = alloc_sized(&sys, base, 48, 0xaa);
    let tail_kept = b48[24..].iter().all(|&b| b == 0xaa);
    c.check("alloc 48-byte struct", r48.is_ok() && tail_kept, (&r48, &b48[24..]));

    // SAFETY: address 8 is never mapped; teeheap must answer EFAULT.
    let op = opcode::read_write::<AllocData>(b'H', 0);
    let bad = ioctl_raw(&sys, op, 8 as *mut c_void);
    c.check("bad pointer is EFAULT", bad.err() == Some(Errno::FAULT), bad);

    // A system buffer: mapped here, read and answered in another process.
    let buf = alloc(&sys, 8192, O_RDWR | O_CLOEXEC).expect("alloc system");
    c.check("lseek SEEK_END", rustix::fs::seek(&buf, SeekFrom::End(0)) == Ok(8192), ());
    // SAFETY: a fresh shared mapping of our buffer; it aliases nothing.
    let p = unsafe {
        rustix::mm::mmap(std::ptr::null_mut(), 8192, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &buf, 0)
    };
    c.check("mmap system", p.is_ok(), p);
    if let Ok(p) = p {
        let p = p.cast::<u8>();
        // SAFETY: inside the 8192-byte mapping.
        unsafe { std::ptr::copy_nonoverlapping(b"written by first".as_ptr(), p.add(4096), 16) };
        let (mine, theirs) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        let theirs_dup = rustix::io::fcntl_dupfd_cloexec(&theirs, 100).unwrap();
        // The child must inherit its end: clear close-on-exec on a copy.
        rustix::io::fcntl_setfd(&theirs_dup, rustix::io::FdFlags::empty()).unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["reader", &theirs_dup.as_raw_fd().to_string()])
            .spawn();
        drop(theirs_dup);
        drop(theirs);
        let sent = send_fd(mine.as_fd(), buf.as_fd());
        let mut done = [0u8; 1];
        let _ = rustix::io::read(&mine, &mut done);
        let status = child.and_then(|mut ch| ch.wait());
        // SAFETY: inside the mapping; the reader wrote the first 16 bytes.
        let answer = unsafe { std::slice::from_raw_parts(p, 16).to_vec() };
        c.check(
            "shared across processes (SCM_RIGHTS)",
            sent.is_ok() && status.as_ref().is_ok_and(|s| s.success()) && &answer[..] == b"reader was here\0",
            (&status, String::from_utf8_lossy(&answer)),
        );
    }

    let tee = open("/dev/tee0");
    c.check("open /dev/tee0", tee.is_ok(), &tee);
    if let Ok(tee) = tee {
        let mut v = TeeVersion::default();
        let r = ioctl_raw(&tee, opcode::read::<TeeVersion>(0xa4, 0), (&mut v as *mut TeeVersion).cast());
        c.check(
            "TEE_IOC_VERSION",
            r.is_ok() && v.impl_id == 1 && v.gen_caps & TEE_GEN_CAP_GP != 0,
            (r, v.impl_id, v.gen_caps),
        );
    }

    println!("{} failed", c.failed);
    std::process::exit(i32::from(c.failed != 0));
}
