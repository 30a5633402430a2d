/* Races mmap against dup2 on the same fd number (issue 11, finding 4), run
 * under `teeheap run` by tests/fdops.rs. One thread keeps swapping fd
 * number N between an ordinary memfd (mappable, filled with 'P') and a file
 * Linux refuses to map (a protected dma-buf, a heap node, a TEE node); the
 * other maps N with MAP_SHARED and, whenever that succeeds, looks in
 * /proc/self/maps at what it got. Any mapping of the forbidden file is a
 * violation. Prints "races R forbidden F plain P"; exits 1 if F > 0.
 * Usage: fd_race protected|heap|tee ITERATIONS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>

static int target = 100, plain, forbidden;
static atomic_int stop;

static void *swapper(void *arg) {
	(void)arg;
	while (!atomic_load(&stop)) {
		dup2(forbidden, target);
		dup2(plain, target);
	}
	return NULL;
}

/* The pathname /proc/self/maps shows for the mapping at `p`. */
static void mapped_name(void *p, char *out, size_t n) {
	char want[32];
	snprintf(want, sizeof want, "%lx-", (unsigned long)p);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	out[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, want, strlen(want)))
			continue;
		char *slash = strchr(line, '/');
		snprintf(out, n, "%s", slash ? slash : "?");
		break;
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv) {
	if (argc != 3)
		return 2;
	long iters = atol(argv[2]);
	plain = memfd_create("plain", MFD_CLOEXEC);
	if (plain < 0 || ftruncate(plain, 4096) < 0)
		return 2;
	if (!strcmp(argv[1], "protected")) {
		int heap = open("/dev/dma_heap/protected,secure-video", O_RDONLY | O_CLOEXEC);
		struct dma_heap_allocation_data a = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
		if (heap < 0 || ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) < 0) {
			perror("alloc");
			return 2;
		}
		forbidden = a.fd;
	} else if (!strcmp(argv[1], "heap")) {
		forbidden = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	} else if (!strcmp(argv[1], "tee")) {
		forbidden = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	} else {
		return 2;
	}
	if (forbidden < 0) {
		perror("open");
		return 2;
	}
	dup2(plain, target);
	pthread_t t;
	pthread_create(&t, NULL, swapper, NULL);
	long bad = 0, good = 0;
	char name[256], first_bad[256] = "";
	for (long i = 0; i < iters; i++) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, target, 0);
		if (p == MAP_FAILED)
			continue;
		mapped_name(p, name, sizeof name);
		if (strstr(name, "/memfd:plain"))
			good++;
		else {
			if (!bad)
				snprintf(first_bad, sizeof first_bad, "%s", name);
			bad++;
		}
		munmap(p, 4096);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("races %ld forbidden %ld plain %ld %s\n", iters, bad, good, first_bad);
	return bad != 0;
}
