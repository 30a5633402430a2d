/* Properties of the example SDP TA (read by the dev kit's
 * teeheap_ta_header.c, as OP-TEE's dev kit reads them). */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include <ta_sdp_example.h>

#define TA_UUID TA_SDP_EXAMPLE_UUID
#define TA_FLAGS (TA_FLAG_SECURE_DATA_PATH | TA_FLAG_CACHE_MAINTENANCE)
#define TA_STACK_SIZE (2 * 1024)
#define TA_DATA_SIZE (32 * 1024)

#endif
