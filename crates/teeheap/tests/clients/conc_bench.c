/* Issue 12 benchmark, run under `teeheap run`: ALLOC + close of a 4 KiB
 * system dma-buf (1) from one thread while the program is otherwise idle,
 * and while another thread sits in a trusted-UI INPUT call (median and
 * p99, and their ratio); (2) throughput with 1, 2, 4 and 8 threads
 * allocating at once. Times are CLOCK_MONOTONIC.
 *
 *   cc -O2 -pthread crates/teeheap/tests/clients/conc_bench.c -o /tmp/conc_bench
 *   teeheap run -- /tmp/conc_bench [ITERATIONS]     (default 2000)
 *
 * Prints Markdown rows for BENCHMARKS.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

static const uint8_t TUI_UUID[16] = { 0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x02,
				      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 };

static int heap, teefd, session, iters;

static double now_us(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void alloc_close(void) {
	struct dma_heap_allocation_data a = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) != 0) {
		perror("ALLOC");
		exit(1);
	}
	close(a.fd);
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median and p99 of `iters` ALLOC + close latencies, in µs. */
static void latency(double *median, double *p99) {
	double *t = calloc(iters, sizeof *t);
	for (int i = 0; i < iters; i++) {
		double t0 = now_us();
		alloc_close();
		t[i] = now_us() - t0;
	}
	qsort(t, iters, sizeof *t, cmp);
	*median = t[iters / 2];
	*p99 = t[iters * 99 / 100];
	free(t);
}

static volatile int in_call;

static void *long_call(void *arg) {
	(void)arg;
	struct sdp_invoke iv;
	struct tee_ioctl_buf_data b = sdp_invoke_arg(&iv, session, 1 /* INPUT */);
	iv.a.num_params = 1;
	iv.a.cancel_id = 1;
	b.buf_len = sizeof iv.a + sizeof iv.p[0];
	iv.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;
	iv.p[0].a = 60000;
	in_call = 1;
	ioctl(teefd, TEE_IOC_INVOKE, &b);
	in_call = 0;
	return NULL;
}

static volatile int go;

static void *hammer(void *arg) {
	long n = (long)arg;
	while (!go)
		;
	for (long i = 0; i < n; i++)
		alloc_close();
	return NULL;
}

/* ALLOC + close per second with `threads` threads sharing `iters * 2` calls. */
static double throughput(int threads) {
	pthread_t t[8];
	long each = iters * 2 / threads;
	go = 0;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, hammer, (void *)each);
	double t0 = now_us();
	go = 1;
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return each * threads / ((now_us() - t0) / 1e6);
}

int main(int argc, char **argv) {
	iters = argc > 1 ? atoi(argv[1]) : 2000;
	if (iters < 100)
		iters = 100;
	heap = open("/dev/dma_heap/system", O_RDWR);
	teefd = open("/dev/tee0", O_RDWR);
	struct sdp_session os;
	struct tee_ioctl_buf_data ob = sdp_open_arg(&os);
	memcpy(os.a.uuid, TUI_UUID, 16);
	os.a.num_params = 0;
	ob.buf_len = sizeof os.a;
	if (heap < 0 || teefd < 0 || ioctl(teefd, TEE_IOC_OPEN_SESSION, &ob) != 0 || os.a.ret != 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	session = os.a.session;
	for (int i = 0; i < 100; i++)
		alloc_close(); /* warm up: daemon workers, caches */

	double idle_med, idle_p99, busy_med, busy_p99;
	latency(&idle_med, &idle_p99);
	pthread_t t;
	pthread_create(&t, NULL, long_call, NULL);
	while (!in_call)
		usleep(1000);
	usleep(100 * 1000);
	latency(&busy_med, &busy_p99);
	int still = in_call;
	struct tee_ioctl_cancel_arg ca = { .cancel_id = 1, .session = session };
	ioctl(teefd, TEE_IOC_CANCEL, &ca);
	pthread_join(t, NULL);
	printf("| ALLOC+close latency, idle | %d | median %.1f µs | p99 %.1f µs |\n", iters, idle_med, idle_p99);
	printf("| ALLOC+close latency, another thread in a TA call%s | %d | median %.1f µs | p99 %.1f µs |\n",
	       still ? "" : " (ENDED EARLY)", iters, busy_med, busy_p99);
	printf("| ratio busy/idle | | median %.2f× | p99 %.2f× |\n", busy_med / idle_med, busy_p99 / idle_p99);
	double one = 0;
	throughput(1); /* warm up */
	for (int n = 1; n <= 8; n *= 2) {
		double r = throughput(n);
		if (n == 1)
			one = r;
		printf("| ALLOC+close throughput, %d thread%s | %d calls | %.0f /s | %.2f× of 1 thread |\n", n,
		       n > 1 ? "s" : "", iters * 2 / n * n, r, r / one);
	}
	return still ? 0 : 1;
}
