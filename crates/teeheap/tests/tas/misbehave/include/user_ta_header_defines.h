/* A test TA that misbehaves on request (tests/ta.rs). */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

/* 3c0c2a51-7d5e-4b1a-8f0e-5a6b7c8d9e01 */
#define TA_UUID { 0x3c0c2a51, 0x7d5e, 0x4b1a, { 0x8f, 0x0e, 0x5a, 0x6b, 0x7c, 0x8d, 0x9e, 0x01 } }
#define TA_FLAGS 0
#define TA_STACK_SIZE (2 * 1024)
#define TA_DATA_SIZE (32 * 1024)

#endif
