/* A client written only against the kernel UAPI (<linux/dma-heap.h>,
 * <linux/dma-buf.h>, <linux/tee.h>), run under `teeheap run` by
 * tests/run.rs, dynamically and statically linked. Prints one "ok"/"FAIL"
 * line per check and "N failed" last; exits non-zero on any failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

static int failed;

static void check(const char *name, int ok, const char *detail) {
	if (ok)
		printf("ok %s\n", name);
	else {
		failed++;
		printf("FAIL %s: %s\n", name, detail ? detail : "");
	}
}

/* ALLOC through a struct of `size` bytes (the first 24 from the args). */
static int alloc_sized(int heap, unsigned long len, unsigned fd, unsigned flags, unsigned long long hflags,
		       size_t size, unsigned char *raw) {
	struct dma_heap_allocation_data a = { .len = len, .fd = fd, .fd_flags = flags, .heap_flags = hflags };
	memcpy(raw, &a, sizeof a);
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, 'H', 0, size);
	if (ioctl(heap, cmd, raw) < 0)
		return -errno;
	return (int)((struct dma_heap_allocation_data *)raw)->fd;
}

static int alloc(int heap, unsigned long len, unsigned flags) {
	unsigned char raw[64] = { 0 };
	return alloc_sized(heap, len, 0, flags, 0, 24, raw);
}

static int send_fd(int sock, int fd) {
	char c = 'F';
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof fd);
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
	char c;
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof fd);
	return fd;
}

/* The second process: it never saw the buffer until it is sent. */
static int reader(int sock) {
	int fd = recv_fd(sock);
	if (fd < 0)
		return 2;
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 3;
	int good = !strcmp(p + 4096, "written by the first process");
	strcpy(p, "answered by the second");
	write(sock, "D", 1);
	return good ? 0 : 4;
}

int main(void) {
	char msg[256];
	/* Fork the reader before any buffer exists. */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t child = fork();
	if (child == 0) {
		close(sv[0]);
		_exit(reader(sv[1]));
	}
	close(sv[1]);

	char names[16][256];
	int n = 0, has_sys = 0, has_prot = 0;
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 16) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(names[n++], 256, "%s", e->d_name);
		has_sys |= !strcmp(e->d_name, "system");
		has_prot |= !strncmp(e->d_name, "protected,", 10);
	}
	snprintf(msg, sizeof msg, "%d heaps", n);
	check("list /dev/dma_heap", has_sys && has_prot, msg);

	for (int i = 0; i < n; i++) {
		char path[300], name[300];
		snprintf(path, sizeof path, "/dev/dma_heap/%.200s", names[i]);
		int heap = open(path, O_RDONLY | O_CLOEXEC);
		int buf = heap < 0 ? -errno : alloc(heap, 8000, O_RDWR | O_CLOEXEC);
		long size = buf >= 0 ? (long)lseek(buf, 0, SEEK_END) : -1;
		snprintf(name, sizeof name, "alloc %.200s", names[i]);
		snprintf(msg, sizeof msg, "fd %d size %ld", buf, size);
		check(name, buf >= 0 && size == 8192 && (fcntl(buf, F_GETFD) & FD_CLOEXEC), msg);
		if (buf >= 0 && !strncmp(names[i], "protected,", 10)) {
			void *q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
			snprintf(name, sizeof name, "mmap %.200s is EINVAL", names[i]);
			check(name, q == MAP_FAILED && errno == EINVAL, strerror(errno));
			struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
			snprintf(name, sizeof name, "sync %.200s", names[i]);
			check(name, ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0, strerror(errno));
		}
		close(buf);
		close(heap);
	}

	int sys = open("/dev/dma_heap/system", O_RDWR);
	unsigned char raw[64];
	int r;
	r = alloc_sized(sys, 4096, 3, O_RDWR, 0, 24, raw);
	check("alloc fd!=0 is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 4096, 0, O_RDWR | O_NONBLOCK, 0, 24, raw);
	check("alloc bad fd_flags is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 4096, 0, O_RDWR, 1, 24, raw);
	check("alloc heap_flags is EINVAL", r == -EINVAL, strerror(-r));
	r = alloc_sized(sys, 0, 0, O_RDWR, 0, 24, raw);
	check("alloc len 0 is EINVAL", r == -EINVAL, strerror(-r));
	memset(raw, 0, sizeof raw);
	r = alloc_sized(sys, 4096, 0, O_RDWR, 0, 16, raw);
	snprintf(msg, sizeof msg, "%d", r);
	check("alloc 16-byte struct", r > 2 && lseek(r, 0, SEEK_END) == 4096, msg);
	memset(raw, 0xaa, sizeof raw);
	r = alloc_sized(sys, 4096, 0, O_RDWR, 0, 48, raw);
	int tail = 1;
	for (int i = 24; i < 48; i++)
		tail &= raw[i] == 0xaa;
	check("alloc 48-byte struct", r > 2 && tail, msg);
	errno = 0;
	r = ioctl(sys, DMA_HEAP_IOCTL_ALLOC, (void *)8);
	check("bad pointer is EFAULT", r == -1 && errno == EFAULT, strerror(errno));
	errno = 0;
	r = ioctl(sys, _IOWR('H', 7, struct dma_heap_allocation_data), raw);
	check("unknown heap ioctl nr is EINVAL", r == -1 && errno == EINVAL, strerror(errno));

	int buf = alloc(sys, 8192, O_RDWR | O_CLOEXEC);
	check("lseek SEEK_END is the size", lseek(buf, 0, SEEK_END) == 8192, NULL);
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	check("mmap system buffer", p != MAP_FAILED, strerror(errno));
	if (p != MAP_FAILED) {
		strcpy(p + 4096, "written by the first process");
		struct dma_buf_sync s = { DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW };
		check("dma-buf sync", ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0, strerror(errno));
		s.flags = 0x100;
		check("dma-buf sync bad flags is EINVAL", ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == -1 && errno == EINVAL,
		      strerror(errno));
		send_fd(sv[0], buf);
		char c;
		read(sv[0], &c, 1);
		int st = -1;
		waitpid(child, &st, 0);
		snprintf(msg, sizeof msg, "status %d, saw \"%s\"", st, p);
		check("shared across processes (SCM_RIGHTS)",
		      WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strcmp(p, "answered by the second"), msg);
	}

	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	check("open /dev/tee0", tee >= 0, strerror(errno));
	struct tee_ioctl_version_data v = { 0 };
	r = ioctl(tee, TEE_IOC_VERSION, &v);
	snprintf(msg, sizeof msg, "r=%d impl_id=%u gen_caps=%#x", r, v.impl_id, v.gen_caps);
	check("TEE_IOC_VERSION", r == 0 && v.impl_id == TEE_IMPL_ID_OPTEE && (v.gen_caps & TEE_GEN_CAP_GP), msg);
	check("TEE fd keeps close-on-exec", (fcntl(tee, F_GETFD) & FD_CLOEXEC) != 0, NULL);
	struct tee_ioctl_shm_alloc_data sa = { .size = 5000 };
	int shm = ioctl(tee, TEE_IOC_SHM_ALLOC, &sa);
	snprintf(msg, sizeof msg, "fd %d id %d: %s", shm, sa.id, strerror(errno));
	check("TEE_IOC_SHM_ALLOC", shm >= 0 && sa.id > 0, msg);
	if (shm >= 0) {
		char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
		check("mmap TEE shm", s != MAP_FAILED, strerror(errno));
		if (s != MAP_FAILED)
			strcpy(s, "shm");
	}
	close(tee);

	printf("%d failed\n", failed);
	fflush(stdout);
	return failed != 0;
}
