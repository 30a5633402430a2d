/* The TEE answers of issue 19, each as Linux 6.18 gives it, seen by a
 * program under `teeheap run` (tests/run.rs): client login methods, the
 * OP-TEE parameter limit, META, session ops on the supplicant's node,
 * returned shm flags, registration of read-only and wrapping ranges, int
 * truncation of shm ids and fds, SHM_ALLOC of size 0. Prints one
 * "ok"/"FAIL" line per check and "N failed" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

#include "tee_compat.h"

static int failed;

static void check(const char *name, int ok, int r, int err) {
	if (ok) {
		printf("ok %s\n", name);
	} else {
		failed++;
		printf("FAIL %s: r=%d errno=%d (%s)\n", name, r, err, strerror(err));
	}
}

/* OP-TEE's sdp_basic test TA. */
static const uint8_t SDP_UUID[16] = { 0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4,
				      0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99 };
enum { SDP_INJECT = 0 };
#define TEEC_ERROR_BAD_PARAMETERS 0xffff0006

struct open_req {
	struct tee_ioctl_open_session_arg a;
	struct tee_ioctl_param p[8];
};

/* OPEN_SESSION with `n` NONE params and `login`/`clnt_uuid`; returns the
 * ioctl's result (errno set) and the TA's ret in *ret, the session in *s. */
static int open_session(int tee, uint32_t login, const uint8_t *clnt_uuid, int n, uint32_t *ret, uint32_t *s) {
	struct open_req o;
	memset(&o, 0, sizeof o);
	memcpy(o.a.uuid, SDP_UUID, 16);
	o.a.clnt_login = login;
	if (clnt_uuid)
		memcpy(o.a.clnt_uuid, clnt_uuid, 16);
	o.a.num_params = n;
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&o,
					.buf_len = sizeof o.a + n * sizeof(struct tee_ioctl_param) };
	int r = ioctl(tee, TEE_IOC_OPEN_SESSION, &b);
	*ret = o.a.ret;
	*s = o.a.session;
	return r;
}

static int invoke(int tee, uint32_t s, uint32_t func, const struct tee_ioctl_param *p, int n, uint32_t *ret) {
	struct {
		struct tee_ioctl_invoke_arg a;
		struct tee_ioctl_param p[8];
	} iv;
	memset(&iv, 0, sizeof iv);
	iv.a.func = func;
	iv.a.session = s;
	iv.a.num_params = n;
	memcpy(iv.p, p, n * sizeof *p);
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&iv,
					.buf_len = sizeof iv.a + n * sizeof(struct tee_ioctl_param) };
	int r = ioctl(tee, TEE_IOC_INVOKE, &b);
	*ret = iv.a.ret;
	return r;
}

static void close_session(int tee, uint32_t s) {
	struct tee_ioctl_close_session_arg c = { .session = s };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &c);
}

static void logins(int tee) {
	uint32_t ret = 0, s = 0;
	int r;
	r = open_session(tee, TEE_IOCTL_LOGIN_PUBLIC, NULL, 0, &ret, &s);
	check("login PUBLIC", r == 0 && ret == 0, r, errno);
	close_session(tee, s);
	r = open_session(tee, TEE_IOCTL_LOGIN_USER, NULL, 0, &ret, &s);
	check("login USER", r == 0 && ret == 0, r, errno);
	close_session(tee, s);

	uint8_t u[16] = { 0 };
	gid_t g = getegid();
	memcpy(u, &g, sizeof g);
	r = open_session(tee, TEE_IOCTL_LOGIN_GROUP, u, 0, &ret, &s);
	check("login GROUP of the caller's group", r == 0 && ret == 0, r, errno);
	close_session(tee, s);

	/* A group the caller is not in. */
	gid_t groups[256];
	int ng = getgroups(256, groups);
	gid_t other = 4242;
	for (int again = 1; again;) {
		again = other == g;
		for (int i = 0; i < ng; i++)
			again |= groups[i] == other;
		other += again;
	}
	memcpy(u, &other, sizeof other);
	r = open_session(tee, TEE_IOCTL_LOGIN_GROUP, u, 0, &ret, &s);
	check("login GROUP of another group is EPERM", r < 0 && errno == EPERM, r, errno);

	uint32_t bad[] = { 3, TEE_IOCTL_LOGIN_APPLICATION, TEE_IOCTL_LOGIN_USER_APPLICATION,
			   TEE_IOCTL_LOGIN_GROUP_APPLICATION, 0xc0000000 };
	int all = 1;
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		r = open_session(tee, bad[i], NULL, 0, &ret, &s);
		all &= r < 0 && errno == EINVAL;
	}
	check("other login methods are EINVAL", all, r, errno);
}

static void limits(int tee) {
	uint32_t ret = 0, s = 0;
	int r = open_session(tee, TEE_IOCTL_LOGIN_PUBLIC, NULL, 5, &ret, &s);
	check("open session with 5 params is EINVAL", r < 0 && errno == EINVAL, r, errno);
	r = open_session(tee, TEE_IOCTL_LOGIN_PUBLIC, NULL, 4, &ret, &s);
	check("open session with 4 params", r == 0 && ret == 0, r, errno);

	struct tee_ioctl_param p[8];
	memset(p, 0, sizeof p);
	r = invoke(tee, s, SDP_INJECT, p, 7, &ret);
	check("invoke with 7 params is EINVAL", r < 0 && errno == EINVAL, r, errno);
	r = invoke(tee, s, SDP_INJECT, p, 6, &ret);
	check("invoke with 6 params reaches the TEE", r == 0 && ret == TEEC_ERROR_BAD_PARAMETERS, r, errno);
	p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT | TEE_IOCTL_PARAM_ATTR_META;
	r = invoke(tee, s, SDP_INJECT, p, 1, &ret);
	check("META param is EINVAL", r < 0 && errno == EINVAL, r, errno);
	close_session(tee, s);
}

static void supplicant_node(uint32_t session_on_tee0) {
	int supp = open("/dev/teepriv0", O_RDWR | O_CLOEXEC);
	uint32_t ret = 0, s = 0;
	int r = open_session(supp, TEE_IOCTL_LOGIN_PUBLIC, NULL, 0, &ret, &s);
	check("teepriv0 OPEN_SESSION is EINVAL", r < 0 && errno == EINVAL, r, errno);
	r = invoke(supp, session_on_tee0, SDP_INJECT, NULL, 0, &ret);
	check("teepriv0 INVOKE is EINVAL", r < 0 && errno == EINVAL, r, errno);
	struct tee_ioctl_cancel_arg ca = { .session = session_on_tee0 };
	r = ioctl(supp, TEE_IOC_CANCEL, &ca);
	check("teepriv0 CANCEL is EINVAL", r < 0 && errno == EINVAL, r, errno);
	struct tee_ioctl_close_session_arg cl = { .session = session_on_tee0 };
	r = ioctl(supp, TEE_IOC_CLOSE_SESSION, &cl);
	check("teepriv0 CLOSE_SESSION is EINVAL", r < 0 && errno == EINVAL, r, errno);
	close(supp);
}

static int protected_buffer(unsigned long len) {
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	struct dma_heap_allocation_data d = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d);
	close(heap);
	return r < 0 ? -1 : (int)d.fd;
}

static void shm(int tee) {
	struct tee_ioctl_shm_alloc_data al = { .size = 4096 };
	int in = ioctl(tee, TEE_IOC_SHM_ALLOC, &al);
	check("SHM_ALLOC returns flags 0", in >= 0 && al.flags == 0, in, errno);
	struct tee_ioctl_shm_alloc_data zero = { .size = 0 };
	int r = ioctl(tee, TEE_IOC_SHM_ALLOC, &zero);
	check("SHM_ALLOC of size 0 is ENOMEM", r < 0 && errno == ENOMEM, r, errno);

	void *mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 1, 8192);
	struct tee_ioctl_shm_register_data rg = { .addr = (uintptr_t)mem, .length = 8192 };
	r = ioctl(tee, TEE_IOC_SHM_REGISTER, &rg);
	check("SHM_REGISTER returns flags 0x3", r >= 0 && rg.flags == 0x3, r, errno);
	if (r >= 0)
		close(r);
	mprotect(mem, 8192, PROT_READ);
	struct tee_ioctl_shm_register_data ro = { .addr = (uintptr_t)mem, .length = 8192 };
	r = ioctl(tee, TEE_IOC_SHM_REGISTER, &ro);
	check("SHM_REGISTER of a read-only mapping is EFAULT", r < 0 && errno == EFAULT, r, errno);
	mprotect(mem, 4096, PROT_READ | PROT_WRITE); /* the second page stays read-only */
	r = ioctl(tee, TEE_IOC_SHM_REGISTER, &ro);
	check("SHM_REGISTER half read-only is ENOMEM", r < 0 && errno == ENOMEM, r, errno);
	struct tee_ioctl_shm_register_data wrap = { .addr = (uintptr_t)mem, .length = UINT64_MAX - 100 };
	r = ioctl(tee, TEE_IOC_SHM_REGISTER, &wrap);
	check("SHM_REGISTER with addr+length wrapping is EFAULT", r < 0 && errno == EFAULT, r, errno);

	int buf = protected_buffer(65536);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = (int64_t)buf | (1LL << 32) };
	int pshm = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	check("SHM_REGISTER_FD takes the fd as an int", pshm >= 0, pshm, errno);
	check("SHM_REGISTER_FD returns flags 0x10", pshm >= 0 && rf.flags == TEEHEAP_SHM_REGISTER_FD_FLAGS, pshm,
	      errno);

	/* A memref's c is an int id: INJECT from the SHM_ALLOC shm named with
	 * upper bits set into the protected buffer. */
	uint32_t ret = 0, s = 0;
	open_session(tee, TEE_IOCTL_LOGIN_PUBLIC, NULL, 0, &ret, &s);
	struct tee_ioctl_param p[2] = {
		{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, .b = 4096, .c = (5ULL << 32) | (uint32_t)al.id },
		{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, .b = 4096, .c = (uint64_t)rf.id },
	};
	r = invoke(tee, s, SDP_INJECT, p, 2, &ret);
	check("memref c with upper bits names the int id", r == 0 && ret == 0, r, errno);

	/* Documented difference (docs/serving.md): registered memory is copied
	 * at each call, not pinned; after munmap the next call is EFAULT. */
	void *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct tee_ioctl_shm_register_data rgone = { .addr = (uintptr_t)gone, .length = 4096 };
	int gshm = ioctl(tee, TEE_IOC_SHM_REGISTER, &rgone);
	munmap(gone, 4096);
	p[0].c = (uint64_t)rgone.id;
	r = gshm < 0 ? -1 : invoke(tee, s, SDP_INJECT, p, 2, &ret);
	check("SHM_REGISTER then munmap: the next call is EFAULT", r < 0 && errno == EFAULT, r, errno);
	if (gshm >= 0)
		close(gshm);
	supplicant_node(s);
	close_session(tee, s);
	close(pshm);
	close(buf);
	close(in);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	check("open /dev/tee0", tee >= 0, tee, errno);
	if (tee < 0)
		return 1;
	logins(tee);
	limits(tee);
	shm(tee);
	printf("%d failed\n", failed);
	return failed != 0;
}
