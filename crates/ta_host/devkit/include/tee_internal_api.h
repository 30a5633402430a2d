/* GlobalPlatform TEE Internal Core API (teeheap dev kit). */
#ifndef TEE_INTERNAL_API_H
#define TEE_INTERNAL_API_H

#include <tee_api_defines.h>
#include <tee_api_types.h>
#include <tee_api.h>
#include <trace.h>

#endif
