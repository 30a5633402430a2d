/* Raw-syscall sequence fuzzer (issue 11), run under `teeheap run` by
 * tests/syscall_fuzz.rs. PROCS worker processes of THREADS threads each
 * issue seeded random raw syscalls (syscall(2)) on the heap, dma-buf and
 * TEE fds: opens, ALLOC with hostile lengths and flags, close, dup2 onto
 * busy numbers, mmap/munmap and touching the mapping, dma-buf and TEE
 * ioctls with hostile arguments, raw ioctls, read/write/lseek, fd passing
 * over a socketpair and forks; the threads of a process race on the same
 * fd numbers. The parent SIGKILLs a random worker every few milliseconds
 * and starts a new one, for MS milliseconds.
 *
 * usage: syscall_fuzz SEED MS [PROCS [THREADS]]
 * Worker g (the g-th started) runs the op streams of seed SEED, worker g,
 * thread t: the same SEED replays the same streams (the interleaving and
 * the kill points vary). Prints "seed SEED" first and a summary last. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tee_compat.h"
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <linux/tee.h>

#define MAX_PROCS 16
#define MAX_THREADS 4
#define SLOTS 12
#define FD_SPAN 32

/* Counters shared by every worker (a MAP_SHARED anonymous page). */
struct shared {
	volatile uint64_t ops, ok, forks, passes, mmaps, touched, sigbus, sigsegv, sessions;
};
static struct shared *sh;

static char heap_names[16][300];
/* REGION_PAGES pages for SHM_REGISTER, followed by an inaccessible page. */
#define REGION_PAGES 5
static char *region;
static int n_heaps;
static const unsigned char SDP_UUID[16] = { 0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4,
					    0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99 };

static uint64_t mix(uint64_t x) {
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r) {
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

static uint64_t below(struct rng *r, uint64_t n) {
	return next(r) % n;
}

static uint64_t hostile_len(struct rng *r) {
	static const uint64_t v[] = { 0, 1, 4095, 4096, 4097, 65536, 1ull << 20, 64ull << 20, 1ull << 30, 1ull << 40,
				      1ull << 62, 1ull << 63, ~0ull, ~0ull - 4095, 0x7fffffffffffffffull, 0xffffffffull };
	switch (below(r, 6)) {
	case 0:
		return v[below(r, sizeof v / sizeof v[0])];
	case 1:
		return next(r);
	default:
		return 4096 * (1 + below(r, 16));
	}
}

static __thread sigjmp_buf guard;
static __thread volatile int guarded;

static void on_fault(int sig) {
	if (guarded) {
		guarded = 0;
		__sync_fetch_and_add(sig == SIGBUS ? &sh->sigbus : &sh->sigsegv, 1);
		siglongjmp(guard, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* What one thread remembers: fds it made, shm ids, sessions. */
struct mem {
	int fds[SLOTS];
	int kind[SLOTS]; /* 0 heap, 1 dma-buf, 2 tee, 3 shm, 4 other, 5 sync file */
	int shm_ids[4];
	uint32_t sessions[4];
	int ctx_of[4];
};

static void remember(struct mem *m, struct rng *r, int fd, int kind) {
	if (fd < 0)
		return;
	int i = (int)below(r, SLOTS);
	m->fds[i] = fd;
	m->kind[i] = kind;
}

/* An fd: mostly one this thread made (of `kind` if it has one), else any
 * number around the table, sometimes hostile. */
static int pick_fd(struct mem *m, struct rng *r, int kind) {
	uint64_t c = below(r, 16);
	if (c == 0) {
		static const int hostile[] = { -1, 0, 1, 2, 1023, 0x7fffffff, -2147483647 - 1 };
		return hostile[below(r, sizeof hostile / sizeof hostile[0])];
	}
	if (c < 4)
		return 3 + (int)below(r, FD_SPAN);
	int start = (int)below(r, SLOTS);
	for (int k = 0; k < SLOTS; k++) {
		int i = (start + k) % SLOTS;
		if (m->fds[i] >= 0 && (kind < 0 || m->kind[i] == kind))
			return m->fds[i];
	}
	return 3 + (int)below(r, FD_SPAN);
}

static int above2(int fd) {
	return fd >= 0 && fd < 3 ? -1 : fd;
}

static long sys_ioctl(int fd, unsigned long cmd, void *arg) {
	return syscall(SYS_ioctl, fd, cmd, arg);
}

static void *bad_ptr(struct rng *r, void *good) {
	static const uintptr_t bad[] = { 0, 0x10, 0xffffffffffffffffull, 0xffff800000000000ull, 0x7ffffffff000ull };
	return below(r, 5) == 0 ? (void *)bad[below(r, 5)] : good;
}

static void params(struct rng *r, struct mem *m, struct tee_ioctl_param *p, int n) {
	for (int i = 0; i < n; i++) {
		static const uint64_t attrs[] = { 1, 2, 3, 5, 6, 7, 0, 0x105, 0x1ff, 4 };
		p[i].attr = below(r, 8) ? attrs[below(r, 6)] : attrs[below(r, 10)];
		p[i].a = below(r, 4) ? below(r, 2) * 16 : hostile_len(r);
		p[i].b = below(r, 4) ? 1 + below(r, 64) : hostile_len(r);
		p[i].c = below(r, 6) ? (uint64_t)(int64_t)m->shm_ids[below(r, 4)] : (below(r, 2) ? ~0ull : next(r));
	}
}

static void one_op(struct rng *r, struct mem *m, int depth);

static void tee_call(struct rng *r, struct mem *m, int open) {
	struct {
		union {
			struct tee_ioctl_open_session_arg o;
			struct tee_ioctl_invoke_arg i;
		} h;
		struct tee_ioctl_param p[6];
	} a;
	memset(&a, 0, sizeof a);
	int n = (int)below(r, 5), s = (int)below(r, 4), fd;
	size_t hdr;
	if (open) {
		hdr = sizeof a.h.o;
		fd = pick_fd(m, r, 2);
		memcpy(a.h.o.uuid, SDP_UUID, 16);
		if (below(r, 8) == 0)
			a.h.o.uuid[below(r, 16)] ^= 1;
		a.h.o.clnt_login = below(r, 8) ? 0 : (uint32_t)next(r);
		a.h.o.num_params = (uint32_t)n;
	} else {
		hdr = sizeof a.h.i;
		fd = below(r, 8) ? m->ctx_of[s] : pick_fd(m, r, 2);
		a.h.i.session = below(r, 8) ? m->sessions[s] : (uint32_t)next(r);
		static const uint32_t funcs[] = { 0, 1, 2, 9, 3 };
		a.h.i.func = funcs[below(r, 5)];
		a.h.i.num_params = (uint32_t)n;
	}
	struct tee_ioctl_param *p = (struct tee_ioctl_param *)((char *)&a + hdr);
	params(r, m, p, n);
	uint64_t len = hdr + sizeof(struct tee_ioctl_param) * (uint64_t)n;
	switch (below(r, 12)) {
	case 0:
		len += below(r, 64) - 32;
		break;
	case 1:
		len = hostile_len(r);
		break;
	case 2:
		if (open)
			a.h.o.num_params = (uint32_t)next(r);
		else
			a.h.i.num_params = (uint32_t)next(r);
		break;
	}
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)bad_ptr(r, &a), .buf_len = len };
	long rc = sys_ioctl(fd, open ? TEE_IOC_OPEN_SESSION : TEE_IOC_INVOKE, bad_ptr(r, &b));
	if (rc == 0 && open && a.h.o.ret == 0) {
		m->sessions[s] = a.h.o.session;
		m->ctx_of[s] = fd;
		__sync_fetch_and_add(&sh->sessions, 1);
	}
}

static void pass_fd(struct rng *r, struct mem *m) {
	int sv[2];
	/* Non-blocking: another thread's read/write may pick these numbers,
	 * and a fork may copy both ends into a child that reads one. */
	if (syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	int fd = pick_fd(m, r, -1);
	char byte = 'x';
	struct iovec io = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr msg = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (syscall(SYS_sendmsg, sv[0], &msg, MSG_DONTWAIT) == 1) {
		memset(&u, 0, sizeof u);
		msg.msg_controllen = sizeof u.buf;
		if (syscall(SYS_recvmsg, sv[1], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1 &&
		    (c = CMSG_FIRSTHDR(&msg)) && c->cmsg_type == SCM_RIGHTS) {
			int got;
			memcpy(&got, CMSG_DATA(c), sizeof got);
			remember(m, r, got, 4);
			__sync_fetch_and_add(&sh->passes, 1);
		}
	}
	syscall(SYS_close, sv[0]);
	syscall(SYS_close, sv[1]);
}

static void do_mmap(struct rng *r, struct mem *m) {
	int fd = pick_fd(m, r, below(r, 3) ? 1 : 3);
	uint64_t len = below(r, 4) ? 4096 * (1 + below(r, 8)) : hostile_len(r);
	int prot = below(r, 4) ? PROT_READ | PROT_WRITE : (int)below(r, 8);
	int flags = below(r, 4) ? MAP_SHARED : (below(r, 2) ? MAP_PRIVATE : (int)next(r) & 0xff);
	uint64_t off = below(r, 4) ? 0 : (below(r, 2) ? 4096 * below(r, 32) : hostile_len(r));
	void *p = (void *)syscall(SYS_mmap, NULL, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return;
	__sync_fetch_and_add(&sh->mmaps, 1);
	if ((prot & PROT_READ) && len > 0) {
		guarded = 1;
		if (sigsetjmp(guard, 1) == 0) {
			volatile char c = *(volatile char *)p;
			(void)c;
			if ((prot & PROT_WRITE) && (flags & 3) == MAP_SHARED)
				*(volatile char *)p = 1;
			__sync_fetch_and_add(&sh->touched, 1);
		}
		guarded = 0;
	}
	syscall(SYS_munmap, p, len);
}

static void one_op(struct rng *r, struct mem *m, int depth) {
	char buf[64];
	long rc = -1;
	switch (below(r, 25)) {
	case 0:
	case 1: {
		static const int modes[] = { O_RDWR | O_CLOEXEC, O_RDWR, O_RDONLY, O_WRONLY, O_RDWR | O_CLOEXEC | O_NONBLOCK };
		const char *name = n_heaps && below(r, 8) ? heap_names[below(r, (uint64_t)n_heaps)] : "/dev/dma_heap/nope";
		rc = syscall(SYS_openat, AT_FDCWD, name, modes[below(r, 5)]);
		remember(m, r, (int)rc, 0);
		break;
	}
	case 2:
		rc = syscall(SYS_openat, AT_FDCWD, below(r, 4) ? "/dev/tee0" : "/dev/teepriv0", O_RDWR | O_CLOEXEC);
		remember(m, r, (int)rc, 2);
		break;
	case 3:
	case 4:
	case 5: {
		static const unsigned flags[] = { O_RDWR | O_CLOEXEC, O_RDWR, O_RDONLY | O_CLOEXEC, 3 | O_CLOEXEC, 0x8000 };
		struct dma_heap_allocation_data a = {
			.len = below(r, 3) ? 4096 * (1 + below(r, 64)) : hostile_len(r),
			.fd_flags = below(r, 8) ? flags[below(r, 4)] : (below(r, 2) ? flags[4] : (unsigned)next(r)),
			.heap_flags = below(r, 10) ? 0 : next(r),
		};
		rc = sys_ioctl(pick_fd(m, r, 0), DMA_HEAP_IOCTL_ALLOC, bad_ptr(r, &a));
		if (rc == 0)
			remember(m, r, (int)a.fd, 1);
		break;
	}
	case 6:
	case 7:
		rc = syscall(SYS_close, pick_fd(m, r, -1));
		break;
	case 8:
		rc = syscall(SYS_dup2, above2(pick_fd(m, r, -1)), below(r, 2) ? pick_fd(m, r, -1) : 3 + (int)below(r, FD_SPAN));
		break;
	case 9:
		rc = syscall(SYS_fcntl, above2(pick_fd(m, r, -1)), below(r, 2) ? F_DUPFD_CLOEXEC : F_DUPFD, 3);
		remember(m, r, (int)rc, 4);
		break;
	case 10:
	case 11:
		do_mmap(r, m);
		return;
	case 12: {
		struct dma_buf_sync s = { .flags = below(r, 4) ? below(r, 8) : next(r) };
		rc = sys_ioctl(pick_fd(m, r, 1), DMA_BUF_IOCTL_SYNC, bad_ptr(r, &s));
		break;
	}
	case 13: {
		memset(buf, 'n', sizeof buf);
		buf[below(r, sizeof buf)] = 0;
		rc = sys_ioctl(pick_fd(m, r, 1), below(r, 2) ? DMA_BUF_SET_NAME_A : DMA_BUF_SET_NAME_B, bad_ptr(r, buf));
		break;
	}
	case 14: {
		struct tee_ioctl_version_data v;
		rc = sys_ioctl(pick_fd(m, r, 2), TEE_IOC_VERSION, bad_ptr(r, &v));
		break;
	}
	case 15: {
		struct tee_ioctl_shm_alloc_data a = { .size = below(r, 3) ? 4096 * (1 + below(r, 4)) : hostile_len(r),
						      .flags = below(r, 10) ? 0 : (uint32_t)next(r) };
		rc = sys_ioctl(pick_fd(m, r, 2), TEE_IOC_SHM_ALLOC, bad_ptr(r, &a));
		if (rc >= 0) {
			remember(m, r, (int)rc, 3);
			m->shm_ids[below(r, 4)] = a.id;
		}
		break;
	}
	case 16: {
		/* Inside `region`, or running into the guard page after it. */
		struct tee_ioctl_shm_register_data a = {
			.addr = (uintptr_t)bad_ptr(r, region + (below(r, 4) ? 0 : below(r, 8192))),
			.length = below(r, 3) ? 1 + below(r, 8192) : hostile_len(r),
			.flags = below(r, 10) ? 0 : (uint32_t)next(r),
		};
		rc = sys_ioctl(pick_fd(m, r, 2), TEE_IOC_SHM_REGISTER, bad_ptr(r, &a));
		if (rc >= 0) {
			remember(m, r, (int)rc, 3);
			m->shm_ids[below(r, 4)] = a.id;
		}
		break;
	}
	case 17: {
		struct tee_ioctl_shm_register_fd_data a = { .fd = below(r, 8) ? pick_fd(m, r, 1) : (int64_t)next(r),
							    .flags = below(r, 10) ? 0 : (uint32_t)next(r) };
		rc = sys_ioctl(pick_fd(m, r, 2), TEE_IOC_SHM_REGISTER_FD, bad_ptr(r, &a));
		if (rc >= 0) {
			remember(m, r, (int)rc, 3);
			m->shm_ids[below(r, 4)] = a.id;
		}
		break;
	}
	case 18:
		tee_call(r, m, 1);
		return;
	case 19:
	case 20:
		if (below(r, 6) == 0) {
			int s = (int)below(r, 4);
			struct tee_ioctl_close_session_arg c = { .session = m->sessions[s] };
			rc = sys_ioctl(m->ctx_of[s], TEE_IOC_CLOSE_SESSION, bad_ptr(r, &c));
		} else {
			tee_call(r, m, 0);
			return;
		}
		break;
	case 21: {
		/* As large as any _IOC_SIZE: the kernel may write that many bytes back. */
		static __thread char big[1 << 14];
		for (size_t i = 0; i < 64; i++)
			big[i] = (char)next(r);
		unsigned long cmd = below(r, 2) ? (unsigned long)(uint32_t)next(r)
						: _IOC(below(r, 4), "Hb\xa4>"[below(r, 4)], below(r, 12), below(r, 0x100));
		rc = sys_ioctl(pick_fd(m, r, -1), cmd, bad_ptr(r, big));
		break;
	}
	case 24: {
		/* sync files: export from a dma-buf, import into one, merge, info. */
		unsigned flags = below(r, 4) ? (unsigned)below(r, 4) : (unsigned)next(r);
		switch (below(r, 4)) {
		case 0: {
			struct dma_buf_export_sync_file e = { .flags = flags, .fd = -1 };
			rc = sys_ioctl(pick_fd(m, r, 1), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, bad_ptr(r, &e));
			if (rc == 0)
				remember(m, r, e.fd, 5);
			break;
		}
		case 1: {
			struct dma_buf_import_sync_file i = { .flags = flags, .fd = pick_fd(m, r, 5) };
			rc = sys_ioctl(pick_fd(m, r, 1), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, bad_ptr(r, &i));
			break;
		}
		case 2: {
			struct sync_merge_data d = { .fd2 = pick_fd(m, r, 5), .fence = -1, .flags = below(r, 8) ? 0 : flags };
			memset(d.name, 'm', sizeof d.name);
			rc = sys_ioctl(pick_fd(m, r, 5), SYNC_IOC_MERGE, bad_ptr(r, &d));
			if (rc == 0)
				remember(m, r, d.fence, 5);
			break;
		}
		default: {
			struct sync_fence_info f[64];
			struct sync_file_info i = { .num_fences = below(r, 4) ? (unsigned)below(r, 5) : (unsigned)next(r),
						    .sync_fence_info = (uintptr_t)bad_ptr(r, f) };
			rc = sys_ioctl(pick_fd(m, r, 5), SYNC_IOC_FILE_INFO, bad_ptr(r, &i));
		}
		}
		break;
	}
	case 22:
		switch (below(r, 4)) {
		/* Never the standard streams: a read could block, a write reach the test's output. */
		case 0:
			/* A hostile length only with a pointer the kernel must refuse. */
			if (below(r, 2))
				rc = syscall(SYS_read, above2(pick_fd(m, r, 1)), buf, sizeof buf);
			else
				rc = syscall(SYS_read, above2(pick_fd(m, r, 1)), (void *)0x10, hostile_len(r));
			break;
		case 1:
			rc = syscall(SYS_pread64, above2(pick_fd(m, r, 1)), buf, sizeof buf, below(r, 2) ? 0 : hostile_len(r));
			break;
		case 2:
			rc = syscall(SYS_write, above2(pick_fd(m, r, -1)), buf, sizeof buf);
			break;
		default:
			rc = syscall(SYS_lseek, pick_fd(m, r, 1), below(r, 2) ? 0 : (long)next(r), (int)below(r, 4));
		}
		break;
	default:
		if (depth == 0 && below(r, 8) == 0) {
			pid_t pid = (pid_t)syscall(SYS_fork);
			if (pid == 0) {
				for (int i = 0; i < 30; i++)
					one_op(r, m, 1);
				_exit(0);
			}
			if (pid > 0) {
				__sync_fetch_and_add(&sh->forks, 1);
				int st;
				waitpid(pid, &st, 0);
			}
			return;
		}
		pass_fd(r, m);
		return;
	}
	__sync_fetch_and_add(&sh->ops, 1);
	if (rc >= 0)
		__sync_fetch_and_add(&sh->ok, 1);
}

struct thread_arg {
	uint64_t seed;
	uint64_t limit;
};

static void *run_thread(void *p) {
	struct thread_arg *a = p;
	struct rng r = { mix(a->seed) | 1 };
	struct mem m;
	memset(&m, 0, sizeof m);
	for (int i = 0; i < SLOTS; i++)
		m.fds[i] = -1;
	for (uint64_t i = 0; i < a->limit; i++)
		one_op(&r, &m, 0);
	return NULL;
}

/* Worker `g`: THREADS threads; ends by itself after a seeded number of
 * operations per thread unless killed first. */
static void worker(uint64_t seed, int g, int threads) {
	/* Nothing a worker does may reach the test's output. */
	int null = open("/dev/null", O_RDWR);
	for (int i = 0; i < 3; i++)
		dup2(null, i);
	pthread_t t[MAX_THREADS];
	struct thread_arg a[MAX_THREADS];
	struct rng r = { mix(seed ^ mix((uint64_t)g)) | 1 };
	uint64_t limit = 100 + below(&r, 3000);
	for (int i = 0; i < threads; i++) {
		a[i].seed = mix(seed ^ mix((uint64_t)g) ^ mix(0x100 + (uint64_t)i));
		a[i].limit = limit;
	}
	for (int i = 1; i < threads; i++)
		pthread_create(&t[i], NULL, run_thread, &a[i]);
	run_thread(&a[0]);
	for (int i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	_exit(0);
}

static uint64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s SEED MS [PROCS [THREADS]]\n", argv[0]);
		return 2;
	}
	uint64_t seed = strtoull(argv[1], NULL, 0), ms = strtoull(argv[2], NULL, 0);
	int procs = argc > 3 ? atoi(argv[3]) : 4, threads = argc > 4 ? atoi(argv[4]) : 2;
	if (procs < 1 || procs > MAX_PROCS || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "PROCS 1..%d, THREADS 1..%d\n", MAX_PROCS, MAX_THREADS);
		return 2;
	}
	printf("seed %#llx\n", (unsigned long long)seed);
	fflush(stdout);
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	region = mmap(NULL, (REGION_PAGES + 1) * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || mprotect(region + REGION_PAGES * 4096, 4096, PROT_NONE))
		return 2;
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	while (d && (e = readdir(d)) && n_heaps < 16)
		if (e->d_name[0] != '.')
			snprintf(heap_names[n_heaps++], 300, "/dev/dma_heap/%s", e->d_name);
	if (d)
		closedir(d);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* writes to a socket another thread closed */

	/* The children a killed worker forked end up here, to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct rng r = { mix(seed) | 1 };
	pid_t running[MAX_PROCS];
	int gen[MAX_PROCS];
	int started = 0, kills = 0, exits = 0, crashes = 0;
	for (int i = 0; i < procs; i++) {
		gen[i] = started;
		running[i] = fork();
		if (running[i] == 0)
			worker(seed, started, threads);
		started++;
	}
	uint64_t end = now_ms() + ms;
	while (now_ms() < end) {
		usleep((useconds_t)below(&r, 4000));
		int st;
		pid_t pid;
		/* Workers that ended by themselves, and orphaned grandchildren. */
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int i = 0; i < procs; i++) {
				if (running[i] != pid)
					continue;
				if (WIFSIGNALED(st) || WEXITSTATUS(st) != 0) {
					crashes++;
					printf("worker %d died: status %#x\n", gen[i], st);
				}
				exits++;
				running[i] = 0;
			}
		}
		for (int i = 0; i < procs; i++) {
			if (running[i] > 0 && below(&r, (uint64_t)procs * 2) == 0) {
				kill(running[i], SIGKILL);
				waitpid(running[i], &st, 0);
				kills++;
				running[i] = 0;
			}
			if (running[i] == 0) {
				gen[i] = started;
				running[i] = fork();
				if (running[i] == 0)
					worker(seed, started, threads);
				started++;
			}
		}
	}
	for (int i = 0; i < procs; i++) {
		kill(running[i], SIGKILL);
		waitpid(running[i], NULL, 0);
	}
	/* Orphans run at most 30 operations; none may outlive the run. One
	 * still there after 10 s is stuck: say where, and end it. */
	int stuck = 0;
	for (uint64_t t0 = now_ms(); waitpid(-1, NULL, WNOHANG) >= 0;) {
		if (now_ms() - t0 < 10000) {
			usleep(10000);
			continue;
		}
		char path[64], line[256];
		snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
		FILE *f = fopen(path, "r");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1) {
			snprintf(path, sizeof path, "/proc/%d/syscall", pid);
			FILE *sc = fopen(path, "r");
			if (!sc || !fgets(line, sizeof line, sc))
				snprintf(line, sizeof line, "?\n");
			if (sc)
				fclose(sc);
			printf("stuck pid %d in syscall %s", pid, line);
			kill(pid, SIGKILL);
			stuck++;
		}
		if (f)
			fclose(f);
		t0 = now_ms();
	}
	printf("workers %d kills %d exits %d crashes %d stuck %d ops %llu ok %llu forks %llu passes %llu mmaps %llu touched %llu "
	       "sigbus %llu sigsegv %llu sessions %llu\n",
	       started, kills + procs, exits, crashes, stuck, (unsigned long long)sh->ops, (unsigned long long)sh->ok,
	       (unsigned long long)sh->forks, (unsigned long long)sh->passes, (unsigned long long)sh->mmaps,
	       (unsigned long long)sh->touched, (unsigned long long)sh->sigbus, (unsigned long long)sh->sigsegv,
	       (unsigned long long)sh->sessions);
	return crashes || stuck ? 1 : 0;
}
