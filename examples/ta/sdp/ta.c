/* An example secure-data-path trusted application for teeheap, built for
 * the host with the dev kit:
 *
 *   cc -shared -fPIC $(teeheap ta-dev-kit --cflags) -I examples/ta/sdp/include \
 *      examples/ta/sdp/ta.c $(teeheap ta-dev-kit --link) \
 *      -o tadir/7eaf5d5c-8d11-4d8e-9a3c-7b1e5a1d0c01.ta
 *   teeheap run --ta-dir tadir -- ./host_app
 *
 * It moves bytes between normal and protected (secure) memory, checking the
 * kind of each memref with TEE_CheckMemoryAccessRights first, and can
 * delegate the same work to a second instance of itself or to OP-TEE's
 * invoke_tests pseudo-TA. Commands 0-8 answer as OP-TEE's sdp_basic test TA
 * (optee_test) does: SHORT_BUFFER before the rights checks and with no size
 * written back, ACCESS_DENIED from the rights checks, INJECT copying the
 * secure memref's size, BAD_PARAMETERS for an unknown command, and a
 * delegated session dropped after a failed call. */
#include <pta_invoke_tests.h>
#include <tee_internal_api.h>
#include <tee_internal_api_extensions.h>
#include <tee_ta_api.h>
#include <trace.h>

#include <ta_sdp_example.h>

#define MEMREF(p) ((p).memref.buffer)
#define SIZE(p) ((p).memref.size)

/* The rights a memref must grant, or the check's error. */
static TEE_Result need(TEE_Param *p, uint32_t rights)
{
	TEE_Result res = TEE_CheckMemoryAccessRights(rights | TEE_MEMORY_ACCESS_ANY_OWNER, MEMREF(*p), SIZE(*p));

	if (res != TEE_SUCCESS)
		EMSG("memref %p+%zu lacks rights %#x: %#x", MEMREF(*p), SIZE(*p), rights, res);
	return res;
}

/* Copies `n` bytes of `src` into `dst` after checking both (the normal
 * side first, as OP-TEE's test TA orders its checks). */
static TEE_Result copy_checked(TEE_Param *src, uint32_t src_rights, TEE_Param *dst, uint32_t dst_rights, size_t n)
{
	TEE_Result res;

	if (SIZE(*dst) < SIZE(*src))
		return TEE_ERROR_SHORT_BUFFER;
	if (src_rights & TEE_MEMORY_ACCESS_NONSECURE) {
		res = need(src, TEE_MEMORY_ACCESS_READ | src_rights);
		if (res == TEE_SUCCESS)
			res = need(dst, TEE_MEMORY_ACCESS_WRITE | dst_rights);
	} else {
		res = need(dst, TEE_MEMORY_ACCESS_WRITE | dst_rights);
		if (res == TEE_SUCCESS)
			res = need(src, TEE_MEMORY_ACCESS_READ | src_rights);
	}
	if (res != TEE_SUCCESS)
		return res;
	TEE_CacheInvalidate(MEMREF(*src), n);
	TEE_MemMove(MEMREF(*dst), MEMREF(*src), n);
	TEE_CacheFlush(MEMREF(*dst), n);
	return TEE_SUCCESS;
}

static const uint32_t copy_types =
	TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_NONE,
			TEE_PARAM_TYPE_NONE);

static TEE_Result inject(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	if (types != copy_types)
		return TEE_ERROR_BAD_PARAMETERS;
	/* The secure memref's size, as OP-TEE's test TA copies: a shorter
	 * input is read past its end (and faults past its last page). */
	return copy_checked(&p[0], TEE_MEMORY_ACCESS_NONSECURE, &p[1], TEE_MEMORY_ACCESS_SECURE, SIZE(p[1]));
}

static TEE_Result dump(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	if (types != copy_types)
		return TEE_ERROR_BAD_PARAMETERS;
	return copy_checked(&p[0], TEE_MEMORY_ACCESS_SECURE, &p[1], TEE_MEMORY_ACCESS_NONSECURE, SIZE(p[0]));
}

static TEE_Result transform(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	uint8_t *b = MEMREF(p[0]);
	size_t n = SIZE(p[0]);
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INOUT, TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE,
				     TEE_PARAM_TYPE_NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	res = need(&p[0], TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_WRITE | TEE_MEMORY_ACCESS_SECURE);
	if (res != TEE_SUCCESS)
		return res;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(~b[i] + 1);
	return TEE_SUCCESS;
}

static TEE_Result where(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
				     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	p[1].value.a = TEE_CheckMemoryAccessRights(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_SECURE,
						   MEMREF(p[0]), SIZE(p[0])) == TEE_SUCCESS;
	p[1].value.b = TEE_CheckMemoryAccessRights(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_NONSECURE,
						   MEMREF(p[0]), SIZE(p[0])) == TEE_SUCCESS;
	return TEE_SUCCESS;
}

/* Forwards a call with our own parameters to `uuid`, keeping one session
 * per target for the life of this session; a failed call drops it. */
static TEE_Result forward(TEE_TASessionHandle *sess, const TEE_UUID *uuid, uint32_t cmd, uint32_t types,
			  TEE_Param p[TEE_NUM_PARAMS])
{
	uint32_t origin = 0;
	TEE_Result res;

	if (*sess == TEE_HANDLE_NULL) {
		res = TEE_OpenTASession(uuid, TEE_TIMEOUT_INFINITE, 0, NULL, sess, &origin);
		if (res != TEE_SUCCESS) {
			EMSG("cannot open a session: %#x (origin %u)", res, origin);
			*sess = TEE_HANDLE_NULL;
			return res;
		}
	}
	res = TEE_InvokeTACommand(*sess, TEE_TIMEOUT_INFINITE, cmd, types, p, &origin);
	if (res != TEE_SUCCESS) {
		DMSG("command %u: %#x (origin %u)", cmd, res, origin);
		TEE_CloseTASession(*sess);
		*sess = TEE_HANDLE_NULL;
	}
	return res;
}

struct session {
	TEE_TASessionHandle self;
	TEE_TASessionHandle pta;
};

TEE_Result TA_CreateEntryPoint(void)
{
	return TEE_SUCCESS;
}

void TA_DestroyEntryPoint(void)
{
}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param p[TEE_NUM_PARAMS], void **ctx)
{
	struct session *s;

	(void)types;
	(void)p;
	s = TEE_Malloc(sizeof(*s), TEE_MALLOC_FILL_ZERO);
	if (!s)
		return TEE_ERROR_OUT_OF_MEMORY;
	*ctx = s;
	return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *ctx)
{
	struct session *s = ctx;

	if (s->self != TEE_HANDLE_NULL)
		TEE_CloseTASession(s->self);
	if (s->pta != TEE_HANDLE_NULL)
		TEE_CloseTASession(s->pta);
	TEE_Free(s);
}

TEE_Result TA_InvokeCommandEntryPoint(void *ctx, uint32_t cmd, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
	static const TEE_UUID self = TA_SDP_EXAMPLE_UUID;
	static const TEE_UUID pta = PTA_INVOKE_TESTS_UUID;
	struct session *s = ctx;

	switch (cmd) {
	case TA_SDP_EXAMPLE_CMD_INJECT:
		return inject(types, p);
	case TA_SDP_EXAMPLE_CMD_TRANSFORM:
		return transform(types, p);
	case TA_SDP_EXAMPLE_CMD_DUMP:
		return dump(types, p);
	case TA_SDP_EXAMPLE_CMD_INVOKE_INJECT:
	case TA_SDP_EXAMPLE_CMD_INVOKE_TRANSFORM:
	case TA_SDP_EXAMPLE_CMD_INVOKE_DUMP:
		return forward(&s->self, &self, cmd - TA_SDP_EXAMPLE_CMD_INVOKE_INJECT, types, p);
	case TA_SDP_EXAMPLE_CMD_PTA_INJECT:
		return forward(&s->pta, &pta, PTA_INVOKE_TESTS_CMD_COPY_NSEC_TO_SEC, types, p);
	case TA_SDP_EXAMPLE_CMD_PTA_TRANSFORM:
		return forward(&s->pta, &pta, PTA_INVOKE_TESTS_CMD_READ_MODIFY_SEC, types, p);
	case TA_SDP_EXAMPLE_CMD_PTA_DUMP:
		return forward(&s->pta, &pta, PTA_INVOKE_TESTS_CMD_COPY_SEC_TO_NSEC, types, p);
	case TA_SDP_EXAMPLE_CMD_WHERE:
		return where(types, p);
	default:
		return TEE_ERROR_BAD_PARAMETERS;
	}
}
