/* TA properties: the flags a TA's user_ta_header_defines.h combines into
 * TA_FLAGS (teeheap dev kit; OP-TEE's values). */
#ifndef USER_TA_HEADER_H
#define USER_TA_HEADER_H

#define TA_FLAG_USER_MODE           0
#define TA_FLAG_EXEC_DDR            0
#define TA_FLAG_SINGLE_INSTANCE     (1 << 2)
#define TA_FLAG_MULTI_SESSION       (1 << 3)
#define TA_FLAG_INSTANCE_KEEP_ALIVE (1 << 4)
#define TA_FLAG_SECURE_DATA_PATH    (1 << 5)
#define TA_FLAG_REMAP_SUPPORT       (1 << 6)
#define TA_FLAG_CACHE_MAINTENANCE   (1 << 7)
#define TA_FLAG_CONCURRENT          (1 << 8)
#define TA_FLAG_DEVICE_ENUM         (1 << 9)

#endif
