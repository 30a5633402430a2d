/* Issue 17, `supplicant:gone:after=DUR`: a supplicant of our own takes the
 * LOAD_TA request of an open session to a TA that is not built in and
 * never answers; when the fault fires, the open session fails as OP-TEE
 * fails when the supplicant's answer is TEEC_ERROR_COMMUNICATION, the
 * supplicant's blocked SUPPL_RECV ends with EINTR, and from then on a new
 * open session to such a TA fails at once the same way. Prints one
 * "ok"/"FAIL" line per check, "N failed" and "done" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/tee.h>

#include "check.h"
#include "sdp_ta.h"

#define OPTEE_RPC_CMD_LOAD_TA 0
#define TEEC_ERROR_COMMUNICATION 0xffff000e
#define TEEC_ORIGIN_TEE 3
#define NPARAMS 5

static const uint8_t MISSING[16] = { 0x5e, 0x55, 0x10, 0x4e, 0x00, 0x01, 0x02, 0x03,
				     0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b };

struct supp_msg {
	union {
		struct tee_iocl_supp_recv_arg r;
		struct tee_iocl_supp_send_arg s;
	} h;
	struct tee_ioctl_param p[NPARAMS];
};

static int supp, client;

struct recv_result {
	struct supp_msg m;
	int r, err;
};

static void *receive(void *arg) {
	struct recv_result *res = arg;
	memset(&res->m, 0, sizeof res->m);
	res->m.h.r.num_params = NPARAMS;
	res->m.p[0].attr = TEE_IOCTL_PARAM_ATTR_META;
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&res->m, .buf_len = sizeof res->m };
	res->r = ioctl(supp, TEE_IOC_SUPPL_RECV, &b);
	res->err = errno;
	return NULL;
}

struct open_result {
	int r, err;
	uint32_t ret, origin;
};

static void *open_missing(void *arg) {
	struct open_result *res = arg;
	struct sdp_session os;
	struct tee_ioctl_buf_data ob = sdp_open_arg(&os);
	memcpy(os.a.uuid, MISSING, 16);
	os.a.num_params = 0;
	ob.buf_len = sizeof os.a;
	res->r = ioctl(client, TEE_IOC_OPEN_SESSION, &ob);
	res->err = errno;
	res->ret = os.a.ret;
	res->origin = os.a.ret_origin;
	return NULL;
}

int main(void) {
	char d[160];
	supp = open("/dev/teepriv0", O_RDWR);
	client = open("/dev/tee0", O_RDWR);
	check("teepriv0 and tee0 open", supp >= 0 && client >= 0, strerror(errno));

	/* Before the fault: the supplicant takes LOAD_TA and keeps it. */
	static struct recv_result first, second;
	static struct open_result pending, later;
	pthread_t t, o;
	pthread_create(&t, NULL, receive, &first);
	usleep(200 * 1000);
	pthread_create(&o, NULL, open_missing, &pending);
	pthread_join(t, NULL);
	snprintf(d, sizeof d, "r=%d errno=%d func=%u", first.r, first.err, first.m.h.r.func);
	check("SUPPL_RECV takes LOAD_TA before the fault", first.r == 0 && first.m.h.r.func == OPTEE_RPC_CMD_LOAD_TA,
	      d);

	/* The supplicant waits for the next request; the fault cuts it off. */
	pthread_create(&t, NULL, receive, &second);
	pthread_join(o, NULL);
	snprintf(d, sizeof d, "r=%d errno=%d ret=%#x origin=%u", pending.r, pending.err, pending.ret, pending.origin);
	check("the pending open session fails with COMMUNICATION from the TEE",
	      pending.r == 0 && pending.ret == TEEC_ERROR_COMMUNICATION && pending.origin == TEEC_ORIGIN_TEE, d);
	pthread_join(t, NULL);
	snprintf(d, sizeof d, "r=%d errno=%d", second.r, second.err);
	check("the blocked SUPPL_RECV ends with EINTR", second.r < 0 && second.err == EINTR, d);

	/* Answering the aborted request finds none. */
	struct supp_msg sd;
	memset(&sd, 0, sizeof sd);
	sd.h.s.num_params = first.m.h.r.num_params;
	memcpy(sd.p, first.m.p, sizeof sd.p);
	struct tee_ioctl_buf_data sb = { .buf_ptr = (uintptr_t)&sd,
					 .buf_len = sizeof sd.h + sd.h.s.num_params * sizeof sd.p[0] };
	int r = ioctl(supp, TEE_IOC_SUPPL_SEND, &sb);
	snprintf(d, sizeof d, "r=%d errno=%d", r, errno);
	check("answering the aborted request is ENOENT", r < 0 && errno == ENOENT, d);

	/* From then on: no supplicant serves, requests fail at once. */
	open_missing(&later);
	snprintf(d, sizeof d, "r=%d errno=%d ret=%#x origin=%u", later.r, later.err, later.ret, later.origin);
	check("a later open session fails with COMMUNICATION at once",
	      later.r == 0 && later.ret == TEEC_ERROR_COMMUNICATION && later.origin == TEEC_ORIGIN_TEE, d);
	receive(&second);
	snprintf(d, sizeof d, "r=%d errno=%d", second.r, second.err);
	check("a later SUPPL_RECV ends with EINTR at once", second.r < 0 && second.err == EINTR, d);

	close(supp);
	close(client);
	printf("%d failed\ndone\n", failed);
	return failed != 0;
}
