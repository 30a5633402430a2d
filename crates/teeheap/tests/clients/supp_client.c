/* Issue 12: the tee-supplicant protocol under `teeheap run`, driven by a
 * supplicant of our own: /dev/teepriv0 is single-open (EBUSY), the
 * supplicant ioctls check their arguments as Linux does, and an open
 * session to a TA that is not built in makes the secure world send
 * LOAD_TA to the supplicant, whose answer decides the session. Prints one
 * "ok"/"FAIL" line per check and "N failed" last. */
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
#define TEEC_ERROR_ITEM_NOT_FOUND 0xffff0008
#define TEEC_ORIGIN_TEE 3
#define NPARAMS 5

/* A TA teeheap does not have. */
static const uint8_t MISSING[16] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03,
				     0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b };

struct supp_recv {
	struct tee_iocl_supp_recv_arg h;
	struct tee_ioctl_param p[NPARAMS];
};

struct supp_send {
	struct tee_iocl_supp_send_arg h;
	struct tee_ioctl_param p[NPARAMS];
};

static int supp;
static struct supp_recv got;
static int recv_r, recv_err;

static void *receive(void *arg) {
	(void)arg;
	memset(&got, 0, sizeof got);
	got.h.num_params = NPARAMS;
	got.p[0].attr = TEE_IOCTL_PARAM_ATTR_META; /* as tee-supplicant: requests carry an id */
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&got, .buf_len = sizeof got };
	recv_r = ioctl(supp, TEE_IOC_SUPPL_RECV, &b);
	recv_err = errno;
	return NULL;
}

static char detail[256];

static int client;
static struct sdp_session os;
static struct tee_ioctl_buf_data ob;
static struct {
	int r, err;
	uint32_t ret, origin;
} opened;

static void *open_missing(void *arg) {
	(void)arg;
	opened.r = ioctl(client, TEE_IOC_OPEN_SESSION, &ob);
	opened.err = errno;
	opened.ret = os.a.ret;
	opened.origin = os.a.ret_origin;
	return NULL;
}

int main(void) {
	char e[128];
	supp = open("/dev/teepriv0", O_RDWR);
	struct tee_ioctl_version_data v;
	int r = ioctl(supp, TEE_IOC_VERSION, &v);
	check("teepriv0 is the supplicant's", r == 0 && (v.gen_caps & TEE_GEN_CAP_PRIVILEGED), strerror(errno));
	/* EBUSY at open (teeheap's open gate) or at the first ioctl (no gate:
	 * see supp_open.c, which tells the two apart). */
	int second = open("/dev/teepriv0", O_RDWR);
	r = second < 0 ? -1 : ioctl(second, TEE_IOC_VERSION, &v);
	snprintf(e, sizeof e, "fd=%d r=%d errno=%d", second, r, errno);
	check("a second teepriv0 context is EBUSY", r < 0 && errno == EBUSY, e);
	if (second >= 0)
		close(second);

	/* Argument checks (tee_ioctl_supp_recv / optee_supp_recv). */
	client = open("/dev/tee0", O_RDWR);
	struct supp_recv rv;
	memset(&rv, 0, sizeof rv);
	rv.h.num_params = 1;
	struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&rv, .buf_len = sizeof rv.h + sizeof rv.p[0] };
	r = ioctl(client, TEE_IOC_SUPPL_RECV, &b);
	check("SUPPL_RECV on tee0 is EINVAL", r < 0 && errno == EINVAL, strerror(errno));
	rv.h.num_params = 0;
	b.buf_len = sizeof rv.h;
	r = ioctl(supp, TEE_IOC_SUPPL_RECV, &b);
	check("SUPPL_RECV with no params is EINVAL", r < 0 && errno == EINVAL, strerror(errno));
	rv.h.num_params = 2;
	b.buf_len = sizeof rv.h + sizeof rv.p[0];
	r = ioctl(supp, TEE_IOC_SUPPL_RECV, &b);
	check("SUPPL_RECV with buf_len off num_params is EINVAL", r < 0 && errno == EINVAL, strerror(errno));
	rv.h.num_params = 1;
	rv.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT;
	b.buf_len = sizeof rv.h + sizeof rv.p[0];
	r = ioctl(supp, TEE_IOC_SUPPL_RECV, &b);
	check("SUPPL_RECV with a value param is EINVAL", r < 0 && errno == EINVAL, strerror(errno));
	struct supp_send sd;
	memset(&sd, 0, sizeof sd);
	sd.h.num_params = 1;
	sd.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT | TEE_IOCTL_PARAM_ATTR_META;
	sd.p[0].a = 4242;
	struct tee_ioctl_buf_data sb = { .buf_ptr = (uintptr_t)&sd, .buf_len = sizeof sd.h + sizeof sd.p[0] };
	r = ioctl(supp, TEE_IOC_SUPPL_SEND, &sb);
	check("SUPPL_SEND for no such request is ENOENT", r < 0 && errno == ENOENT, strerror(errno));

	/* An open session to a missing TA: the supplicant gets LOAD_TA. */
	pthread_t t;
	pthread_create(&t, NULL, receive, NULL);
	/* Let it wait in SUPPL_RECV: a supplicant that never asked is none. */
	usleep(200 * 1000);
	ob = sdp_open_arg(&os);
	memcpy(os.a.uuid, MISSING, 16);
	os.a.num_params = 0;
	ob.buf_len = sizeof os.a;
	pthread_t o;
	pthread_create(&o, NULL, open_missing, NULL);
	pthread_join(t, NULL);
	snprintf(detail, sizeof detail, "r=%d errno=%d func=%u n=%u", recv_r, recv_err, got.h.func, got.h.num_params);
	check("SUPPL_RECV receives LOAD_TA", recv_r == 0 && got.h.func == OPTEE_RPC_CMD_LOAD_TA && got.h.num_params == 3,
	      detail);
	check("the request id comes in a META value",
	      got.p[0].attr == (TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT | TEE_IOCTL_PARAM_ATTR_META), detail);
	uint8_t uuid[16];
	memcpy(uuid, &got.p[1].a, 8);
	memcpy(uuid + 8, &got.p[1].b, 8);
	check("LOAD_TA names the TA's UUID in a value",
	      got.p[1].attr == TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT && memcmp(uuid, MISSING, 16) == 0, detail);
	check("LOAD_TA asks the size with a NULL output memref",
	      got.p[2].attr == TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT && got.p[2].c == (uint64_t)-1 && got.p[2].b == 0,
	      detail);

	/* Answer: no such TA. A wrong parameter count is refused first. */
	memset(&sd, 0, sizeof sd);
	sd.h.ret = TEEC_ERROR_ITEM_NOT_FOUND;
	sd.h.num_params = 2;
	sd.p[0] = got.p[0];
	sb.buf_len = sizeof sd.h + 2 * sizeof sd.p[0];
	r = ioctl(supp, TEE_IOC_SUPPL_SEND, &sb);
	check("SUPPL_SEND with a wrong param count is EINVAL", r < 0 && errno == EINVAL, strerror(errno));
	sd.h.num_params = 3;
	sd.p[1] = got.p[1];
	sd.p[2] = got.p[2];
	sb.buf_len = sizeof sd.h + 3 * sizeof sd.p[0];
	r = ioctl(supp, TEE_IOC_SUPPL_SEND, &sb);
	check("SUPPL_SEND delivers the answer", r == 0, strerror(errno));
	pthread_join(o, NULL);
	snprintf(detail, sizeof detail, "r=%d errno=%d ret=%#x origin=%u", opened.r, opened.err, opened.ret,
		 opened.origin);
	check("the session fails with ITEM_NOT_FOUND from the TEE",
	      opened.r == 0 && opened.ret == TEEC_ERROR_ITEM_NOT_FOUND && opened.origin == TEEC_ORIGIN_TEE, detail);
	r = ioctl(supp, TEE_IOC_SUPPL_SEND, &sb);
	check("answering it again is ENOENT", r < 0 && errno == ENOENT, strerror(errno));

	printf("%d failed\n", failed);
	return failed != 0;
}
