/* A test TA of the GP property API (tests/ta_api.rs): its header defines
 * every kind of property, OP-TEE style. */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

/* 8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c03 */
#define TA_UUID { 0x8aa2f1e3, 0x4b2c, 0x4f0e, { 0x9d, 0x51, 0x6c, 0x7e, 0x2b, 0x0a, 0x9c, 0x03 } }
#define TA_FLAGS TA_FLAG_MULTI_SESSION
#define TA_STACK_SIZE (4 * 1024)
#define TA_DATA_SIZE (48 * 1024)
#define TA_VERSION "2.1"
#define TA_DESCRIPTION "teeheap property test TA"

#define TA_CURRENT_TA_EXT_PROPERTIES \
	{ "test.bool", USER_TA_PROP_TYPE_BOOL, &(const bool){ true } }, \
	{ "test.u32", USER_TA_PROP_TYPE_U32, &(const uint32_t){ 0x1234 } }, \
	{ "test.u64", USER_TA_PROP_TYPE_U64, &(const uint64_t){ 0x123456789ULL } }, \
	{ "test.uuid", USER_TA_PROP_TYPE_UUID, \
	  &(const TEE_UUID){ 0x01020304, 0x0506, 0x0708, { 9, 10, 11, 12, 13, 14, 15, 16 } } }, \
	{ "test.identity", USER_TA_PROP_TYPE_IDENTITY, \
	  &(const TEE_Identity){ 4, { 0x11223344, 0x5566, 0x7788, { 1, 2, 3, 4, 5, 6, 7, 8 } } } }, \
	{ "test.string", USER_TA_PROP_TYPE_STRING, "hello" }, \
	{ "test.number.text", USER_TA_PROP_TYPE_STRING, "0x10" }, \
	{ "test.binary", USER_TA_PROP_TYPE_BINARY_BLOCK, "SGVsbG8gd29ybGQh" }

#endif
