/* Issue 12: a program's threads are served at once. While one thread sits
 * in a long trusted-UI INPUT call (5 s), another thread's ALLOC and TEE
 * calls, and a forked process's ioctls, complete at once; TEE_IOC_CANCEL
 * ends the call with TEEC_ERROR_CANCEL; cancelling a finished or unknown
 * call is harmless. Times are CLOCK_MONOTONIC. Prints one "ok"/"FAIL"
 * line per check and "N failed" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

#include "check.h"
#include "sdp_ta.h"

/* teeheap's trusted-UI TA and its INPUT command (p0 value inout: in a =
 * ms to wait for the first event). */
static const uint8_t TUI_UUID[16] = { 0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x02,
				      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 };
enum { TUI_INPUT = 1 };
#define TEEC_ERROR_CANCEL 0xffff0002
#define TEEC_ORIGIN_TRUSTED_APP 4

/* The bounds. */
#define SIDE_CALL_MS 100.0
#define CANCEL_MS 50.0

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char detail[256];

static const char *ms_detail(double ms, int r, int err) {
	snprintf(detail, sizeof detail, "%.1f ms, r=%d errno=%d (%s)", ms, r, err, strerror(err));
	return detail;
}

static int teefd, session;

/* A long INPUT call on another thread. */
struct long_call {
	pthread_t t;
	uint32_t cancel_id;
	uint32_t wait_ms;
	volatile int started;
	int r, err;
	uint32_t ret, origin;
	double ended;
};

static void *long_call_thread(void *arg) {
	struct long_call *c = arg;
	struct sdp_invoke iv;
	struct tee_ioctl_buf_data b = sdp_invoke_arg(&iv, session, TUI_INPUT);
	iv.a.num_params = 1;
	b.buf_len = sizeof iv.a + sizeof iv.p[0];
	iv.a.cancel_id = c->cancel_id;
	iv.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;
	iv.p[0].a = c->wait_ms;
	c->started = 1;
	c->r = ioctl(teefd, TEE_IOC_INVOKE, &b);
	c->err = errno;
	c->ended = now_ms();
	c->ret = iv.a.ret;
	c->origin = iv.a.ret_origin;
	return NULL;
}

static void start_long_call(struct long_call *c, uint32_t cancel_id, uint32_t wait_ms) {
	memset(c, 0, sizeof *c);
	c->cancel_id = cancel_id;
	c->wait_ms = wait_ms;
	pthread_create(&c->t, NULL, long_call_thread, c);
	while (!c->started)
		usleep(1000);
	/* Let it reach the secure world. */
	usleep(200 * 1000);
}

static int cancel(uint32_t cancel_id) {
	struct tee_ioctl_cancel_arg ca = { .cancel_id = cancel_id, .session = session };
	return ioctl(teefd, TEE_IOC_CANCEL, &ca);
}

/* ALLOC of 4 KiB from the system heap; returns the time taken, the fd in
 * *fd (closed by the caller). */
static double timed_alloc(int heap, int *fd, int *err) {
	struct dma_heap_allocation_data a = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	double t0 = now_ms();
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a);
	double t = now_ms() - t0;
	*err = errno;
	*fd = r < 0 ? -1 : (int)a.fd;
	return t;
}

int main(void) {
	teefd = open("/dev/tee0", O_RDWR);
	int heap = open("/dev/dma_heap/system", O_RDWR);
	if (teefd < 0 || heap < 0) {
		printf("FAIL setup: open: %s\n1 failed\n", strerror(errno));
		return 1;
	}
	struct sdp_session os;
	struct tee_ioctl_buf_data ob = sdp_open_arg(&os);
	memcpy(os.a.uuid, TUI_UUID, 16);
	os.a.num_params = 0;
	ob.buf_len = sizeof os.a;
	int r = ioctl(teefd, TEE_IOC_OPEN_SESSION, &ob);
	check("open session trusted_ui", r == 0 && os.a.ret == 0, strerror(errno));
	session = os.a.session;

	struct long_call c;
	start_long_call(&c, 7, 5000);

	/* Another thread of the program while the first is in the TA. */
	int fd, err;
	double t = timed_alloc(heap, &fd, &err);
	check("ALLOC while another thread is in a TA call", fd >= 0 && t < SIDE_CALL_MS, ms_detail(t, fd, err));
	if (fd >= 0)
		close(fd);
	struct tee_ioctl_version_data v;
	double t0 = now_ms();
	r = ioctl(teefd, TEE_IOC_VERSION, &v);
	t = now_ms() - t0;
	check("TEE_IOC_VERSION on the same context meanwhile", r == 0 && t < SIDE_CALL_MS, ms_detail(t, r, errno));
	struct tee_ioctl_shm_alloc_data sa = { .size = 4096 };
	t0 = now_ms();
	r = ioctl(teefd, TEE_IOC_SHM_ALLOC, &sa);
	t = now_ms() - t0;
	check("TEE_IOC_SHM_ALLOC on the same context meanwhile", r >= 0 && t < SIDE_CALL_MS, ms_detail(t, r, errno));
	if (r >= 0)
		close(r);

	/* A forked process: its own context and an ALLOC. */
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		double times[2] = { -1, -1 };
		int t2 = open("/dev/tee0", O_RDWR);
		t0 = now_ms();
		if (t2 >= 0 && ioctl(t2, TEE_IOC_VERSION, &v) == 0)
			times[0] = now_ms() - t0;
		times[1] = timed_alloc(heap, &fd, &err);
		if (fd < 0)
			times[1] = -1;
		if (write(pipefd[1], times, sizeof times) != sizeof times)
			_exit(1);
		_exit(0);
	}
	double times[2] = { -1, -1 };
	int got = read(pipefd[0], times, sizeof times) == sizeof times;
	waitpid(pid, NULL, 0);
	check("forked process's TEE_IOC_VERSION is not delayed", got && times[0] >= 0 && times[0] < SIDE_CALL_MS,
	      ms_detail(times[0], got, 0));
	check("forked process's ALLOC is not delayed", got && times[1] >= 0 && times[1] < SIDE_CALL_MS,
	      ms_detail(times[1], got, 0));

	/* Cancel the long call: it ends with TEEC_ERROR_CANCEL at once. */
	t0 = now_ms();
	r = cancel(7);
	check("TEE_IOC_CANCEL of the running call", r == 0, strerror(errno));
	pthread_join(c.t, NULL);
	t = c.ended - t0;
	snprintf(detail, sizeof detail, "%.1f ms, r=%d ret=%#x origin=%u", t, c.r, c.ret, c.origin);
	check("cancelled call ends with TEEC_ERROR_CANCEL", c.r == 0 && c.ret == TEEC_ERROR_CANCEL, detail);
	check("cancelled call has origin TRUSTED_APP", c.origin == TEEC_ORIGIN_TRUSTED_APP, detail);
	check("cancelled call ends within 50 ms", t >= 0 && t < CANCEL_MS, detail);

	/* Harmless: a finished call's id, an id never used. */
	check("cancel of a finished call", cancel(7) == 0, strerror(errno));
	check("cancel of a call never started", cancel(12345) == 0, strerror(errno));
	/* ... and they leave no mark on a later call with that id. */
	start_long_call(&c, 12345, 300);
	pthread_join(c.t, NULL);
	snprintf(detail, sizeof detail, "r=%d ret=%#x", c.r, c.ret);
	check("a later call with a cancelled id runs normally", c.r == 0 && c.ret == 0, detail);

	printf("%d failed\n", failed);
	return failed != 0;
}
