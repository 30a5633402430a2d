/* Secure video playback through the UAPIs, under `teeheap run`:
 *
 *   encrypted FWHT samples (normal memory, TEE shared memory)
 *     -> content-decryption TA (TEE_IOC_INVOKE), writing into a protected
 *        secure-video bitstream buffer registered by TEE_IOC_SHM_REGISTER_FD
 *     -> FWHT decoder /dev/video1, protected OUTPUT and CAPTURE buffers
 *        imported as V4L2_MEMORY_DMABUF
 *     -> vkms display /dev/dri/card0: PRIME import of the protected frames,
 *        ADDFB2 (NV12), atomic commits with OUT_FENCE_PTR
 *     -> the display's CRCs (debugfs dri/0/crtc-0/crc/data) equal the CRCs
 *        of decoding the plaintext through the same decoder into system
 *        buffers; every CPU mmap of a protected buffer is refused.
 *
 * argv[1]: a directory with plain.bin and enc.bin (the samples back to
 * back, clear and AES-128-CTR encrypted with key id 1, IV = frame number
 * in byte 0, zeros elsewhere) and lens.txt (one sample length per line).
 * Prints ok/FAIL lines and "N failed". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/videodev2.h>
#include <libdrm/drm.h>
#include <libdrm/drm_mode.h>

#include "check.h"
#include "tee_compat.h"

#define W 64
#define H 48
#define RAW (W * H * 3 / 2)
#define MAX_FRAMES 16
#define CODED 16384

/* content decryption: 74656568-6561-7001-8000-000000000001, DECRYPT 0. */
static const uint8_t CDM_UUID[16] = { 0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x01,
				      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01 };

/* CRC-32 (IEEE, reflected 0xEDB88320), bit by bit. */
static uint32_t crc32(const uint8_t *p, size_t n) {
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static int heap_alloc(const char *heap, size_t len) {
	char path[128];
	snprintf(path, sizeof path, "/dev/dma_heap/%s", heap);
	int h = open(path, O_RDONLY | O_CLOEXEC);
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	int r = h >= 0 ? ioctl(h, DMA_HEAP_IOCTL_ALLOC, &a) : -1;
	if (h >= 0)
		close(h);
	return r == 0 ? (int)a.fd : -1;
}

static size_t slurp(const char *dir, const char *name, uint8_t *buf, size_t cap) {
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* A decoder instance with DMABUF queues: OUTPUT 1 buffer, CAPTURE `caps`. */
static int decoder(int caps) {
	int dev = open("/dev/video1", O_RDWR | O_NONBLOCK);
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };
	f.fmt.pix.width = W;
	f.fmt.pix.height = H;
	f.fmt.pix.pixelformat = V4L2_PIX_FMT_FWHT;
	int ok = dev >= 0 && ioctl(dev, VIDIOC_S_FMT, &f) == 0;
	f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	f.fmt.pix.pixelformat = V4L2_PIX_FMT_NV12;
	ok = ok && ioctl(dev, VIDIOC_S_FMT, &f) == 0 && f.fmt.pix.sizeimage == RAW;
	struct v4l2_requestbuffers ro = { .count = 1, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_DMABUF };
	struct v4l2_requestbuffers rc = { .count = caps, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	uint32_t out = V4L2_BUF_TYPE_VIDEO_OUTPUT, cap = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	ok = ok && ioctl(dev, VIDIOC_REQBUFS, &ro) == 0 && ioctl(dev, VIDIOC_REQBUFS, &rc) == 0 &&
	     ioctl(dev, VIDIOC_STREAMON, &out) == 0 && ioctl(dev, VIDIOC_STREAMON, &cap) == 0;
	return ok ? dev : -1;
}

/* Decodes `len` bytes in `bits_fd` into CAPTURE buffer `index` (`frame_fd`). */
static int decode(int dev, int bits_fd, uint32_t len, int frame_fd, int index) {
	struct v4l2_buffer c = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF, .index = index };
	c.m.fd = frame_fd;
	struct v4l2_buffer o = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_DMABUF, .bytesused = len };
	o.m.fd = bits_fd;
	if (ioctl(dev, VIDIOC_QBUF, &c) || ioctl(dev, VIDIOC_QBUF, &o))
		return -1;
	memset(&o, 0, sizeof o);
	o.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
	o.memory = V4L2_MEMORY_DMABUF;
	memset(&c, 0, sizeof c);
	c.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	c.memory = V4L2_MEMORY_DMABUF;
	if (ioctl(dev, VIDIOC_DQBUF, &o) || ioctl(dev, VIDIOC_DQBUF, &c))
		return -1;
	return (c.flags & V4L2_BUF_FLAG_ERROR) || c.bytesused != RAW ? -1 : 0;
}

/* One atomic commit: `n` (object, property, value) triples. */
struct set { uint32_t obj, prop; uint64_t value; };
static int commit(int card, const struct set *s, int n, uint32_t flags) {
	uint32_t objs[8], counts[8], props[32];
	uint64_t values[32];
	int nobj = 0;
	for (int i = 0; i < n; i++) {
		if (nobj == 0 || objs[nobj - 1] != s[i].obj) {
			objs[nobj] = s[i].obj;
			counts[nobj++] = 0;
		}
		counts[nobj - 1]++;
		props[i] = s[i].prop;
		values[i] = s[i].value;
	}
	struct drm_mode_atomic a = {
		.flags = flags,
		.count_objs = nobj,
		.objs_ptr = (uintptr_t)objs,
		.count_props_ptr = (uintptr_t)counts,
		.props_ptr = (uintptr_t)props,
		.prop_values_ptr = (uintptr_t)values,
	};
	return ioctl(card, DRM_IOCTL_MODE_ATOMIC, &a);
}

/* The id of property `name` on object `obj`. */
static uint32_t prop_id(int card, uint32_t obj, uint32_t type, const char *name) {
	uint32_t ids[32];
	uint64_t vals[32];
	struct drm_mode_obj_get_properties g = { .props_ptr = (uintptr_t)ids, .prop_values_ptr = (uintptr_t)vals,
						 .count_props = 32, .obj_id = obj, .obj_type = type };
	if (ioctl(card, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &g))
		return 0;
	for (uint32_t i = 0; i < g.count_props && i < 32; i++) {
		struct drm_mode_get_property p = { .prop_id = ids[i] };
		if (ioctl(card, DRM_IOCTL_MODE_GETPROPERTY, &p) == 0 && strcmp(p.name, name) == 0)
			return ids[i];
	}
	return 0;
}

/* The last `n` CRCs of crc/data once it has at least `lines` lines. */
static int display_crcs(uint32_t *out, int n, int lines) {
	static char text[64 * 1024];
	for (int tries = 0; tries < 100; tries++) {
		size_t len = slurp("/sys/kernel/debug/dri/0/crtc-0/crc", "data", (uint8_t *)text, sizeof text - 1);
		text[len] = 0;
		uint32_t all[1024];
		int have = 0;
		for (char *l = text; *l && have < 1024; l = strchr(l, '\n') + 1) {
			unsigned frame, crc;
			if (sscanf(l, "0x%x 0x%x", &frame, &crc) == 2)
				all[have++] = crc;
			if (!strchr(l, '\n'))
				break;
		}
		if (have >= lines) {
			memcpy(out, all + have - n, n * sizeof *out);
			return 0;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

int main(int argc, char **argv) {
	static uint8_t plain[MAX_FRAMES * CODED], enc[MAX_FRAMES * CODED];
	char lens_text[512] = { 0 };
	if (argc < 2)
		return 2;
	size_t plain_len = slurp(argv[1], "plain.bin", plain, sizeof plain);
	size_t enc_len = slurp(argv[1], "enc.bin", enc, sizeof enc);
	slurp(argv[1], "lens.txt", (uint8_t *)lens_text, sizeof lens_text - 1);
	uint32_t lens[MAX_FRAMES], offs[MAX_FRAMES];
	int frames = 0;
	size_t total = 0;
	for (char *p = lens_text; frames < MAX_FRAMES && *p; frames++) {
		char *end;
		lens[frames] = strtoul(p, &end, 10);
		if (end == p)
			break;
		offs[frames] = total;
		total += lens[frames];
		p = end + (*end == '\n');
	}
	check("samples read", frames >= 2 && total == plain_len && total == enc_len && memcmp(plain, enc, 64) != 0,
	      "bad input files");

	/* Reference: the plaintext decoded into system buffers. */
	uint32_t ref[MAX_FRAMES];
	int ref_dec = decoder(1);
	int bits = heap_alloc("system", CODED), frame = heap_alloc("system", RAW);
	uint8_t *bits_map = mmap(NULL, CODED, PROT_READ | PROT_WRITE, MAP_SHARED, bits, 0);
	uint8_t *frame_map = mmap(NULL, RAW, PROT_READ, MAP_SHARED, frame, 0);
	int ref_ok = ref_dec >= 0 && bits_map != MAP_FAILED && frame_map != MAP_FAILED;
	for (int n = 0; ref_ok && n < frames; n++) {
		memcpy(bits_map, plain + offs[n], lens[n]);
		ref_ok = decode(ref_dec, bits, lens[n], frame, 0) == 0;
		ref[n] = crc32(frame_map, RAW);
	}
	check("reference: plaintext decoded into system buffers", ref_ok, strerror(errno));
	for (int n = 0; ref_ok && n < frames; n++)
		printf("reference crc 0x%08x\n", ref[n]);
	check("reference frames differ", ref_ok && ref[0] != ref[1], "");
	close(ref_dec);

	/* The content-decryption TA, and a protected bitstream buffer registered with the TEE. */
	int tee = open("/dev/tee0", O_RDWR | O_CLOEXEC);
	struct {
		struct tee_ioctl_open_session_arg arg;
		struct tee_ioctl_param params[4];
	} os = { .arg = { .clnt_login = TEE_IOCTL_LOGIN_PUBLIC, .num_params = 4 } };
	memcpy(os.arg.uuid, CDM_UUID, sizeof CDM_UUID);
	struct tee_ioctl_buf_data buf = { .buf_ptr = (uintptr_t)&os, .buf_len = sizeof os };
	check("open a session to the content-decryption TA",
	      tee >= 0 && ioctl(tee, TEE_IOC_OPEN_SESSION, &buf) == 0 && os.arg.ret == 0, strerror(errno));
	int prot_bits = heap_alloc("protected,secure-video", CODED);
	struct tee_ioctl_shm_register_fd_data reg = { .fd = prot_bits };
	int reg_fd = ioctl(tee, TEE_IOC_SHM_REGISTER_FD, &reg);
	check("SHM_REGISTER_FD of the protected bitstream buffer", prot_bits >= 0 && reg_fd >= 0, strerror(errno));
	struct tee_ioctl_shm_alloc_data shm = { .size = CODED + 64 };
	int shm_fd = ioctl(tee, TEE_IOC_SHM_ALLOC, &shm);
	uint8_t *shm_map = shm_fd >= 0 ? mmap(NULL, CODED + 64, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0) : MAP_FAILED;
	check("TEE shared memory for the samples", shm_map != MAP_FAILED, strerror(errno));

	/* Two protected frames, the decoder, and the display. */
	int prot_frames[2] = { heap_alloc("protected,secure-video", RAW), heap_alloc("protected,secure-video", RAW) };
	int dec = decoder(2);
	check("secure decoder with protected DMABUF queues", dec >= 0 && prot_frames[0] >= 0 && prot_frames[1] >= 0,
	      strerror(errno));
	int card = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
	struct drm_set_client_cap cap = { .capability = DRM_CLIENT_CAP_ATOMIC, .value = 1 };
	check("vkms with atomic", card >= 0 && ioctl(card, DRM_IOCTL_SET_CLIENT_CAP, &cap) == 0, strerror(errno));
	uint32_t fbs[2] = { 0, 0 };
	int fb_ok = 1;
	for (int i = 0; i < 2; i++) {
		struct drm_prime_handle ph = { .fd = prot_frames[i] };
		fb_ok &= ioctl(card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph) == 0;
		struct drm_mode_fb_cmd2 fb = { .width = W, .height = H, .pixel_format = 0x3231564e /* NV12 */ };
		fb.handles[0] = fb.handles[1] = ph.handle;
		fb.pitches[0] = fb.pitches[1] = W;
		fb.offsets[1] = W * H;
		fb_ok &= ioctl(card, DRM_IOCTL_MODE_ADDFB2, &fb) == 0;
		fbs[i] = fb.fb_id;
	}
	check("PRIME import of the protected frames and ADDFB2 NV12", fb_ok, strerror(errno));

	uint32_t crtc_ids[1] = { 0 }, conn_ids[1] = { 0 };
	struct drm_mode_card_res res = { .crtc_id_ptr = (uintptr_t)crtc_ids, .count_crtcs = 1,
					 .connector_id_ptr = (uintptr_t)conn_ids, .count_connectors = 1 };
	struct drm_mode_modeinfo modes[4];
	struct drm_mode_get_connector gc = { .modes_ptr = (uintptr_t)modes, .count_modes = 4 };
	int res_ok = ioctl(card, DRM_IOCTL_MODE_GETRESOURCES, &res) == 0;
	gc.connector_id = conn_ids[0];
	res_ok = res_ok && ioctl(card, DRM_IOCTL_MODE_GETCONNECTOR, &gc) == 0 && gc.count_modes >= 1;
	uint32_t planes[1] = { 0 };
	struct drm_mode_get_plane_res pr = { .plane_id_ptr = (uintptr_t)planes, .count_planes = 1 };
	res_ok = res_ok && ioctl(card, DRM_IOCTL_MODE_GETPLANERESOURCES, &pr) == 0 && pr.count_planes == 1;
	struct drm_mode_create_blob mb = { .data = (uintptr_t)&modes[0], .length = sizeof modes[0] };
	res_ok = res_ok && ioctl(card, DRM_IOCTL_MODE_CREATEPROPBLOB, &mb) == 0;
	check("resources, connector mode, mode blob", res_ok, strerror(errno));
	uint32_t crtc = crtc_ids[0], conn = conn_ids[0], plane = planes[0];
	uint32_t P_FB = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "FB_ID");
	uint32_t P_PCRTC = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID");
	uint32_t P_SW = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "SRC_W");
	uint32_t P_SH = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "SRC_H");
	uint32_t P_CW = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "CRTC_W");
	uint32_t P_CH = prop_id(card, plane, DRM_MODE_OBJECT_PLANE, "CRTC_H");
	uint32_t P_MODE = prop_id(card, crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID");
	uint32_t P_ACTIVE = prop_id(card, crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE");
	uint32_t P_FENCE = prop_id(card, crtc, DRM_MODE_OBJECT_CRTC, "OUT_FENCE_PTR");
	uint32_t P_CCRTC = prop_id(card, conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID");
	check("atomic property ids", P_FB && P_PCRTC && P_SW && P_SH && P_CW && P_CH && P_MODE && P_ACTIVE && P_FENCE &&
	      P_CCRTC, "a property is missing");

	/* Play: decrypt, decode, show; each frame's out-fence signals. */
	int play_ok = 1, fence_ok = 1;
	for (int n = 0; n < frames && play_ok; n++) {
		uint8_t *info = shm_map + CODED;
		memset(info, 0, 16);
		info[0] = (uint8_t)n;
		memcpy(shm_map, enc + offs[n], lens[n]);
		struct tee_ioctl_param p[4] = {
			{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT, .a = 1, .b = 0 },
			{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, .a = CODED, .b = 16, .c = shm.id },
			{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT, .a = 0, .b = lens[n], .c = shm.id },
			{ .attr = TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT, .a = 0, .b = CODED, .c = reg.id },
		};
		struct {
			struct tee_ioctl_invoke_arg arg;
			struct tee_ioctl_param params[4];
		} inv = { .arg = { .func = 0, .session = os.arg.session, .num_params = 4 } };
		memcpy(inv.params, p, sizeof p);
		struct tee_ioctl_buf_data ib = { .buf_ptr = (uintptr_t)&inv, .buf_len = sizeof inv };
		play_ok = ioctl(tee, TEE_IOC_INVOKE, &ib) == 0 && inv.arg.ret == 0;
		play_ok = play_ok && decode(dec, prot_bits, lens[n], prot_frames[n % 2], n % 2) == 0;
		int32_t fence = -1;
		struct set first[] = {
			{ plane, P_FB, fbs[n % 2] }, { plane, P_PCRTC, crtc }, { plane, P_SW, (uint64_t)W << 16 },
			{ plane, P_SH, (uint64_t)H << 16 }, { plane, P_CW, W }, { plane, P_CH, H },
			{ crtc, P_MODE, mb.blob_id }, { crtc, P_ACTIVE, 1 }, { crtc, P_FENCE, (uintptr_t)&fence },
			{ conn, P_CCRTC, crtc },
		};
		struct set flip[] = { { plane, P_FB, fbs[n % 2] }, { crtc, P_FENCE, (uintptr_t)&fence } };
		play_ok = play_ok && (n == 0 ? commit(card, first, 10, DRM_MODE_ATOMIC_ALLOW_MODESET)
					     : commit(card, flip, 2, DRM_MODE_ATOMIC_NONBLOCK)) == 0;
		struct pollfd pf = { .fd = fence, .events = POLLIN };
		fence_ok &= fence >= 0 && poll(&pf, 1, 2000) == 1 && (pf.revents & POLLIN);
		if (fence >= 0)
			close(fence);
	}
	check("decrypt, decode and show every frame", play_ok, strerror(errno));
	check("each OUT_FENCE_PTR sync file signals", fence_ok, "");

	uint32_t got[MAX_FRAMES];
	int crc_ok = display_crcs(got, frames, frames) == 0;
	int equal = crc_ok;
	char detail[64] = "";
	for (int n = 0; crc_ok && n < frames; n++)
		if (got[n] != ref[n]) {
			equal = 0;
			snprintf(detail, sizeof detail, "frame %d: display %08x, plaintext %08x", n, got[n], ref[n]);
		}
	check("display CRCs equal the CRCs of the decoded plaintext", equal, crc_ok ? detail : "no CRC lines");

	/* The CPU never reaches protected memory. */
	int refused = 1;
	int prot[3] = { prot_bits, prot_frames[0], prot_frames[1] };
	for (int i = 0; i < 3; i++) {
		void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, prot[i], 0);
		refused &= m == MAP_FAILED;
	}
	struct drm_prime_handle back = { .fd = prot_frames[0] };
	ioctl(card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &back);
	back.flags = DRM_CLOEXEC | DRM_RDWR;
	int exported = ioctl(card, DRM_IOCTL_PRIME_HANDLE_TO_FD, &back) == 0 ? back.fd : -1;
	refused &= exported >= 0 && mmap(NULL, 4096, PROT_READ, MAP_SHARED, exported, 0) == MAP_FAILED;
	check("every CPU mmap of a protected buffer is refused", refused, "mapped");

	printf("%d failed\n", failed);
	return failed != 0;
}
