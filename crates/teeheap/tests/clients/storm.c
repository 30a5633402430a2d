/* Kill storm: N children allocate from every heap (mapping, dup'ing and
 * closing some buffers) until the parent SIGKILLs each at a random point.
 * Run under `teeheap run` by tests/run.rs, which then asks the daemon that
 * every buffer is gone. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>

static void churn(unsigned seed) {
	char names[16][300];
	int heaps[16], n = 0;
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 16) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(names[n], 300, "/dev/dma_heap/%s", e->d_name);
		heaps[n] = open(names[n], O_RDWR | O_CLOEXEC);
		if (heaps[n] >= 0)
			n++;
	}
	int live[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	for (unsigned i = 0;; i++) {
		int h = rand_r(&seed) % n;
		struct dma_heap_allocation_data a = { .len = 4096u * (1 + rand_r(&seed) % 16), .fd_flags = O_RDWR };
		if (ioctl(heaps[h], DMA_HEAP_IOCTL_ALLOC, &a) < 0)
			continue;
		int fd = (int)a.fd;
		if (strstr(names[h], "system") && rand_r(&seed) % 2)
			mmap(NULL, a.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); /* kept mapped */
		if (rand_r(&seed) % 3 == 0) {
			int dupfd = dup(fd);
			close(fd);
			fd = dupfd;
		}
		int slot = i % 8;
		if (live[slot] >= 0)
			close(live[slot]);
		live[slot] = fd;
	}
}

int main(int argc, char **argv) {
	int total = argc > 1 ? atoi(argv[1]) : 200, width = 16;
	pid_t running[16];
	int started = 0, killed = 0;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int i = 0; i < width && started < total; i++, started++) {
		running[i] = fork();
		if (running[i] == 0)
			churn((unsigned)rand() + (unsigned)i);
	}
	while (killed < total) {
		usleep((useconds_t)(rand() % 3000));
		int i = rand() % width;
		if (running[i] <= 0)
			continue;
		kill(running[i], SIGKILL);
		waitpid(running[i], NULL, 0);
		killed++;
		running[i] = 0;
		if (started < total) {
			running[i] = fork();
			if (running[i] == 0)
				churn((unsigned)rand() + (unsigned)started);
			started++;
		}
	}
	printf("killed %d\n", killed);
	return 0;
}
