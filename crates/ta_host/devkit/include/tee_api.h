/* GlobalPlatform TEE Internal Core API: functions (teeheap dev kit).
 * Only the functions teeheap implements are declared: a TA that calls
 * anything else does not load (see docs/trusted-apps.md). */
#ifndef TEE_API_H
#define TEE_API_H

#include <tee_api_types.h>

/* Panics */
void TEE_Panic(TEE_Result panicCode) __attribute__((noreturn));

/* Internal client API: TA to TA */
TEE_Result TEE_OpenTASession(const TEE_UUID *destination, uint32_t cancellationRequestTimeout,
			     uint32_t paramTypes, TEE_Param params[TEE_NUM_PARAMS],
			     TEE_TASessionHandle *session, uint32_t *returnOrigin);
void TEE_CloseTASession(TEE_TASessionHandle session);
TEE_Result TEE_InvokeTACommand(TEE_TASessionHandle session, uint32_t cancellationRequestTimeout,
			       uint32_t commandID, uint32_t paramTypes,
			       TEE_Param params[TEE_NUM_PARAMS], uint32_t *returnOrigin);

/* Cancellation */
bool TEE_GetCancellationFlag(void);
bool TEE_UnmaskCancellation(void);
bool TEE_MaskCancellation(void);

/* Memory */
TEE_Result TEE_CheckMemoryAccessRights(uint32_t accessFlags, void *buffer, size_t size);
void *TEE_Malloc(size_t size, uint32_t hint);
void *TEE_Realloc(void *buffer, size_t newSize);
void TEE_Free(void *buffer);
void TEE_MemMove(void *dest, const void *src, size_t size);
int32_t TEE_MemCompare(const void *buffer1, const void *buffer2, size_t size);
void TEE_MemFill(void *buffer, uint32_t x, size_t size);

/* Time */
void TEE_GetSystemTime(TEE_Time *time);
TEE_Result TEE_Wait(uint32_t timeout);
void TEE_GetREETime(TEE_Time *time);

/* Random */
void TEE_GenerateRandom(void *randomBuffer, size_t randomBufferLen);

#endif
