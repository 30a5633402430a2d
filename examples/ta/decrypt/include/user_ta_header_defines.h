/* Properties of the example content-decryption TA. */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include <ta_decrypt_example.h>

#define TA_UUID TA_DECRYPT_EXAMPLE_UUID
#define TA_FLAGS TA_FLAG_SECURE_DATA_PATH
#define TA_STACK_SIZE (2 * 1024)
#define TA_DATA_SIZE (32 * 1024)
#define TA_VERSION "1.0"
#define TA_DESCRIPTION "teeheap example: AES-128-CTR content decryption into secure memory"

#endif
