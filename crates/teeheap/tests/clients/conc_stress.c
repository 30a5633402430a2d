/* Issue 12 stress: 2 processes x 16 threads for DURATION_MS (argv[1]),
 * each thread mixing ALLOC + close, passing a dma-buf through SCM_RIGHTS,
 * short trusted-UI INPUT invokes, cancels of its own and others' calls,
 * TEE_IOC_VERSION and SHM_ALLOC; the first process also serves as the
 * supplicant (a thread in SUPPL_RECV answering ITEM_NOT_FOUND) while
 * threads open sessions to a missing TA. Every answer is checked; a hang
 * is a deadlock (the test's timeout). Prints "ops N" per process and
 * "N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

#include "fdpass.h"
#include "sdp_ta.h"

#define THREADS 16
#define TEEC_ERROR_CANCEL 0xffff0002
#define TEEC_ERROR_ITEM_NOT_FOUND 0xffff0008

static const uint8_t TUI_UUID[16] = { 0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x02,
				      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t MISSING[16] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03,
				     0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0c };

static int heap, teefd, supp = -1;
static double deadline;
static volatile long ops, failures;

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fail(const char *what, int r, int err) {
	__sync_fetch_and_add(&failures, 1);
	printf("FAIL %d %s: r=%d errno=%d (%s)\n", getpid(), what, r, err, strerror(err));
	fflush(stdout);
}

static int open_session(const uint8_t *uuid, uint32_t *ret) {
	struct sdp_session os;
	struct tee_ioctl_buf_data b = sdp_open_arg(&os);
	memcpy(os.a.uuid, uuid, 16);
	os.a.num_params = 0;
	b.buf_len = sizeof os.a;
	int r = ioctl(teefd, TEE_IOC_OPEN_SESSION, &b);
	*ret = os.a.ret;
	return r < 0 ? -1 : (int)os.a.session;
}

static void *worker(void *arg) {
	long id = (long)arg;
	unsigned seed = (unsigned)(id * 7919 + getpid());
	uint32_t ret;
	int session = open_session(TUI_UUID, &ret);
	if (session < 0 || ret != 0) {
		fail("open session", session, errno);
		return NULL;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return NULL;
	while (now_ms() < deadline) {
		int op = rand_r(&seed) % 7;
		struct dma_heap_allocation_data a = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
		int r;
		switch (op) {
		case 0:
			r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a);
			if (r != 0)
				fail("ALLOC", r, errno);
			else
				close(a.fd);
			break;
		case 1:
			r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a);
			if (r != 0) {
				fail("ALLOC to pass", r, errno);
				break;
			}
			if (send_fd(sv[0], a.fd) != 0) {
				fail("send_fd", -1, errno);
			} else {
				int got = recv_fd(sv[1]);
				if (got < 0)
					fail("recv_fd", got, errno);
				else
					close(got);
			}
			close(a.fd);
			break;
		case 2: {
			struct sdp_invoke iv;
			struct tee_ioctl_buf_data b = sdp_invoke_arg(&iv, session, 1 /* INPUT */);
			iv.a.num_params = 1;
			iv.a.cancel_id = (uint32_t)id + 1;
			b.buf_len = sizeof iv.a + sizeof iv.p[0];
			iv.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;
			iv.p[0].a = rand_r(&seed) % 20;
			r = ioctl(teefd, TEE_IOC_INVOKE, &b);
			if (r != 0 || (iv.a.ret != 0 && iv.a.ret != TEEC_ERROR_CANCEL))
				fail("INPUT", r, iv.a.ret);
			break;
		}
		case 3: {
			/* Our session, our or another thread's cancel id: harmless. */
			struct tee_ioctl_cancel_arg ca = { .cancel_id = rand_r(&seed) % (THREADS + 1), .session = session };
			r = ioctl(teefd, TEE_IOC_CANCEL, &ca);
			if (r != 0)
				fail("CANCEL", r, errno);
			break;
		}
		case 4: {
			struct tee_ioctl_shm_alloc_data sa = { .size = 4096 };
			r = ioctl(teefd, TEE_IOC_SHM_ALLOC, &sa);
			if (r < 0)
				fail("SHM_ALLOC", r, errno);
			else
				close(r);
			break;
		}
		case 5: {
			struct tee_ioctl_version_data v;
			r = ioctl(teefd, TEE_IOC_VERSION, &v);
			if (r != 0)
				fail("VERSION", r, errno);
			break;
		}
		case 6:
			/* Through the supplicant (or at once without one). */
			r = open_session(MISSING, &ret);
			if (r >= 0 && ret != TEEC_ERROR_ITEM_NOT_FOUND)
				fail("open missing TA", r, ret);
			break;
		}
		__sync_fetch_and_add(&ops, 1);
	}
	struct tee_ioctl_close_session_arg cs = { .session = session };
	if (ioctl(teefd, TEE_IOC_CLOSE_SESSION, &cs) != 0)
		fail("CLOSE_SESSION", -1, errno);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

/* Answers every request with ITEM_NOT_FOUND. */
static void *supplicant(void *arg) {
	(void)arg;
	for (;;) {
		struct {
			struct tee_iocl_supp_recv_arg h;
			struct tee_ioctl_param p[5];
		} rv;
		memset(&rv, 0, sizeof rv);
		rv.h.num_params = 5;
		rv.p[0].attr = TEE_IOCTL_PARAM_ATTR_META;
		struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&rv, .buf_len = sizeof rv };
		if (ioctl(supp, TEE_IOC_SUPPL_RECV, &b) != 0) {
			fail("SUPPL_RECV", -1, errno);
			return NULL;
		}
		struct {
			struct tee_iocl_supp_send_arg h;
			struct tee_ioctl_param p[5];
		} sd;
		memset(&sd, 0, sizeof sd);
		sd.h.ret = TEEC_ERROR_ITEM_NOT_FOUND;
		sd.h.num_params = rv.h.num_params;
		memcpy(sd.p, rv.p, sizeof rv.p);
		b.buf_ptr = (uintptr_t)&sd;
		b.buf_len = sizeof sd.h + rv.h.num_params * sizeof sd.p[0];
		if (ioctl(supp, TEE_IOC_SUPPL_SEND, &b) != 0)
			fail("SUPPL_SEND", -1, errno);
	}
}

static int run(void) {
	heap = open("/dev/dma_heap/system", O_RDWR);
	teefd = open("/dev/tee0", O_RDWR);
	if (heap < 0 || teefd < 0)
		return 1;
	pthread_t t[THREADS], s;
	if (supp >= 0)
		pthread_create(&s, NULL, supplicant, NULL);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("ops %d %ld\n", getpid(), ops);
	fflush(stdout);
	return failures != 0;
}

int main(int argc, char **argv) {
	deadline = now_ms() + (argc > 1 ? atof(argv[1]) : 2000);
	pid_t child = fork();
	if (child == 0)
		_exit(run());
	supp = open("/dev/teepriv0", O_RDWR);
	struct tee_ioctl_version_data v;
	if (ioctl(supp, TEE_IOC_VERSION, &v) != 0)
		fail("teepriv0", -1, errno);
	int bad = run();
	int st = 0;
	waitpid(child, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	printf("%d failed\n", bad ? (int)failures + 1 : 0);
	return bad;
}
