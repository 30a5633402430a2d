/* Cancelling a host-built TA through our libteec-style client (teec.h),
 * under teeheap run with the misbehaving TA (tests/tas/misbehave) and a
 * call timeout of `argv[1]` ms: a TA looping on TEE_GetCancellationFlag
 * and a TA in TEE_Wait end with TEEC_ERROR_CANCEL (origin TRUSTED_APP: the
 * TA returns it, as on OP-TEE) within 50 ms of TEEC_RequestCancellation
 * from another thread; a TA looping without looking ignores the request
 * and is ended at the call timeout (TARGET_DEAD, origin TEE) while another
 * session carries on. Prints "ok"/"FAIL" lines and "N failed". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "teec.h"

#define TEEC_ERROR_TARGET_DEAD 0xffff3024u
#define TEEC_ORIGIN_TEE 3

static const TEEC_UUID MISBEHAVE = { { 0x3c, 0x0c, 0x2a, 0x51, 0x7d, 0x5e, 0x4b, 0x1a, 0x8f, 0x0e, 0x5a, 0x6b, 0x7c,
				       0x8d, 0x9e, 0x01 } };
enum { PING = 0, LOOP_CANCELLABLE = 3, LOOP_FOREVER = 4, WAIT = 8 };

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

struct call {
	TEEC_Session *sess;
	uint32_t cmd;
	TEEC_Operation op;
	TEEC_Result res;
	uint32_t origin;
	double ended;
};

static void *run(void *arg) {
	struct call *c = arg;
	c->res = TEEC_InvokeCommand(c->sess, c->cmd, &c->op, &c->origin);
	c->ended = now_ms();
	return NULL;
}

/* Starts `cmd` on another thread, lets it run 200 ms, asks to cancel it;
 * returns the ms from the request to the end of the call. */
static double cancel_after(TEEC_Session *s, uint32_t cmd, struct call *c) {
	memset(c, 0, sizeof *c);
	c->sess = s;
	c->cmd = cmd;
	c->op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
	pthread_t t;
	pthread_create(&t, NULL, run, c);
	while (!c->op.started)
		usleep(1000);
	usleep(200 * 1000);
	double t0 = now_ms();
	TEEC_RequestCancellation(&c->op);
	pthread_join(t, NULL);
	return c->ended - t0;
}

int main(int argc, char **argv) {
	double timeout = argc > 1 ? atof(argv[1]) : 1000;
	char d[200];
	TEEC_Context ctx;
	TEEC_Session a, b;
	uint32_t o;
	check("TEEC_InitializeContext", TEEC_InitializeContext(NULL, &ctx) == TEEC_SUCCESS, NULL);
	int ok = TEEC_OpenSession(&ctx, &a, &MISBEHAVE, 0, NULL, NULL, &o) == TEEC_SUCCESS &&
		 TEEC_OpenSession(&ctx, &b, &MISBEHAVE, 0, NULL, NULL, &o) == TEEC_SUCCESS;
	check("two sessions with the misbehaving TA", ok, NULL);
	if (!ok)
		return 1;

	static const struct {
		uint32_t cmd;
		const char *what;
	} cancellable[] = { { LOOP_CANCELLABLE, "a TA looping on TEE_GetCancellationFlag" },
			    { WAIT, "a TA in TEE_Wait(TEE_TIMEOUT_INFINITE)" } };
	for (unsigned k = 0; k < 2; k++) {
		struct call c;
		double ms = cancel_after(&a, cancellable[k].cmd, &c);
		char name[160];
		snprintf(d, sizeof d, "%.1f ms res=%#x origin=%u", ms, c.res, c.origin);
		snprintf(name, sizeof name, "%s: TEEC_ERROR_CANCEL, origin TRUSTED_APP", cancellable[k].what);
		check(name, c.res == TEEC_ERROR_CANCEL && c.origin == TEEC_ORIGIN_TRUSTED_APP, d);
		snprintf(name, sizeof name, "%s: cancelled within 50 ms", cancellable[k].what);
		check(name, ms >= 0 && ms < 50.0, d);
		printf("# %s: %s\n", cancellable[k].what, d);
	}
	TEEC_Operation ping = { .paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE) };
	ping.params[0].value.a = 1;
	TEEC_Result r = TEEC_InvokeCommand(&a, PING, &ping, &o);
	snprintf(d, sizeof d, "res=%#x a=%u", r, ping.params[0].value.a);
	check("the cancelled session carries on", r == TEEC_SUCCESS && ping.params[0].value.a == 2, d);

	/* A loop that never looks: the request changes nothing; the call
	 * timeout ends the instance. */
	struct call c;
	double t0 = now_ms();
	double ms = cancel_after(&b, LOOP_FOREVER, &c);
	double total = c.ended - t0;
	snprintf(d, sizeof d, "%.1f ms after the request (%.0f ms in all, timeout %.0f) res=%#x origin=%u", ms, total,
		 timeout, c.res, c.origin);
	check("a TA looping without looking: TARGET_DEAD, origin TEE, at the call timeout",
	      c.res == TEEC_ERROR_TARGET_DEAD && c.origin == TEEC_ORIGIN_TEE && total >= timeout, d);
	printf("# a TA looping without looking: %s\n", d);
	r = TEEC_InvokeCommand(&a, PING, &ping, &o);
	snprintf(d, sizeof d, "res=%#x a=%u", r, ping.params[0].value.a);
	check("another session carries on", r == TEEC_SUCCESS && ping.params[0].value.a == 3, d);
	TEEC_CloseSession(&a);
	TEEC_CloseSession(&b);
	TEEC_FinalizeContext(&ctx);
	printf("%d failed\n", failed);
	return failed != 0;
}
