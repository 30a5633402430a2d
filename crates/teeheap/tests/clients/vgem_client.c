/* vgem under `teeheap run`: the import step of the kernel's dmabuf-heaps
 * selftest (allocate from a heap, mmap and sync, find the card whose
 * driver is "vgem", PRIME-import the buffer, sync again, GEM_CLOSE), done
 * the same way with our own code, then what else vgem answers: one handle
 * per buffer, dumb buffers exported and mapped, and the errno of mistakes.
 *
 * Usage: vgem_client HEAP (e.g. system). Prints ok/FAIL lines and
 * "N failed". Needs libdrm-dev's UAPI headers. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <libdrm/drm.h>
#include <libdrm/drm_mode.h>

#include "check.h"

#define ONE_MEG (1024 * 1024)

static int sync_buf(int fd, uint64_t how) {
	struct dma_buf_sync s = { .flags = how | DMA_BUF_SYNC_RW };
	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
}

/* The card whose driver name is exactly "vgem", or -1. */
static int find_vgem(void) {
	for (int i = 0; i < 16; i++) {
		char path[64], name[5] = { 0 };
		snprintf(path, sizeof path, "/dev/dri/card%d", i);
		int fd = open(path, O_RDWR);
		if (fd < 0)
			continue;
		struct drm_version v = { .name_len = 4, .name = name };
		if (ioctl(fd, DRM_IOCTL_VERSION, &v) == 0 && v.name_len == 4 && strcmp(name, "vgem") == 0)
			return fd;
		close(fd);
	}
	return -1;
}

static int import(int card, int fd, uint32_t *handle) {
	struct drm_prime_handle p = { .fd = fd };
	int r = ioctl(card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &p);
	*handle = p.handle;
	return r;
}

int main(int argc, char **argv) {
	const char *heap = argc > 1 ? argv[1] : "system";
	char path[128];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", heap);
	int heap_fd = open(path, O_RDONLY | O_CLOEXEC);
	struct dma_heap_allocation_data a = { .len = ONE_MEG, .fd_flags = O_RDWR | O_CLOEXEC };
	check("allocate 1 MiB", heap_fd >= 0 && ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &a) == 0, strerror(errno));
	int buf = a.fd;
	char *p = mmap(NULL, ONE_MEG, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	check("mmap", p != MAP_FAILED, strerror(errno));
	if (p == MAP_FAILED)
		return 1;
	sync_buf(buf, DMA_BUF_SYNC_START);
	memset(p, 1, ONE_MEG / 2);
	memset(p + ONE_MEG / 2, 0, ONE_MEG / 2);
	sync_buf(buf, DMA_BUF_SYNC_END);

	int card = find_vgem();
	check("open vgem", card >= 0, "no /dev/dri/card* named vgem");
	if (card < 0) {
		printf("%d failed\n", failed + 1);
		return 1;
	}
	uint32_t handle = 0, again = 0;
	check("Import buffer", import(card, buf, &handle) == 0 && handle != 0, strerror(errno));
	check("dmabuf sync start", sync_buf(buf, DMA_BUF_SYNC_START) == 0, strerror(errno));
	memset(p, 0xff, ONE_MEG);
	check("dmabuf sync end", sync_buf(buf, DMA_BUF_SYNC_END) == 0, strerror(errno));
	check("import again gives the same handle", import(card, buf, &again) == 0 && again == handle, "");

	/* The full driver version, and its description. */
	char name[16] = { 0 }, desc[64] = { 0 };
	struct drm_version v = { .name_len = sizeof name - 1, .name = name, .desc_len = sizeof desc - 1, .desc = desc };
	check("VERSION vgem 1.0.0", ioctl(card, DRM_IOCTL_VERSION, &v) == 0 && v.version_major == 1 &&
		v.name_len == 4 && strcmp(desc, "Virtual GEM provider") == 0, desc);

	struct drm_gem_close c = { .handle = handle };
	check("GEM_CLOSE", ioctl(card, DRM_IOCTL_GEM_CLOSE, &c) == 0, strerror(errno));
	errno = 0;
	check("GEM_CLOSE again is EINVAL", ioctl(card, DRM_IOCTL_GEM_CLOSE, &c) == -1 && errno == EINVAL, strerror(errno));
	uint32_t h;
	errno = 0;
	check("import of a closed fd is EBADF", import(card, 9999, &h) == -1 && errno == EBADF, strerror(errno));

	/* A dumb buffer, exported and mapped by the program. */
	struct drm_mode_create_dumb d = { .width = 640, .height = 480, .bpp = 32 };
	check("CREATE_DUMB 640x480x32", ioctl(card, DRM_IOCTL_MODE_CREATE_DUMB, &d) == 0 && d.pitch == 2560 &&
		d.size == 640 * 480 * 4, strerror(errno));
	struct drm_prime_handle e = { .handle = d.handle, .flags = DRM_CLOEXEC | DRM_RDWR };
	check("PRIME export", ioctl(card, DRM_IOCTL_PRIME_HANDLE_TO_FD, &e) == 0 && e.fd >= 0, strerror(errno));
	char *q = mmap(NULL, d.size, PROT_READ | PROT_WRITE, MAP_SHARED, e.fd, 0);
	check("mmap of the exported dumb buffer", q != MAP_FAILED && q[0] == 0 && q[d.size - 1] == 0, strerror(errno));
	if (q != MAP_FAILED) {
		memset(q, 0x5a, d.size);
		munmap(q, d.size);
	}
	check("re-import of the export gives its handle", import(card, e.fd, &h) == 0 && h == d.handle, "");
	e.flags = 0x100;
	errno = 0;
	check("export flags 0x100 is EINVAL", ioctl(card, DRM_IOCTL_PRIME_HANDLE_TO_FD, &e) == -1 && errno == EINVAL,
		strerror(errno));
	struct drm_mode_destroy_dumb dd = { .handle = d.handle };
	check("DESTROY_DUMB", ioctl(card, DRM_IOCTL_MODE_DESTROY_DUMB, &dd) == 0, strerror(errno));
	struct drm_mode_card_res res = { 0 };
	errno = 0;
	check("GETRESOURCES on vgem is EOPNOTSUPP", ioctl(card, DRM_IOCTL_MODE_GETRESOURCES, &res) == -1 &&
		errno == EOPNOTSUPP, strerror(errno));

	/* A protected buffer imports too (vgem holds it; the CPU never maps it). */
	int ph = -1;
	{
		char ppath[] = "/dev/dma_heap/protected,secure-video";
		ph = open(ppath, O_RDONLY | O_CLOEXEC);
	}
	struct dma_heap_allocation_data pa = { .len = ONE_MEG, .fd_flags = O_RDWR | O_CLOEXEC };
	uint32_t ph_handle = 0;
	check("import of a protected buffer", ph >= 0 && ioctl(ph, DMA_HEAP_IOCTL_ALLOC, &pa) == 0 &&
		import(card, pa.fd, &ph_handle) == 0 && ph_handle != 0, strerror(errno));
	struct drm_prime_handle pe = { .handle = ph_handle, .flags = DRM_CLOEXEC };
	check("export of the protected import is not mappable", ioctl(card, DRM_IOCTL_PRIME_HANDLE_TO_FD, &pe) == 0 &&
		mmap(NULL, ONE_MEG, PROT_READ, MAP_SHARED, pe.fd, 0) == MAP_FAILED, strerror(errno));
	c.handle = ph_handle;
	check("GEM_CLOSE of the protected import", ioctl(card, DRM_IOCTL_GEM_CLOSE, &c) == 0, strerror(errno));

	munmap(p, ONE_MEG);
	close(buf);
	close(card);
	close(heap_fd);
	printf("%d failed\n", failed);
	return failed != 0;
}
