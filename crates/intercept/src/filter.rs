//! The seccomp filter that decides, inside the kernel, which syscalls leave
//! for the supervisor. Everything not selected here runs natively.
//!
//! A [`Filter`] is plain data; [`Filter::program`] compiles it to classic BPF
//! and [`Filter::install`] loads it into the calling thread with a listener.
//!
//! The program is ordered so that what is not ours leaves early: the ABI,
//! then the syscall number (every syscall but `ioctl` and `lseek` is then
//! allowed without looking at its arguments, so the kernel's per-syscall
//! action cache answers them without running the program at all), then for
//! an `ioctl` its number byte and its type byte, found by a binary search
//! over the sorted types (an unrelated `ioctl` runs 14 instructions).

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

/// Up to this many sorted types are compared one by one; more are split.
const LINEAR_TYPES: usize = 3;

/// What the filter sends to the supervisor.
///
/// # Invariants
/// `ioctl_types` is sorted, without duplicates, and holds at most 32
/// entries (the program stays far below BPF's 255-instruction jumps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    ioctl_types: Vec<u8>,
    ioctl_nr_zero: bool,
    unusual_lseek: bool,
    syscalls: Vec<Sysno>,
}

impl Filter {
    /// The filter teeheap serves with: ioctls of type `'H'` (dma-heap), `'b'`
    /// (dma-buf), `'>'` (sync_file), `0xa4` (TEE), `'d'` (DRM) and `'V'`
    /// (V4L2), ioctls of any type with number 0 (a heap fd dispatches on the
    /// number only, so another type's number 0 is an ALLOC there), and
    /// `lseek`s other than the two forms every file answers alike.
    ///
    /// `mmap` is not sent (issue 16): a `system` buffer's memfd is mapped
    /// over its DRAM when it is made, so a program's mapping needs nobody,
    /// and the files Linux refuses to map are ones the host refuses too
    /// (docs/serving.md, "mmap"). Programs' own shared mappings run natively.
    pub fn teeheap() -> Filter {
        Filter::empty()
            .ioctl_type(b'H')
            .ioctl_type(b'b')
            .ioctl_type(b'>')
            .ioctl_type(0xa4)
            .ioctl_type(b'd')
            .ioctl_type(b'V')
            .ioctl_nr_zero(true)
            .unusual_lseek(true)
    }

    /// A filter that sends nothing to the supervisor.
    pub fn empty() -> Filter {
        Filter { ioctl_types: Vec::new(), ioctl_nr_zero: false, unusual_lseek: false, syscalls: Vec::new() }
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
        if let Err(at) = self.ioctl_types.binary_search(&ty)
            && self.ioctl_types.len() < 32
        {
            self.ioctl_types.insert(at, ty);
        }
        self
    }

    /// Send every call of this syscall (for experiments and benchmarks).
    pub fn syscall(mut self, nr: Sysno) -> Filter {
        if !self.syscalls.contains(&nr) && nr != Sysno::IOCTL && nr != Sysno::LSEEK {
            self.syscalls.push(nr);
        }
        self
    }

    /// The BPF program.
    pub fn program(&self) -> Vec<libc::sock_filter> {
        let mut p = Bpf::default();
        let (allow, notify) = (p.label(), p.label());
        let ioctl = (!self.ioctl_types.is_empty() || self.ioctl_nr_zero).then(|| p.label());
        let lseek = self.unusual_lseek.then(|| p.label());
        // Foreign ABIs run natively.
        p.load(OFF_ARCH);
        p.jeq(AUDIT_ARCH, Next, allow);
        p.load(OFF_NR);
        #[cfg(target_arch = "x86_64")]
        p.jset(crate::arch::X32_SYSCALL_BIT, allow, Next);
        if let Some(l) = ioctl {
            p.jeq(Sysno::IOCTL.0, l, Next);
        }
        if let Some(l) = lseek {
            p.jeq(Sysno::LSEEK.0, l, Next);
        }
        for nr in &self.syscalls {
            p.jeq(nr.0, notify, Next);
        }
        p.ret(libc::SECCOMP_RET_ALLOW);
        if let Some(l) = ioctl {
            p.bind(l);
            p.load(off_arg_lo(1));
            if self.ioctl_nr_zero {
                p.jset(0xff, Next, notify);
            }
            if self.ioctl_types.is_empty() {
                p.ret(libc::SECCOMP_RET_ALLOW);
            } else {
                p.alu_rsh(8);
                p.alu_and(0xff);
                p.search(&self.ioctl_types, notify, allow);
            }
        }
        if let Some(l) = lseek {
            p.bind(l);
            // offset (64 bits) must be 0 ...
            p.load(off_arg_lo(1));
            p.jeq(0, Next, notify);
            p.load(off_arg_lo(1) + 4);
            p.jeq(0, Next, notify);
            // ... and whence SEEK_SET or SEEK_END.
            p.load(off_arg_lo(2));
            p.jeq(libc::SEEK_SET as u32, allow, Next);
            p.jeq(libc::SEEK_END as u32, allow, notify);
        }
        p.bind(allow);
        p.ret(libc::SECCOMP_RET_ALLOW);
        p.bind(notify);
        p.ret(libc::SECCOMP_RET_USER_NOTIF);
        p.finish()
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

/// Where a conditional jump goes: on to the next instruction, or to a label.
#[derive(Clone, Copy, Debug)]
enum Target {
    Next,
    To(Label),
}
use Target::Next;

/// A place in the program, bound once with [`Bpf::bind`].
#[derive(Clone, Copy, Debug)]
struct Label(usize);

impl From<Label> for Target {
    fn from(l: Label) -> Target {
        Target::To(l)
    }
}

/// A tiny BPF assembler with forward jumps to labels, resolved by
/// [`Bpf::finish`].
#[derive(Default)]
struct Bpf {
    code: Vec<(libc::sock_filter, Target, Target)>,
    labels: Vec<Option<usize>>,
}

impl Bpf {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    /// The next instruction pushed is where `l` jumps to.
    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }
    fn push(&mut self, code: u32, k: u32, jt: Target, jf: Target) {
        self.code.push((libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }, jt, jf));
    }
    fn load(&mut self, off: u32) {
        self.push(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, off, Next, Next);
    }
    fn alu_rsh(&mut self, n: u32) {
        self.push(libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K, n, Next, Next);
    }
    fn alu_and(&mut self, m: u32) {
        self.push(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, m, Next, Next);
    }
    fn ret(&mut self, action: u32) {
        self.push(libc::BPF_RET | libc::BPF_K, action, Next, Next);
    }
    /// if A == k goto jt else goto jf.
    fn jeq(&mut self, k: u32, jt: impl Into<Target>, jf: impl Into<Target>) {
        self.push(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, jt.into(), jf.into());
    }
    /// if A >= k goto jt else goto jf.
    fn jge(&mut self, k: u32, jt: impl Into<Target>, jf: impl Into<Target>) {
        self.push(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, k, jt.into(), jf.into());
    }
    /// if A & k != 0 goto jt else goto jf.
    fn jset(&mut self, k: u32, jt: impl Into<Target>, jf: impl Into<Target>) {
        self.push(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, k, jt.into(), jf.into());
    }
    /// Goes to `hit` if A is one of `sorted`, else to `miss`: a binary
    /// search down to [`LINEAR_TYPES`] values, compared one by one.
    fn search(&mut self, sorted: &[u8], hit: Label, miss: Label) {
        if sorted.len() <= LINEAR_TYPES {
            for (i, &v) in sorted.iter().enumerate() {
                let jf = if i + 1 == sorted.len() { Target::To(miss) } else { Next };
                self.jeq(u32::from(v), hit, jf);
            }
            return;
        }
        let mid = sorted.len() / 2;
        let upper = self.label();
        self.jge(u32::from(sorted[mid]), upper, Next);
        self.search(&sorted[..mid], hit, miss);
        self.bind(upper);
        self.search(&sorted[mid..], hit, miss);
    }
    /// The program with every jump resolved.
    ///
    /// # Panics
    /// On an unbound label, a backward jump or one past 255 instructions
    /// (a bug in [`Filter::program`]; its size is bounded by `Filter`'s
    /// invariants).
    fn finish(self) -> Vec<libc::sock_filter> {
        let labels = self.labels;
        let off = |at: usize, t: Target| -> u8 {
            match t {
                Next => 0,
                Target::To(l) => {
                    let to = labels[l.0].expect("BPF label never bound");
                    u8::try_from(to.checked_sub(at + 1).expect("backward BPF jump")).expect("BPF jump too long")
                }
            }
        };
        self.code
            .into_iter()
            .enumerate()
            .map(|(i, (mut ins, jt, jf))| {
                ins.jt = off(i, jt);
                ins.jf = off(i, jf);
                ins
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the subset the assembler emits, so the
    /// program's decisions can be checked without loading it. Returns the
    /// action and how many instructions ran.
    fn exec(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            pc += 1;
            steps += 1;
            let jump = |taken: bool| usize::from(if taken { ins.jt } else { ins.jf });
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = ins.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K => a >>= ins.k,
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= ins.k,
                c if c == libc::BPF_RET | libc::BPF_K => return (ins.k, steps),
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += jump(a == ins.k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += jump(a >= ins.k),
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => pc += jump(a & ins.k != 0),
                other => panic!("unexpected BPF code {other:#x}"),
            }
        }
    }

    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        exec(prog, nr, arch, args).0
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
            (mm, AUDIT_ARCH, mmap(0x01), A),                   // MAP_SHARED: runs natively (issue 16)
            (mm, AUDIT_ARCH, mmap(0x03), A),                   // MAP_SHARED_VALIDATE
            (mm, AUDIT_ARCH, mmap(0x02), A),                   // MAP_PRIVATE
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

    /// Every type byte and a few numbers, for filters with 0 to 32 types,
    /// against the rule itself (the search must not lose a type).
    #[test]
    fn every_type_byte_against_the_rule() {
        let mut rng = fastrand::Rng::with_seed(16);
        for n in [0usize, 1, 2, 3, 4, 6, 7, 13, 32, 40] {
            let mut f = Filter::empty().ioctl_nr_zero(n % 2 == 0);
            let mut types = Vec::new();
            while types.len() < n.min(32) {
                let t = rng.u8(..);
                if !types.contains(&t) {
                    types.push(t);
                    f = f.ioctl_type(t);
                }
            }
            for _ in n.min(32)..n {
                f = f.ioctl_type(rng.u8(..)); // past 32: ignored
            }
            let p = f.program();
            for ty in 0..=255u32 {
                for nr in [0u32, 1, 0x1b, 0xff] {
                    let cmd = (3 << 30) | (24 << 16) | (ty << 8) | nr;
                    let want = types.contains(&(ty as u8)) || (n % 2 == 0 && nr == 0);
                    let got = run(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl(u64::from(cmd)));
                    assert_eq!(got, if want { N } else { A }, "{n} types {types:x?}, cmd {cmd:#x}");
                }
            }
        }
    }

    /// What an unrelated ioctl pays inside the filter: arch, number, the
    /// ioctl's number byte, its type byte by binary search.
    #[test]
    fn unrelated_ioctls_take_a_short_path() {
        let p = Filter::teeheap().program();
        let x32 = usize::from(cfg!(target_arch = "x86_64"));
        let longest = (0..=255u64)
            .filter(|ty| !matches!(*ty as u8, b'H' | b'b' | b'>' | 0xa4 | b'd' | b'V'))
            .map(|ty| exec(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl((ty << 8) | 0x1b)))
            .inspect(|&(action, _)| assert_eq!(action, A))
            .map(|(_, steps)| steps)
            .max()
            .unwrap();
        // 2 (arch) + 1 + x32 (number) + 1 (is it ioctl) + 2 (ioctl nr 0)
        // + 2 (type byte) + 4 (search) + 1 (ret).
        assert_eq!(longest, 13 + x32);
        // Syscalls other than ioctl and lseek never read their arguments,
        // so the kernel's action cache allows them without running this.
        let (action, steps) = exec(&p, Sysno::MMAP.0, AUDIT_ARCH, mmap(1));
        assert_eq!((action, steps), (A, 6 + x32));
        assert!(p.len() < 40, "{} instructions", p.len());
    }

    #[test]
    fn extra_syscalls_and_empty() {
        let p = Filter::empty().syscall(Sysno::OPENAT).program();
        assert_eq!(run(&p, Sysno::OPENAT.0, AUDIT_ARCH, [0; 6]), N);
        assert_eq!(run(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl(0xc018_4800)), A);
        let p = Filter::empty().program();
        assert_eq!(run(&p, Sysno::MMAP.0, AUDIT_ARCH, mmap(1)), A);
        let p = Filter::empty().ioctl_nr_zero(true).program();
        assert_eq!(run(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl(0xc018_4800)), N);
        assert_eq!(run(&p, Sysno::IOCTL.0, AUDIT_ARCH, ioctl(0xc018_4801)), A);
    }
}
