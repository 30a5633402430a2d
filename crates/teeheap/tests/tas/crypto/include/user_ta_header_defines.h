/* A test TA of the GP cryptographic API (tests/ta_crypto.rs). */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

/* 8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02 */
#define TA_UUID { 0x8aa2f1e3, 0x4b2c, 0x4f0e, { 0x9d, 0x51, 0x6c, 0x7e, 0x2b, 0x0a, 0x9c, 0x02 } }
#define TA_FLAGS 0
#define TA_STACK_SIZE (2 * 1024)
#define TA_DATA_SIZE (32 * 1024)

#endif
