/* Waiting for the work on a buffer with sync_file fences.
 *
 * A decoder writes a frame into a protected buffer while a display reads
 * the previous one. Before the CPU (or another device) touches a buffer,
 * a pipeline asks the buffer for a fence — DMA_BUF_IOCTL_EXPORT_SYNC_FILE
 * gives a sync_file fd that polls readable once the pending work is done —
 * and it hands its own fences to the next stage with IMPORT_SYNC_FILE.
 * Two fences merge into one with SYNC_IOC_MERGE. This program names its
 * buffers, exports, merges, waits and imports; under teeheap (as on a
 * board with no work pending) every fence is already signalled.
 *
 *     cc -O2 -Wall -o buffer_fences buffer_fences.c
 *     teeheap run -- ./buffer_fences
 *
 * Exits 0 when every step worked. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>

static int alloc_named(const char *heap_name, const char *buf_name) {
	char path[300];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", heap_name);
	int heap = open(path, O_RDONLY | O_CLOEXEC);
	if (heap < 0) {
		perror(path);
		return -1;
	}
	struct dma_heap_allocation_data data = { .len = 1 << 20, .fd_flags = O_RDWR | O_CLOEXEC };
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data);
	close(heap);
	if (r < 0) {
		fprintf(stderr, "%s: DMA_HEAP_IOCTL_ALLOC: %s\n", path, strerror(errno));
		return -1;
	}
	/* Names are bytes, at most 31 and a NUL; `teeheap bufinfo` shows them. */
	if (ioctl((int)data.fd, DMA_BUF_SET_NAME_B, buf_name) < 0)
		perror("DMA_BUF_SET_NAME");
	return (int)data.fd;
}

/* The fence a reader (DMA_BUF_SYNC_READ) or writer (WRITE) waits for. */
static int fence_of(int buf, unsigned flags) {
	struct dma_buf_export_sync_file e = { .flags = flags };
	if (ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) < 0) {
		perror("DMA_BUF_IOCTL_EXPORT_SYNC_FILE");
		return -1;
	}
	return e.fd;
}

int main(void) {
	int frame = alloc_named("protected,secure-video", "decoder frame 1");
	int shown = alloc_named("protected,secure-video", "display frame 0");
	if (frame < 0 || shown < 0)
		return 1;

	/* Before overwriting `frame`: wait for everyone using it. Before
	 * reading `shown`: wait for its writers only. */
	int before_write = fence_of(frame, DMA_BUF_SYNC_WRITE);
	int before_read = fence_of(shown, DMA_BUF_SYNC_READ);
	if (before_write < 0 || before_read < 0)
		return 1;

	struct sync_merge_data m = { .fd2 = before_read };
	strcpy(m.name, "frame swap");
	if (ioctl(before_write, SYNC_IOC_MERGE, &m) < 0) {
		perror("SYNC_IOC_MERGE");
		return 1;
	}

	struct pollfd p = { .fd = m.fence, .events = POLLIN };
	int ready = poll(&p, 1, 1000);
	struct sync_file_info info = { 0 };
	ioctl(m.fence, SYNC_IOC_FILE_INFO, &info);
	printf("fence \"%s\": %s (status %d, %u fence%s)\n", info.name,
	       ready == 1 && (p.revents & POLLIN) ? "signalled" : "still pending", info.status, info.num_fences,
	       info.num_fences == 1 ? "" : "s");

	/* Hand the merged fence to the displayed buffer: whoever writes it
	 * next waits for this work too. */
	struct dma_buf_import_sync_file imp = { .flags = DMA_BUF_SYNC_WRITE, .fd = m.fence };
	if (ioctl(shown, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &imp) < 0) {
		perror("DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
		return 1;
	}
	printf("imported into \"display frame 0\": ok\n");

	close(m.fence);
	close(before_read);
	close(before_write);
	close(shown);
	close(frame);
	return ready == 1 ? 0 : 1;
}
