/* The FWHT codec pair under `teeheap run`: /dev/video0 encodes NV12 frames
 * held in /dev/dma_heap/system buffers (V4L2_MEMORY_DMABUF) into FWHT, with
 * a drain at the end; /dev/video1 decodes the stream back; a protected
 * bitstream into a normal CAPTURE buffer comes back with the error flag,
 * and a protected CAPTURE buffer cannot be mapped.
 *
 * Prints ok/FAIL lines and "N failed". */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/videodev2.h>

#include "check.h"

#define W 64
#define H 48
#define RAW (W * H * 3 / 2)
#define FRAMES 4

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

static int set_fmt(int dev, uint32_t type, uint32_t fourcc, struct v4l2_format *f) {
	memset(f, 0, sizeof *f);
	f->type = type;
	f->fmt.pix.width = W;
	f->fmt.pix.height = H;
	f->fmt.pix.pixelformat = fourcc;
	return ioctl(dev, VIDIOC_S_FMT, f);
}

static int reqbufs(int dev, uint32_t type, uint32_t count) {
	struct v4l2_requestbuffers r = { .count = count, .type = type, .memory = V4L2_MEMORY_DMABUF };
	return ioctl(dev, VIDIOC_REQBUFS, &r);
}

static int qbuf(int dev, uint32_t type, int fd, uint32_t used) {
	struct v4l2_buffer b = { .type = type, .memory = V4L2_MEMORY_DMABUF, .index = 0, .bytesused = used };
	b.m.fd = fd;
	return ioctl(dev, VIDIOC_QBUF, &b);
}

static int dqbuf(int dev, uint32_t type, struct v4l2_buffer *b) {
	memset(b, 0, sizeof *b);
	b->type = type;
	b->memory = V4L2_MEMORY_DMABUF;
	return ioctl(dev, VIDIOC_DQBUF, b);
}

static int streamon(int dev, uint32_t type) {
	return ioctl(dev, VIDIOC_STREAMON, &type);
}

int main(void) {
	const uint32_t OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT, CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	int enc = open("/dev/video0", O_RDWR | O_NONBLOCK);
	int dec = open("/dev/video1", O_RDWR | O_NONBLOCK);
	struct v4l2_capability cap = { 0 };
	check("QUERYCAP vicodec m2m", enc >= 0 && ioctl(enc, VIDIOC_QUERYCAP, &cap) == 0 &&
		strcmp((char *)cap.driver, "vicodec") == 0 && (cap.device_caps & V4L2_CAP_VIDEO_M2M), strerror(errno));

	/* Encoder: NV12 in, FWHT out, finest quantisation. */
	struct v4l2_format f;
	check("encoder S_FMT", set_fmt(enc, OUT, V4L2_PIX_FMT_NV12, &f) == 0 && f.fmt.pix.sizeimage == RAW &&
		set_fmt(enc, CAP, V4L2_PIX_FMT_FWHT, &f) == 0, strerror(errno));
	uint32_t coded_size = f.fmt.pix.sizeimage;
	struct v4l2_control qp = { .id = V4L2_CID_FWHT_I_FRAME_QP, .value = 1 };
	ioctl(enc, VIDIOC_S_CTRL, &qp);
	qp.id = V4L2_CID_FWHT_P_FRAME_QP;
	check("S_CTRL QP", ioctl(enc, VIDIOC_S_CTRL, &qp) == 0, strerror(errno));
	check("encoder REQBUFS DMABUF", reqbufs(enc, OUT, 1) == 0 && reqbufs(enc, CAP, 1) == 0, strerror(errno));
	int raw_fd = heap_alloc("system", RAW), coded_fd = heap_alloc("system", coded_size);
	uint8_t *raw = mmap(NULL, RAW, PROT_READ | PROT_WRITE, MAP_SHARED, raw_fd, 0);
	uint8_t *coded = mmap(NULL, coded_size, PROT_READ | PROT_WRITE, MAP_SHARED, coded_fd, 0);
	if (raw == MAP_FAILED || coded == MAP_FAILED) {
		printf("FAIL mmap heap buffers\n1 failed\n");
		return 1;
	}
	check("encoder STREAMON", streamon(enc, OUT) == 0 && streamon(enc, CAP) == 0, strerror(errno));
	static uint8_t frames[FRAMES][RAW], stream[FRAMES][RAW + 64];
	uint32_t lens[FRAMES];
	int enc_ok = 1, key_ok = 1;
	for (int n = 0; n < FRAMES; n++) {
		for (int i = 0; i < RAW; i++)
			frames[n][i] = (uint8_t)((i % W + i / 97 + n * 5) % 230);
		memcpy(raw, frames[n], RAW);
		struct v4l2_buffer o, c;
		enc_ok &= qbuf(enc, CAP, coded_fd, 0) == 0 && qbuf(enc, OUT, raw_fd, RAW) == 0 &&
			dqbuf(enc, OUT, &o) == 0 && dqbuf(enc, CAP, &c) == 0 && !(c.flags & V4L2_BUF_FLAG_ERROR) &&
			c.bytesused > 44 && c.bytesused <= coded_size;
		key_ok &= !!(c.flags & V4L2_BUF_FLAG_KEYFRAME) == (n == 0);
		lens[n] = c.bytesused;
		memcpy(stream[n], coded, c.bytesused < sizeof stream[n] ? c.bytesused : sizeof stream[n]);
	}
	check("encode 4 frames through DMABUF", enc_ok, strerror(errno));
	check("first frame is a key frame, then P frames", key_ok, "");
	check("FWHT magic", memcmp(stream[0], "\x4f\x4f\x4f\x4f\xff\xff\xff\xff", 8) == 0, "");
	struct v4l2_buffer b;
	errno = 0;
	check("DQBUF with nothing done is EAGAIN", dqbuf(enc, CAP, &b) == -1 && errno == EAGAIN, strerror(errno));
	struct v4l2_encoder_cmd stop = { .cmd = V4L2_ENC_CMD_STOP };
	check("ENCODER_CMD STOP", ioctl(enc, VIDIOC_ENCODER_CMD, &stop) == 0, strerror(errno));
	check("drain: LAST buffer", qbuf(enc, CAP, coded_fd, 0) == 0 && dqbuf(enc, CAP, &b) == 0 &&
		(b.flags & V4L2_BUF_FLAG_LAST) && b.bytesused == 0, strerror(errno));
	errno = 0;
	check("DQBUF after LAST is EPIPE", dqbuf(enc, CAP, &b) == -1 && errno == EPIPE, strerror(errno));

	/* Decoder: the stream back to NV12. */
	check("decoder S_FMT", set_fmt(dec, OUT, V4L2_PIX_FMT_FWHT, &f) == 0 &&
		set_fmt(dec, CAP, V4L2_PIX_FMT_NV12, &f) == 0 && f.fmt.pix.sizeimage == RAW, strerror(errno));
	check("decoder REQBUFS DMABUF", reqbufs(dec, OUT, 1) == 0 && reqbufs(dec, CAP, 1) == 0, strerror(errno));
	check("decoder STREAMON", streamon(dec, OUT) == 0 && streamon(dec, CAP) == 0, strerror(errno));
	int dec_ok = 1, worst = 0;
	for (int n = 0; n < FRAMES; n++) {
		memcpy(coded, stream[n], lens[n]);
		struct v4l2_buffer o, c;
		dec_ok &= qbuf(dec, CAP, raw_fd, 0) == 0 && qbuf(dec, OUT, coded_fd, lens[n]) == 0 &&
			dqbuf(dec, OUT, &o) == 0 && dqbuf(dec, CAP, &c) == 0 && !(c.flags & V4L2_BUF_FLAG_ERROR) &&
			c.bytesused == RAW;
		for (int i = 0; i < RAW; i++) {
			int d = abs((int)raw[i] - (int)frames[n][i]);
			worst = d > worst ? d : worst;
		}
	}
	check("decode 4 frames through DMABUF", dec_ok, strerror(errno));
	char detail[64];
	snprintf(detail, sizeof detail, "worst pixel error %d", worst);
	check("decoded frames within 12 of the originals", worst <= 12, detail);

	/* Secure mode: a protected bitstream into a normal CAPTURE buffer. */
	int prot_bits = heap_alloc("protected,secure-video", coded_size);
	int prot_fb = heap_alloc("protected,secure-video", RAW);
	check("protected buffers", prot_bits >= 0 && prot_fb >= 0, strerror(errno));
	struct v4l2_buffer o, c;
	check("protected bitstream into normal memory: error flag",
		qbuf(dec, CAP, raw_fd, 0) == 0 && qbuf(dec, OUT, prot_bits, 64) == 0 && dqbuf(dec, OUT, &o) == 0 &&
		dqbuf(dec, CAP, &c) == 0 && (c.flags & V4L2_BUF_FLAG_ERROR) && c.bytesused == 0, strerror(errno));
	errno = 0;
	void *m = mmap(NULL, RAW, PROT_READ, MAP_SHARED, prot_fb, 0);
	check("mmap of a protected CAPTURE buffer is refused", m == MAP_FAILED, "mapped");

	printf("%d failed\n", failed);
	return failed != 0;
}
