/* Issue 12: /dev/teepriv0 is single-open, as upstream OP-TEE's optee_open:
 * while the supplicant's file is open (in any process, through any dup),
 * another open is EBUSY; once its last fd is closed the next open succeeds
 * and is the supplicant at once.
 *
 * Usage: supp_open open|ioctl — where the EBUSY is expected: at open(2)
 * itself (teeheap's open gate: root, Linux >= 6.14) or, where teeheap
 * cannot answer opens, at the second description's first ioctl.
 * Prints one "ok"/"FAIL" line per check and "N failed" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/tee.h>

#include "check.h"

static int at_open;

/* Opens teepriv0 and asks its version: 0 if it is the supplicant, else the
 * errno of the step that failed (open or the first ioctl). */
static int open_supplicant(int *fd) {
	*fd = open("/dev/teepriv0", O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return errno;
	struct tee_ioctl_version_data v;
	if (ioctl(*fd, TEE_IOC_VERSION, &v) < 0)
		return errno;
	return (v.gen_caps & TEE_GEN_CAP_PRIVILEGED) ? 0 : -1;
}

/* A second open is refused with EBUSY where this mode expects it. */
static void expect_busy(const char *name) {
	char d[96];
	int fd;
	errno = 0;
	int e = open_supplicant(&fd);
	int opened = fd >= 0;
	if (opened)
		close(fd);
	snprintf(d, sizeof d, "errno %d (%s), open %s", e, e > 0 ? strerror(e) : "-", opened ? "succeeded" : "failed");
	check(name, e == EBUSY && opened == !at_open, d);
}

int main(int argc, char **argv) {
	at_open = argc > 1 && strcmp(argv[1], "open") == 0;
	char d[96];
	int a;
	int e = open_supplicant(&a);
	snprintf(d, sizeof d, "%s", e > 0 ? strerror(e) : "not privileged");
	check("the first teepriv0 open is the supplicant", e == 0, d);

	expect_busy("a second open while it is open is EBUSY");

	pid_t c = fork();
	if (c == 0) {
		int fd;
		int r = open_supplicant(&fd);
		_exit(r == EBUSY && (fd >= 0) == !at_open ? 0 : 1);
	}
	int st = 0;
	waitpid(c, &st, 0);
	check("another process's open is EBUSY", WIFEXITED(st) && WEXITSTATUS(st) == 0, "");

	int dup_a = dup(a);
	close(a);
	expect_busy("a dup keeps the supplicant's file: still EBUSY");
	close(dup_a);

	int b;
	e = open_supplicant(&b);
	snprintf(d, sizeof d, "%s", e > 0 ? strerror(e) : "not privileged");
	check("after the last close the next open is the supplicant", e == 0, d);
	close(b);

	/* Restarting supplicants: close, open, ask at once, many times. */
	int bad = 0;
	for (int i = 0; i < 20; i++) {
		int fd;
		e = open_supplicant(&fd);
		if (e != 0) {
			bad++;
			snprintf(d, sizeof d, "round %d: errno %d (%s)", i, e, e > 0 ? strerror(e) : "-");
		}
		if (fd >= 0)
			close(fd);
	}
	check("close then open, 20 times: each is the supplicant", bad == 0, d);

	/* tee0 is not single-open. */
	int t1 = open("/dev/tee0", O_RDWR), t2 = open("/dev/tee0", O_RDWR);
	struct tee_ioctl_version_data v;
	check("tee0 opens twice", t1 >= 0 && t2 >= 0 && ioctl(t1, TEE_IOC_VERSION, &v) == 0 &&
					 ioctl(t2, TEE_IOC_VERSION, &v) == 0,
	      strerror(errno));
	close(t1);
	close(t2);

	printf("%d failed\n", failed);
	return failed != 0;
}
