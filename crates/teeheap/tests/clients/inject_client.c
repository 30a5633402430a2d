/* A program for the fault-injection tests: one scenario per run, one line
 * per call it makes, so that a test sees which call got which answer.
 *   alloc HEAP N        N allocations of 4 KiB, kept until the end:
 *                       "alloc I ok" | "alloc I err E"
 *   until-fails HEAP MS allocate and free every 5 ms until one fails or MS
 *                       pass: "fails after T ms: E" (T since the program
 *                       started, after "ok before" lines: how many worked)
 *                       | "no failure"; then "reopen: ok | err E"
 *   ta-open N           N OPEN_SESSIONs to sdp_basic: "open I ret R origin O"
 *   ta-cmd CMD N        one session, N invocations of CMD without
 *                       parameters: "invoke I ret R origin O"
 *   until-dead MS       one session, an invocation every 5 ms until one
 *                       answers TARGET_DEAD: "dead after T ms: origin O"
 *                       | "alive"; then a new context (open and
 *                       TEE_IOC_VERSION): "reopen: ok | err E"
 *   inject N            a protected buffer registered with the TEE, and N
 *                       sdp_basic INJECTs into it: "inject I ret R origin O"
 * Every object is closed before "done". E is an errno name, R a TEEC code
 * in hex. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

#include "sdp_ta.h"
#include "tee_compat.h"

#define TARGET_DEAD 0xffff3024u

static const char *ename(int e) {
	switch (e) {
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case EPERM: return "EPERM";
	default: {
		static char buf[16];
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
	}
}

static struct timespec t0;

static long ms_since_start(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

static int open_heap(const char *name) {
	char path[300];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", name);
	return open(path, O_RDWR | O_CLOEXEC);
}

static int alloc(int heap, unsigned long len) {
	struct dma_heap_allocation_data d = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	return ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d) < 0 ? -1 : (int)d.fd;
}

/* Opens a session to sdp_basic on `tee`; its id, or -1 (printed). */
static int session(int tee, struct sdp_session *os) {
	struct tee_ioctl_buf_data b = sdp_open_arg(os);
	if (ioctl(tee, TEE_IOC_OPEN_SESSION, &b) < 0) {
		printf("open session: err %s\n", ename(errno));
		return -1;
	}
	if (os->a.ret) {
		printf("open session: ret %#x origin %u\n", os->a.ret, os->a.ret_origin);
		return -1;
	}
	return (int)os->a.session;
}

static void close_session(int tee, uint32_t s) {
	struct tee_ioctl_close_session_arg cs = { .session = s };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &cs);
}

static int invoke(int tee, uint32_t s, uint32_t cmd, uint32_t *ret, uint32_t *origin) {
	struct sdp_invoke iv;
	struct tee_ioctl_buf_data ib = sdp_invoke_arg(&iv, s, cmd);
	int r = ioctl(tee, TEE_IOC_INVOKE, &ib);
	*ret = iv.a.ret;
	*origin = iv.a.ret_origin;
	return r;
}

static int scenario_alloc(const char *heap_name, int n) {
	int heap = open_heap(heap_name), fds[256], kept = 0;
	if (heap < 0 || n > 256) {
		printf("open: err %s\n", ename(errno));
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		int fd = alloc(heap, 4096);
		if (fd < 0)
			printf("alloc %d err %s\n", i, ename(errno));
		else {
			printf("alloc %d ok\n", i);
			fds[kept++] = fd;
		}
	}
	for (int i = 0; i < kept; i++)
		close(fds[i]);
	close(heap);
	return 0;
}

static int scenario_until_fails(const char *heap_name, long ms) {
	int heap = open_heap(heap_name), ok = 0;
	if (heap < 0) {
		printf("open: err %s\n", ename(errno));
		return 1;
	}
	for (;;) {
		int fd = alloc(heap, 4096);
		if (fd < 0) {
			printf("ok before %d\nfails after %ld ms: %s\n", ok, ms_since_start(), ename(errno));
			break;
		}
		close(fd);
		ok++;
		if (ms_since_start() > ms) {
			printf("no failure\n");
			break;
		}
		usleep(5000);
	}
	close(heap);
	int again = open_heap(heap_name);
	if (again < 0)
		printf("reopen: err %s\n", ename(errno));
	else {
		printf("reopen: ok\n");
		close(again);
	}
	return 0;
}

static int scenario_ta_open(int n) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	if (tee < 0) {
		printf("tee: err %s\n", ename(errno));
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		struct sdp_session os;
		struct tee_ioctl_buf_data b = sdp_open_arg(&os);
		if (ioctl(tee, TEE_IOC_OPEN_SESSION, &b) < 0) {
			printf("open %d err %s\n", i, ename(errno));
			continue;
		}
		printf("open %d ret %#x origin %u\n", i, os.a.ret, os.a.ret_origin);
		if (os.a.ret == 0)
			close_session(tee, os.a.session);
	}
	close(tee);
	return 0;
}

static int scenario_ta_cmd(uint32_t cmd, int n) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct sdp_session os;
	int s = tee < 0 ? -1 : session(tee, &os);
	if (s < 0)
		return 1;
	for (int i = 1; i <= n; i++) {
		uint32_t ret, origin;
		if (invoke(tee, (uint32_t)s, cmd, &ret, &origin) < 0)
			printf("invoke %d err %s\n", i, ename(errno));
		else
			printf("invoke %d ret %#x origin %u\n", i, ret, origin);
	}
	close_session(tee, (uint32_t)s);
	close(tee);
	return 0;
}

static int scenario_until_dead(long ms) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct sdp_session os;
	int s = tee < 0 ? -1 : session(tee, &os);
	if (s < 0)
		return 1;
	for (;;) {
		uint32_t ret, origin;
		int r = invoke(tee, (uint32_t)s, 1, &ret, &origin);
		if (r == 0 && ret == TARGET_DEAD) {
			printf("dead after %ld ms: origin %u\n", ms_since_start(), origin);
			break;
		}
		if (ms_since_start() > ms) {
			printf("alive\n");
			break;
		}
		usleep(5000);
	}
	close_session(tee, (uint32_t)s);
	close(tee);
	/* A new context: open and TEE_IOC_VERSION. */
	int again = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct tee_ioctl_version_data v;
	if (again < 0 || ioctl(again, TEE_IOC_VERSION, &v) < 0)
		printf("reopen: err %s\n", ename(errno));
	else
		printf("reopen: ok\n");
	if (again >= 0)
		close(again);
	return 0;
}

static int scenario_inject(int n) {
	int heap = open_heap("protected,secure-video");
	int buf = heap < 0 ? -1 : alloc(heap, 4096);
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct sdp_session os;
	int s = tee < 0 || buf < 0 ? -1 : session(tee, &os);
	if (s < 0) {
		printf("setup failed\n");
		return 1;
	}
	static unsigned char mem[4096];
	memset(mem, 0x5a, sizeof mem);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	struct tee_ioctl_shm_register_data rn = { .addr = (uintptr_t)mem, .length = sizeof mem };
	int pshm = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	int nshm = pshm < 0 ? -1 : ioctl(tee, TEE_IOC_SHM_REGISTER, &rn);
	if (nshm < 0) {
		printf("register: err %s\n", ename(errno));
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		struct sdp_invoke iv;
		struct tee_ioctl_buf_data ib = sdp_invoke_arg(&iv, (uint32_t)s, 0 /* INJECT */);
		iv.p[0] = (struct tee_ioctl_param){ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
						    .b = sizeof mem, .c = (uint64_t)rn.id };
		iv.p[1] = (struct tee_ioctl_param){ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
						    .b = sizeof mem, .c = (uint64_t)rf.id };
		if (ioctl(tee, TEE_IOC_INVOKE, &ib) < 0)
			printf("inject %d err %s\n", i, ename(errno));
		else
			printf("inject %d ret %#x origin %u\n", i, iv.a.ret, iv.a.ret_origin);
	}
	close_session(tee, (uint32_t)s);
	close(nshm);
	close(pshm);
	close(buf);
	close(tee);
	close(heap);
	return 0;
}

int main(int argc, char **argv) {
	clock_gettime(CLOCK_MONOTONIC, &t0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int r = 2;
	if (argc == 4 && !strcmp(argv[1], "alloc"))
		r = scenario_alloc(argv[2], atoi(argv[3]));
	else if (argc == 4 && !strcmp(argv[1], "until-fails"))
		r = scenario_until_fails(argv[2], atol(argv[3]));
	else if (argc == 3 && !strcmp(argv[1], "ta-open"))
		r = scenario_ta_open(atoi(argv[2]));
	else if (argc == 4 && !strcmp(argv[1], "ta-cmd"))
		r = scenario_ta_cmd((uint32_t)atoi(argv[2]), atoi(argv[3]));
	else if (argc == 3 && !strcmp(argv[1], "until-dead"))
		r = scenario_until_dead(atol(argv[2]));
	else if (argc == 3 && !strcmp(argv[1], "inject"))
		r = scenario_inject(atoi(argv[2]));
	else
		fprintf(stderr, "usage: see the comment at the top of inject_client.c\n");
	if (r == 0)
		printf("done\n");
	return r;
}
