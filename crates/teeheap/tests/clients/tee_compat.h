/* What the Linux 6.18 UAPI adds to <linux/tee.h> and older headers (such as
 * Debian 12's 6.1) lack: TEE_IOC_SHM_REGISTER_FD and the DMA_BUF shm flag.
 * Shared by the test clients. */
#ifndef TEEHEAP_TEE_COMPAT_H
#define TEEHEAP_TEE_COMPAT_H

#include <linux/tee.h>

#ifndef TEE_IOC_SHM_REGISTER_FD
struct tee_ioctl_shm_register_fd_data {
	__s64 fd;
	__u64 size;
	__u32 flags;
	__s32 id;
} __attribute__((aligned(8)));
#define TEE_IOC_SHM_REGISTER_FD \
	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, struct tee_ioctl_shm_register_fd_data)
#endif
#ifndef TEE_IOCTL_SHM_DMA_BUF
#define TEE_IOCTL_SHM_DMA_BUF 0x2
#endif
/* What SHM_REGISTER_FD returns in `flags` on 6.18: the shm's own flags,
 * i.e. the kernel's internal TEE_SHM_DMA_BUF (BIT(4)), not the UAPI's
 * TEE_IOCTL_SHM_DMA_BUF. */
#define TEEHEAP_SHM_REGISTER_FD_FLAGS 0x10

#endif
