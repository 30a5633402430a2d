/* OP-TEE's xtest regression 1014 (secure data path) as a sequence of our
 * own, over the raw TEE and dma-heap ioctls, against any TA that answers
 * as OP-TEE's sdp_basic test TA (commands 0-8):
 *
 *   sdp_1014 UUID
 *
 * 1014.1 NS client invokes the SDP TA, .2 the SDP TA invokes an SDP TA,
 * .3 the SDP TA invokes the test pseudo-TA: a protected buffer from
 * /dev/dma_heap/protected,secure-video is registered with
 * TEE_IOC_SHM_REGISTER_FD (its dma-buf fd closed at once), then rounds of
 * inject (a temporary input memref, copied through a SHM_ALLOC buffer as
 * libteec does) -> transform -> dump (a temporary output memref) at a
 * random offset of 0..255, every byte checked. .4 out-of-bounds memrefs:
 * the last byte reaches the TA; past the end is refused with GENERIC or
 * BAD_PARAMETERS and never by the TA. Then the answers of OP-TEE's test
 * TA itself (no size on SHORT_BUFFER, ACCESS_DENIED, BAD_PARAMETERS for
 * an unknown command, a fault reading a NULL input). An ioctl that fails
 * counts as TEEC_ERROR_GENERIC from TEEC_ORIGIN_COMMS, as libteec reports.
 * One "ok"/"FAIL" line per check, "N failed" last. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>
#include "check.h"
#include "tee_compat.h"
#include <linux/dma-heap.h>
#include <linux/tee.h>

#define GENERIC 0xffff0000u
#define ACCESS_DENIED 0xffff0001u
#define BAD_PARAMETERS 0xffff0006u
#define SHORT_BUFFER 0xffff0010u
#define TARGET_DEAD 0xffff3024u
#define ORIGIN_COMMS 2
#define ORIGIN_TEE 3
#define ORIGIN_TA 4

#define IN TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT
#define OUT TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT
#define INOUT TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT

/* The SDP buffer of the test and how many rounds each part runs. */
enum { SDP_SIZE = 17000, ROUNDS = 8 };

static uint8_t uuid[16];
static char msg[512];

struct result {
	uint32_t ret, origin;
};

struct icall {
	struct tee_ioctl_invoke_arg i;
	struct tee_ioctl_param p[4];
};

static int parse_uuid(const char *s) {
	int n = 0;
	for (; *s && n < 32; s++) {
		if (*s == '-')
			continue;
		char c[3] = { s[0], s[1], 0 };
		if (!s[1])
			return -1;
		uuid[n / 2] = (uint8_t)strtoul(c, NULL, 16);
		n += 2;
		s++;
	}
	return n == 32 ? 0 : -1;
}

static struct result open_session(int tee, uint32_t *session) {
	struct {
		struct tee_ioctl_open_session_arg o;
		struct tee_ioctl_param p[4];
	} c;
	memset(&c, 0, sizeof c);
	memcpy(c.o.uuid, uuid, 16);
	c.o.clnt_login = TEE_IOCTL_LOGIN_PUBLIC;
	c.o.num_params = 4;
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&c, .buf_len = sizeof c };
	if (ioctl(tee, TEE_IOC_OPEN_SESSION, &b) != 0)
		return (struct result){ GENERIC, ORIGIN_COMMS };
	*session = c.o.session;
	return (struct result){ c.o.ret, c.o.ret_origin };
}

static void close_session(int tee, uint32_t session) {
	struct tee_ioctl_close_session_arg a = { .session = session };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &a);
}

/* TEE_IOC_INVOKE with params `p[0..n)`, which come back updated. */
static struct result invoke(int tee, uint32_t session, uint32_t func, struct tee_ioctl_param *p, int n) {
	struct icall c;
	memset(&c, 0, sizeof c);
	c.i.func = func;
	c.i.session = session;
	c.i.num_params = 4;
	memcpy(c.p, p, n * sizeof *p);
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&c, .buf_len = sizeof c };
	if (ioctl(tee, TEE_IOC_INVOKE, &b) != 0)
		return (struct result){ GENERIC, ORIGIN_COMMS };
	memcpy(p, c.p, n * sizeof *p);
	return (struct result){ c.i.ret, c.i.ret_origin };
}

static struct tee_ioctl_param mem(uint64_t attr, int id, uint64_t off, uint64_t size) {
	return (struct tee_ioctl_param){ .attr = attr, .a = off, .b = size, .c = (uint64_t)id };
}

/* A temporary memref as libteec makes one: a SHM_ALLOC buffer of `len`
 * bytes, mapped; `data` copied in if given. */
struct tmp {
	int fd, id;
	uint8_t *map;
	size_t len;
};

static int tmp_new(int tee, size_t len, const void *data, struct tmp *t) {
	struct tee_ioctl_shm_alloc_data a = { .size = len };
	t->fd = ioctl(tee, TEE_IOC_SHM_ALLOC, &a);
	t->id = a.id;
	t->len = len;
	t->map = t->fd < 0 ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (t->map == MAP_FAILED) {
		if (t->fd >= 0)
			close(t->fd);
		return -1;
	}
	if (data)
		memcpy(t->map, data, len);
	return 0;
}

static void tmp_free(struct tmp *t) {
	munmap(t->map, t->len);
	close(t->fd);
}

/* A protected buffer of `size` bytes registered with `tee`; its dma-buf
 * fd is closed (the registration holds the buffer). Returns the shm id
 * and fd and the registered size. */
static int register_sdp(int tee, size_t size, int *shm_fd, uint64_t *reg_size) {
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_SYNC);
	struct dma_heap_allocation_data al = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };
	int buf = heap < 0 || ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &al) < 0 ? -1 : (int)al.fd;
	if (heap >= 0)
		close(heap);
	if (buf < 0)
		return -1;
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	*shm_fd = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	close(buf);
	*reg_size = rf.size;
	return *shm_fd < 0 ? -1 : rf.id;
}

/* xtest's sdp_basic_test for the path whose INJECT command is `base`
 * (0 NS to TA, 3 TA to TA, 6 TA to pseudo-TA). */
static void sdp_basic_test(const char *name, uint32_t base) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	uint32_t s = 0;
	struct result o = tee < 0 ? (struct result){ GENERIC, ORIGIN_COMMS } : open_session(tee, &s);
	int shm_fd = -1;
	uint64_t reg_size = 0;
	int sdp = o.ret ? -1 : register_sdp(tee, SDP_SIZE, &shm_fd, &reg_size);
	snprintf(msg, sizeof msg, "tee %d open %#x/%u register %d (%s)", tee, o.ret, o.origin, sdp, strerror(errno));
	if (sdp < 0) {
		check(name, 0, msg);
		return;
	}
	size_t size = SDP_SIZE - 255;
	uint8_t *ref = malloc(size), *test = malloc(size);
	char what[128] = "";
	for (int round = 0; round < ROUNDS && !what[0]; round++) {
		if (getrandom(ref, size, 0) != (ssize_t)size) {
			snprintf(what, sizeof what, "getrandom");
			break;
		}
		memcpy(test, ref, size);
		size_t offset = ref[0];
		struct tmp in, out;
		if (tmp_new(tee, size, test, &in)) {
			snprintf(what, sizeof what, "temporary input: %s", strerror(errno));
			break;
		}
		struct tee_ioctl_param inj[2] = { mem(IN, in.id, 0, size), mem(OUT, sdp, offset, size) };
		struct result r = invoke(tee, s, base + 0, inj, 2);
		tmp_free(&in);
		if (r.ret) {
			snprintf(what, sizeof what, "round %d inject: %#x/%u", round, r.ret, r.origin);
			break;
		}
		struct tee_ioctl_param tr[1] = { mem(INOUT, sdp, offset, size) };
		r = invoke(tee, s, base + 1, tr, 1);
		if (r.ret) {
			snprintf(what, sizeof what, "round %d transform: %#x/%u", round, r.ret, r.origin);
			break;
		}
		if (tmp_new(tee, size, NULL, &out)) {
			snprintf(what, sizeof what, "temporary output: %s", strerror(errno));
			break;
		}
		struct tee_ioctl_param dp[2] = { mem(IN, sdp, offset, size), mem(OUT, out.id, 0, size) };
		r = invoke(tee, s, base + 2, dp, 2);
		memcpy(test, out.map, size);
		tmp_free(&out);
		if (r.ret) {
			snprintf(what, sizeof what, "round %d dump: %#x/%u", round, r.ret, r.origin);
			break;
		}
		size_t bad = 0;
		for (size_t k = 0; k < size; k++)
			bad += test[k] != (uint8_t)(~ref[k] + 1);
		if (bad)
			snprintf(what, sizeof what, "round %d: %zu bytes wrong (offset %zu)", round, bad, offset);
	}
	check(name, !what[0], what);
	free(ref);
	free(test);
	close(shm_fd);
	close_session(tee, s);
	close(tee);
}

/* xtest's sdp_out_of_bounds_memref_test, with the valid case too. */
static void out_of_bounds(void) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	uint32_t s = 0;
	struct result o = open_session(tee, &s);
	int shm_fd = -1;
	uint64_t size = 0;
	int sdp = o.ret ? -1 : register_sdp(tee, SDP_SIZE, &shm_fd, &size);
	struct tmp in;
	if (sdp < 0 || tmp_new(tee, size, NULL, &in)) {
		check("1014.4 setup", 0, strerror(errno));
		return;
	}
	static const struct {
		int64_t offset_from_end; /* offset = the registered size + this */
		uint64_t len;
		int valid;
		const char *what;
	} cases[] = {
		{ -1, 1, 1, "last byte reaches the TA" },
		{ -1, 2, 0, "overflows the buffer by 1 byte" },
		{ -1, 5000, 0, "overflows the buffer by more than 4 KiB" },
		{ 0, 1, 0, "offset 1 byte past the size" },
		{ 0, 4096, 0, "offset 4 KiB past the size" },
	};
	for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		uint64_t off = size + cases[k].offset_from_end, len = cases[k].len;
		struct tee_ioctl_param p[2] = { mem(IN, in.id, 0, len), mem(OUT, sdp, off, len) };
		struct result r = invoke(tee, s, 0, p, 2);
		int ok = cases[k].valid ? r.origin == ORIGIN_TA
					: r.origin != ORIGIN_TA && (r.ret == GENERIC || r.ret == BAD_PARAMETERS);
		char name[128];
		snprintf(name, sizeof name, "1014.4 out-of-bounds memref: %s", cases[k].what);
		snprintf(msg, sizeof msg, "shm size %#llx offset %#llx size %#llx: %#x/%u", (unsigned long long)size,
			 (unsigned long long)off, (unsigned long long)len, r.ret, r.origin);
		check(name, ok, msg);
	}
	/* Offset + size overflows. */
	struct tee_ioctl_param p[2] = { mem(IN, in.id, 0, ~0ull), mem(OUT, sdp, 2, ~0ull) };
	struct result r = invoke(tee, s, 0, p, 2);
	snprintf(msg, sizeof msg, "%#x/%u", r.ret, r.origin);
	check("1014.4 out-of-bounds memref: offset + size overflows",
	      r.origin != ORIGIN_TA && (r.ret == GENERIC || r.ret == BAD_PARAMETERS), msg);
	tmp_free(&in);
	close(shm_fd);
	close_session(tee, s);
	close(tee);
}

/* What OP-TEE's test TA itself answers. */
static void ta_answers(void) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	uint32_t s = 0, d = 0;
	struct result o = open_session(tee, &s);
	int shm_fd = -1;
	uint64_t size = 0;
	int sdp = o.ret ? -1 : register_sdp(tee, 4096, &shm_fd, &size);
	struct tmp in;
	if (sdp < 0 || tmp_new(tee, 4096, NULL, &in)) {
		check("TA answers setup", 0, strerror(errno));
		return;
	}
	struct tee_ioctl_param p[2] = { mem(IN, in.id, 0, 100), mem(OUT, sdp, 0, 50) };
	struct result r = invoke(tee, s, 0, p, 2);
	snprintf(msg, sizeof msg, "%#x/%u, sizes %llu %llu", r.ret, r.origin, (unsigned long long)p[0].b,
		 (unsigned long long)p[1].b);
	check("inject into a smaller secure memref: SHORT_BUFFER, no size written back",
	      r.ret == SHORT_BUFFER && r.origin == ORIGIN_TA && p[0].b == 100 && p[1].b == 50, msg);
	struct tee_ioctl_param q[2] = { mem(IN, in.id, 0, 16), mem(OUT, in.id, 2048, 16) };
	r = invoke(tee, s, 0, q, 2);
	snprintf(msg, sizeof msg, "%#x/%u", r.ret, r.origin);
	check("inject into normal memory: ACCESS_DENIED from the TA", r.ret == ACCESS_DENIED && r.origin == ORIGIN_TA,
	      msg);
	struct tee_ioctl_param t[1] = { mem(INOUT, sdp, 0, 16) };
	r = invoke(tee, s, 77, t, 1);
	snprintf(msg, sizeof msg, "%#x/%u", r.ret, r.origin);
	check("unknown command: BAD_PARAMETERS from the TA", r.ret == BAD_PARAMETERS && r.origin == ORIGIN_TA, msg);
	/* A NULL input and a 16-byte secure memref: the TA copies 16 bytes
	 * from NULL and faults; that session is dead, the other carries on. */
	o = open_session(tee, &d);
	struct tee_ioctl_param n[2] = { { .attr = IN, .c = TEE_MEMREF_NULL }, mem(OUT, sdp, 0, 16) };
	r = o.ret ? o : invoke(tee, d, 0, n, 2);
	struct tee_ioctl_param again[1] = { mem(INOUT, sdp, 0, 16) };
	struct result r2 = invoke(tee, d, 1, again, 1);
	snprintf(msg, sizeof msg, "%#x/%u then %#x/%u", r.ret, r.origin, r2.ret, r2.origin);
	check("inject from a NULL input: the TA faults (TARGET_DEAD) and stays dead",
	      r.ret == TARGET_DEAD && r.origin == ORIGIN_TEE && r2.ret == TARGET_DEAD && r2.origin == ORIGIN_TEE, msg);
	close_session(tee, d);
	r = invoke(tee, s, 1, t, 1);
	snprintf(msg, sizeof msg, "%#x/%u", r.ret, r.origin);
	check("another session of the TA carries on", r.ret == 0, msg);
	tmp_free(&in);
	close(shm_fd);
	close_session(tee, s);
	close(tee);
}

int main(int argc, char **argv) {
	if (argc < 2 || parse_uuid(argv[1])) {
		fprintf(stderr, "usage: %s TA-UUID\n", argv[0]);
		return 2;
	}
	sdp_basic_test("1014.1 NS client invokes the SDP TA", 0);
	sdp_basic_test("1014.2 SDP TA invokes an SDP TA", 3);
	sdp_basic_test("1014.3 SDP TA invokes the test pseudo-TA", 6);
	out_of_bounds();
	ta_answers();
	printf("%d failed\n", failed);
	return failed != 0;
}
