/* A TA that checks teeheap's GP property API (tests/ta_api.rs): its own
 * header's properties (standard and TA_CURRENT_TA_EXT_PROPERTIES) through
 * every getter and the enumerators, the TEE implementation's, and its
 * client's identity. CMD_PROPS answers TEE_SUCCESS or the first failing
 * step in value a; CMD_CLIENT answers the client's login (a) and the first
 * four UUID bytes (b); CMD_BAD_HANDLE must panic. */
#include <string.h>
#include <tee_internal_api.h>
#include <tee_ta_api.h>
#include <user_ta_header_defines.h>

enum { CMD_PROPS, CMD_CLIENT, CMD_BAD_HANDLE };

/* Every step runs; the first failure is kept. */
static uint32_t bad_step;
#define STEP(n, cond) do { int ok_ = (cond); if (!bad_step && !ok_) bad_step = (n); } while (0)

static int is_string(TEE_PropSetHandle h, const char *name, const char *want)
{
	char buf[128];
	size_t n = sizeof(buf);

	return TEE_GetPropertyAsString(h, name, buf, &n) == TEE_SUCCESS && n == strlen(want) + 1 &&
	       !strcmp(buf, want);
}

static void own(void)
{
	const TEE_PropSetHandle ta = TEE_PROPSET_CURRENT_TA;
	static const TEE_UUID me = TA_UUID;
	TEE_UUID u;
	TEE_Identity id;
	bool b = false;
	uint32_t v = 0;
	uint64_t w = 0;
	char s[8];
	uint8_t bin[16];
	size_t n;

	STEP(1, TEE_GetPropertyAsUUID(ta, "gpd.ta.appID", &u) == TEE_SUCCESS && !memcmp(&u, &me, sizeof(u)));
	STEP(2, TEE_GetPropertyAsBool(ta, "gpd.ta.singleInstance", &b) == TEE_SUCCESS && !b);
	STEP(3, TEE_GetPropertyAsBool(ta, "gpd.ta.multiSession", &b) == TEE_SUCCESS && b);
	STEP(4, TEE_GetPropertyAsBool(ta, "gpd.ta.instanceKeepAlive", &b) == TEE_SUCCESS && !b);
	STEP(5, TEE_GetPropertyAsU32(ta, "gpd.ta.dataSize", &v) == TEE_SUCCESS && v == 48 * 1024);
	STEP(6, TEE_GetPropertyAsU32(ta, "gpd.ta.stackSize", &v) == TEE_SUCCESS && v == 4 * 1024);
	STEP(7, is_string(ta, "gpd.ta.version", "2.1"));
	STEP(8, is_string(ta, "gpd.ta.description", "teeheap property test TA"));
	STEP(9, is_string(ta, "gpd.ta.appID", "8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c03"));
	n = 3;
	STEP(10, TEE_GetPropertyAsString(ta, "test.string", s, &n) == TEE_ERROR_SHORT_BUFFER && n == 6);
	STEP(11, TEE_GetPropertyAsBool(ta, "test.bool", &b) == TEE_SUCCESS && b);
	STEP(12, TEE_GetPropertyAsU32(ta, "test.u32", &v) == TEE_SUCCESS && v == 0x1234);
	STEP(13, is_string(ta, "test.u32", "4660"));
	STEP(14, TEE_GetPropertyAsU64(ta, "test.u64", &w) == TEE_SUCCESS && w == 0x123456789ULL);
	STEP(15, TEE_GetPropertyAsU32(ta, "test.u64", &v) == TEE_ERROR_BAD_FORMAT);
	STEP(16, TEE_GetPropertyAsUUID(ta, "test.uuid", &u) == TEE_SUCCESS && u.timeLow == 0x01020304 &&
			 u.timeMid == 0x0506 && u.timeHiAndVersion == 0x0708 && u.clockSeqAndNode[7] == 16);
	STEP(17, is_string(ta, "test.uuid", "01020304-0506-0708-090a-0b0c0d0e0f10"));
	STEP(18, TEE_GetPropertyAsIdentity(ta, "test.identity", &id) == TEE_SUCCESS && id.login == 4 &&
			 id.uuid.timeLow == 0x11223344 && id.uuid.clockSeqAndNode[0] == 1);
	STEP(19, is_string(ta, "test.string", "hello"));
	STEP(20, TEE_GetPropertyAsU32(ta, "test.number.text", &v) == TEE_SUCCESS && v == 16);
	STEP(21, TEE_GetPropertyAsU32(ta, "test.string", &v) == TEE_ERROR_BAD_FORMAT);
	STEP(22, TEE_GetPropertyAsBool(ta, "test.u32", &b) == TEE_ERROR_BAD_FORMAT);
	n = 4;
	STEP(23, TEE_GetPropertyAsBinaryBlock(ta, "test.binary", bin, &n) == TEE_ERROR_SHORT_BUFFER && n == 12);
	n = sizeof(bin);
	STEP(24, TEE_GetPropertyAsBinaryBlock(ta, "test.binary", bin, &n) == TEE_SUCCESS && n == 12 &&
			 !memcmp(bin, "Hello world!", 12));
	STEP(25, is_string(ta, "test.binary", "SGVsbG8gd29ybGQh"));
	STEP(26, TEE_GetPropertyAsU32(ta, "test.nothing", &v) == TEE_ERROR_ITEM_NOT_FOUND);
	STEP(27, TEE_GetPropertyAsBinaryBlock(ta, "test.u32", bin, &n) == TEE_ERROR_BAD_FORMAT);
}

static void tee_and_client(void)
{
	TEE_UUID u;
	TEE_Identity id;
	char buf[128];
	size_t n = sizeof(buf);

	STEP(30, TEE_GetPropertyAsString(TEE_PROPSET_TEE_IMPLEMENTATION, "gpd.tee.apiversion", buf, &n) ==
			 TEE_SUCCESS && n > 1);
	n = sizeof(buf);
	STEP(31, TEE_GetPropertyAsString(TEE_PROPSET_TEE_IMPLEMENTATION, "gpd.tee.description", buf, &n) ==
			 TEE_SUCCESS && !strncmp(buf, "teeheap", 7));
	STEP(32, TEE_GetPropertyAsUUID(TEE_PROPSET_TEE_IMPLEMENTATION, "gpd.tee.deviceID", &u) == TEE_SUCCESS);
	STEP(33, TEE_GetPropertyAsIdentity(TEE_PROPSET_CURRENT_CLIENT, "gpd.client.identity", &id) == TEE_SUCCESS);
	STEP(34, TEE_GetPropertyAsUUID(TEE_PROPSET_CURRENT_CLIENT, "gpd.ta.appID", &u) == TEE_ERROR_ITEM_NOT_FOUND);
}

/* Walks `set` with an enumerator; counts the names and checks that `want`
 * is among them and reads through the enumerator as `want_value`. */
static void walk(uint32_t s, TEE_PropSetHandle set, const char *want, const char *want_value)
{
	TEE_PropSetHandle e = TEE_HANDLE_NULL;
	char name[128], value[128];
	size_t n;
	int count = 0, found = 0;

	STEP(s + 1, TEE_AllocatePropertyEnumerator(&e) == TEE_SUCCESS && e != TEE_HANDLE_NULL);
	n = sizeof(name);
	STEP(s + 2, TEE_GetPropertyName(e, name, &n) == TEE_ERROR_ITEM_NOT_FOUND);
	STEP(s + 3, TEE_GetNextProperty(e) == TEE_ERROR_ITEM_NOT_FOUND);
	TEE_StartPropertyEnumerator(e, set);
	do {
		n = sizeof(name);
		if (TEE_GetPropertyName(e, name, &n) != TEE_SUCCESS || n != strlen(name) + 1)
			break;
		count++;
		if (!strcmp(name, want)) {
			size_t m = sizeof(value);
			found = TEE_GetPropertyAsString(e, NULL, value, &m) == TEE_SUCCESS &&
				(!want_value || !strcmp(value, want_value));
		}
	} while (TEE_GetNextProperty(e) == TEE_SUCCESS && count < 100);
	STEP(s + 4, count > 1 && found);
	n = sizeof(name);
	STEP(s + 5, TEE_GetPropertyName(e, name, &n) == TEE_ERROR_ITEM_NOT_FOUND);
	TEE_ResetPropertyEnumerator(e);
	n = sizeof(name);
	STEP(s + 6, TEE_GetPropertyName(e, name, &n) == TEE_ERROR_ITEM_NOT_FOUND);
	TEE_StartPropertyEnumerator(e, set);
	n = 1;
	STEP(s + 7, TEE_GetPropertyName(e, name, &n) == TEE_ERROR_SHORT_BUFFER && n > 1);
	TEE_FreePropertyEnumerator(e);
}

TEE_Result TA_CreateEntryPoint(void)
{
	uint32_t v = 0;

	/* The TA's own properties are there from the start. */
	return TEE_GetPropertyAsU32(TEE_PROPSET_CURRENT_TA, "test.u32", &v) == TEE_SUCCESS && v == 0x1234 ?
		       TEE_SUCCESS : TEE_ERROR_GENERIC;
}
void TA_DestroyEntryPoint(void) {}
TEE_Result TA_OpenSessionEntryPoint(uint32_t t, TEE_Param p[TEE_NUM_PARAMS], void **c)
{
	(void)t; (void)p; (void)c;
	return TEE_SUCCESS;
}
void TA_CloseSessionEntryPoint(void *c) { (void)c; }

TEE_Result TA_InvokeCommandEntryPoint(void *c, uint32_t cmd, uint32_t t, TEE_Param p[TEE_NUM_PARAMS])
{
	TEE_Identity id;

	(void)c;
	if (TEE_PARAM_TYPE_GET(t, 0) != TEE_PARAM_TYPE_VALUE_OUTPUT)
		return TEE_ERROR_BAD_PARAMETERS;
	switch (cmd) {
	case CMD_PROPS:
		bad_step = 0;
		own();
		tee_and_client();
		walk(40, TEE_PROPSET_CURRENT_TA, "test.u32", "4660");
		walk(50, TEE_PROPSET_TEE_IMPLEMENTATION, "gpd.tee.deviceID", NULL);
		walk(60, TEE_PROPSET_CURRENT_CLIENT, "gpd.client.identity", NULL);
		p[0].value.a = bad_step;
		return bad_step ? TEE_ERROR_GENERIC : TEE_SUCCESS;
	case CMD_CLIENT:
		if (TEE_GetPropertyAsIdentity(TEE_PROPSET_CURRENT_CLIENT, "gpd.client.identity", &id))
			return TEE_ERROR_GENERIC;
		p[0].value.a = id.login;
		p[0].value.b = id.uuid.timeLow;
		return TEE_SUCCESS;
	case CMD_BAD_HANDLE: {
		uint32_t v;
		TEE_GetPropertyAsU32((TEE_PropSetHandle)(uintptr_t)0x4321, "gpd.ta.dataSize", &v);
		p[0].value.a = 0xdead;
		return TEE_ERROR_GENERIC;
	}
	}
	return TEE_ERROR_NOT_SUPPORTED;
}
