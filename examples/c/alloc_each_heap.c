/* Allocate a buffer from every DMA heap in /dev/dma_heap.
 *
 * Plain <linux/dma-heap.h>: the same program works on a board with real
 * protected heaps and under teeheap:
 *
 *     cc -O2 -Wall -o alloc_each_heap alloc_each_heap.c
 *     teeheap run -- ./alloc_each_heap
 *
 * With --hold the buffers stay open until standard input is closed, so
 * that `teeheap bufinfo` (or a test) can look at them meanwhile.
 * Exits 0 when every heap gave a buffer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>

#define BUFFER_SIZE (1 << 20)
#define MAX_HEAPS 16

/* Returns a dma-buf fd of `len` bytes from the heap at `path`, or -1. */
static int alloc_from(const char *path, size_t len) {
	int heap = open(path, O_RDONLY | O_CLOEXEC);
	if (heap < 0)
		return -1;
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC, /* flags of the new dma-buf fd */
	};
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data);
	int saved = errno;
	close(heap); /* the buffer does not need the heap fd */
	errno = saved;
	return r < 0 ? -1 : (int)data.fd;
}

/* A system buffer is ordinary memory: map it, write, read back. */
static int touch(int buf) {
	char *p = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED)
		return -1;
	strcpy(p, "hello from the CPU");
	int ok = strcmp(p, "hello from the CPU") == 0;
	munmap(p, BUFFER_SIZE);
	return ok ? 0 : -1;
}

int main(int argc, char **argv) {
	int hold = argc > 1 && strcmp(argv[1], "--hold") == 0;
	DIR *dir = opendir("/dev/dma_heap");
	if (!dir) {
		perror("/dev/dma_heap");
		return 1;
	}
	int bufs[MAX_HEAPS], n = 0, failed = 0;
	struct dirent *e;
	while ((e = readdir(dir)) && n < MAX_HEAPS) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof path, "/dev/dma_heap/%s", e->d_name);
		int buf = alloc_from(path, BUFFER_SIZE);
		if (buf < 0) {
			printf("%-32s allocation failed: %s\n", e->d_name, strerror(errno));
			failed++;
			continue;
		}
		/* A dma-buf's size is where lseek(SEEK_END) lands. */
		off_t size = lseek(buf, 0, SEEK_END);
		printf("%-32s fd %d, %lld bytes", e->d_name, buf, (long long)size);
		if (strcmp(e->d_name, "system") == 0) {
			int ok = touch(buf) == 0;
			printf(", mapped and written: %s", ok ? "ok" : strerror(errno));
			failed += !ok;
		}
		printf("\n");
		bufs[n++] = buf;
	}
	closedir(dir);
	if (hold) {
		printf("holding %d buffers until stdin closes\n", n);
		fflush(stdout);
		char c;
		while (read(STDIN_FILENO, &c, 1) > 0)
			;
	}
	/* Closing the last fd releases a buffer (as would exiting). */
	for (int i = 0; i < n; i++)
		close(bufs[i]);
	printf("%d heaps, %d failed\n", n + failed, failed);
	return failed || n == 0 ? 1 : 0;
}
