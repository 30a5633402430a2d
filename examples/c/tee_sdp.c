/* A TEE session that works on protected memory (secure data path).
 *
 * A protected dma-buf is registered with the TEE (TEE_IOC_SHM_REGISTER_FD,
 * Linux 6.18) and handed to a trusted application, OP-TEE's `sdp_basic`
 * test TA: it copies bytes from normal shared memory into the protected
 * buffer (INJECT), transforms them there (TRANSFORM: b -> -b), and copies
 * them back out (DUMP). The normal world never sees protected memory; it
 * only checks what the TA dumped.
 *
 *     cc -O2 -Wall -o tee_sdp tee_sdp.c
 *     teeheap run -- ./tee_sdp
 *
 * Exits 0 when the dumped bytes are the transformed input. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

/* Linux 6.18 added registering a dma-buf with the TEE. Headers from older
 * kernels (Debian 12 ships 6.1's) lack these definitions; they are the
 * kernel's UAPI, so define them when missing. */
#ifndef TEE_IOC_SHM_REGISTER_FD
struct tee_ioctl_shm_register_fd_data {
	__s64 fd;    /* in: the dma-buf fd */
	__u64 size;  /* out: size of the registered memory */
	__u32 flags; /* in: 0; out: the shm's flags as the kernel keeps them
		      * (6.18: its internal TEE_SHM_DMA_BUF, 0x10) */
	__s32 id;    /* out: shared memory id, for memref parameters */
} __attribute__((aligned(8)));
#define TEE_IOC_SHM_REGISTER_FD \
	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, struct tee_ioctl_shm_register_fd_data)
#endif
#ifndef TEE_IOCTL_SHM_DMA_BUF
#define TEE_IOCTL_SHM_DMA_BUF 0x2
#endif

/* sdp_basic: 12345678-5b69-11e4-9dbb-101f74f00099 */
static const uint8_t SDP_UUID[16] = { 0x12, 0x34, 0x56, 0x78, 0x5b, 0x69, 0x11, 0xe4,
				      0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99 };
enum { CMD_INJECT = 0, CMD_TRANSFORM = 1, CMD_DUMP = 2 };

#define LEN 4096

/* One memref parameter: `len` bytes at `offset` of shared memory `shm_id`. */
static struct tee_ioctl_param memref(uint64_t attr, int shm_id, uint64_t offset, uint64_t len) {
	struct tee_ioctl_param p = { .attr = attr, .a = offset, .b = len, .c = (uint64_t)shm_id };
	return p;
}

/* TEE_IOC_INVOKE `cmd` with up to 4 parameters; returns the TA's result
 * (TEEC_SUCCESS = 0), or -1 if the ioctl itself failed. */
static long invoke(int tee, uint32_t session, uint32_t cmd, const struct tee_ioctl_param *params, int n) {
	struct {
		struct tee_ioctl_invoke_arg arg;
		struct tee_ioctl_param params[4];
	} msg = { .arg = { .func = cmd, .session = session, .num_params = 4 } };
	memcpy(msg.params, params, n * sizeof *params);
	struct tee_ioctl_buf_data buf = { .buf_ptr = (uintptr_t)&msg, .buf_len = sizeof msg };
	if (ioctl(tee, TEE_IOC_INVOKE, &buf) < 0)
		return -1;
	return msg.arg.ret;
}

static int fail(const char *what) {
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	return 1;
}

int main(void) {
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	if (tee < 0)
		return fail("/dev/tee0");
	struct tee_ioctl_version_data version;
	if (ioctl(tee, TEE_IOC_VERSION, &version) < 0)
		return fail("TEE_IOC_VERSION");
	printf("TEE implementation %u, capabilities %#x\n", version.impl_id, version.gen_caps);

	/* Open a session to the TA, as a public (anonymous) client. */
	struct {
		struct tee_ioctl_open_session_arg arg;
		struct tee_ioctl_param params[4];
	} os = { .arg = { .clnt_login = TEE_IOCTL_LOGIN_PUBLIC, .num_params = 4 } };
	memcpy(os.arg.uuid, SDP_UUID, sizeof SDP_UUID);
	struct tee_ioctl_buf_data buf = { .buf_ptr = (uintptr_t)&os, .buf_len = sizeof os };
	if (ioctl(tee, TEE_IOC_OPEN_SESSION, &buf) < 0)
		return fail("TEE_IOC_OPEN_SESSION");
	if (os.arg.ret != 0) {
		fprintf(stderr, "open session: TA error %#x (origin %u)\n", os.arg.ret, os.arg.ret_origin);
		return 1;
	}
	uint32_t session = os.arg.session;
	printf("session %u with sdp_basic\n", session);

	/* A protected buffer, registered with the TEE. The registration holds
	 * the buffer, so its dma-buf fd may be closed at once. */
	int heap = open("/dev/dma_heap/protected,secure-video", O_RDONLY | O_CLOEXEC);
	if (heap < 0)
		return fail("/dev/dma_heap/protected,secure-video");
	struct dma_heap_allocation_data alloc = { .len = LEN, .fd_flags = O_RDWR | O_CLOEXEC };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &alloc) < 0)
		return fail("DMA_HEAP_IOCTL_ALLOC");
	close(heap);
	struct tee_ioctl_shm_register_fd_data reg = { .fd = alloc.fd };
	int protected_shm = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &reg);
	if (protected_shm < 0)
		return fail("TEE_IOC_SHM_REGISTER_FD");
	close(alloc.fd);
	printf("protected buffer registered: shm id %d, %llu bytes, flags %#x\n", reg.id,
	       (unsigned long long)reg.size, reg.flags);

	/* Normal shared memory for the input and the output, mapped here. */
	struct tee_ioctl_shm_alloc_data shm = { .size = 2 * LEN };
	int normal_shm = ioctl(tee, TEE_IOC_SHM_ALLOC, &shm);
	if (normal_shm < 0)
		return fail("TEE_IOC_SHM_ALLOC");
	uint8_t *normal = mmap(NULL, 2 * LEN, PROT_READ | PROT_WRITE, MAP_SHARED, normal_shm, 0);
	if (normal == MAP_FAILED)
		return fail("mmap of TEE shared memory");
	uint8_t *in = normal, *out = normal + LEN;
	for (int i = 0; i < LEN; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	memset(out, 0, LEN);

	/* normal -> protected, transform in protected memory, protected -> normal. */
	struct tee_ioctl_param inject[2] = {
		memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, shm.id, 0, LEN),
		memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, reg.id, 0, LEN),
	};
	struct tee_ioctl_param transform[1] = {
		memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, reg.id, 0, LEN),
	};
	struct tee_ioctl_param dump[2] = {
		memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, reg.id, 0, LEN),
		memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, shm.id, LEN, LEN),
	};
	long r1 = invoke(tee, session, CMD_INJECT, inject, 2);
	long r2 = invoke(tee, session, CMD_TRANSFORM, transform, 1);
	long r3 = invoke(tee, session, CMD_DUMP, dump, 2);
	printf("inject %#lx, transform %#lx, dump %#lx\n", r1, r2, r3);

	int bad = 0;
	for (int i = 0; i < LEN; i++)
		bad += out[i] != (uint8_t)-in[i];
	printf("%d of %d bytes differ from the expected output\n", bad, LEN);

	/* Protected memory is only for the TA: handing it normal memory where
	 * it expects protected memory is refused: the TA asks
	 * TEE_CheckMemoryAccessRights and answers TEE_ERROR_ACCESS_DENIED. */
	struct tee_ioctl_param wrong[1] = { memref(TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT, shm.id, 0, LEN) };
	long r4 = invoke(tee, session, CMD_TRANSFORM, wrong, 1);
	printf("transform on normal memory: %#lx\n", r4);

	struct tee_ioctl_close_session_arg close_arg = { .session = session };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &close_arg);
	munmap(normal, 2 * LEN);
	close(normal_shm);
	close(protected_shm); /* releases the registration and the buffer */
	close(tee);
	return r1 == 0 && r2 == 0 && r3 == 0 && bad == 0 && r4 == 0xffff0001 ? 0 : 1;
}
