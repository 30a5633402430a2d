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

/* Standard property names of the current TA (GP) and what a TA's
 * TA_CURRENT_TA_EXT_PROPERTIES adds: { name, type, pointer to value }
 * entries, OP-TEE's layout. */
#define TA_PROP_STR_SINGLE_INSTANCE "gpd.ta.singleInstance"
#define TA_PROP_STR_MULTI_SESSION   "gpd.ta.multiSession"
#define TA_PROP_STR_KEEP_ALIVE      "gpd.ta.instanceKeepAlive"
#define TA_PROP_STR_DATA_SIZE       "gpd.ta.dataSize"
#define TA_PROP_STR_STACK_SIZE      "gpd.ta.stackSize"
#define TA_PROP_STR_VERSION         "gpd.ta.version"
#define TA_PROP_STR_DESCRIPTION     "gpd.ta.description"
#define TA_PROP_STR_ENDIAN          "gpd.ta.endian"

enum user_ta_prop_type {
	USER_TA_PROP_TYPE_BOOL,         /* bool */
	USER_TA_PROP_TYPE_U32,          /* uint32_t */
	USER_TA_PROP_TYPE_UUID,         /* TEE_UUID */
	USER_TA_PROP_TYPE_IDENTITY,     /* TEE_Identity */
	USER_TA_PROP_TYPE_STRING,       /* NUL-terminated string */
	USER_TA_PROP_TYPE_BINARY_BLOCK, /* NUL-terminated base64 text */
	USER_TA_PROP_TYPE_U64,          /* uint64_t */
	USER_TA_PROP_TYPE_INVALID,
};

struct user_ta_property {
	const char *name;
	enum user_ta_prop_type type;
	const void *value;
};

#endif
