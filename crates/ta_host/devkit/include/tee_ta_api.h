/* The five entry points a TA defines (teeheap dev kit). */
#ifndef TEE_TA_API_H
#define TEE_TA_API_H

#include <tee_api_types.h>

TEE_Result TA_CreateEntryPoint(void);
void TA_DestroyEntryPoint(void);
TEE_Result TA_OpenSessionEntryPoint(uint32_t paramTypes, TEE_Param params[TEE_NUM_PARAMS],
				    void **sessionContext);
void TA_CloseSessionEntryPoint(void *sessionContext);
TEE_Result TA_InvokeCommandEntryPoint(void *sessionContext, uint32_t commandID,
				      uint32_t paramTypes, TEE_Param params[TEE_NUM_PARAMS]);

#endif
