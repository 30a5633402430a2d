/* Built into every TA (printed by `teeheap ta-dev-kit --link`): the TA's
 * properties from its user_ta_header_defines.h, where the TA process
 * reads them: UUID and flags, and the property table behind
 * TEE_PROPSET_CURRENT_TA (standard names, then the TA's
 * TA_CURRENT_TA_EXT_PROPERTIES). */
#include <tee_internal_api.h>
#include <user_ta_header.h>
#include <user_ta_header_defines.h>

#ifndef TA_FLAGS
#define TA_FLAGS 0
#endif
#ifndef TA_STACK_SIZE
#define TA_STACK_SIZE (2 * 1024)
#endif
#ifndef TA_VERSION
#define TA_VERSION "Undefined version"
#endif
#ifndef TA_DESCRIPTION
#define TA_DESCRIPTION "Undefined description"
#endif
#ifndef TA_DATA_SIZE
#define TA_DATA_SIZE (32 * 1024)
#endif

const TEE_UUID teeheap_ta_uuid = TA_UUID;
const uint32_t teeheap_ta_flags = TA_FLAGS;
const uint32_t teeheap_ta_stack_size = TA_STACK_SIZE;
const uint32_t teeheap_ta_data_size = TA_DATA_SIZE;

const struct user_ta_property teeheap_ta_props[] = {
	{ TA_PROP_STR_SINGLE_INSTANCE, USER_TA_PROP_TYPE_BOOL,
	  &(const bool){ (TA_FLAGS & TA_FLAG_SINGLE_INSTANCE) != 0 } },
	{ TA_PROP_STR_MULTI_SESSION, USER_TA_PROP_TYPE_BOOL,
	  &(const bool){ (TA_FLAGS & TA_FLAG_MULTI_SESSION) != 0 } },
	{ TA_PROP_STR_KEEP_ALIVE, USER_TA_PROP_TYPE_BOOL,
	  &(const bool){ (TA_FLAGS & TA_FLAG_INSTANCE_KEEP_ALIVE) != 0 } },
	{ TA_PROP_STR_DATA_SIZE, USER_TA_PROP_TYPE_U32, &(const uint32_t){ TA_DATA_SIZE } },
	{ TA_PROP_STR_STACK_SIZE, USER_TA_PROP_TYPE_U32, &(const uint32_t){ TA_STACK_SIZE } },
	{ TA_PROP_STR_VERSION, USER_TA_PROP_TYPE_STRING, TA_VERSION },
	{ TA_PROP_STR_DESCRIPTION, USER_TA_PROP_TYPE_STRING, TA_DESCRIPTION },
	{ TA_PROP_STR_ENDIAN, USER_TA_PROP_TYPE_U32, &(const uint32_t){ 0 } },
#ifdef TA_CURRENT_TA_EXT_PROPERTIES
	TA_CURRENT_TA_EXT_PROPERTIES
#endif
};
const size_t teeheap_ta_num_props = sizeof(teeheap_ta_props) / sizeof(teeheap_ta_props[0]);
