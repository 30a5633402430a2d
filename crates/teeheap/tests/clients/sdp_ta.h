/* OP-TEE's sdp_basic test TA and the OPEN_SESSION argument the test clients
 * send it. */
#ifndef TEEHEAP_SDP_TA_H
#define TEEHEAP_SDP_TA_H

#include <stdint.h>
#include <string.h>
#include <linux/tee.h>

/* OP-TEE's sdp_basic test TA. */
static const uint8_t SDP_UUID[16] = { 0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4,
				      0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99 };

/* TEE_IOC_OPEN_SESSION's argument with four parameters. */
struct sdp_session {
	struct tee_ioctl_open_session_arg a;
	struct tee_ioctl_param p[4];
};

/* Clears `os` for a public-login session to sdp_basic with four NONE
 * parameters; returns the ioctl's buffer descriptor for it. */
static inline struct tee_ioctl_buf_data sdp_open_arg(struct sdp_session *os) {
	memset(os, 0, sizeof *os);
	memcpy(os->a.uuid, SDP_UUID, 16);
	os->a.clnt_login = TEE_IOCTL_LOGIN_PUBLIC;
	os->a.num_params = 4;
	return (struct tee_ioctl_buf_data){ .buf_ptr = (uintptr_t)os, .buf_len = sizeof *os };
}

/* TEE_IOC_INVOKE's argument with four parameters. */
struct sdp_invoke {
	struct tee_ioctl_invoke_arg a;
	struct tee_ioctl_param p[4];
};

/* Clears `iv` for command `func` in `session` with four NONE parameters;
 * returns the ioctl's buffer descriptor for it. */
static inline struct tee_ioctl_buf_data sdp_invoke_arg(struct sdp_invoke *iv, uint32_t session, uint32_t func) {
	memset(iv, 0, sizeof *iv);
	iv->a.func = func;
	iv->a.session = session;
	iv->a.num_params = 4;
	return (struct tee_ioctl_buf_data){ .buf_ptr = (uintptr_t)iv, .buf_len = sizeof *iv };
}

#endif
