/* Host programs of the host-built TAs (tests/ta.rs), against the kernel
 * UAPI only. `ta_client sdp`: the example SDP TA (examples/ta/sdp) through
 * /dev/tee0: inject -> transform -> dump over a protected buffer directly,
 * TA to TA and TA to pseudo-TA; out-of-bounds memrefs; what
 * TEE_CheckMemoryAccessRights says of secure and normal memory.
 * `ta_client misbehave`: a TA that panics, crashes, loops and probes its
 * sandbox. One "ok"/"FAIL" line per check, "N failed" last. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include "tee_compat.h"
#include <linux/dma-heap.h>
#include <linux/tee.h>

#define TARGET_DEAD 0xffff3024u
#define ACCESS_DENIED 0xffff0001u
#define CANCEL 0xffff0002u
#define ORIGIN_TEE 3
#define ORIGIN_TA 4

static const uint8_t EXAMPLE[16] = { 0x7e, 0xaf, 0x5d, 0x5c, 0x8d, 0x11, 0x4d, 0x8e,
				     0x9a, 0x3c, 0x7b, 0x1e, 0x5a, 0x1d, 0x0c, 0x01 };
static const uint8_t MISBEHAVE[16] = { 0x3c, 0x0c, 0x2a, 0x51, 0x7d, 0x5e, 0x4b, 0x1a,
				       0x8f, 0x0e, 0x5a, 0x6b, 0x7c, 0x8d, 0x9e, 0x01 };
static const uint8_t INVOKE_TESTS[16] = { 0xd9, 0x6a, 0x5b, 0x40, 0xc3, 0xe5, 0x21, 0xe3,
					  0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b };

struct call {
	struct tee_ioctl_open_session_arg o;
	struct tee_ioctl_param p[4];
};

struct icall {
	struct tee_ioctl_invoke_arg i;
	struct tee_ioctl_param p[4];
};

/* One parameter: attr, then a/b/c as the UAPI takes them. */
struct prm {
	uint64_t attr, a, b, c;
};

static int open_session(int tee, const uint8_t uuid[16], uint32_t *session, uint32_t *ret, uint32_t *origin) {
	struct call c;
	memset(&c, 0, sizeof c);
	memcpy(c.o.uuid, uuid, 16);
	c.o.clnt_login = TEE_IOCTL_LOGIN_PUBLIC;
	c.o.num_params = 4;
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&c, .buf_len = sizeof c };
	int r = ioctl(tee, TEE_IOC_OPEN_SESSION, &b);
	*session = c.o.session;
	*ret = c.o.ret;
	*origin = c.o.ret_origin;
	return r;
}

/* TEE_IOC_INVOKE with `n` params; the params come back updated. */
static int invoke(int tee, uint32_t session, uint32_t func, struct prm *m, int n, uint32_t *ret, uint32_t *origin) {
	struct icall c;
	memset(&c, 0, sizeof c);
	c.i.func = func;
	c.i.session = session;
	c.i.num_params = 4;
	for (int k = 0; k < n; k++) {
		c.p[k].attr = m[k].attr;
		c.p[k].a = m[k].a;
		c.p[k].b = m[k].b;
		c.p[k].c = m[k].c;
	}
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&c, .buf_len = sizeof c };
	int r = ioctl(tee, TEE_IOC_INVOKE, &b);
	for (int k = 0; k < n; k++) {
		m[k].a = c.p[k].a;
		m[k].b = c.p[k].b;
		m[k].c = c.p[k].c;
	}
	*ret = c.i.ret;
	*origin = c.i.ret_origin;
	return r;
}

static void close_session(int tee, uint32_t session) {
	struct tee_ioctl_close_session_arg a = { .session = session };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &a);
}

/* memref parameter of shm `id` (offset, size). */
static struct prm mem(uint64_t attr, int id, uint64_t off, uint64_t size) {
	return (struct prm){ attr, off, size, (uint64_t)id };
}

#define IN TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT
#define OUT TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT
#define INOUT TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT

static uint8_t pattern(size_t i, unsigned seed) {
	return (uint8_t)(i * 7 + seed * 13 + (i >> 8));
}

static void sdp(int tee) {
	char msg[256];
	uint32_t s, ret, origin;
	int r = open_session(tee, EXAMPLE, &s, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d (%s) ret=%#x origin=%u", r, strerror(errno), ret, origin);
	check("open session with the example C TA", r == 0 && ret == 0, msg);
	if (r || ret)
		return;

	enum { LEN = 17000 };
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	struct dma_heap_allocation_data al = { .len = LEN, .fd_flags = O_RDWR | O_CLOEXEC };
	int buf = heap < 0 || ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &al) < 0 ? -1 : (int)al.fd;
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	int pshm = buf < 0 ? -1 : ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	close(buf);
	snprintf(msg, sizeof msg, "buf %d shm %d: %s", buf, pshm, strerror(errno));
	check("protected buffer registered", pshm >= 0, msg);
	struct tee_ioctl_shm_alloc_data ai = { .size = LEN }, ao = { .size = LEN };
	int ishm = ioctl(tee, TEE_IOC_SHM_ALLOC, &ai), oshm = ioctl(tee, TEE_IOC_SHM_ALLOC, &ao);
	uint8_t *in = ishm < 0 ? MAP_FAILED : mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, ishm, 0);
	uint8_t *out = oshm < 0 ? MAP_FAILED : mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, oshm, 0);
	check("normal shm allocated and mapped", in != MAP_FAILED && out != MAP_FAILED, strerror(errno));
	if (pshm < 0 || in == MAP_FAILED || out == MAP_FAILED)
		return;

	static const char *how[] = { "directly", "TA to TA", "TA to pseudo-TA" };
	for (unsigned v = 0; v < 3; v++) {
		uint32_t base = v * 3;
		size_t off = 100 + v * 1000, n = LEN - 2000;
		for (size_t k = 0; k < n; k++)
			in[k] = pattern(k, v);
		memset(out, 0, LEN);
		struct prm inj[2] = { mem(IN, ai.id, 0, n), mem(OUT, rf.id, off, n) };
		struct prm tr[1] = { mem(INOUT, rf.id, off, n) };
		struct prm dp[2] = { mem(IN, rf.id, off, n), mem(OUT, ao.id, 0, n) };
		uint32_t r1 = 1, r2 = 1, r3 = 1, o1 = 0, o2 = 0, o3 = 0;
		int e1 = invoke(tee, s, base + 0, inj, 2, &r1, &o1);
		int e2 = invoke(tee, s, base + 1, tr, 1, &r2, &o2);
		int e3 = invoke(tee, s, base + 2, dp, 2, &r3, &o3);
		size_t bad = 0;
		for (size_t k = 0; k < n; k++)
			bad += out[k] != (uint8_t)(-pattern(k, v));
		char name[64];
		snprintf(name, sizeof name, "inject, transform, dump %s", how[v]);
		snprintf(msg, sizeof msg, "ioctl %d %d %d ret %#x/%u %#x/%u %#x/%u, %zu bytes wrong, out size %llu", e1,
			 e2, e3, r1, o1, r2, o2, r3, o3, bad, (unsigned long long)dp[1].b);
		check(name, !e1 && !e2 && !e3 && !r1 && !r2 && !r3 && !bad && dp[1].b == n, msg);
	}

	/* Out of bounds: refused before any TA sees it. */
	struct prm oob[2] = { mem(IN, ai.id, 0, 100), mem(OUT, rf.id, rf.size - 10, 100) };
	r = invoke(tee, s, 0, oob, 2, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
	check("out-of-bounds secure memref refused, not by the TA", r != 0 || (ret != 0 && origin != ORIGIN_TA), msg);
	struct prm oob2[2] = { mem(IN, ai.id, ai.size - 1, 2), mem(OUT, rf.id, 0, 2) };
	r = invoke(tee, s, 3, oob2, 2, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
	check("out-of-bounds normal memref refused (TA to TA)", r != 0 || (ret != 0 && origin != ORIGIN_TA), msg);

	/* TEE_CheckMemoryAccessRights tells secure from normal memory. */
	struct prm wn[2] = { mem(IN, ai.id, 0, 64), { TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 7, 7, 7 } };
	r = invoke(tee, s, 9, wn, 2, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x secure=%llu nonsecure=%llu", r, ret, (unsigned long long)wn[1].a,
		 (unsigned long long)wn[1].b);
	check("TEE_CheckMemoryAccessRights: normal shm is non-secure", !r && !ret && wn[1].a == 0 && wn[1].b == 1, msg);
	struct prm ws[2] = { mem(IN, rf.id, 0, 64), { TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, 7, 7, 7 } };
	r = invoke(tee, s, 9, ws, 2, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x secure=%llu nonsecure=%llu", r, ret, (unsigned long long)ws[1].a,
		 (unsigned long long)ws[1].b);
	check("TEE_CheckMemoryAccessRights: protected buffer is secure", !r && !ret && ws[1].a == 1 && ws[1].b == 0, msg);
	struct prm wrong[2] = { mem(IN, ai.id, 0, 64), mem(OUT, ao.id, 0, 64) };
	r = invoke(tee, s, 0, wrong, 2, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
	check("inject into normal memory: ACCESS_DENIED from the TA", !r && ret == ACCESS_DENIED && origin == ORIGIN_TA,
	      msg);

	/* The pseudo-TA serves TAs only. */
	uint32_t ps;
	r = open_session(tee, INVOKE_TESTS, &ps, &ret, &origin);
	snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
	check("invoke_tests pseudo-TA refuses a normal-world client", !r && ret == ACCESS_DENIED, msg);
	close_session(tee, s);
}

static int cancel_fd = -1;
static uint32_t cancel_session, cancel_id = 77;

static void *canceller(void *arg) {
	(void)arg;
	usleep(300 * 1000);
	struct tee_ioctl_cancel_arg c = { .cancel_id = cancel_id, .session = cancel_session };
	ioctl(cancel_fd, TEE_IOC_CANCEL, &c);
	return NULL;
}

static void misbehave(int tee, int with_cancel) {
	char msg[256];
	uint32_t a, b, ret, origin;
	int ra = open_session(tee, MISBEHAVE, &a, &ret, &origin);
	int rb = open_session(tee, MISBEHAVE, &b, &ret, &origin);
	check("two sessions with the misbehaving TA", !ra && !rb && !ret, strerror(errno));
	struct prm v = { TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 41, 0, 0 };
	int r = invoke(tee, b, 0, &v, 1, &ret, &origin);
	check("ping", !r && !ret && v.a == 42, "");

	static const struct {
		uint32_t cmd;
		const char *what;
	} probes[] = { { 5, "cannot open a host file" }, { 6, "cannot read the daemon's memory" },
		       { 7, "cannot open a socket" } };
	for (unsigned k = 0; k < 3; k++) {
		struct prm p = { TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 9, 9, 0 };
		r = invoke(tee, b, probes[k].cmd, &p, 1, &ret, &origin);
		snprintf(msg, sizeof msg, "r=%d ret=%#x worked=%llu errno=%llu", r, ret, (unsigned long long)p.a,
			 (unsigned long long)p.b);
		check(probes[k].what, !r && !ret && p.a == 0 && p.b == EPERM, msg);
	}

	static const struct {
		uint32_t cmd;
		const char *what;
	} deaths[] = { { 1, "TEE_Panic gives TARGET_DEAD" }, { 2, "a crash gives TARGET_DEAD" },
		       { 4, "a TA looping past the call timeout gives TARGET_DEAD" },
		       { 9, "TEE_InvokeTACommand refused by the TEE panics the TA" } };
	for (unsigned k = 0; k < 4; k++) {
		uint32_t d;
		r = open_session(tee, MISBEHAVE, &d, &ret, &origin);
		struct prm p = { TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT, 0, 0, 0 };
		r = r ? r : invoke(tee, d, deaths[k].cmd, &p, 1, &ret, &origin);
		snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
		check(deaths[k].what, !r && ret == TARGET_DEAD && origin == ORIGIN_TEE, msg);
		p.a = 1;
		r = invoke(tee, d, 0, &p, 1, &ret, &origin);
		snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, ret, origin);
		check("the dead session stays dead", !r && ret == TARGET_DEAD && origin == ORIGIN_TEE, msg);
		close_session(tee, d);
		v.a = k;
		r = invoke(tee, b, 0, &v, 1, &ret, &origin);
		snprintf(msg, sizeof msg, "r=%d ret=%#x a=%llu", r, ret, (unsigned long long)v.a);
		check("another session carries on", !r && !ret && v.a == k + 1, msg);
	}

	if (with_cancel) {
		/* TEE_IOC_CANCEL reaches a TA that looks at its cancellation flag. */
		cancel_fd = tee;
		cancel_session = a;
		pthread_t t;
		pthread_create(&t, NULL, canceller, NULL);
		struct icall c;
		memset(&c, 0, sizeof c);
		c.i.func = 3;
		c.i.session = a;
		c.i.cancel_id = cancel_id;
		c.i.num_params = 4;
		c.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;
		struct tee_ioctl_buf_data bd = { .buf_ptr = (uintptr_t)&c, .buf_len = sizeof c };
		r = ioctl(tee, TEE_IOC_INVOKE, &bd);
		pthread_join(t, NULL);
		snprintf(msg, sizeof msg, "r=%d ret=%#x origin=%u", r, c.i.ret, c.i.ret_origin);
		check("a looping TA that checks its flag is cancelled", !r && c.i.ret == CANCEL, msg);
	}
	close_session(tee, a);
	close_session(tee, b);
}

int main(int argc, char **argv) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	check("open /dev/tee0", tee >= 0, strerror(errno));
	if (tee >= 0 && argc > 1 && !strcmp(argv[1], "sdp"))
		sdp(tee);
	else if (tee >= 0 && argc > 1 && !strcmp(argv[1], "misbehave"))
		misbehave(tee, argc > 2 && !strcmp(argv[2], "cancel"));
	printf("%d failed\n", failed);
	return failed != 0;
}
