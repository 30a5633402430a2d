/* GlobalPlatform TEE Internal Core API: types (teeheap dev kit). */
#ifndef TEE_API_TYPES_H
#define TEE_API_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tee_api_defines.h>

typedef uint32_t TEE_Result;

typedef struct {
	uint32_t timeLow;
	uint16_t timeMid;
	uint16_t timeHiAndVersion;
	uint8_t clockSeqAndNode[8];
} TEE_UUID;

typedef struct {
	uint32_t login;
	TEE_UUID uuid;
} TEE_Identity;

typedef union {
	struct {
		void *buffer;
		size_t size;
	} memref;
	struct {
		uint32_t a;
		uint32_t b;
	} value;
} TEE_Param;

typedef struct __TEE_TASessionHandle *TEE_TASessionHandle;
typedef struct __TEE_PropSetHandle *TEE_PropSetHandle;

typedef struct {
	uint32_t seconds;
	uint32_t millis;
} TEE_Time;

#endif
