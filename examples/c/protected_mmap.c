/* A protected buffer cannot be mapped by the CPU.
 *
 * Memory from a protected heap sits behind the memory firewall: only the
 * devices of its pipeline (and the secure world) may touch it. So mmap of
 * such a dma-buf fails: EINVAL on a board, EACCES under teeheap (there the
 * host kernel refuses the fd itself, which has no read access, so a
 * program's mmap never waits for teeheap), while the same call on a
 * `system` buffer works.
 *
 *     cc -O2 -Wall -o protected_mmap protected_mmap.c
 *     teeheap run -- ./protected_mmap [HEAP]     (default protected,secure-video)
 *
 * Exits 0 when the protected mapping was refused (EINVAL or EACCES). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>

#define LEN 65536

static int alloc_from(const char *heap_name) {
	char path[300];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", heap_name);
	int heap = open(path, O_RDONLY | O_CLOEXEC);
	if (heap < 0) {
		perror(path);
		return -1;
	}
	struct dma_heap_allocation_data data = { .len = LEN, .fd_flags = O_RDWR | O_CLOEXEC };
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data);
	if (r < 0)
		fprintf(stderr, "%s: DMA_HEAP_IOCTL_ALLOC: %s\n", path, strerror(errno));
	close(heap);
	return r < 0 ? -1 : (int)data.fd;
}

/* Tries to map `buf`; returns 0 on success, else errno. */
static int try_mmap(int buf) {
	void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED)
		return errno;
	munmap(p, LEN);
	return 0;
}

int main(int argc, char **argv) {
	const char *heap = argc > 1 ? argv[1] : "protected,secure-video";
	int normal = alloc_from("system");
	int protected = alloc_from(heap);
	if (normal < 0 || protected < 0)
		return 1;

	int e = try_mmap(normal);
	printf("mmap of a system buffer: %s\n", e ? strerror(e) : "mapped");

	e = try_mmap(protected);
	printf("mmap of a %s buffer: %s\n", heap, e ? strerror(e) : "mapped (!)");

	close(normal);
	close(protected);
	return e == EINVAL || e == EACCES ? 0 : 1;
}
