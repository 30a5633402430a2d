/* OP-TEE's extensions to the Internal Core API (teeheap dev kit). */
#ifndef TEE_INTERNAL_API_EXTENSIONS_H
#define TEE_INTERNAL_API_EXTENSIONS_H

#include <tee_api_types.h>

/* TEE_CheckMemoryAccessRights: memory must be non-secure / secure. */
#define TEE_MEMORY_ACCESS_NONSECURE 0x10000000
#define TEE_MEMORY_ACCESS_SECURE    0x20000000

/* Cache maintenance (memory is coherent in teeheap: these succeed). */
TEE_Result TEE_CacheFlush(char *buf, size_t len);
TEE_Result TEE_CacheClean(char *buf, size_t len);
TEE_Result TEE_CacheInvalidate(char *buf, size_t len);

#endif
