/* Issue 12: a TA's bytes through tee-supplicant, as OP-TEE loads a TA it
 * does not have. A supplicant of our own (a thread here: the real
 * optee_client tee-supplicant is not packaged in Debian bookworm) serves
 * `<uuid>.ta` files from DIR, a directory teeheap is not told about:
 * LOAD_TA with a NULL memref gets the size, SHM_ALLOC is served with
 * TEE_IOC_SHM_ALLOC on the supplicant's own context, the second LOAD_TA
 * copies the image into that memory, SHM_FREE gives it back. Then a
 * session opens and invokes; a missing TA, a truncated image, a short
 * buffer and an oversized image fail as OP-TEE's would.
 *
 * Usage: supp_ta DIR UUID (the TA in DIR: tests/tas/misbehave, whose PING
 * adds 1 to value a). Prints one "ok"/"FAIL" line per check, "N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/tee.h>

#include "check.h"
#include "sdp_ta.h"

#define RPC_LOAD_TA 0
#define RPC_SHM_ALLOC 6
#define RPC_SHM_FREE 7
#define TEEC_SUCCESS 0
#define TEEC_ERROR_OUT_OF_MEMORY 0xffff000c
#define TEEC_ERROR_ITEM_NOT_FOUND 0xffff0008
#define TEEC_ERROR_SECURITY 0xffff000f
#define TEEC_ERROR_SHORT_BUFFER 0xffff0010
#define TEEC_ORIGIN_TEE 3
#define NPARAMS 5
#define META (TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT | TEE_IOCTL_PARAM_ATTR_META)

/* How the supplicant answers the next LOAD_TA. */
enum mode { SERVE, TRUNCATE, SHORT, HUGE };
static volatile enum mode mode = SERVE;
static const char *dir;
static int supp;

/* What the supplicant saw (read after each session attempt). */
static struct {
	int size_rounds, byte_rounds, allocs, frees, live;
	uint64_t asked, alloc_size;
	int64_t byte_round_shm;
} seen;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct shm {
	int id, fd;
	void *p;
	size_t size;
} shms[8];

struct recv_buf {
	struct tee_iocl_supp_recv_arg h;
	struct tee_ioctl_param p[NPARAMS];
};
struct send_buf {
	struct tee_iocl_supp_send_arg h;
	struct tee_ioctl_param p[NPARAMS];
};

/* The image of the TA named by the octets in `v`, or NULL. */
static uint8_t *read_ta(const struct tee_ioctl_param *v, size_t *len) {
	uint8_t u[16];
	memcpy(u, &v->a, 8);
	memcpy(u + 8, &v->b, 8);
	char path[512];
	snprintf(path, sizeof path,
		 "%s/%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x.ta", dir, u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*len);
	if (fread(b, 1, *len, f) != *len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static struct shm *shm_by_id(int64_t id) {
	for (int i = 0; i < 8; i++)
		if (shms[i].p && shms[i].id == id)
			return &shms[i];
	return NULL;
}

/* tee-supplicant's load_ta: the size for a NULL memref, the bytes when
 * they fit, else SHORT_BUFFER with the size. */
static uint32_t load_ta(struct tee_ioctl_param *p) {
	size_t len = 0;
	uint8_t *img = read_ta(&p[0], &len);
	if (!img)
		return TEEC_ERROR_ITEM_NOT_FOUND;
	struct tee_ioctl_param *m = &p[1];
	pthread_mutex_lock(&lock);
	uint32_t ret = TEEC_SUCCESS;
	if (mode == HUGE)
		len = (size_t)1 << 30;
	if (m->c == (uint64_t)-1) {
		seen.size_rounds++;
		seen.asked = len;
		m->b = len;
	} else {
		seen.byte_rounds++;
		seen.byte_round_shm = (int64_t)m->c;
		struct shm *s = shm_by_id((int64_t)m->c);
		if (!s || m->a + m->b > s->size)
			ret = 0xffff0000; /* GENERIC */
		else if (mode == SHORT || len > m->b) {
			m->b = len + 4096;
			ret = TEEC_ERROR_SHORT_BUFFER;
		} else {
			size_t n = mode == TRUNCATE ? len / 2 : len;
			memcpy((uint8_t *)s->p + m->a, img, n);
			m->b = n;
		}
	}
	pthread_mutex_unlock(&lock);
	free(img);
	return ret;
}

/* tee-supplicant's process_alloc: TEE_IOC_SHM_ALLOC on its own context. */
static uint32_t shm_alloc(struct tee_ioctl_param *p) {
	struct tee_ioctl_shm_alloc_data d = { .size = p[0].b };
	int fd = ioctl(supp, TEE_IOC_SHM_ALLOC, &d);
	if (fd < 0)
		return TEEC_ERROR_OUT_OF_MEMORY;
	void *m = mmap(NULL, d.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	pthread_mutex_lock(&lock);
	struct shm *s = shm_by_id(-2);
	for (int i = 0; i < 8 && !s; i++)
		if (!shms[i].p)
			s = &shms[i];
	uint32_t ret = TEEC_ERROR_OUT_OF_MEMORY;
	if (m != MAP_FAILED && s) {
		*s = (struct shm){ .id = d.id, .fd = fd, .p = m, .size = d.size };
		p[0].c = (uint64_t)d.id;
		seen.allocs++;
		seen.live++;
		seen.alloc_size = d.size;
		ret = TEEC_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

static uint32_t shm_free(struct tee_ioctl_param *p) {
	pthread_mutex_lock(&lock);
	struct shm *s = shm_by_id((int64_t)p[0].b);
	uint32_t ret = TEEC_ERROR_ITEM_NOT_FOUND;
	if (s) {
		munmap(s->p, s->size);
		close(s->fd);
		s->p = NULL;
		seen.frees++;
		seen.live--;
		ret = TEEC_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

static void *supplicant(void *arg) {
	(void)arg;
	for (;;) {
		struct recv_buf r;
		memset(&r, 0, sizeof r);
		r.h.num_params = NPARAMS;
		r.p[0].attr = TEE_IOCTL_PARAM_ATTR_META;
		struct tee_ioctl_buf_data b = { .buf_ptr = (uintptr_t)&r, .buf_len = sizeof r };
		if (ioctl(supp, TEE_IOC_SUPPL_RECV, &b) != 0)
			return NULL;
		struct send_buf s;
		memset(&s, 0, sizeof s);
		s.h.num_params = r.h.num_params;
		memcpy(s.p, r.p, r.h.num_params * sizeof r.p[0]);
		switch (r.h.func) {
		case RPC_LOAD_TA:
			s.h.ret = load_ta(&s.p[1]);
			break;
		case RPC_SHM_ALLOC:
			s.h.ret = shm_alloc(&s.p[1]);
			break;
		case RPC_SHM_FREE:
			s.h.ret = shm_free(&s.p[1]);
			break;
		default:
			s.h.ret = 0xffff000a; /* NOT_SUPPORTED */
		}
		struct tee_ioctl_buf_data sb = { .buf_ptr = (uintptr_t)&s,
						 .buf_len = sizeof s.h + s.h.num_params * sizeof s.p[0] };
		if (ioctl(supp, TEE_IOC_SUPPL_SEND, &sb) != 0)
			return NULL;
	}
}

static int client;

/* Opens a session to `uuid`: the session id, or -1 with ret/origin. */
static int open_ta(const uint8_t uuid[16], uint32_t *ret, uint32_t *origin) {
	struct sdp_session os;
	struct tee_ioctl_buf_data ob = sdp_open_arg(&os);
	memcpy(os.a.uuid, uuid, 16);
	os.a.num_params = 0;
	ob.buf_len = sizeof os.a;
	int r = ioctl(client, TEE_IOC_OPEN_SESSION, &ob);
	*ret = r == 0 ? os.a.ret : 0xffffffff;
	*origin = os.a.ret_origin;
	return r == 0 && os.a.ret == 0 ? (int)os.a.session : -1;
}

static int parse_uuid(const char *s, uint8_t u[16]) {
	int n = 0;
	for (const char *c = s; *c && n < 32; c++) {
		if (*c == '-')
			continue;
		unsigned v;
		if (sscanf(c, "%1x", &v) != 1)
			return -1;
		u[n / 2] = (uint8_t)(n % 2 ? (u[n / 2] << 4) | v : v);
		n++;
	}
	return n == 32 ? 0 : -1;
}

int main(int argc, char **argv) {
	char d[256];
	uint8_t uuid[16];
	if (argc < 3 || parse_uuid(argv[2], uuid) != 0) {
		fprintf(stderr, "usage: supp_ta DIR UUID\n");
		return 2;
	}
	dir = argv[1];
	supp = open("/dev/teepriv0", O_RDWR);
	client = open("/dev/tee0", O_RDWR);
	check("teepriv0 and tee0 open", supp >= 0 && client >= 0, strerror(errno));
	pthread_t t;
	pthread_create(&t, NULL, supplicant, NULL);
	usleep(200 * 1000); /* in SUPPL_RECV: a supplicant that never asked is none */

	uint32_t ret, origin;
	int session = open_ta(uuid, &ret, &origin);
	snprintf(d, sizeof d, "ret %#x origin %u; size rounds %d, byte rounds %d, allocs %d", ret, origin,
		 seen.size_rounds, seen.byte_rounds, seen.allocs);
	check("a session opens to a TA only the supplicant has", session >= 0, d);
	check("LOAD_TA asked the size, then the bytes into supplicant shm",
	      seen.size_rounds == 1 && seen.byte_rounds == 1 && seen.allocs == 1 && seen.alloc_size >= seen.asked &&
		      seen.byte_round_shm == shms[0].id,
	      d);
	snprintf(d, sizeof d, "allocs %d frees %d live %d", seen.allocs, seen.frees, seen.live);
	check("the shm is given back (SHM_FREE)", seen.frees == 1 && seen.live == 0, d);
	struct sdp_invoke iv;
	struct tee_ioctl_buf_data ib = sdp_invoke_arg(&iv, (uint32_t)session, 0 /* PING */);
	iv.p[0].attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT;
	iv.p[0].a = 41;
	int r = ioctl(client, TEE_IOC_INVOKE, &ib);
	snprintf(d, sizeof d, "r %d ret %#x a %llu", r, iv.a.ret, (unsigned long long)iv.p[0].a);
	check("the loaded TA answers an invoke", r == 0 && iv.a.ret == 0 && iv.p[0].a == 42, d);
	struct tee_ioctl_close_session_arg cs = { .session = (uint32_t)session };
	ioctl(client, TEE_IOC_CLOSE_SESSION, &cs);

	/* No such TA in the supplicant's directory. */
	uint8_t other[16];
	memcpy(other, uuid, 16);
	other[15] ^= 0xff;
	session = open_ta(other, &ret, &origin);
	snprintf(d, sizeof d, "session %d ret %#x origin %u", session, ret, origin);
	check("a TA the supplicant lacks: ITEM_NOT_FOUND from the TEE",
	      session < 0 && ret == TEEC_ERROR_ITEM_NOT_FOUND && origin == TEEC_ORIGIN_TEE, d);

	struct {
		enum mode m;
		const char *name;
		uint32_t want;
		int allocs;
	} bad[] = {
		{ TRUNCATE, "a truncated image: SECURITY from the TEE", TEEC_ERROR_SECURITY, 1 },
		{ SHORT, "SHORT_BUFFER in the second round fails the session with it", TEEC_ERROR_SHORT_BUFFER, 1 },
		{ HUGE, "an image past [tee] max_ta_size: OUT_OF_MEMORY, nothing allocated", TEEC_ERROR_OUT_OF_MEMORY,
		  0 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pthread_mutex_lock(&lock);
		int allocs = seen.allocs;
		mode = bad[i].m;
		pthread_mutex_unlock(&lock);
		session = open_ta(uuid, &ret, &origin);
		pthread_mutex_lock(&lock);
		snprintf(d, sizeof d, "session %d ret %#x origin %u allocs %d live %d", session, ret, origin,
			 seen.allocs - allocs, seen.live);
		check(bad[i].name,
		      session < 0 && ret == bad[i].want && origin == TEEC_ORIGIN_TEE &&
			      seen.allocs - allocs == bad[i].allocs && seen.live == 0,
		      d);
		pthread_mutex_unlock(&lock);
	}

	printf("%d failed\n", failed);
	return failed != 0;
}
