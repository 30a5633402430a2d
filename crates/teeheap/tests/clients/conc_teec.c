/* Issue 12 through our libteec-style client (teec.h): while one thread
 * is in a 5 s trusted-UI INPUT, another thread's ALLOC completes < 100 ms
 * and TEEC_RequestCancellation ends the call with TEEC_ERROR_CANCEL
 * < 50 ms. Prints "ok"/"FAIL" lines and "N failed". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <linux/dma-heap.h>

#include "check.h"
#include "teec.h"

static const TEEC_UUID TUI = { { 0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x02, 0x80, 0x00, 0x00, 0x00, 0x00,
				 0x00, 0x00, 0x02 } };

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static TEEC_Session sess;
static TEEC_Operation op;
static TEEC_Result res;
static uint32_t origin;
static double ended;

static void *input(void *arg) {
	(void)arg;
	res = TEEC_InvokeCommand(&sess, 1 /* INPUT */, &op, &origin);
	ended = now_ms();
	return NULL;
}

int main(void) {
	char d[160];
	TEEC_Context ctx;
	check("TEEC_InitializeContext", TEEC_InitializeContext(NULL, &ctx) == TEEC_SUCCESS, NULL);
	uint32_t o;
	check("TEEC_OpenSession trusted_ui", TEEC_OpenSession(&ctx, &sess, &TUI, 0, NULL, NULL, &o) == TEEC_SUCCESS, NULL);
	memset(&op, 0, sizeof op);
	op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
	op.params[0].value.a = 5000;
	pthread_t t;
	pthread_create(&t, NULL, input, NULL);
	while (!op.started)
		usleep(1000);
	usleep(200 * 1000);
	int heap = open("/dev/dma_heap/system", O_RDWR);
	struct dma_heap_allocation_data a = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	double t0 = now_ms();
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a);
	double ms = now_ms() - t0;
	snprintf(d, sizeof d, "%.1f ms r=%d", ms, r);
	check("ALLOC during TEEC_InvokeCommand on another thread", r == 0 && ms < 100.0, d);
	t0 = now_ms();
	TEEC_RequestCancellation(&op);
	pthread_join(t, NULL);
	ms = ended - t0;
	snprintf(d, sizeof d, "%.1f ms res=%#x origin=%u", ms, res, origin);
	check("TEEC_RequestCancellation: TEEC_ERROR_CANCEL", res == TEEC_ERROR_CANCEL && origin == TEEC_ORIGIN_TRUSTED_APP, d);
	check("TEEC_RequestCancellation ends the call within 50 ms", ms >= 0 && ms < 50.0, d);
	TEEC_CloseSession(&sess);
	TEEC_FinalizeContext(&ctx);
	printf("%d failed\n", failed);
	return failed != 0;
}
