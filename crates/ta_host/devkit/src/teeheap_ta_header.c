/* Built into every TA (printed by `teeheap ta-dev-kit --link`): the TA's
 * properties from its user_ta_header_defines.h, where the TA process
 * reads them. */
#include <tee_internal_api.h>
#include <user_ta_header.h>
#include <user_ta_header_defines.h>

#ifndef TA_FLAGS
#define TA_FLAGS 0
#endif
#ifndef TA_STACK_SIZE
#define TA_STACK_SIZE (2 * 1024)
#endif
#ifndef TA_DATA_SIZE
#define TA_DATA_SIZE (32 * 1024)
#endif

const TEE_UUID teeheap_ta_uuid = TA_UUID;
const uint32_t teeheap_ta_flags = TA_FLAGS;
const uint32_t teeheap_ta_stack_size = TA_STACK_SIZE;
const uint32_t teeheap_ta_data_size = TA_DATA_SIZE;
