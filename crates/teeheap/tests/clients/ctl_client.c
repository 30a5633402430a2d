/* A client driven line by line from stdin, for tests that look at the
 * daemon between steps. Each command prints exactly one line:
 *   open NAME            fd N | err E     open /dev/dma_heap/NAME
 *   alloc HEAPFD LEN     fd N | err E     DMA_HEAP_IOCTL_ALLOC
 *   close FD             ok
 *   size FD              size N           lseek(SEEK_END)
 *   sync FD              ok | err E       DMA_BUF_IOCTL_SYNC
 *   export FD            fd N | err E     DMA_BUF_IOCTL_EXPORT_SYNC_FILE (read+write)
 *   mmap FD LEN          ok | err E       MAP_SHARED, kept
 *   tee                  fd N | err E     open /dev/tee0 + TEE_IOC_VERSION
 *   reg TEEFD BUFFD      fd N | err E     TEE_IOC_SHM_REGISTER_FD
 *   fill TEEFD BUFFD B LEN   ok | err E | tee R   the sdp_basic TA writes LEN
 *                                        bytes B (hex) into the buffer (INJECT)
 *   check TEEFD BUFFD B LEN  ok | differs at N | err E | tee R
 *                                        the TA copies them out (DUMP), compared
 *   listen PATH          ok               a Unix socket, then accept
 *   connect PATH         ok | err E
 *   send FD              ok | err E       SCM_RIGHTS
 *   recv                 fd N | err E
 *   pid                  pid N
 *   exit
 * E is the errno name (ENOENT, ENODEV, ENOMEM, EINVAL ...). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "sdp_ta.h"
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/tee.h>

#include "fdpass.h"
#include "tee_compat.h"

static int sock = -1;

static const char *ename(int e) {
	switch (e) {
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case EPERM: return "EPERM";
	case EFAULT: return "EFAULT";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	default: {
		static char buf[16];
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
	}
}

static void fd_or_err(int fd) {
	if (fd < 0)
		printf("err %s\n", ename(errno));
	else
		printf("fd %d\n", fd);
}

static void ok_or_err(int r) {
	if (r < 0)
		printf("err %s\n", ename(errno));
	else
		printf("ok\n");
}



enum { SDP_INJECT = 0, SDP_DUMP = 2 };

/* fill / check: a session to sdp_basic, the protected buffer registered
 * with SHM_REGISTER_FD and LEN bytes of malloc'ed memory with SHM_REGISTER;
 * INJECT copies the pattern in, DUMP copies the buffer out. Prints one line. */
static void sdp_copy(int tee, int buf, int byte, unsigned long len, int dump) {
	struct sdp_session os;
	struct tee_ioctl_buf_data b = sdp_open_arg(&os);
	if (ioctl(tee, TEE_IOC_OPEN_SESSION, &b) < 0) {
		printf("err %s\n", ename(errno));
		return;
	}
	if (os.a.ret) {
		printf("tee %#x\n", os.a.ret);
		return;
	}
	unsigned char *mem = malloc(len);
	memset(mem, dump ? ~byte : byte, len);
	struct tee_ioctl_shm_register_fd_data rf = { .fd = buf };
	struct tee_ioctl_shm_register_data rn = { .addr = (uintptr_t)mem, .length = len };
	int pshm = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &rf);
	int nshm = pshm < 0 ? -1 : ioctl(tee, TEE_IOC_SHM_REGISTER, &rn);
	int e = errno;
	uint32_t ret = 0;
	int r = -1;
	if (nshm >= 0) {
		struct sdp_invoke iv;
		struct tee_ioctl_buf_data ib = sdp_invoke_arg(&iv, os.a.session, dump ? SDP_DUMP : SDP_INJECT);
		iv.p[0] = (struct tee_ioctl_param){ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
						    .b = len, .c = (uint64_t)(dump ? rf.id : rn.id) };
		iv.p[1] = (struct tee_ioctl_param){ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
						    .b = len, .c = (uint64_t)(dump ? rn.id : rf.id) };
		r = ioctl(tee, TEE_IOC_INVOKE, &ib);
		e = errno;
		ret = iv.a.ret;
	}
	struct tee_ioctl_close_session_arg cs = { .session = os.a.session };
	ioctl(tee, TEE_IOC_CLOSE_SESSION, &cs);
	if (nshm >= 0)
		close(nshm);
	if (pshm >= 0)
		close(pshm);
	if (r < 0)
		printf("err %s\n", ename(e));
	else if (ret)
		printf("tee %#x\n", ret);
	else {
		unsigned long i = 0;
		while (dump && i < len && mem[i] == (unsigned char)byte)
			i++;
		if (dump && i < len)
			printf("differs at %lu (%#x)\n", i, mem[i]);
		else
			printf("ok\n");
	}
	free(mem);
}

static struct sockaddr_un addr(const char *path) {
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	return a;
}

int main(int argc, char **argv) {
	(void)argc;
	(void)argv;
	char line[512], a[256];
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof line, stdin)) {
		int x = 0, y = 0, z = 0;
		unsigned long len = 0;
		if (sscanf(line, "open %255s", a) == 1) {
			char path[300];
			snprintf(path, sizeof path, "/dev/dma_heap/%s", a);
			fd_or_err(open(path, O_RDWR | O_CLOEXEC));
		} else if (sscanf(line, "alloc %d %lu", &x, &len) == 2) {
			struct dma_heap_allocation_data d = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
			fd_or_err(ioctl(x, DMA_HEAP_IOCTL_ALLOC, &d) < 0 ? -1 : (int)d.fd);
		} else if (sscanf(line, "close %d", &x) == 1) {
			ok_or_err(close(x));
		} else if (sscanf(line, "size %d", &x) == 1) {
			printf("size %lld\n", (long long)lseek(x, 0, SEEK_END));
		} else if (sscanf(line, "sync %d", &x) == 1) {
			struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
			int r = ioctl(x, DMA_BUF_IOCTL_SYNC, &s);
			s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
			if (r == 0)
				r = ioctl(x, DMA_BUF_IOCTL_SYNC, &s);
			ok_or_err(r);
		} else if (sscanf(line, "export %d", &x) == 1) {
			struct dma_buf_export_sync_file e = { .flags = DMA_BUF_SYNC_RW, .fd = -1 };
			if (ioctl(x, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) == 0)
				printf("fd %d\n", e.fd);
			else
				ok_or_err(-1);
		} else if (sscanf(line, "mmap %d %lu", &x, &len) == 2) {
			void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, x, 0);
			ok_or_err(p == MAP_FAILED ? -1 : 0);
		} else if (!strncmp(line, "tee", 3) && (line[3] == '\n' || line[3] == 0)) {
			int fd = open("/dev/tee0", O_RDWR | O_CLOEXEC);
			struct tee_ioctl_version_data v;
			if (fd >= 0 && ioctl(fd, TEE_IOC_VERSION, &v) < 0) {
				int e = errno;
				close(fd);
				errno = e;
				fd = -1;
			}
			fd_or_err(fd);
		} else if (sscanf(line, "reg %d %d", &x, &y) == 2) {
			struct tee_ioctl_shm_register_fd_data rf = { .fd = y };
			fd_or_err(ioctl(x, TEE_IOC_SHM_REGISTER_FD, &rf));
		} else if (sscanf(line, "fill %d %d %x %lu", &x, &y, &z, &len) == 4) {
			sdp_copy(x, y, z, len, 0);
		} else if (sscanf(line, "check %d %d %x %lu", &x, &y, &z, &len) == 4) {
			sdp_copy(x, y, z, len, 1);
		} else if (sscanf(line, "listen %255s", a) == 1) {
			int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_un sa = addr(a);
			unlink(a);
			if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0) {
				ok_or_err(-1);
				continue;
			}
			printf("listening\n");
			fflush(stdout);
			sock = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			close(l);
			ok_or_err(sock);
		} else if (sscanf(line, "connect %255s", a) == 1) {
			sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_un sa = addr(a);
			ok_or_err(connect(sock, (struct sockaddr *)&sa, sizeof sa));
		} else if (sscanf(line, "send %d", &x) == 1) {
			ok_or_err(send_fd(sock, x));
		} else if (!strncmp(line, "recv", 4)) {
			fd_or_err(recv_fd(sock));
		} else if (!strncmp(line, "pid", 3)) {
			printf("pid %d\n", (int)getpid());
		} else if (!strncmp(line, "exit", 4)) {
			return 0;
		} else {
			printf("bad command\n");
		}
	}
	return 0;
}
