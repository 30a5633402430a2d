/* A client for tests/harden.rs. Modes:
 *   panic        (under `teeheap run`) makes the daemon panic while serving
 *                its calls (a test-only ioctl, compiled into test builds of
 *                the daemon only) and checks that each such call fails with
 *                EIO while every other call goes on working. Prints one
 *                "ok"/"FAIL" line per check and "N failed" last.
 *   session-panic (under `teeheap run`) prints its pid, makes the daemon's
 *                session thread for its run fail, and waits forever.
 *   plant SEED   (under `teeheap run`) puts a 4 KiB secret made from SEED
 *                into a protected buffer with the SDP TA (from its own
 *                registered memory, which it then wipes; DUMPs it back once
 *                to check), prints "planted PID BUFFD" and holds everything
 *                until a line arrives on stdin.
 *   attack DAEMON PROG SEED
 *                (outside the run, same uid) tries every way Linux offers a
 *                same-uid process into the daemon: /proc/DAEMON/fd/N (read
 *                and write), /proc/DAEMON/mem, process_vm_readv, pidfd_getfd,
 *                PTRACE_SEIZE; prints "refused WHAT: ERRNO" or "REACHED WHAT"
 *                for each, scans whatever it could read (and the program's
 *                own fds) for the secret ("FOUND secret in WHERE"), and
 *                ends with "N reached, M found". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "sdp_ta.h"
#include "tee_compat.h"
#include <linux/dma-heap.h>
#include <linux/tee.h>

/* guard::test_hooks::PANIC_IOCTL and SESSION_PANIC_IOCTL of crates/daemon. */
#define TEEHEAP_TEST_PANIC _IO('H', 0xfe)
#define TEEHEAP_TEST_SESSION_PANIC _IO('H', 0xfd)

static int alloc(int heap, unsigned long len) {
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) < 0)
		return -1;
	return (int)a.fd;
}

static int panic_mode(void) {
	char msg[256];
	int sys = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	int prot = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	check("open heaps", sys >= 0 && prot >= 0, strerror(errno));
	for (int round = 0; round < 3; round++) {
		errno = 0;
		int r = ioctl(round % 2 ? prot : sys, TEEHEAP_TEST_PANIC, 0);
		snprintf(msg, sizeof msg, "r=%d errno=%d (%s)", r, errno, strerror(errno));
		check("a call whose serving panics fails with EIO", r == -1 && errno == EIO, msg);

		int buf = alloc(sys, 8192);
		snprintf(msg, sizeof msg, "fd %d: %s", buf, strerror(errno));
		check("alloc system after the panic", buf >= 0, msg);
		char *p = buf < 0 ? MAP_FAILED : mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		check("mmap system after the panic", p != MAP_FAILED, strerror(errno));
		if (p != MAP_FAILED) {
			strcpy(p, "still served");
			munmap(p, 8192);
		}
		close(buf);
		int pbuf = alloc(prot, 4096);
		snprintf(msg, sizeof msg, "fd %d: %s", pbuf, strerror(errno));
		check("alloc protected after the panic", pbuf >= 0, msg);
		close(pbuf);

		int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
		struct tee_ioctl_version_data v;
		memset(&v, 0, sizeof v);
		r = tee < 0 ? -1 : ioctl(tee, TEE_IOC_VERSION, &v);
		snprintf(msg, sizeof msg, "r=%d impl_id=%u: %s", r, v.impl_id, strerror(errno));
		check("TEE_IOC_VERSION after the panic", r == 0 && v.impl_id != 0, msg);
		close(tee);
	}
	close(sys);
	close(prot);
	printf("%d failed\n", failed);
	return failed != 0;
}

enum { SECRET = 4096 };

/* The secret of SEED: xorshift64 bytes, never all zero. */
static void secret(uint64_t seed, uint8_t *out) {
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < SECRET; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[i] = (uint8_t)(x >> 32);
	}
}

enum { SDP_INJECT = 0, SDP_DUMP = 2 };

/* TEE_IOC_INVOKE with two memref params (shm id, offset, size each);
 * returns the ioctl result or the TA's return code. */
static int invoke2(int tee, uint32_t session, uint32_t func, uint64_t attr0, int shm0, uint64_t attr1, int shm1,
		   uint64_t size) {
	struct sdp_invoke arg;
	struct tee_ioctl_buf_data b = sdp_invoke_arg(&arg, session, func);
	arg.p[0] = (struct tee_ioctl_param){ .attr = attr0, .a = 0, .b = size, .c = (uint64_t)shm0 };
	arg.p[1] = (struct tee_ioctl_param){ .attr = attr1, .a = 0, .b = size, .c = (uint64_t)shm1 };
	int r = ioctl(tee, TEE_IOC_INVOKE, &b);
	return r ? r : (int)arg.a.ret;
}

static int plant(uint64_t seed) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct sdp_session os;
	struct tee_ioctl_buf_data b = sdp_open_arg(&os);
	if (tee < 0 || ioctl(tee, TEE_IOC_OPEN_SESSION, &b) || os.a.ret) {
		printf("FAIL open session: %s ret %#x\n", strerror(errno), os.a.ret);
		return 1;
	}
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	int buf = heap < 0 ? -1 : alloc(heap, 65536);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	int pshm = buf < 0 ? -1 : ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	uint8_t *mem = aligned_alloc(4096, SECRET);
	struct tee_ioctl_shm_register_data rg = { .addr = (uintptr_t)mem, .length = SECRET };
	int ushm = mem ? ioctl(tee, TEE_IOC_SHM_REGISTER, &rg) : -1;
	if (pshm < 0 || ushm < 0) {
		printf("FAIL register: %s\n", strerror(errno));
		return 1;
	}
	secret(seed, mem);
	int r = invoke2(tee, os.a.session, SDP_INJECT, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, rg.id,
			TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, rf.id, SECRET);
	explicit_bzero(mem, SECRET);
	int r2 = invoke2(tee, os.a.session, SDP_DUMP, TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, rf.id,
			 TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, rg.id, SECRET);
	uint8_t *want = malloc(SECRET);
	secret(seed, want);
	int same = !memcmp(want, mem, SECRET);
	explicit_bzero(want, SECRET);
	explicit_bzero(mem, SECRET);
	if (r || r2 || !same) {
		printf("FAIL inject %#x dump %#x same %d\n", r, r2, same);
		return 1;
	}
	printf("planted %d %d\n", (int)getpid(), buf);
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	return 0;
}

static uint8_t want[SECRET];
static int reached, found;

/* Whether any of four 64-byte pieces of the secret (at 0, 1 K, 2 K, 3 K)
 * occurs in `p[0..n]`: a freed copy has allocator links over its start. */
static int has_secret(const uint8_t *p, size_t n) {
	for (size_t at = 0; at < SECRET; at += 1024)
		if (memmem(p, n, want + at, 64) != NULL)
			return 1;
	return 0;
}

/* Scans a file's data (holes skipped: the platform's DRAM is a sparse
 * memfd of GiBs). */
static void scan_fd(int fd, const char *where) {
	static uint8_t chunk[1 << 20];
	off_t off = 0;
	for (int i = 0; i < 1 << 16; i++) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data > off)
			off = data;
		else if (data < 0 && errno == ENXIO)
			break; /* no data past off */
		ssize_t n = pread(fd, chunk, sizeof chunk, off);
		if (n <= 0)
			break;
		if (has_secret(chunk, (size_t)n)) {
			printf("FOUND secret in %s at %lld\n", where, (long long)off);
			found++;
			return;
		}
		off += n - 63;
	}
}

static void result(const char *what, int ok, int err) {
	if (ok) {
		printf("REACHED %s\n", what);
		reached++;
	} else
		printf("refused %s: %s\n", what, strerrorname_np(err) ? strerrorname_np(err) : "?");
}

/* Every readable private range of /proc/PID/mem listed in /proc/PID/maps. */
static void scan_mem(int pid, int mem, const char *where) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	static uint8_t chunk[1 << 20];
	char line[512];
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[5];
		/* Private mappings only: reading a shared one (the DRAM window)
		 * would populate GiBs of shmem; its memfd is scanned as an fd. */
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[3] != 'p')
			continue;
		for (unsigned long a = lo; a < hi; a += sizeof chunk - 63) {
			size_t len = hi - a < sizeof chunk ? hi - a : sizeof chunk;
			ssize_t n = pread(mem, chunk, len, (off_t)a);
			if (n > 0 && has_secret(chunk, (size_t)n)) {
				printf("FOUND secret in %s at %#lx\n", where, a);
				found++;
				fclose(f);
				return;
			}
			if (len < sizeof chunk)
				break;
		}
	}
	fclose(f);
}

static int attack(int daemon, int prog, uint64_t seed) {
	char path[128], what[160];
	secret(seed, want);

	/* /proc/DAEMON/fd: list it, then open each number directly. */
	snprintf(path, sizeof path, "/proc/%d/fd", daemon);
	DIR *d = opendir(path);
	result("list /proc/DAEMON/fd", d != NULL, errno);
	if (d)
		closedir(d);
	int opened = 0, wrote = 0, err = 0, werr = 0;
	for (int fd = 0; fd < 256; fd++) {
		snprintf(path, sizeof path, "/proc/%d/fd/%d", daemon, fd);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0) {
			if (errno != ENOENT)
				err = errno;
		} else {
			opened++;
			snprintf(what, sizeof what, "daemon fd %d", fd);
			scan_fd(f, what);
			close(f);
		}
		f = open(path, O_WRONLY | O_CLOEXEC);
		if (f < 0) {
			if (errno != ENOENT)
				werr = errno;
		} else {
			wrote++;
			close(f);
		}
	}
	result("open /proc/DAEMON/fd/N for reading", opened > 0, err ? err : ENOENT);
	result("open /proc/DAEMON/fd/N for writing (pwrite)", wrote > 0, werr ? werr : ENOENT);

	snprintf(path, sizeof path, "/proc/%d/mem", daemon);
	int mem = open(path, O_RDONLY | O_CLOEXEC);
	result("open /proc/DAEMON/mem", mem >= 0, errno);
	if (mem >= 0) {
		scan_mem(daemon, mem, "/proc/DAEMON/mem");
		close(mem);
	}

	/* Any address: a refusal is EPERM, a reachable process EFAULT or data. */
	uint8_t byte;
	struct iovec local = { &byte, 1 }, remote = { (void *)0x10000, 1 };
	errno = 0;
	ssize_t n = process_vm_readv(daemon, &local, 1, &remote, 1, 0);
	result("process_vm_readv on the daemon", n >= 0 || errno != EPERM, errno);

	int pidfd = (int)syscall(SYS_pidfd_open, daemon, 0);
	int got = 0, gerr = 0;
	for (int fd = 0; pidfd >= 0 && fd < 256; fd++) {
		int f = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (f < 0) {
			if (errno != EBADF)
				gerr = errno;
			continue;
		}
		got++;
		snprintf(what, sizeof what, "pidfd_getfd %d", fd);
		scan_fd(f, what);
		close(f);
	}
	result("pidfd_getfd on the daemon", got > 0, pidfd < 0 ? errno : gerr ? gerr : EBADF);

	errno = 0;
	long t = ptrace(PTRACE_SEIZE, daemon, 0, 0);
	result("PTRACE_SEIZE of the daemon", t == 0, errno);
	if (t == 0)
		ptrace(PTRACE_DETACH, daemon, 0, 0);

	/* What it can read of the program (its own, same-uid and dumpable):
	 * the protected buffer's fd holds no data. */
	for (int fd = 0; fd < 256; fd++) {
		snprintf(path, sizeof path, "/proc/%d/fd/%d", prog, fd);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		snprintf(what, sizeof what, "program fd %d", fd);
		scan_fd(f, what);
		close(f);
	}
	printf("%d reached, %d found\n", reached, found);
	return reached || found;
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "panic"))
		return panic_mode();
	if (argc > 1 && !strcmp(argv[1], "session-panic")) {
		/* The session dies with this call; the run must end us. */
		int sys = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
		printf("%d\n", (int)getpid());
		fflush(stdout);
		ioctl(sys, TEEHEAP_TEST_SESSION_PANIC, 0);
		for (;;)
			pause();
	}
	if (argc > 2 && !strcmp(argv[1], "plant"))
		return plant(strtoull(argv[2], NULL, 0));
	if (argc > 4 && !strcmp(argv[1], "attack"))
		return attack(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 0));
	fprintf(stderr, "usage: harden_client panic | plant SEED | attack DAEMON PROG SEED\n");
	return 2;
}
