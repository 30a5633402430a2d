/* The accounting views of dma-bufs (issue 19 row): per-buffer sysfs stats
 * at /sys/kernel/dmabuf/buffers/<ino>/{size,exporter_name} and debugfs
 * /sys/kernel/debug/dma_buf/bufinfo, run under `teeheap run` by
 * tests/fdops.rs. The daemon refreshes them within ~200 ms, so each check
 * polls for up to 3 s. Prints "ok"/"FAIL" lines and "N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>

/* The contents of `path` (up to n-1 bytes), or "" if absent. */
static void slurp(const char *path, char *out, size_t n) {
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t got = 0;
	ssize_t r;
	while (got < n - 1 && (r = read(fd, out + got, n - 1 - got)) > 0)
		got += r;
	out[got] = 0;
	close(fd);
}

/* Polls `path` for up to 3 s until it contains `want` (or, with want NULL,
 * until it is gone). */
static int wait_for(const char *path, const char *want, char *buf, size_t n) {
	for (int i = 0; i < 300; i++) {
		slurp(path, buf, n);
		if (want ? strstr(buf, want) != NULL : access(path, F_OK) != 0)
			return 1;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	static char buf[65536];
	char path[256], want[256];
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	struct dma_heap_allocation_data a = { .len = 12288, .fd_flags = O_RDWR | O_CLOEXEC };
	check("alloc system 12288", heap >= 0 && ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) == 0, strerror(errno));
	struct stat st;
	fstat(a.fd, &st);
	check("named", ioctl(a.fd, DMA_BUF_SET_NAME_B, "viewed") == 0, strerror(errno));
	snprintf(path, sizeof path, "/sys/kernel/dmabuf/buffers/%lu/size", (unsigned long)st.st_ino);
	check("sysfs size", wait_for(path, "12288\n", buf, sizeof buf), buf);
	snprintf(path, sizeof path, "/sys/kernel/dmabuf/buffers/%lu/exporter_name", (unsigned long)st.st_ino);
	check("sysfs exporter_name", wait_for(path, "\n", buf, sizeof buf) && strlen(buf) > 1, buf);
	snprintf(want, sizeof want, "%08lu\tviewed\n", (unsigned long)st.st_ino);
	check("debugfs bufinfo lists the buffer", wait_for("/sys/kernel/debug/dma_buf/bufinfo", want, buf, sizeof buf),
	      buf);
	check("debugfs bufinfo header", strstr(buf, "Dma-buf Objects:") && strstr(buf, "exp_name"), buf);
	check("the rest of /sys/kernel is the host's", access("/sys/kernel/mm", F_OK) == 0, strerror(errno));
	close(a.fd);
	snprintf(path, sizeof path, "/sys/kernel/dmabuf/buffers/%lu", (unsigned long)st.st_ino);
	check("sysfs entry gone after close", wait_for(path, NULL, buf, sizeof buf), path);
	printf("%d failed\n", failed);
	return failed != 0;
}
