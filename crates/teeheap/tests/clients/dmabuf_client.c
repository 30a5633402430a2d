/* dma-buf answers that Linux 6.18 gives, checked under `teeheap run` by
 * tests/dmabuf.rs: ALLOC with fd_flags O_ACCMODE, DMA_BUF_SET_NAME with
 * bytes that are not UTF-8, EXPORT/IMPORT_SYNC_FILE and the sync_file fd
 * (poll, epoll, MERGE, FILE_INFO, SET_DEADLINE, passing it on), each errno
 * as drivers/dma-buf/{dma-heap,dma-buf,sync_file}.c give it.
 *
 * Usage: dmabuf_client TEEHEAP   (the teeheap binary, for `bufinfo --json`)
 * Prints one "ok"/"FAIL" line per check; then "holding N" and waits for a
 * line on stdin with N sync_file fds open; closes them, prints "closed",
 * waits for another line; "N failed" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include "fdpass.h"

/* Linux 6.3; older headers lack it. */
#ifndef SYNC_IOC_SET_DEADLINE
struct sync_set_deadline {
	__u64 deadline_ns;
	__u64 pad;
};
#define SYNC_IOC_SET_DEADLINE _IOW(SYNC_IOC_MAGIC, 5, struct sync_set_deadline)
#endif

static int failed;

static void check(const char *name, int ok, const char *detail) {
	if (ok)
		printf("ok %s\n", name);
	else {
		failed++;
		printf("FAIL %s: %s (errno %d %s)\n", name, detail ? detail : "", errno, strerror(errno));
	}
	fflush(stdout);
}

/* -errno of a failed call, or its result. */
static long ret(long r) {
	return r < 0 ? -errno : r;
}

static int alloc(const char *heap, unsigned long len, unsigned flags) {
	char path[128];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", heap);
	int h = open(path, O_RDONLY | O_CLOEXEC);
	if (h < 0)
		return -errno;
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = flags };
	int r = ioctl(h, DMA_HEAP_IOCTL_ALLOC, &a) < 0 ? -errno : (int)a.fd;
	close(h);
	return r;
}

static long mmap_errno(int fd, int prot) {
	void *p = mmap(NULL, 4096, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	munmap(p, 4096);
	return 0;
}

static void accmode(void) {
	const char *heaps[] = { "system", "protected,secure-video" };
	for (int i = 0; i < 2; i++) {
		char name[160];
		int fd = alloc(heaps[i], 8192, O_ACCMODE | O_CLOEXEC);
		snprintf(name, sizeof name, "alloc O_ACCMODE|O_CLOEXEC %s", heaps[i]);
		check(name, fd >= 0, "Linux allows O_ACCMODE|O_CLOEXEC");
		if (fd < 0)
			continue;
		snprintf(name, sizeof name, "O_ACCMODE %s: F_GETFL access mode 3, FD_CLOEXEC", heaps[i]);
		check(name, (fcntl(fd, F_GETFL) & O_ACCMODE) == 3 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), NULL);
		char b[8];
		snprintf(name, sizeof name, "O_ACCMODE %s: read and write EBADF", heaps[i]);
		check(name, ret(read(fd, b, 8)) == -EBADF && ret(write(fd, b, 8)) == -EBADF, NULL);
		snprintf(name, sizeof name, "O_ACCMODE %s: mmap EACCES", heaps[i]);
		check(name, mmap_errno(fd, PROT_READ) == -EACCES, "the access mode is checked before the exporter");
		struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
		snprintf(name, sizeof name, "O_ACCMODE %s: ioctls work", heaps[i]);
		check(name, ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) == 0, NULL);
		close(fd);
	}
	check("alloc O_ACCMODE|O_NONBLOCK is EINVAL", alloc("system", 4096, O_ACCMODE | O_NONBLOCK) == -EINVAL, NULL);
	int ro = alloc("system", 8192, O_RDONLY);
	check("O_RDONLY system: shared PROT_WRITE mmap EACCES, PROT_READ works",
	      ro >= 0 && mmap_errno(ro, PROT_READ | PROT_WRITE) == -EACCES && mmap_errno(ro, PROT_READ) == 0, NULL);
	close(ro);
}

static void set_name(const char *teeheap) {
	int fd = alloc("protected,secure-video", 4096, O_RDWR | O_CLOEXEC);
	char name[64];
	memset(name, 0xff, 31);
	name[31] = 0;
	check("SET_NAME 31 bytes of 0xff", ioctl(fd, DMA_BUF_SET_NAME_B, name) == 0, "Linux takes bytes");
	check("SET_NAME_A 31 bytes of 0xff", ioctl(fd, DMA_BUF_SET_NAME_A, name) == 0, NULL);
	memset(name, 'x', 40);
	check("SET_NAME 32 bytes without NUL is EINVAL", ret(ioctl(fd, DMA_BUF_SET_NAME_B, name)) == -EINVAL, NULL);
	check("SET_NAME bad pointer is EFAULT", ret(ioctl(fd, DMA_BUF_SET_NAME_B, (void *)8)) == -EFAULT, NULL);

	/* bufinfo shows the bytes escaped: 31 times \xff (in JSON, \\xff). */
	char cmd[512], want[31 * 5 + 1] = "", out[1 << 16];
	for (int i = 0; i < 31; i++)
		strcat(want, "\\\\xff");
	snprintf(cmd, sizeof cmd, "%s bufinfo --json", teeheap);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	out[n] = 0;
	if (p)
		pclose(p);
	check("bufinfo shows the name escaped", strstr(out, want) != NULL, out);
	/* The table shows it below the buffer's row: 31 times \xff. */
	char text_want[8 + 31 * 4 + 1] = " name ";
	for (int i = 0; i < 31; i++)
		strcat(text_want, "\\xff");
	snprintf(cmd, sizeof cmd, "%s bufinfo", teeheap);
	p = popen(cmd, "r");
	n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	out[n] = 0;
	if (p)
		pclose(p);
	check("bufinfo table shows the name escaped", strstr(out, text_want) != NULL, out);
	close(fd);
}

static int export(int buf, unsigned flags) {
	struct dma_buf_export_sync_file e = { .flags = flags, .fd = -1 };
	if (ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) < 0)
		return -errno;
	return e.fd;
}

static int import(int buf, unsigned flags, int fd) {
	struct dma_buf_import_sync_file i = { .flags = flags, .fd = fd };
	return ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &i) < 0 ? -errno : 0;
}

static int pollin(int fd) {
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	return poll(&p, 1, 0) == 1 && p.revents == POLLIN;
}

static long merge(int a, int b, const char *name, unsigned flags, unsigned pad) {
	struct sync_merge_data m = { .fd2 = b, .fence = -1, .flags = flags, .pad = pad };
	strncpy(m.name, name, sizeof m.name);
	if (ioctl(a, SYNC_IOC_MERGE, &m) < 0)
		return -errno;
	return m.fence;
}

static int info(int fd, struct sync_file_info *i, struct sync_fence_info *f, unsigned n) {
	memset(i, 0, sizeof *i);
	i->num_fences = n;
	i->sync_fence_info = (uintptr_t)f;
	return ioctl(fd, SYNC_IOC_FILE_INFO, i) < 0 ? -errno : 0;
}

/* Sync files stay open here until the test has counted them. */
static int held[16], nheld;

static void sync_files(void) {
	int sys = alloc("system", 8192, O_RDWR | O_CLOEXEC);
	int prot = alloc("protected,secure-video", 8192, O_RDWR | O_CLOEXEC);
	int a = export(sys, DMA_BUF_SYNC_READ);
	check("EXPORT_SYNC_FILE READ", a >= 0, NULL);
	check("sync file fd is O_RDONLY|O_CLOEXEC",
	      (fcntl(a, F_GETFL) & O_ACCMODE) == O_RDONLY && (fcntl(a, F_GETFD) & FD_CLOEXEC), NULL);
	check("idle buffer: sync file polls POLLIN", pollin(a), NULL);
	int b = export(prot, DMA_BUF_SYNC_WRITE);
	int c = export(prot, DMA_BUF_SYNC_RW);
	check("EXPORT_SYNC_FILE WRITE and RW of a protected buffer", b >= 0 && c >= 0 && pollin(b) && pollin(c), NULL);
	struct pollfd bp[2] = { { .fd = sys, .events = POLLIN | POLLOUT }, { .fd = prot, .events = POLLIN | POLLOUT } };
	check("poll of an idle dma-buf: POLLIN|POLLOUT",
	      poll(bp, 2, 0) == 2 && bp[0].revents == (POLLIN | POLLOUT) && bp[1].revents == (POLLIN | POLLOUT), NULL);
	check("EXPORT flags 0 is EINVAL", export(sys, 0) == -EINVAL, NULL);
	check("EXPORT flags END is EINVAL", export(sys, DMA_BUF_SYNC_READ | DMA_BUF_SYNC_END) == -EINVAL, NULL);
	check("EXPORT bad pointer is EFAULT", ret(ioctl(sys, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, (void *)8)) == -EFAULT, NULL);

	struct sync_file_info i;
	struct sync_fence_info f[4];
	memset(f, 0x55, sizeof f);
	check("FILE_INFO count only", info(a, &i, NULL, 0) == 0 && i.status == 1 && i.num_fences == 1, NULL);
	check("FILE_INFO name from the signalled stub", !strcmp(i.name, "detached-driver-signaled-timeli"), i.name);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
	check("FILE_INFO fences", info(a, &i, f, 4) == 0 && i.num_fences == 1 && f[0].status == 1 &&
					  !strcmp(f[0].driver_name, "detached-driver") &&
					  !strcmp(f[0].obj_name, "signaled-timeline") && f[0].timestamp_ns > 0 &&
					  f[0].timestamp_ns <= now_ns,
	      f[0].driver_name);
	i.flags = 1;
	check("FILE_INFO flags is EINVAL", ret(ioctl(a, SYNC_IOC_FILE_INFO, &i)) == -EINVAL, NULL);
	check("FILE_INFO bad array is EFAULT", info(a, &i, (void *)8, 1) == -EFAULT, NULL);

	long m = merge(a, b, "merged", 0, 0);
	check("MERGE", m >= 0 && pollin(m), NULL);
	check("MERGE result is named", m >= 0 && info(m, &i, NULL, 0) == 0 && !strcmp(i.name, "merged") && i.status == 1,
	      i.name);
	check("MERGE fd2 a dma-buf is ENOENT", merge(a, sys, "x", 0, 0) == -ENOENT, NULL);
	check("MERGE fd2 -1 is ENOENT", merge(a, -1, "x", 0, 0) == -ENOENT, NULL);
	check("MERGE flags is EINVAL", merge(a, b, "x", 1, 0) == -EINVAL, NULL);
	check("MERGE pad is EINVAL", merge(a, b, "x", 0, 1) == -EINVAL, NULL);

	check("IMPORT_SYNC_FILE WRITE", import(sys, DMA_BUF_SYNC_WRITE, m) == 0, NULL);
	check("IMPORT_SYNC_FILE READ into a protected buffer", import(prot, DMA_BUF_SYNC_READ, a) == 0, NULL);
	check("IMPORT flags 0 is EINVAL", import(sys, 0, a) == -EINVAL, NULL);
	check("IMPORT a dma-buf fd is EINVAL", import(sys, DMA_BUF_SYNC_RW, prot) == -EINVAL, NULL);
	check("IMPORT fd -1 is EINVAL", import(sys, DMA_BUF_SYNC_RW, -1) == -EINVAL, NULL);
	check("IMPORT bad pointer is EFAULT", ret(ioctl(sys, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, (void *)8)) == -EFAULT, NULL);
	int after = export(sys, DMA_BUF_SYNC_RW);
	check("EXPORT after IMPORT: the imported fence, signalled", after >= 0 && pollin(after), NULL);

	struct sync_set_deadline d = { .deadline_ns = now_ns + 1000000 };
	check("SET_DEADLINE", ioctl(a, SYNC_IOC_SET_DEADLINE, &d) == 0, NULL);
	d.pad = 1;
	check("SET_DEADLINE pad is EINVAL", ret(ioctl(a, SYNC_IOC_SET_DEADLINE, &d)) == -EINVAL, NULL);
	check("unknown sync_file ioctl is ENOTTY", ret(ioctl(a, _IO(SYNC_IOC_MAGIC, 9), 0)) == -ENOTTY, NULL);
	check("mmap of a sync file is ENODEV", mmap_errno(a, PROT_READ) == -ENODEV, NULL);
	check("lseek on a sync file is ESPIPE", ret(lseek(a, 0, SEEK_SET)) == -ESPIPE, NULL);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = a }, got;
	check("epoll on a sync file: EPOLLIN",
	      epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev) == 0 && epoll_wait(ep, &got, 1, 1000) == 1 && got.events == EPOLLIN,
	      NULL);
	close(ep);

	/* Passed to another process: the same sync file there. */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		int g = recv_fd(sv[1]);
		struct sync_file_info ci;
		int good = g >= 0 && pollin(g) && info(g, &ci, NULL, 0) == 0 && !strcmp(ci.name, "merged");
		_exit(good ? 0 : 1);
	}
	send_fd(sv[0], m);
	int st = 0;
	waitpid(pid, &st, 0);
	check("sync file passed with SCM_RIGHTS polls and answers in the receiver", WIFEXITED(st) && !WEXITSTATUS(st),
	      NULL);
	close(sv[0]);
	close(sv[1]);

	/* Linux: EINVAL (no read fop). Here: the signal byte, then EAGAIN,
	 * never a read that blocks (docs/serving.md). */
	char rb[8];
	long r1 = ret(read(c, rb, sizeof rb)), r2 = ret(read(c, rb, sizeof rb));
	check("read of a sync file never blocks", r1 == 1 && r2 == -EAGAIN, NULL);

	int keep[] = { a, b, c, (int)m, after };
	for (unsigned k = 0; k < sizeof keep / sizeof keep[0]; k++)
		if (keep[k] >= 0)
			held[nheld++] = keep[k];
	close(sys);
	close(prot);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: %s TEEHEAP\n", argv[0]);
		return 2;
	}
	accmode();
	set_name(argv[1]);
	sync_files();
	printf("holding %d\n", nheld);
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 3;
	for (int k = 0; k < nheld; k++)
		close(held[k]);
	printf("closed\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 3;
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
