/* An example content-decryption TA (as a CDM's decryptor does it): the
 * host sets a content key once per session, then each sample is decrypted
 * with AES-128-CTR straight from its memref (normal memory) into a
 * destination memref that must be secure memory -- one pass, through the
 * GP cipher API, with no copy of the sample in the TA. */
#include <tee_internal_api.h>
#include <tee_internal_api_extensions.h>
#include <tee_ta_api.h>
#include <ta_decrypt_example.h>

struct session {
	TEE_OperationHandle op;
};

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* The 16 bytes of two value parameters. */
static void bytes16(uint8_t out[16], const TEE_Param *x, const TEE_Param *y)
{
	be32(out, x->value.a);
	be32(out + 4, x->value.b);
	be32(out + 8, y->value.a);
	be32(out + 12, y->value.b);
}

static TEE_Result set_key(struct session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	TEE_ObjectHandle key = TEE_HANDLE_NULL;
	TEE_Attribute attr;
	uint8_t k[16];
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_NONE,
				     TEE_PARAM_TYPE_NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	bytes16(k, &p[0], &p[1]);
	if (s->op != TEE_HANDLE_NULL) {
		TEE_FreeOperation(s->op);
		s->op = TEE_HANDLE_NULL;
	}
	res = TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &key);
	if (res)
		goto out;
	TEE_InitRefAttribute(&attr, TEE_ATTR_SECRET_VALUE, k, sizeof(k));
	res = TEE_PopulateTransientObject(key, &attr, 1);
	if (res)
		goto out;
	res = TEE_AllocateOperation(&s->op, TEE_ALG_AES_CTR, TEE_MODE_DECRYPT, 128);
	if (res)
		goto out;
	res = TEE_SetOperationKey(s->op, key);
out:
	/* The operation keeps its own copy; wipe ours. */
	TEE_FreeTransientObject(key);
	TEE_MemFill(k, 0, sizeof(k));
	return res;
}

static TEE_Result decrypt(struct session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	void *src = p[0].memref.buffer, *dst = p[1].memref.buffer;
	size_t n = p[0].memref.size, out = p[1].memref.size;
	uint8_t iv[16];
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
				     TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_VALUE_INPUT))
		return TEE_ERROR_BAD_PARAMETERS;
	if (s->op == TEE_HANDLE_NULL)
		return TEE_ERROR_BAD_STATE;
	if (out < n) {
		p[1].memref.size = n;
		return TEE_ERROR_SHORT_BUFFER;
	}
	/* Plaintext goes to secure memory only. */
	if (n && TEE_CheckMemoryAccessRights(TEE_MEMORY_ACCESS_WRITE | TEE_MEMORY_ACCESS_SECURE |
						     TEE_MEMORY_ACCESS_ANY_OWNER,
					     dst, n))
		return TEE_ERROR_ACCESS_DENIED;
	bytes16(iv, &p[2], &p[3]);
	TEE_CipherInit(s->op, iv, sizeof(iv));
	res = TEE_CipherDoFinal(s->op, src, n, dst, &out);
	if (!res)
		p[1].memref.size = out;
	return res;
}

TEE_Result TA_CreateEntryPoint(void)
{
	return TEE_SUCCESS;
}

void TA_DestroyEntryPoint(void)
{
}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param p[TEE_NUM_PARAMS], void **ctx)
{
	struct session *s = TEE_Malloc(sizeof(*s), TEE_MALLOC_FILL_ZERO);

	(void)types;
	(void)p;
	if (!s)
		return TEE_ERROR_OUT_OF_MEMORY;
	*ctx = s;
	return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *ctx)
{
	struct session *s = ctx;

	TEE_FreeOperation(s->op);
	TEE_Free(s);
}

TEE_Result TA_InvokeCommandEntryPoint(void *ctx, uint32_t cmd, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	switch (cmd) {
	case TA_DECRYPT_CMD_SET_KEY:
		return set_key(ctx, types, p);
	case TA_DECRYPT_CMD_DECRYPT:
		return decrypt(ctx, types, p);
	}
	return TEE_ERROR_NOT_SUPPORTED;
}
