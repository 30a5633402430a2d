/* Races a TEE context's first ioctl against close/open and dup2 on the same
 * fd number (issue 11, finding 5), run under `teeheap run` by
 * tests/fdops.rs. Per round, thread A opens /dev/tee0 and calls
 * TEE_IOC_VERSION on it while thread B closes that number and takes it
 * with a memfd of its own (round even), or dup2s its memfd onto it (round
 * odd). Afterwards B's memfd must still be what B's fd names (nobody may
 * replace a file the program opened), and VERSION may only succeed, fail
 * with EBADF (nothing there) or ENOTTY (B's memfd there) — as on Linux.
 * Prints "rounds R replaced X bad_errno Y ok Z"; exits 1 if X or Y > 0.
 * Usage: tee_race ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/tee.h>

static pthread_barrier_t go, done;
static long rounds;
static volatile int tee_fd;
static long replaced, bad_errno, ok;
static int first_errno;

static void *b_thread(void *arg) {
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		pthread_barrier_wait(&go);
		int t = tee_fd, m;
		if (i % 2 == 0) {
			close(t);
			m = memfd_create("mine", MFD_CLOEXEC);
		} else {
			int tmp = memfd_create("mine", MFD_CLOEXEC);
			m = dup2(tmp, t);
			close(tmp);
		}
		struct stat before, after;
		fstat(m, &before);
		pthread_barrier_wait(&done);
		if (fstat(m, &after) != 0 || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
			replaced++;
		close(m);
		if (m != t)
			close(t);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	rounds = atol(argv[1]);
	pthread_barrier_init(&go, NULL, 2);
	pthread_barrier_init(&done, NULL, 2);
	pthread_t b;
	pthread_create(&b, NULL, b_thread, NULL);
	for (long i = 0; i < rounds; i++) {
		int t = open("/dev/tee0", O_RDWR | O_CLOEXEC);
		if (t < 0) {
			perror("open /dev/tee0");
			return 2;
		}
		tee_fd = t;
		pthread_barrier_wait(&go);
		struct tee_ioctl_version_data v;
		int r = ioctl(t, TEE_IOC_VERSION, &v);
		if (r == 0)
			ok++;
		else if (errno != EBADF && errno != ENOTTY) {
			if (!bad_errno)
				first_errno = errno;
			bad_errno++;
		}
		pthread_barrier_wait(&done);
	}
	pthread_join(b, NULL);
	printf("rounds %ld replaced %ld bad_errno %ld ok %ld %s\n", rounds, replaced, bad_errno, ok,
	       bad_errno ? strerror(first_errno) : "");
	return replaced || bad_errno;
}
