/* A client written only against the kernel UAPI, run under interception by
 * tests/serve.rs (dynamically and statically linked). Prints one line per
 * check; the test compares them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/dma-heap.h>

static int alloc(int heap, unsigned long len, unsigned flags) {
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = flags };
	if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) < 0)
		return -errno;
	return (int)a.fd;
}

int main(void) {
	int n = 0, sys_seen = 0;
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		n++;
		sys_seen |= !strcmp(e->d_name, "system");
	}
	printf("heaps: %d system=%d\n", n, sys_seen);
	struct stat st;
	printf("stat: %d\n", stat("/dev/dma_heap/system", &st));

	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	printf("open: %s\n", heap >= 0 ? "ok" : strerror(errno));

	int buf = alloc(heap, 8000, O_RDWR | O_CLOEXEC);
	printf("alloc: %s cloexec=%d\n", buf >= 0 ? "ok" : strerror(-buf),
	       buf >= 0 ? !!(fcntl(buf, F_GETFD) & FD_CLOEXEC) : -1);
	printf("size: %ld\n", (long)lseek(buf, 0, SEEK_END));
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED) {
		printf("mmap: %s\n", strerror(errno));
	} else {
		printf("mmap: ok, daemon wrote \"%s\"\n", p);
		strcpy(p + 4096, "program wrote this");
	}

	int keep = alloc(heap, 4096, O_RDWR);
	printf("alloc2: cloexec=%d\n", !!(fcntl(keep, F_GETFD) & FD_CLOEXEC));

	errno = 0;
	int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, (void *)8);
	printf("bad pointer: %d %s\n", r, strerror(errno));

	int prot = open("/dev/dma_heap/protected,secure-video", O_RDWR);
	int pbuf = alloc(prot, 4096, O_RDWR | O_CLOEXEC);
	printf("protected size: %ld\n", (long)lseek(pbuf, 0, SEEK_END));
	void *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, pbuf, 0);
	printf("protected mmap: %s\n", q == MAP_FAILED ? strerror(errno) : "mapped?!");

	int pipefd[2], avail = -1;
	if (pipe(pipefd) == 0 && write(pipefd[1], "abc", 3) == 3)
		ioctl(pipefd[0], FIONREAD, &avail);
	printf("unrelated ioctl: %d\n", avail);
	fflush(stdout);
	return 0;
}
