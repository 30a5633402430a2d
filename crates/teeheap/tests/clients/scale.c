/* Scale through the UAPI (issue 18): allocate N 4 KiB buffers from each
 * heap named on the command line and keep them all, timing every
 * DMA_HEAP_IOCTL_ALLOC; print the cost per ALLOC with about 1 000, 10 000
 * and N buffers live, and the ratio N / 1k.
 *
 *   scale N HEAP...        e.g. scale 100000 system protected,secure-video
 *   scale --hold N HEAP... allocate, print "holding K pid P", then wait for
 *                          SIGKILL (its workers die with it)
 *
 * Each process holds its buffers' fds within its own RLIMIT_NOFILE, as Linux
 * requires: the program raises its soft limit to the hard one (and the hard
 * one when allowed), and when N buffers do not fit in one process, worker
 * processes take turns, each allocating its share and keeping it until the
 * end, so the N-th ALLOC happens with N - 1 buffers live in the daemon.
 * Each heap's buffers are closed before the next heap starts (unless
 * --hold), 2 s before it; 200 ALLOC + close first warm up, off the record (not with --hold). Exit status 0 iff every ALLOC succeeded. Costs are the median
 * and mean of a window of 1 000 consecutive ALLOCs ending at that count;
 * CLOCK_MONOTONIC, so a loaded machine shows as noise in both. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>

#define WINDOW 1000

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Median and mean (ns) of the WINDOW costs ending before index `end`. */
static void window(const uint32_t *cost, long end, double *median, double *mean) {
	static uint32_t w[WINDOW];
	long start = end >= WINDOW ? end - WINDOW : 0, n = end - start;
	double sum = 0;
	for (long i = 0; i < n; i++) {
		w[i] = cost[start + i];
		sum += w[i];
	}
	qsort(w, (size_t)n, sizeof w[0], cmp_u32);
	*median = n ? w[n / 2] : 0;
	*mean = n ? sum / (double)n : 0;
}

static void raise_nofile(long want) {
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return;
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < (rlim_t)want) {
		struct rlimit up = { (rlim_t)want, (rlim_t)want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
	}
	r.rlim_cur = r.rlim_max;
	setrlimit(RLIMIT_NOFILE, &r);
}

/* Allocates cost[0..count) worth of buffers from `heap` and keeps them;
 * reports 1 (all done) or 0 (an ALLOC failed) on `done`, then waits until
 * `release` reaches end of file. Runs in a worker process. */
static void worker(const char *name, int heap, long first, long count, uint32_t *cost, int done, int release) {
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char ok = 1;
	for (long i = 0; i < count; i++) {
		struct dma_heap_allocation_data d = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
		uint64_t t0 = now_ns();
		int rc = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d);
		uint64_t t1 = now_ns();
		if (rc < 0) {
			printf("%s: ALLOC %ld failed: %s\n", name, first + i + 1, strerror(errno));
			fflush(stdout);
			ok = 0;
			break;
		}
		cost[first + i] = (uint32_t)((t1 - t0) > UINT32_MAX ? UINT32_MAX : (t1 - t0));
	}
	if (write(done, &ok, 1) != 1)
		_exit(1);
	char c;
	while (read(release, &c, 1) > 0)
		;
	_exit(0);
}

int main(int argc, char **argv) {
	int hold = 0, a = 1;
	if (a < argc && strcmp(argv[a], "--hold") == 0) {
		hold = 1;
		a++;
	}
	if (argc - a < 2) {
		fprintf(stderr, "usage: %s [--hold] N HEAP...\n", argv[0]);
		return 2;
	}
	long n = atol(argv[a++]);
	if (n <= 0 || n > 10000000) {
		fprintf(stderr, "N out of range\n");
		return 2;
	}
	raise_nofile(n + 256);
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	long per = (long)r.rlim_cur - 256;
	if (per > n)
		per = n;
	if (per < 1)
		return 1;
	printf("RLIMIT_NOFILE %llu, up to %ld buffers per process\n", (unsigned long long)r.rlim_cur, per);
	uint32_t *cost = mmap(NULL, (size_t)n * sizeof *cost, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cost == MAP_FAILED)
		return 1;
	int failed = 0, first_heap = a;
	long held = 0;
	for (; a < argc; a++) {
		char path[300];
		snprintf(path, sizeof path, "/dev/dma_heap/%s", argv[a]);
		int heap = open(path, O_RDWR | O_CLOEXEC);
		if (heap < 0) {
			printf("%s: open: %s\n", argv[a], strerror(errno));
			failed = 1;
			continue;
		}
		/* Warm up (spare memfds, caches) off the record, and give the
		 * daemon a moment to finish releasing the previous heap's
		 * buffers (it learns of closes asynchronously). */
		if (a > first_heap && !hold)
			sleep(2);
		for (int w = 0; w < 200 && !hold; w++) {
			struct dma_heap_allocation_data d = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
			if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d) == 0)
				close((int)d.fd);
		}
		int done[2], release[2];
		if (pipe(done) != 0 || pipe(release) != 0)
			return 1;
		fflush(stdout);
		long got = 0;
		int workers = 0;
		while (got < n) {
			long count = n - got < per ? n - got : per;
			pid_t pid = fork();
			if (pid < 0)
				return 1;
			if (pid == 0) {
				close(done[0]);
				close(release[1]);
				worker(argv[a], heap, got, count, cost, done[1], release[0]);
			}
			workers++;
			char ok = 0;
			if (read(done[0], &ok, 1) != 1 || !ok) {
				failed = 1;
				break;
			}
			got += count;
		}
		close(done[0]);
		close(done[1]);
		close(release[0]);
		double med1k = 0, mean1k = 0;
		long marks[3] = { 1000, 10000, got };
		for (int m = 0; m < 3; m++) {
			if (marks[m] > got || (m < 2 && marks[m] >= got))
				continue;
			double med, mean;
			window(cost, marks[m], &med, &mean);
			if (m == 0) {
				med1k = med;
				mean1k = mean;
			}
			printf("%s: %ld live: ALLOC median %.1f us, mean %.1f us\n", argv[a], marks[m], med / 1e3,
			       mean / 1e3);
			if (m == 2 && med1k > 0)
				printf("%s: ratio %ld/1k: median %.2f, mean %.2f\n", argv[a], got, med / med1k,
				       mean / mean1k);
		}
		printf("%s: %ld live buffers in %d process%s\n", argv[a], got, workers, workers == 1 ? "" : "es");
		fflush(stdout);
		if (hold) {
			held += got;
			continue; /* the workers keep their buffers until we die */
		}
		close(release[1]); /* the workers close theirs and exit */
		while (workers-- > 0)
			wait(NULL);
		close(heap);
	}
	if (hold) {
		printf("holding %ld pid %d\n", held, (int)getpid());
		fflush(stdout);
		for (;;)
			pause();
	}
	return failed;
}
