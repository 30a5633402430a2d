//! The seccomp filter that decides, inside the kernel, which syscalls leave
//! for the supervisor. Everything not selected here runs natively.
//!
//! A [`Filter`] is plain data; [`Filter::program`] compiles it to classic BPF
//! and [`Filter::install`] loads it into the calling thread with a listener.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::arch::{AUDIT_ARCH, Sysno};
use crate::{Result, last_errno};

/// `offsetof(struct seccomp_data, nr)`.
const OFF_NR: u32 = 0;
/// `offsetof(struct seccomp_data, arch)`.
const OFF_ARCH: u32 = 4;
/// `offsetof(struct seccomp_data, args[i])`, low 32 bits (little endian).
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// What the filter sends to the supervisor.
///
/// # Invariants
/// `ioctl_types` holds at most 32 entries (BPF jump offsets are 8 bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    ioctl_types: Vec<u8>,
    ioctl_nr_zero: bool,
    shared_file_mmap: bool,
    unusual_lseek: bool,
    syscalls: Vec<Sysno>,
}

impl Filter {
    /// The filter teeheap serves with: ioctls of type `'H'` (dma-heap), `'b'`
    /// (dma-buf), `'>'` (sync_file), `0xa4` (TEE), `'d'` (DRM) and `'V'` (V4L2), ioctls of any type
    /// with number 0 (a heap fd dispatches on the number only, so another
    /// type's number 0 is an ALLOC there), and `MAP_SHARED` mmaps of a file.
    pub fn teeheap() -> Filter {
        Filter::empty()
            .ioctl_type(b'H')
            .ioctl_type(b'b')
            .ioctl_type(b'>')
            .ioctl_type(0xa4)
            .ioctl_type(b'd')
            .ioctl_type(b'V')
            .ioctl_nr_zero(true)
            .shared_file_mmap(true)
            .unusual_lseek(true)
    }

    /// A filter that sends nothing to the supervisor.
    pub fn empty() -> Filter {
        Filter {
            ioctl_types: Vec::new(),
            ioctl_nr_zero: false,
            shared_file_mmap: false,
            unusual_lseek: false,
            syscalls: Vec::new(),
        }
    }

    /// Send `lseek`s except `lseek(fd, 0, SEEK_SET)` and `lseek(fd, 0,
    /// SEEK_END)`: the only ones a dma-buf answers (`dma_buf_llseek`), and
    /// the common ones (rewind, size). The rest cost a round trip.
    pub fn unusual_lseek(mut self, on: bool) -> Filter {
        self.unusual_lseek = on;
        self
    }

    /// Send `ioctl`s whose request number (`_IOC_NR`) is 0, whatever their
    /// type. Few requests have number 0 (`DRM_IOCTL_VERSION`,
    /// `VIDIOC_QUERYCAP`), so unrelated programs rarely pay for it.
    pub fn ioctl_nr_zero(mut self, on: bool) -> Filter {
        self.ioctl_nr_zero = on;
        self
    }

    /// Send `ioctl`s whose request has this type byte (`_IOC_TYPE`).
    ///
    /// Only the low 32 bits of the request are looked at, as the kernel
    /// truncates the request to `unsigned int`.
    pub fn ioctl_type(mut self, ty: u8) -> Filter {
        if !self.ioctl_types.contains(&ty) && self.ioctl_types.len() < 32 {
            self.ioctl_types.push(ty);
        }
        self
    }

    /// Send `mmap`s that map a file shared (`MAP_SHARED` or
    /// `MAP_SHARED_VALIDATE`, no `MAP_ANONYMOUS`).
    pub fn shared_file_mmap(mut self, on: bool) -> Filter {
        self.shared_file_mmap = on;
        self
    }

    /// Send every call of this syscall (for experiments and benchmarks).
    pub fn syscall(mut self, nr: Sysno) -> Filter {
        if !self.syscalls.contains(&nr) && nr != Sysno::IOCTL && nr != Sysno::MMAP && nr != Sysno::LSEEK {
            self.syscalls.push(nr);
        }
        self
    }

    /// The BPF program.
    pub fn program(&self) -> Vec<libc::sock_filter> {
        let mut p = Bpf::default();
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let allow = libc::SECCOMP_RET_ALLOW;
        // Foreign ABIs run natively.
        p.load(OFF_ARCH);
        p.jeq_else_ret(AUDIT_ARCH, allow);
        p.load(OFF_NR);
        #[cfg(target_arch = "x86_64")]
        p.jset_ret(crate::arch::X32_SYSCALL_BIT, allow);
        if !self.ioctl_types.is_empty() || self.ioctl_nr_zero {
            // if nr != ioctl: skip the ioctl block.
            let nr_zero = if self.ioctl_nr_zero { 4 } else { 0 };
            let block = 3 + 2 * self.ioctl_types.len() + nr_zero + 1;
            p.jne_skip(Sysno::IOCTL.0, block);
            p.load(off_arg_lo(1));
            p.alu_rsh(8);
            p.alu_and(0xff);
            for &ty in &self.ioctl_types {
                p.jeq_ret(u32::from(ty), notify);
            }
            if self.ioctl_nr_zero {
                p.load(off_arg_lo(1));
                p.alu_and(0xff);
                p.jeq_ret(0, notify);
            }
            p.ret(allow);
        }
        if self.shared_file_mmap {
            p.load(OFF_NR);
            p.jne_skip(Sysno::MMAP.0, 6);
            p.load(off_arg_lo(3));
            p.jset_ret(libc::MAP_ANONYMOUS as u32, allow);
            // MAP_SHARED (1) and MAP_SHARED_VALIDATE (3) both have bit 0.
            p.jset_ret(libc::MAP_SHARED as u32, notify);
            p.ret(allow);
        }
        if self.unusual_lseek {
            p.load(OFF_NR);
            p.jne_skip(Sysno::LSEEK.0, 12);
            // offset (64 bits) must be 0 ...
            p.load(off_arg_lo(1));
            p.jeq_else_ret(0, notify);
            p.load(off_arg_lo(1) + 4);
            p.jeq_else_ret(0, notify);
            // ... and whence SEEK_SET or SEEK_END.
            p.load(off_arg_lo(2));
            p.jeq_ret(libc::SEEK_SET as u32, allow);
            p.jeq_ret(libc::SEEK_END as u32, allow);
            p.ret(notify);
        }
        if !self.syscalls.is_empty() {
            p.load(OFF_NR);
            for nr in &self.syscalls {
                p.jeq_ret(nr.0, notify);
            }
        }
        p.ret(allow);
        p.0
    }

    /// Sets `no_new_privs` and installs the filter on the calling thread,
    /// returning the listener fd (`O_CLOEXEC`).
    ///
    /// Uses `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: once the supervisor has
    /// received a notification, only a fatal signal interrupts the caller,
    /// so signal-heavy runtimes (Go's preemption) do not restart calls that
    /// have side effects. Errors: `EINVAL` on kernels before 5.19.
    pub fn install(&self) -> Result<OwnedFd> {
        let prog = self.program();
        install_program(&prog)
    }
}

/// Sets `no_new_privs` and loads `prog` with a new listener.
///
/// Does not allocate, so it may run between `fork` and `exec`.
pub fn install_program(prog: &[libc::sock_filter]) -> Result<OwnedFd> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(last_errno());
    }
    let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // copies the program before returning.
    let fd = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &fprog as *const libc::sock_fprog)
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: seccomp returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A tiny BPF assembler with forward jumps resolved at push time.
#[derive(Default)]
struct Bpf(Vec<libc::sock_filter>);

impl Bpf {
    fn push(&mut self, code: u32, jt: u8, jf: u8, k: u32) {
        self.0.push(libc::sock_filter { code: code as u16, jt, jf, k });
    }
    fn load(&mut self, off: u32) {
        self.push(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, off);
    }
    fn alu_rsh(&mut self, n: u32) {
        self.push(libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K, 0, 0, n);
    }
    fn alu_and(&mut self, m: u32) {
        self.push(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, m);
    }
    fn ret(&mut self, action: u32) {
        self.push(libc::BPF_RET | libc::BPF_K, 0, 0, action);
    }
    /// if A == k { return action }.
    fn jeq_ret(&mut self, k: u32, action: u32) {
        self.push(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, k);
        self.ret(action);
    }
    /// if A != k { return action }.
    fn jeq_else_ret(&mut self, k: u32, action: u32) {
        self.push(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 1, 0, k);
        self.ret(action);
    }
    /// if A & k != 0 { return action }.
    fn jset_ret(&mut self, k: u32, action: u32) {
        self.push(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 0, 1, k);
        self.ret(action);
    }
    /// if A != k, skip the next `n` instructions.
    fn jne_skip(&mut self, k: u32, n: usize) {
        let n = u8::try_from(n).expect("BPF block longer than 255 instructions");
        self.push(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, n, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the subset the assembler emits, so the
    /// program's decisions can be checked without loading it.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = ins.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K => a >>= ins.k,
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= ins.k,
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == ins.k { ins.jt } else { ins.jf });
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += usize::from(if a & ins.k != 0 { ins.jt } else { ins.jf });
                }
                other => panic!("unexpected BPF code {other:#x}"),
            }
        }
    }

    const N: u32 = libc::SECCOMP_RET_USER_NOTIF;
    const A: u32 = libc::SECCOMP_RET_ALLOW;

    fn ioctl(cmd: u64) -> [u64; 6] {
        [3, cmd, 0x1000, 0, 0, 0]
    }
    fn mmap(flags: u64) -> [u64; 6] {
        [0, 4096, 3, flags, 5, 0]
    }

    #[test]
    fn decisions() {
        let p = Filter::teeheap().program();
        let io = Sysno::IOCTL.0;
        let mm = Sysno::MMAP.0;
        let table: &[(u32, u32, [u64; 6], u32)] = &[
            (io, AUDIT_ARCH, ioctl(0xc018_4800), N),           // DMA_HEAP_IOCTL_ALLOC
            (io, AUDIT_ARCH, ioctl(0x4008_6200), N),           // DMA_BUF_IOCTL_SYNC
            (io, AUDIT_ARCH, ioctl(0x800c_a400), N),           // TEE_IOC_VERSION
            (io, AUDIT_ARCH, ioctl(0xc038_3e04), N),           // SYNC_IOC_FILE_INFO
            (io, AUDIT_ARCH, ioctl(0xc00c_642e), N),           // DRM_IOCTL_PRIME_FD_TO_HANDLE
            (io, AUDIT_ARCH, ioctl(0xc058_560f), N),           // VIDIOC_QBUF
            (io, AUDIT_ARCH, ioctl(0xffff_ffff_c018_4800), N), // sign-extended
            (io, AUDIT_ARCH, ioctl(0x541b), A),                // FIONREAD
            (io, AUDIT_ARCH, ioctl(0x4800_0001), A),           // 'H' in the size field only
            (io, AUDIT_ARCH, ioctl(0xc018_5800), N),           // 'X' nr 0: a heap fd's ALLOC
            (io, AUDIT_ARCH, ioctl(0x5401), A),                // TCGETS (nr 1)
            (io, AUDIT_ARCH, ioctl(0x1_0000_5401), A),         // high bits ignored
            (io, 0x4000_0003, ioctl(0xc018_4800), A),          // i386 ABI
            (mm, AUDIT_ARCH, mmap(0x01), N),                   // MAP_SHARED
            (mm, AUDIT_ARCH, mmap(0x03), N),                   // MAP_SHARED_VALIDATE
            (mm, AUDIT_ARCH, mmap(0x02), A),                   // MAP_PRIVATE
            (mm, AUDIT_ARCH, mmap(0x21), A),                   // MAP_SHARED|MAP_ANONYMOUS
            (Sysno::OPENAT.0, AUDIT_ARCH, [0; 6], A),
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 0, 0, 0, 0, 0], A), // rewind
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 0, 2, 0, 0, 0], A), // size
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 0, 1, 0, 0, 0], N), // SEEK_CUR
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 4096, 0, 0, 0, 0], N), // SEEK_SET 4096
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 1 << 32, 0, 0, 0, 0], N), // high word
            (Sysno::LSEEK.0, AUDIT_ARCH, [3, 0, 1 << 32, 0, 0, 0], A), // whence is an int
            (Sysno::GETPPID.0, AUDIT_ARCH, [0; 6], A),
        ];
        for (i, &(nr, arch, args, want)) in table.iter().enumerate() {
            assert_eq!(run(&p, nr, arch, args), want, "row {i}");
        }
    }

    #[test]
    fn extra_syscalls_and_empty() {
        let p = Filter::empty().syscall(Sysno::OPENAT).program();
        assert_eq!(run(&p, Sysno::OPENAT.0, AUDIT_ARCH, [0; 6]), N);
        assert_eq!(run(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl(0xc018_4800)), A);
        let p = Filter::empty().program();
        assert_eq!(run(&p, Sysno::MMAP.0, AUDIT_ARCH, mmap(1)), A);
    }
}
