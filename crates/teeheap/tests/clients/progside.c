/* What a program pays under `teeheap run` (issue 16, program side), measured
 * in one run against the floors: natively, under an allow-all seccomp
 * filter (what any seccomp design costs), under a filter that only reads
 * an ioctl's request and allows it (what any filter that must look at
 * ioctl arguments costs: the kernel cannot cache its decision), and under
 * `teeheap run`.
 *
 *   progside [TEEHEAP [ROUNDS [SCALE]]]
 *
 * TEEHEAP: the teeheap binary (default: `teeheap` in PATH). ROUNDS (default
 * 5) rotates the order of the four passes; every figure is the best batch
 * mean over all rounds (ns per operation). SCALE (default 1) multiplies
 * the iteration counts (tests use a small fraction).
 *
 * Rows (ratio columns: teeheap / floor):
 *   mmap64k   mmap(MAP_SHARED) + touch 16 pages + munmap of a 64 KiB memfd
 *   ioctl     ioctl(FIONREAD) on a pipe (a file teeheap does not serve)
 *   openclose open + close of a regular file
 *   memfd     memfd_create + ftruncate(4096) + close (native ALLOC floor)
 *   notify    a syscall answered by a seccomp user-notification supervisor
 *             in another process (the bare round trip; native pass only)
 *   alloc     DMA_HEAP_IOCTL_ALLOC of 4 KiB from `system` + close (teeheap)
 *
 * Internal modes: `progside --measure native|filtered|argfilter|teeheap SCALE`
 * prints "key ns" lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCHES 7
#define KEYS 6
static const char *keys[KEYS] = { "mmap64k", "ioctl", "openclose", "memfd", "notify", "alloc" };

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double scale = 1;
static int iters(int n) {
	int k = (int)(n * scale);
	return k < 10 ? 10 : k;
}

/* Best batch mean of `op` over BATCHES batches of n calls; -1 on failure. */
#define BEST(n, op)                                                                                                   \
	({                                                                                                            \
		double best_ = -1;                                                                                    \
		int n_ = iters(n), bad_ = 0;                                                                          \
		for (int b_ = 0; b_ < BATCHES && !bad_; b_++) {                                                       \
			uint64_t t0_ = now_ns();                                                                      \
			for (int i_ = 0; i_ < n_ && !bad_; i_++)                                                      \
				bad_ = !(op);                                                                         \
			double m_ = (double)(now_ns() - t0_) / n_;                                                    \
			if (best_ < 0 || m_ < best_)                                                                  \
				best_ = m_;                                                                           \
		}                                                                                                     \
		bad_ ? -1.0 : best_;                                                                                  \
	})

static int mmap_touch(int fd) {
	volatile char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 0;
	for (int i = 0; i < 65536; i += 4096)
		p[i] = (char)i;
	return munmap((void *)p, 65536) == 0;
}

static int fionread(int fd) {
	int n;
	return ioctl(fd, FIONREAD, &n) == 0;
}

static int open_close(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 && close(fd) == 0;
}

static int memfd_cycle(void) {
	int fd = memfd_create("m", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	int ok = ftruncate(fd, 4096) == 0;
	return close(fd) == 0 && ok;
}

static int alloc_close(int heap) {
	struct dma_heap_allocation_data d = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d) != 0)
		return 0;
	return close((int)d.fd) == 0;
}

/* The bare seccomp user-notification round trip: a child filters
 * getppid with SECCOMP_RET_USER_NOTIF and hands the listener to us; we
 * answer each call with 0 until the child exits. Returns ns per call. */
static double notify_round_trip(int n) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { .len = 4, .filter = f };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			_exit(1);
		int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
		if (lfd < 0)
			_exit(1);
		char c = 0;
		struct iovec io = { &c, 1 };
		char ctl[CMSG_SPACE(sizeof(int))];
		struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &lfd, sizeof lfd);
		if (sendmsg(sv[1], &m, 0) != 1)
			_exit(1);
		close(lfd);
		double best = BEST(n, syscall(SYS_getppid) == 0);
		if (write(sv[1], &best, sizeof best) != sizeof best)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	char c;
	struct iovec io = { &c, 1 };
	char ctl[CMSG_SPACE(sizeof(int))];
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
	int lfd = -1;
	if (recvmsg(sv[0], &m, 0) == 1 && CMSG_FIRSTHDR(&m))
		memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof lfd);
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	while (lfd >= 0) {
		memset(&req, 0, sizeof req);
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
			if (errno == EINTR)
				continue;
			break; /* ENOENT: the child exited */
		}
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	double best = -1;
	if (read(sv[0], &best, sizeof best) != sizeof best)
		best = -1;
	close(sv[0]);
	if (lfd >= 0)
		close(lfd);
	waitpid(pid, NULL, 0);
	return best;
}

static int measure(const char *mode) {
	int mfd = memfd_create("progside", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 65536) != 0)
		return 1;
	int p[2];
	if (pipe(p) != 0)
		return 1;
	if (strcmp(mode, "argfilter") == 0) {
		printf("ioctl %.1f\n", BEST(200000, fionread(p[0])));
		fflush(stdout);
		return 0;
	}
	printf("mmap64k %.1f\n", BEST(2000, mmap_touch(mfd)));
	printf("ioctl %.1f\n", BEST(200000, fionread(p[0])));
	printf("openclose %.1f\n", BEST(20000, open_close("/etc/passwd")));
	printf("memfd %.1f\n", BEST(20000, memfd_cycle()));
	if (strcmp(mode, "native") == 0)
		printf("notify %.1f\n", notify_round_trip(20000));
	int heap = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	if (heap >= 0 && strcmp(mode, "teeheap") == 0)
		printf("alloc %.1f\n", BEST(2000, alloc_close(heap)));
	fflush(stdout);
	return 0;
}

/* Runs one pass (argv as given) and folds its "key ns" lines into best[]. */
static int pass(char *const argv[], const char *prefix, double best[KEYS]) {
	int out[2];
	if (pipe(out) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		struct sock_filter all[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
		/* Reads ioctl's request, then allows: nothing is sent, but the
		 * kernel's action cache cannot decide ioctl without running it. */
		struct sock_filter arg[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 1),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { .len = 1, .filter = all };
		if (strcmp(prefix, "argfilter") == 0)
			prog = (struct sock_fprog){ .len = 4, .filter = arg };
		if (strcmp(prefix, "filtered") == 0 || strcmp(prefix, "argfilter") == 0) {
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
			    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
				_exit(126);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char key[32];
	double v;
	while (f && fscanf(f, "%31s %lf", key, &v) == 2) {
		for (int k = 0; k < KEYS; k++)
			if (strcmp(key, keys[k]) == 0 && v > 0 && (best[k] < 0 || v < best[k]))
				best[k] = v;
	}
	if (f)
		fclose(f);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void row(const char *what, double t, double floor1, const char *f1, double floor2, const char *f2) {
	printf("| %s | %.0f |", what, t);
	if (floor1 > 0)
		printf(" %.0f (%s) | **%.2f×** |", floor1, f1, t / floor1);
	else
		printf(" – | – |");
	if (floor2 > 0)
		printf(" %.0f (%s) | %.2f× |\n", floor2, f2, t / floor2);
	else
		printf(" – | – |\n");
}

int main(int argc, char **argv) {
	if (argc >= 4 && strcmp(argv[1], "--measure") == 0) {
		scale = atof(argv[3]);
		return measure(argv[2]);
	}
	const char *teeheap = argc > 1 ? argv[1] : "teeheap";
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	const char *sc = argc > 3 ? argv[3] : "1";
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	enum { NATIVE, FILTERED, ARGFILTER, TEEHEAP, MODES };
	double best[MODES][KEYS];
	for (int m = 0; m < MODES; m++)
		for (int k = 0; k < KEYS; k++)
			best[m][k] = -1;
	const char *modes[MODES] = { "native", "filtered", "argfilter", "teeheap" };
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < MODES; i++) {
			int m = (r + i) % MODES;
			char *plain[] = { self, "--measure", (char *)modes[m], (char *)sc, NULL };
			char *run[] = { (char *)teeheap, "run", "--", self, "--measure", "teeheap", (char *)sc, NULL };
			if (pass(m == TEEHEAP ? run : plain, modes[m], best[m]) != 0) {
				fprintf(stderr, "the %s pass failed\n", modes[m]);
				return 1;
			}
		}
	}
	enum { MMAP, IOCTL, OPEN, MEMFD, NOTIFY, ALLOC };
	printf("| operation (ns) | under teeheap run | floor | teeheap / floor | other | teeheap / other |\n");
	printf("|---|---|---|---|---|---|\n");
	row("mmap(MAP_SHARED) + touch 16 pages + munmap of a 64 KiB memfd", best[TEEHEAP][MMAP], best[NATIVE][MMAP],
	    "native", best[FILTERED][MMAP], "allow-all filter");
	row("ioctl(FIONREAD) on a pipe", best[TEEHEAP][IOCTL], best[FILTERED][IOCTL], "allow-all filter",
	    best[ARGFILTER][IOCTL], "filter reading the request");
	row("ioctl(FIONREAD) on a pipe, vs native", best[TEEHEAP][IOCTL], best[NATIVE][IOCTL], "native",
	    best[ARGFILTER][IOCTL], "filter reading the request");
	row("open + close of a file", best[TEEHEAP][OPEN], best[NATIVE][OPEN], "native", best[FILTERED][OPEN],
	    "allow-all filter");
	row("ALLOC 4 KiB `system` + close", best[TEEHEAP][ALLOC], best[NATIVE][NOTIFY], "seccomp-notify round trip",
	    best[NATIVE][MEMFD], "native memfd_create + ftruncate + close");
	printf("rounds %d, scale %s; floors: native memfd cycle %.0f ns, notify round trip %.0f ns\n", rounds, sc,
	       best[NATIVE][MEMFD], best[NATIVE][NOTIFY]);
	return best[TEEHEAP][ALLOC] > 0 && best[NATIVE][NOTIFY] > 0 && best[TEEHEAP][MMAP] > 0 &&
			       best[ARGFILTER][IOCTL] > 0
		       ? 0
		       : 1;
}
