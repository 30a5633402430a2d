/* A client for tests/harden.rs, run under `teeheap run`. Modes:
 *   panic     makes the daemon panic while serving its calls (a test-only
 *             ioctl, compiled into test builds of the daemon only) and checks
 *             that each such call fails with EIO while every other call goes
 *             on working.
 * Prints one "ok"/"FAIL" line per check and "N failed" last. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "tee_compat.h"
#include <linux/dma-heap.h>
#include <linux/tee.h>

/* guard::test_hooks::PANIC_IOCTL of crates/daemon. */
#define TEEHEAP_TEST_PANIC _IO('H', 0xfe)

static int failed;

static void check(const char *name, int ok, const char *detail) {
	if (ok)
		printf("ok %s\n", name);
	else {
		failed++;
		printf("FAIL %s: %s\n", name, detail ? detail : "");
	}
	fflush(stdout);
}

static int alloc(int heap, unsigned long len) {
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) < 0)
		return -1;
	return (int)a.fd;
}

static int panic_mode(void) {
	char msg[256];
	int sys = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	int prot = open("/dev/dma_heap/protected,secure-video", O_RDWR | O_CLOEXEC);
	check("open heaps", sys >= 0 && prot >= 0, strerror(errno));
	for (int round = 0; round < 3; round++) {
		errno = 0;
		int r = ioctl(round % 2 ? prot : sys, TEEHEAP_TEST_PANIC, 0);
		snprintf(msg, sizeof msg, "r=%d errno=%d (%s)", r, errno, strerror(errno));
		check("a call whose serving panics fails with EIO", r == -1 && errno == EIO, msg);

		int buf = alloc(sys, 8192);
		snprintf(msg, sizeof msg, "fd %d: %s", buf, strerror(errno));
		check("alloc system after the panic", buf >= 0, msg);
		char *p = buf < 0 ? MAP_FAILED : mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		check("mmap system after the panic", p != MAP_FAILED, strerror(errno));
		if (p != MAP_FAILED) {
			strcpy(p, "still served");
			munmap(p, 8192);
		}
		close(buf);
		int pbuf = alloc(prot, 4096);
		snprintf(msg, sizeof msg, "fd %d: %s", pbuf, strerror(errno));
		check("alloc protected after the panic", pbuf >= 0, msg);
		close(pbuf);

		int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
		struct tee_ioctl_version_data v;
		memset(&v, 0, sizeof v);
		r = tee < 0 ? -1 : ioctl(tee, TEE_IOC_VERSION, &v);
		snprintf(msg, sizeof msg, "r=%d impl_id=%u: %s", r, v.impl_id, strerror(errno));
		check("TEE_IOC_VERSION after the panic", r == 0 && v.impl_id != 0, msg);
		close(tee);
	}
	close(sys);
	close(prot);
	printf("%d failed\n", failed);
	return failed != 0;
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "panic"))
		return panic_mode();
	fprintf(stderr, "usage: harden_client panic\n");
	return 2;
}
