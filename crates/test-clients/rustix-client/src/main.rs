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

/// `struct tee_ioctl_buf_data`.
#[repr(C)]
struct TeeBufData {
    buf_ptr: u64,
    buf_len: u64,
}

/// `struct tee_ioctl_param`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TeeParam {
    attr: u64,
    a: u64,
    b: u64,
    c: u64,
}

/// `struct tee_ioctl_open_session_arg` with four params.
#[repr(C)]
#[derive(Default)]
struct OpenSession {
    uuid: [u8; 16],
    clnt_uuid: [u8; 16],
    clnt_login: u32,
    cancel_id: u32,
    session: u32,
    ret: u32,
    ret_origin: u32,
    num_params: u32,
    params: [TeeParam; 4],
}

/// `struct tee_ioctl_invoke_arg` with four params.
#[repr(C)]
#[derive(Default)]
struct Invoke {
    func: u32,
    session: u32,
    cancel_id: u32,
    ret: u32,
    ret_origin: u32,
    num_params: u32,
    params: [TeeParam; 4],
}

/// `struct tee_ioctl_shm_alloc_data`.
#[repr(C)]
#[derive(Default)]
struct ShmAlloc {
    size: u64,
    flags: u32,
    id: i32,
}

/// `struct tee_ioctl_shm_register_data`.
#[repr(C)]
#[derive(Default)]
struct ShmRegister {
    addr: u64,
    length: u64,
    flags: u32,
    id: i32,
}

/// `struct tee_ioctl_shm_register_fd_data`.
#[repr(C)]
#[derive(Default)]
struct ShmRegisterFd {
    fd: i64,
    size: u64,
    flags: u32,
    id: i32,
}

/// `struct tee_ioctl_close_session_arg`.
#[repr(C)]
struct CloseSession {
    session: u32,
}

/// OP-TEE's `sdp_basic` test TA.
const SDP_UUID: [u8; 16] =
    [0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4, 0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99];
const SDP_INJECT: u32 = 0;
const SDP_TRANSFORM: u32 = 1;
const SDP_DUMP: u32 = 2;
const MEMREF_IN: u64 = 5;
const MEMREF_OUT: u64 = 6;
const MEMREF_INOUT: u64 = 7;
/// What SHM_REGISTER_FD returns in `flags` on 6.18: the kernel's own
/// `TEE_SHM_DMA_BUF` (BIT(4)), not the UAPI's `TEE_IOCTL_SHM_DMA_BUF` (0x2).
const SHM_REGISTER_FD_FLAGS: u32 = 0x10;

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

fn tee_ioctl<T>(tee: impl AsFd, op: Opcode, arg: &mut T) -> rustix::io::Result<IoctlOutput> {
    ioctl_raw(tee, op, (arg as *mut T).cast())
}

/// `TEE_IOC_INVOKE` with memref params `(attr, shm id, offset, size)`;
/// returns the ioctl's result and the TA's return code.
fn invoke(tee: impl AsFd, session: u32, func: u32, memrefs: &[(u64, i32, u64, u64)]) -> (rustix::io::Result<()>, u32) {
    let mut arg = Invoke { func, session, num_params: 4, ret: 1, ..Invoke::default() };
    for (p, &(attr, shm, a, b)) in arg.params.iter_mut().zip(memrefs) {
        *p = TeeParam { attr, a, b, c: shm as u64 };
    }
    let mut buf = TeeBufData { buf_ptr: (&mut arg as *mut Invoke) as u64, buf_len: size_of::<Invoke>() as u64 };
    let r = tee_ioctl(tee, opcode::read::<TeeBufData>(0xa4, 3), &mut buf);
    (r.map(drop), arg.ret)
}

fn pattern(i: usize, seed: usize) -> u8 {
    (i * 7 + seed * 13 + (i >> 8)) as u8
}

fn transformed(b: u8) -> u8 {
    (!b).wrapping_add(1)
}

/// A session to sdp_basic; inject -> transform -> dump over a protected
/// buffer registered with SHM_REGISTER_FD (its dma-buf fd closed at once),
/// from an mmap'ed SHM_ALLOC shm into this program's own registered memory.
fn sdp(c: &mut Checks, tee: &OwnedFd) {
    const LEN: usize = 17000;
    let mut os = OpenSession { uuid: SDP_UUID, num_params: 4, ret: 1, ..OpenSession::default() };
    let mut buf =
        TeeBufData { buf_ptr: (&mut os as *mut OpenSession) as u64, buf_len: size_of::<OpenSession>() as u64 };
    let r = tee_ioctl(tee, opcode::read::<TeeBufData>(0xa4, 2), &mut buf);
    c.check("TEE open session sdp_basic", r.is_ok() && os.ret == 0, (&r, os.ret, os.ret_origin));
    if r.is_err() || os.ret != 0 {
        return;
    }
    let session = os.session;

    let prot = open("/dev/dma_heap/protected,secure-video").and_then(|h| alloc(&h, LEN as u64, O_RDWR | O_CLOEXEC));
    let mut rf = ShmRegisterFd { fd: prot.as_ref().map_or(-1, |b| i64::from(b.as_raw_fd())), ..Default::default() };
    let pshm = tee_ioctl(tee, opcode::read_write::<ShmRegisterFd>(0xa4, 8), &mut rf);
    c.check(
        "TEE_IOC_SHM_REGISTER_FD protected buffer",
        pshm.is_ok() && rf.id > 0 && rf.size >= LEN as u64 && rf.flags == SHM_REGISTER_FD_FLAGS,
        (&pshm, rf.id, rf.size, rf.flags),
    );
    // The registration holds the buffer from now on.
    drop(prot);
    let Ok(pshm) = pshm else { return };
    // SAFETY: on success the ioctl returned a new fd that is ours.
    let pshm = unsafe { OwnedFd::from_raw_fd(pshm) };

    let mut sa = ShmAlloc { size: LEN as u64, ..Default::default() };
    let ashm = tee_ioctl(tee, opcode::read_write::<ShmAlloc>(0xa4, 1), &mut sa);
    // SAFETY: on success the ioctl returned a new fd that is ours.
    let ashm = ashm.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let mapped = ashm.as_ref().map_err(|e| *e).and_then(|fd| {
        // SAFETY: a fresh shared mapping of the shm; it aliases nothing.
        unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), LEN, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, 0)
        }
    });
    c.check("TEE SHM_ALLOC input buffer mmap'ed", mapped.is_ok(), (&ashm, &mapped));
    let Ok(mapped) = mapped else { return };
    // SAFETY: the mapping is LEN bytes long and stays mapped until the
    // munmap below; nothing else in this program refers to it.
    let input = unsafe { std::slice::from_raw_parts_mut(mapped.cast::<u8>(), LEN) };

    // Unaligned on purpose: registration is by byte address.
    let mut raw = vec![0x5au8; LEN + 64];
    let out_addr = raw[13..].as_mut_ptr() as u64;
    let mut rg = ShmRegister { addr: out_addr, length: LEN as u64, ..Default::default() };
    let ushm = tee_ioctl(tee, opcode::read_write::<ShmRegister>(0xa4, 9), &mut rg);
    c.check("TEE_IOC_SHM_REGISTER own memory", ushm.is_ok() && rg.id > 0, (&ushm, rg.id));
    let Ok(ushm) = ushm else { return };
    // SAFETY: on success the ioctl returned a new fd that is ours.
    let ushm = unsafe { OwnedFd::from_raw_fd(ushm) };

    for (k, &(po, n, io, oo)) in [(0, LEN, 0, 0), (4095, 3001, 17, 100), (16383, 617, 9000, 16383)].iter().enumerate() {
        for i in 0..n {
            input[io + i] = pattern(i, k);
        }
        // The TA writes into `raw` during the DUMP ioctl, through the
        // address exposed to the kernel at registration (a syscall may
        // touch any exposed memory, so plain reads afterwards are sound).
        let out = &mut raw[13..13 + LEN];
        out.iter_mut().for_each(|b| *b = 0x5a);
        let (po, n64) = (po as u64, n as u64);
        let r1 = invoke(tee, session, SDP_INJECT, &[(MEMREF_IN, sa.id, io as u64, n64), (MEMREF_OUT, rf.id, po, n64)]);
        let r2 = invoke(tee, session, SDP_TRANSFORM, &[(MEMREF_INOUT, rf.id, po, n64)]);
        let r3 = invoke(tee, session, SDP_DUMP, &[(MEMREF_IN, rf.id, po, n64), (MEMREF_OUT, rg.id, oo as u64, n64)]);
        let out = &raw[13..13 + LEN];
        let bad: Vec<usize> = (0..LEN)
            .filter(|&i| out[i] != if (oo..oo + n).contains(&i) { transformed(pattern(i - oo, k)) } else { 0x5a })
            .collect();
        c.check(
            &format!("sdp inject/transform/dump at {po}+{n} into registered memory"),
            r1 == (Ok(()), 0) && r2 == (Ok(()), 0) && r3 == (Ok(()), 0) && bad.is_empty(),
            (r1, r2, r3, bad.len(), bad.first()),
        );
    }

    // The other way round: from the registered memory into the mmap'ed shm.
    for i in 0..700 {
        raw[13 + 50 + i] = pattern(i, 9);
    }
    input.iter_mut().for_each(|b| *b = 0);
    let r1 = invoke(tee, session, SDP_INJECT, &[(MEMREF_IN, rg.id, 50, 700), (MEMREF_OUT, rf.id, 8192, 700)]);
    let r2 = invoke(tee, session, SDP_TRANSFORM, &[(MEMREF_INOUT, rf.id, 8192, 700)]);
    let r3 = invoke(tee, session, SDP_DUMP, &[(MEMREF_IN, rf.id, 8192, 700), (MEMREF_OUT, sa.id, 1, 700)]);
    let got = &input[..702];
    let good = got[0] == 0 && got[701] == 0 && (0..700).all(|i| got[1 + i] == transformed(pattern(i, 9)));
    c.check(
        "sdp from registered memory into mmap'ed SHM_ALLOC memory",
        r1 == (Ok(()), 0) && r2 == (Ok(()), 0) && r3 == (Ok(()), 0) && good,
        (r1, r2, r3),
    );

    let r = invoke(tee, session, SDP_TRANSFORM, &[(MEMREF_INOUT, sa.id, 0, 64)]);
    // TEE_CheckMemoryAccessRights' ACCESS_DENIED, as OP-TEE's TA (issue 13, e5c721c).
    c.check("sdp transform on normal memory is refused", r == (Ok(()), 0xffff_0001), r);
    let mut cs = CloseSession { session };
    let r = tee_ioctl(tee, opcode::read::<CloseSession>(0xa4, 5), &mut cs);
    c.check("TEE close session", r.is_ok(), r);
    // SAFETY: unmaps exactly the mapping made above; `input` is not used after.
    let _ = unsafe { rustix::mm::munmap(mapped, LEN) };
    drop((ushm, ashm, pshm));
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
                // Linux: EINVAL; teeheap: the host refuses the write-only
                // description (mmap is not intercepted, docs/serving.md).
                c.check(&format!("mmap {h} is refused (teeheap EACCES)"), m.err() == Some(Errno::ACCESS), m.is_ok());
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
        sdp(&mut c, &tee);
    }

    println!("{} failed", c.failed);
    std::process::exit(i32::from(c.failed != 0));
}
