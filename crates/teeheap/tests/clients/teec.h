/* A small libteec-style client over the raw TEE ioctls (our own; names as
 * the GlobalPlatform TEE Client API): contexts, sessions, value-parameter
 * invokes and TEEC_RequestCancellation from another thread. Enough for the
 * test clients; no shared-memory parameters. */
#ifndef TEEHEAP_TEEC_H
#define TEEHEAP_TEEC_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/tee.h>

typedef uint32_t TEEC_Result;
#define TEEC_SUCCESS 0x00000000
#define TEEC_ERROR_GENERIC 0xffff0000
#define TEEC_ERROR_CANCEL 0xffff0002
#define TEEC_ERROR_BAD_PARAMETERS 0xffff0006
#define TEEC_ORIGIN_API 1
#define TEEC_ORIGIN_COMMS 2
#define TEEC_ORIGIN_TRUSTED_APP 4
#define TEEC_NONE 0
#define TEEC_VALUE_INPUT 1
#define TEEC_VALUE_OUTPUT 2
#define TEEC_VALUE_INOUT 3
#define TEEC_PARAM_TYPES(a, b, c, d) ((a) | (b) << 4 | (c) << 8 | (d) << 12)
#define TEEC_PARAM_TYPE_GET(t, i) (((t) >> ((i) * 4)) & 0xf)

typedef struct { uint8_t octets[16]; } TEEC_UUID;
typedef struct { int fd; } TEEC_Context;
typedef struct { TEEC_Context *ctx; uint32_t id; } TEEC_Session;
typedef union {
	struct { uint32_t a, b; } value;
} TEEC_Parameter;
typedef struct {
	uint32_t started;
	uint32_t paramTypes;
	TEEC_Parameter params[4];
	/* private */
	TEEC_Session *session;
	uint32_t cancel_id;
} TEEC_Operation;

static inline TEEC_Result TEEC_InitializeContext(const char *name, TEEC_Context *ctx) {
	ctx->fd = open(name ? name : "/dev/tee0", O_RDWR | O_CLOEXEC);
	return ctx->fd < 0 ? TEEC_ERROR_GENERIC : TEEC_SUCCESS;
}

static inline void TEEC_FinalizeContext(TEEC_Context *ctx) {
	close(ctx->fd);
}

/* The parameters follow the argument struct directly. */
struct teec_open_arg {
	struct tee_ioctl_open_session_arg a;
	struct tee_ioctl_param p[4];
};

struct teec_invoke_arg {
	struct tee_ioctl_invoke_arg a;
	struct tee_ioctl_param p[4];
};

static inline void teec_params_in(TEEC_Operation *op, struct tee_ioctl_param *p) {
	for (int i = 0; i < 4; i++) {
		uint32_t t = op ? TEEC_PARAM_TYPE_GET(op->paramTypes, i) : TEEC_NONE;
		memset(&p[i], 0, sizeof p[i]);
		if (t >= TEEC_VALUE_INPUT && t <= TEEC_VALUE_INOUT) {
			p[i].attr = t; /* TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_* have the same values */
			p[i].a = op->params[i].value.a;
			p[i].b = op->params[i].value.b;
		}
	}
}

static inline void teec_params_out(TEEC_Operation *op, const struct tee_ioctl_param *p) {
	for (int i = 0; op && i < 4; i++) {
		uint32_t t = TEEC_PARAM_TYPE_GET(op->paramTypes, i);
		if (t == TEEC_VALUE_OUTPUT || t == TEEC_VALUE_INOUT) {
			op->params[i].value.a = (uint32_t)p[i].a;
			op->params[i].value.b = (uint32_t)p[i].b;
		}
	}
}

static uint32_t teec_next_cancel_id = 1;

static inline TEEC_Result TEEC_OpenSession(TEEC_Context *ctx, TEEC_Session *s, const TEEC_UUID *uuid,
					   uint32_t login, const void *data, TEEC_Operation *op,
					   uint32_t *origin) {
	(void)data;
	struct teec_open_arg arg;
	memset(&arg, 0, sizeof arg);
	memcpy(arg.a.uuid, uuid->octets, 16);
	arg.a.clnt_login = login;
	arg.a.num_params = 4;
	teec_params_in(op, arg.p);
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&arg, .buf_len = sizeof arg.a + sizeof arg.p };
	if (ioctl(ctx->fd, TEE_IOC_OPEN_SESSION, &b) != 0) {
		if (origin)
			*origin = TEEC_ORIGIN_COMMS;
		return TEEC_ERROR_GENERIC;
	}
	teec_params_out(op, arg.p);
	if (origin)
		*origin = arg.a.ret_origin;
	s->ctx = ctx;
	s->id = arg.a.session;
	return arg.a.ret;
}

static inline TEEC_Result TEEC_InvokeCommand(TEEC_Session *s, uint32_t cmd, TEEC_Operation *op, uint32_t *origin) {
	struct teec_invoke_arg arg;
	memset(&arg, 0, sizeof arg);
	arg.a.func = cmd;
	arg.a.session = s->id;
	arg.a.num_params = 4;
	if (op) {
		op->session = s;
		op->cancel_id = __sync_fetch_and_add(&teec_next_cancel_id, 1);
		arg.a.cancel_id = op->cancel_id;
		__sync_synchronize();
		op->started = 1;
	}
	teec_params_in(op, arg.p);
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&arg, .buf_len = sizeof arg.a + sizeof arg.p };
	if (ioctl(s->ctx->fd, TEE_IOC_INVOKE, &b) != 0) {
		if (origin)
			*origin = TEEC_ORIGIN_COMMS;
		return TEEC_ERROR_GENERIC;
	}
	teec_params_out(op, arg.p);
	if (origin)
		*origin = arg.a.ret_origin;
	return arg.a.ret;
}

/* From another thread, once op->started is set. */
static inline void TEEC_RequestCancellation(TEEC_Operation *op) {
	while (!op->started)
		usleep(100);
	struct tee_ioctl_cancel_arg ca = { .cancel_id = op->cancel_id, .session = op->session->id };
	ioctl(op->session->ctx->fd, TEE_IOC_CANCEL, &ca);
}

static inline void TEEC_CloseSession(TEEC_Session *s) {
	struct tee_ioctl_close_session_arg a = { .session = s->id };
	ioctl(s->ctx->fd, TEE_IOC_CLOSE_SESSION, &a);
}

#endif
