/* A client written only against the kernel UAPI (<linux/dma-heap.h>,
 * <linux/dma-buf.h>, <linux/tee.h>), run under `teeheap run` by
 * tests/run.rs, dynamically and statically linked. Prints one "ok"/"FAIL"
 * line per check and "N failed" last; exits non-zero on any failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "sdp_ta.h"
#include "fdpass.h"
#include "tee_compat.h"
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

/* ALLOC through a struct of `size` bytes (the first 24 from the args). */
static int alloc_sized(int heap, unsigned long len, unsigned fd, unsigned flags, unsigned long long hflags,
		       size_t size, unsigned char *raw) {
	struct dma_heap_allocation_data a = { .len = len, .fd = fd, .fd_flags = flags, .heap_flags = hflags };
	memcpy(raw, &a, sizeof a);
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, 'H', 0, size);
	if (ioctl(heap, cmd, raw) < 0)
		return -errno;
	return (int)((struct dma_heap_allocation_data *)raw)->fd;
}

static int alloc(int heap, unsigned long len, unsigned flags) {
	unsigned char raw[64] = { 0 };
	return alloc_sized(heap, len, 0, flags, 0, 24, raw);
}



/* The second process: it never saw the buffer until it is sent. */
static int reader(int sock) {
	int fd = recv_fd(sock);
	if (fd < 0)
		return 2;
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 3;
	int good = !strcmp(p + 4096, "written by the first process");
	strcpy(p, "answered by the second");
	write(sock, "D", 1);
	return good ? 0 : 4;
}




enum { SDP_INJECT = 0, SDP_TRANSFORM = 1, SDP_DUMP = 2 };

struct memref {
	uint64_t attr;
	int shm;
	uint64_t offset, size;
};

/* TEE_IOC_INVOKE with up to 4 memref params; returns the ioctl result and
 * stores the TA's return code. */
static int invoke(int tee, uint32_t session, uint32_t func, const struct memref *m, int n, uint32_t *ret) {
	struct sdp_invoke arg;
	struct tee_ioctl_buf_data b = sdp_invoke_arg(&arg, session, func);
	for (int i = 0; i < n; i++) {
		arg.p[i].attr = m[i].attr;
		arg.p[i].a = m[i].offset;
		arg.p[i].b = m[i].size;
		arg.p[i].c = (uint64_t)m[i].shm;
	}
	int r = ioctl(tee, TEE_IOC_INVOKE, &b);
	*ret = arg.a.ret;
	return r;
}

static uint8_t pattern(size_t i, unsigned seed) {
	return (uint8_t)(i * 7 + seed * 13 + (i >> 8));
}

/* Opens a session to sdp_basic and runs inject -> transform -> dump over a
 * protected secure-video buffer registered with SHM_REGISTER_FD (its dma-buf
 * fd closed right after), with input from an SHM_ALLOC shm written through
 * its mmap and output into the program's own malloc'ed memory registered
 * with SHM_REGISTER (and, once, into the mmap'ed shm). */
static void sdp(int tee) {
	char msg[256];
	struct sdp_session os;
	struct tee_ioctl_buf_data b = sdp_open_arg(&os);
	int r = ioctl(tee, TEE_IOC_OPEN_SESSION, &b);
	snprintf(msg, sizeof msg, "r=%d (%s) ret=%#x origin=%u", r, strerror(errno), os.a.ret, os.a.ret_origin);
	check("TEE open session sdp_basic", r == 0 && os.a.ret == 0, msg);
	if (r != 0 || os.a.ret != 0)
		return;
	uint32_t session = os.a.session;

	enum { LEN = 17000 };
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	int buf = heap < 0 ? -1 : alloc(heap, LEN, O_RDWR | O_CLOEXEC);
	close(heap);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	int pshm = buf < 0 ? -1 : ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	snprintf(msg, sizeof msg, "buf %d shm %d id %d size %llu flags %#x: %s", buf, pshm, rf.id,
		 (unsigned long long)rf.size, rf.flags, strerror(errno));
	check("TEE_IOC_SHM_REGISTER_FD protected buffer",
	      pshm >= 0 && rf.id > 0 && rf.size >= LEN && rf.flags == TEEHEAP_SHM_REGISTER_FD_FLAGS, msg);
	/* The registration holds the buffer from now on. */
	close(buf);
	if (pshm < 0)
		return;

	struct tee_ioctl_shm_alloc_data sa = { .size = LEN };
	int ashm = ioctl(tee, TEE_IOC_SHM_ALLOC, &sa);
	uint8_t *in = ashm < 0 ? MAP_FAILED : mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, ashm, 0);
	snprintf(msg, sizeof msg, "fd %d id %d: %s", ashm, sa.id, strerror(errno));
	check("TEE SHM_ALLOC input buffer mmap'ed", ashm >= 0 && in != MAP_FAILED, msg);
	if (in == MAP_FAILED)
		return;

	/* Unaligned on purpose: registration is by byte address. */
	uint8_t *raw = malloc(LEN + 64), *out = raw + 13;
	memset(out, 0x5a, LEN);
	struct tee_ioctl_shm_register_data rg = { .addr = (uintptr_t)out, .length = LEN };
	int ushm = ioctl(tee, TEE_IOC_SHM_REGISTER, &rg);
	snprintf(msg, sizeof msg, "fd %d id %d length %llu: %s", ushm, rg.id, (unsigned long long)rg.length,
		 strerror(errno));
	check("TEE_IOC_SHM_REGISTER own memory", ushm >= 0 && rg.id > 0, msg);
	if (ushm < 0)
		return;

	/* (protected offset, length, input offset, output offset) */
	static const size_t runs[][4] = { { 0, LEN, 0, 0 }, { 4095, 3001, 17, 100 }, { 16383, 617, 9000, 16383 } };
	for (unsigned k = 0; k < sizeof runs / sizeof runs[0]; k++) {
		size_t po = runs[k][0], n = runs[k][1], io = runs[k][2], oo = runs[k][3];
		for (size_t i = 0; i < n; i++)
			in[io + i] = pattern(i, k);
		memset(out, 0x5a, LEN);
		uint32_t ret1 = 1, ret2 = 1, ret3 = 1;
		struct memref inj[2] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, sa.id, io, n },
					 { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, rf.id, po, n } };
		int r1 = invoke(tee, session, SDP_INJECT, inj, 2, &ret1);
		struct memref tr[1] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, rf.id, po, n } };
		int r2 = invoke(tee, session, SDP_TRANSFORM, tr, 1, &ret2);
		struct memref dp[2] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, rf.id, po, n },
					{ TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, rg.id, oo, n } };
		int r3 = invoke(tee, session, SDP_DUMP, dp, 2, &ret3);
		size_t bad = 0, first = (size_t)-1;
		for (size_t i = 0; i < LEN; i++) {
			uint8_t want = (i >= oo && i < oo + n) ? (uint8_t)(~pattern(i - oo, k) + 1) : 0x5a;
			if (out[i] != want) {
				bad++;
				if (first == (size_t)-1)
					first = i;
			}
		}
		char name[128];
		snprintf(name, sizeof name, "sdp inject/transform/dump at %zu+%zu into registered memory", po, n);
		snprintf(msg, sizeof msg, "r=%d/%d/%d ret=%#x/%#x/%#x, %zu bad bytes from %zd", r1, r2, r3, ret1, ret2,
			 ret3, bad, (ssize_t)first);
		check(name, r1 == 0 && r2 == 0 && r3 == 0 && !ret1 && !ret2 && !ret3 && bad == 0, msg);
	}

	/* The other way round: input from the registered memory, output into
	 * the mmap'ed SHM_ALLOC shm. */
	for (size_t i = 0; i < 700; i++)
		out[50 + i] = pattern(i, 9);
	memset(in, 0, LEN);
	uint32_t ret = 1, ret1 = 1, ret2 = 1;
	struct memref inj[2] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, rg.id, 50, 700 },
				 { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, rf.id, 8192, 700 } };
	int r1 = invoke(tee, session, SDP_INJECT, inj, 2, &ret1);
	struct memref tr1[1] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, rf.id, 8192, 700 } };
	int r2 = invoke(tee, session, SDP_TRANSFORM, tr1, 1, &ret2);
	struct memref dp[2] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, rf.id, 8192, 700 },
				{ TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, sa.id, 1, 700 } };
	r = invoke(tee, session, SDP_DUMP, dp, 2, &ret);
	size_t bad = in[0] != 0 || in[701] != 0;
	for (size_t i = 0; i < 700; i++)
		bad += in[1 + i] != (uint8_t)(~pattern(i, 9) + 1);
	snprintf(msg, sizeof msg, "r=%d/%d/%d ret=%#x/%#x/%#x, %zu bad bytes", r1, r2, r, ret1, ret2, ret, bad);
	check("sdp from registered memory into mmap'ed SHM_ALLOC memory",
	      !r1 && !r2 && !r && !ret1 && !ret2 && !ret && bad == 0, msg);

	/* A normal buffer is not protected: the TA refuses it, as OP-TEE's does,
	 * with TEE_CheckMemoryAccessRights' ACCESS_DENIED. */
	struct memref tr[1] = { { TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, sa.id, 0, 64 } };
	r = invoke(tee, session, SDP_TRANSFORM, tr, 1, &ret);
	snprintf(msg, sizeof msg, "r=%d ret=%#x", r, ret);
	check("sdp transform on normal memory is refused", r == 0 && ret == 0xffff0001, msg);

	struct tee_ioctl_close_session_arg cs = { .session = session };
	check("TEE close session", ioctl(tee, TEE_IOC_CLOSE_SESSION, &cs) == 0, strerror(errno));
	munmap(in, LEN);
	close(ashm);
	close(ushm);
	close(pshm);
	free(raw);
}

/* Registers a protected buffer and closes its dma-buf fd, waiting for a
 * line on stdin after each step so that the test can look at the daemon:
 * "registered" (only the registration holds the buffer), "closed" (the shm
 * fd is closed), "again" (a second registration, left to the exit). */
static int registered_buffer(int tee) {
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	int buf = alloc(heap, 17000, O_RDWR | O_CLOEXEC);
	close(heap);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	int shm = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	close(buf);
	return shm;
}

static int hold(void) {
	char line[64];
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	int shm = registered_buffer(tee);
	if (shm < 0) {
		printf("FAIL register: %s\n", strerror(errno));
		return 1;
	}
	printf("registered\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	close(shm);
	printf("closed\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	if (registered_buffer(tee) < 0)
		return 1;
	printf("again\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	return 0; /* the shm and the context go with the exit */
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "hold"))
		return hold();

	char msg[256];
	/* Fork the reader before any buffer exists. */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t child = fork();
	if (child == 0) {
		close(sv[0]);
		_exit(reader(sv[1]));
	}
	close(sv[1]);

	char names[16][256];
	int n = 0, has_sys = 0, has_prot = 0;
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 16) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(names[n++], 256, "%s", e->d_name);
		has_sys |= !strcmp(e->d_name, "system");
		has_prot |= !strncmp(e->d_name, "protected,", 10);
	}
	snprintf(msg, sizeof msg, "%d heaps", n);
	check("list /dev/dma_heap", has_sys && has_prot, msg);

	for (int i = 0; i < n; i++) {
		char path[300], name[300];
		snprintf(path, sizeof path, "/dev/dma_heap/%.200s", names[i]);
		int heap = open(path, O_RDONLY | O_CLOEXEC);
		int buf = heap < 0 ? -errno : alloc(heap, 8000, O_RDWR | O_CLOEXEC);
		long size = buf >= 0 ? (long)lseek(buf, 0, SEEK_END) : -1;
		snprintf(name, sizeof name, "alloc %.200s", names[i]);
		snprintf(msg, sizeof msg, "fd %d size %ld", buf, size);
		check(name, buf >= 0 && size == 8192 && (fcntl(buf, F_GETFD) & FD_CLOEXEC), msg);
		if (buf >= 0 && !strncmp(names[i], "protected,", 10)) {
			void *q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
			/* Linux: EINVAL; teeheap: the host refuses the write-only
			 * description (mmap is not intercepted, docs/serving.md). */
			snprintf(name, sizeof name, "mmap %.200s is refused (teeheap EACCES)", names[i]);
			check(name, q == MAP_FAILED && errno == EACCES, strerror(errno));
			struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
			snprintf(name, sizeof name, "sync %.200s", names[i]);
			check(name, ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0, strerror(errno));
		}
		close(buf);
		close(heap);
	}

	int sys = open("/dev/dma_heap/system", O_RDWR);
	unsigned char raw[64];
	int r;
	r = alloc_sized(sys, 4096, 3, O_RDWR, 0, 24, raw);
	check("alloc fd!=0 is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 4096, 0, O_RDWR | O_NONBLOCK, 0, 24, raw);
	check("alloc bad fd_flags is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 4096, 0, O_RDWR, 1, 24, raw);
	check("alloc heap_flags is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 0, 0, O_RDWR, 0, 24, raw);
	check("alloc len 0 is EINVAL", r == -EINVAL, strerror(-r));
	memset(raw, 0, sizeof raw);
	r = alloc_sized(sys, 4096, 0, O_RDWR, 0, 16, raw);
	snprintf(msg, sizeof msg, "%d", r);
	check("alloc 16-byte struct", r > 2 && lseek(r, 0, SEEK_END) == 4096, msg);
	memset(raw, 0xaa, sizeof raw);
	r = alloc_sized(sys, 4096, 0, O_RDWR, 0, 48, raw);
	int tail = 1;
	for (int i = 24; i < 48; i++)
		tail &= raw[i] == 0xaa;
	check("alloc 48-byte struct", r > 2 && tail, msg);
	errno = 0;
	r = ioctl(sys, DMA_HEAP_IOCTL_ALLOC, (void *)8);
	check("bad pointer is EFAULT", r == -1 && errno == EFAULT, strerror(errno));
	errno = 0;
	r = ioctl(sys, _IOWR('H', 7, struct dma_heap_allocation_data), raw);
	check("unknown heap ioctl nr is EINVAL", r == -1 && errno == EINVAL, strerror(errno));

	int buf = alloc(sys, 8192, O_RDWR | O_CLOEXEC);
	check("lseek SEEK_END is the size", lseek(buf, 0, SEEK_END) == 8192, NULL);
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	check("mmap system buffer", p != MAP_FAILED, strerror(errno));
	if (p != MAP_FAILED) {
		strcpy(p + 4096, "written by the first process");
		struct dma_buf_sync s = { DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW };
		check("dma-buf sync", ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0, strerror(errno));
		s.flags = 0x100;
		check("dma-buf sync bad flags is EINVAL", ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == -1 && errno == EINVAL,
		      strerror(errno));
		send_fd(sv[0], buf);
		char c;
		read(sv[0], &c, 1);
		int st = -1;
		waitpid(child, &st, 0);
		snprintf(msg, sizeof msg, "status %d, saw \"%s\"", st, p);
		check("shared across processes (SCM_RIGHTS)",
		      WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strcmp(p, "answered by the second"), msg);
	}

	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	check("open /dev/tee0", tee >= 0, strerror(errno));
	struct tee_ioctl_version_data v = { 0 };
	r = ioctl(tee, TEE_IOC_VERSION, &v);
	snprintf(msg, sizeof msg, "r=%d impl_id=%u gen_caps=%#x", r, v.impl_id, v.gen_caps);
	check("TEE_IOC_VERSION", r == 0 && v.impl_id == TEE_IMPL_ID_OPTEE && (v.gen_caps & TEE_GEN_CAP_GP), msg);
	check("TEE fd keeps close-on-exec", (fcntl(tee, F_GETFD) & FD_CLOEXEC) != 0, NULL);
	struct tee_ioctl_shm_alloc_data sa = { .size = 5000 };
	int shm = ioctl(tee, TEE_IOC_SHM_ALLOC, &sa);
	snprintf(msg, sizeof msg, "fd %d id %d: %s", shm, sa.id, strerror(errno));
	check("TEE_IOC_SHM_ALLOC", shm >= 0 && sa.id > 0, msg);
	if (shm >= 0) {
		char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
		check("mmap TEE shm", s != MAP_FAILED, strerror(errno));
		if (s != MAP_FAILED)
			strcpy(s, "shm");
	}
	sdp(tee);
	close(tee);

	printf("%d failed\n", failed);
	fflush(stdout);
	return failed != 0;
}
