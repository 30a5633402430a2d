/* A TA for OP-TEE's instance rules (tests/ta_instances.rs). The test
 * builds it several times, each with a user_ta_header_defines.h of its own
 * (its UUID and TA_FLAGS: single instance, multi session, keep alive).
 *
 * 0 COUNT     value inout: a = how many COUNTs this instance has served
 *             (state shared by the sessions of one instance)
 * 1 WAIT      value in a = ms: TEE_Wait, then a COUNT
 * 2 PANIC     TEE_Panic
 * 3 OPEN_SELF value out: a = result, b = origin of TEE_OpenTASession on
 *             this TA's own UUID */
#include <tee_internal_api.h>
#include <tee_ta_api.h>
#include <trace.h>

#include <user_ta_header_defines.h>

static uint32_t count;

TEE_Result TA_CreateEntryPoint(void)
{
	return TEE_SUCCESS;
}

void TA_DestroyEntryPoint(void)
{
	IMSG("instance destroyed after %u counts", count);
}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param p[TEE_NUM_PARAMS], void **ctx)
{
	(void)types;
	(void)p;
	*ctx = NULL;
	return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *ctx)
{
	(void)ctx;
}

TEE_Result TA_InvokeCommandEntryPoint(void *ctx, uint32_t cmd, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	static const TEE_UUID self = TA_UUID;
	TEE_TASessionHandle s = TEE_HANDLE_NULL;
	uint32_t origin = 0;
	TEE_Result res;

	(void)ctx;
	(void)types;
	switch (cmd) {
	case 0:
		p[0].value.a = ++count;
		return TEE_SUCCESS;
	case 1:
		res = TEE_Wait(p[0].value.a);
		if (res != TEE_SUCCESS)
			return res;
		p[0].value.a = ++count;
		return TEE_SUCCESS;
	case 2:
		TEE_Panic(0x1234);
		return TEE_ERROR_GENERIC;
	case 3:
		res = TEE_OpenTASession(&self, TEE_TIMEOUT_INFINITE, 0, NULL, &s, &origin);
		if (res == TEE_SUCCESS)
			TEE_CloseTASession(s);
		p[0].value.a = res;
		p[0].value.b = origin;
		return TEE_SUCCESS;
	default:
		return TEE_ERROR_BAD_PARAMETERS;
	}
}
