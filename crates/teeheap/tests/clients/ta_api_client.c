/* Host program of the GP API test TAs (tests/tas/crypto, tests/tas/props;
 * tests/ta_api.rs), through /dev/tee0 with our libteec-style helpers.
 * `ta_api_client crypto`: each published test vector is one command of the
 * crypto TA; each GP misuse is a command in a session of its own that must
 * end with TARGET_DEAD (origin TEE) while the first session carries on.
 * `ta_api_client props`: the property TA's checks, and its client's
 * identity seen from the normal world and from another TA.
 * One "ok"/"FAIL" line per check, "N failed" last. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "check.h"
#include "teec.h"

#define TARGET_DEAD 0xffff3024u
#define ORIGIN_TEE 3

static const TEEC_UUID CRYPTO = { { 0x8a, 0xa2, 0xf1, 0xe3, 0x4b, 0x2c, 0x4f, 0x0e, 0x9d, 0x51, 0x6c, 0x7e, 0x2b,
				    0x0a, 0x9c, 0x02 } };
static const TEEC_UUID PROPS = { { 0x8a, 0xa2, 0xf1, 0xe3, 0x4b, 0x2c, 0x4f, 0x0e, 0x9d, 0x51, 0x6c, 0x7e, 0x2b,
				   0x0a, 0x9c, 0x03 } };

static const struct {
	uint32_t cmd;
	const char *name;
} VECTORS[] = {
	{ 0, "AES-128-ECB: NIST SP 800-38A F.1.1/F.1.2" },
	{ 1, "AES-128-CBC: NIST SP 800-38A F.2.1/F.2.2" },
	{ 2, "AES-128-CTR: NIST SP 800-38A F.5.1/F.5.2" },
	{ 3, "AES-GCM: GCM spec test case 4, wrong tag refused" },
	{ 4, "SHA-256: abc" },
	{ 5, "HMAC-SHA256: RFC 4231 test cases 2 and 4" },
	{ 6, "TEE_GenerateKey: AES-256 and HMAC keys" },
	{ 7, "SHORT_BUFFER writes the size needed back" },
	{ 8, "TEE_GetOperationInfo and TEE_IsAlgorithmSupported" },
}, MISUSES[] = {
	{ 20, "CipherUpdate before CipherInit panics" },
	{ 21, "a made-up operation handle panics" },
	{ 22, "DigestUpdate on a cipher panics" },
	{ 23, "an HMAC key on an AES operation panics" },
	{ 24, "AEUpdateAAD after AEUpdate panics" },
	{ 25, "a freed object panics" },
};

/* Command `cmd` with one value output: its a in *step (b in *b if asked). */
static TEEC_Result run2(TEEC_Session *s, uint32_t cmd, uint32_t *step, uint32_t *b, uint32_t *origin) {
	TEEC_Operation op;
	memset(&op, 0, sizeof op);
	op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
	op.params[0].value.a = 0xffffffff;
	TEEC_Result r = TEEC_InvokeCommand(s, cmd, &op, origin);
	*step = op.params[0].value.a;
	if (b)
		*b = op.params[0].value.b;
	return r;
}

static TEEC_Result run(TEEC_Session *s, uint32_t cmd, uint32_t *step, uint32_t *origin) {
	return run2(s, cmd, step, NULL, origin);
}

static void props(TEEC_Context *ctx) {
	char msg[160];
	TEEC_Session s, c;
	uint32_t origin = 0, a = 0, b = 0;
	TEEC_Result r = TEEC_OpenSession(ctx, &s, &PROPS, 0, NULL, NULL, &origin);
	snprintf(msg, sizeof msg, "ret %#x origin %u", r, origin);
	check("open session with the property TA", r == TEEC_SUCCESS, msg);
	if (r != TEEC_SUCCESS)
		return;
	r = run(&s, 0, &a, &origin);
	snprintf(msg, sizeof msg, "ret %#x origin %u, first bad step %u", r, origin, a);
	check("TA, client and TEE properties through every getter and enumerators", r == TEEC_SUCCESS && a == 0, msg);
	r = run2(&s, 1, &a, &b, &origin);
	snprintf(msg, sizeof msg, "ret %#x login %#x uuid %#x", r, a, b);
	check("gpd.client.identity of a normal-world client: public login", r == TEEC_SUCCESS && a == 0 && b == 0, msg);
	r = TEEC_OpenSession(ctx, &c, &CRYPTO, 0, NULL, NULL, &origin);
	if (r == TEEC_SUCCESS) {
		r = run2(&c, 10, &a, &b, &origin);
		TEEC_CloseSession(&c);
	}
	snprintf(msg, sizeof msg, "ret %#x origin %u login %#x uuid %#x", r, origin, a, b);
	check("gpd.client.identity of a TA client: TRUSTED_APP and its UUID",
	      r == TEEC_SUCCESS && a == 0xf0000000u && b == 0x8aa2f1e3u, msg);
	TEEC_Session m;
	r = TEEC_OpenSession(ctx, &m, &PROPS, 0, NULL, NULL, &origin);
	if (r == TEEC_SUCCESS) {
		r = run(&m, 2, &a, &origin);
		TEEC_CloseSession(&m);
	}
	snprintf(msg, sizeof msg, "ret %#x origin %u", r, origin);
	check("a made-up property set handle panics", r == TARGET_DEAD && origin == ORIGIN_TEE, msg);
	TEEC_CloseSession(&s);
}

int main(int argc, char **argv) {
	char msg[160];
	TEEC_Context ctx;
	TEEC_Session s;
	uint32_t origin = 0, step = 0;
	check("open /dev/tee0", TEEC_InitializeContext(NULL, &ctx) == TEEC_SUCCESS, "no /dev/tee0");
	if (argc > 1 && !strcmp(argv[1], "props")) {
		props(&ctx);
		printf("%d failed\n", failed);
		return failed != 0;
	}
	TEEC_Result r = TEEC_OpenSession(&ctx, &s, &CRYPTO, 0, NULL, NULL, &origin);
	snprintf(msg, sizeof msg, "ret %#x origin %u", r, origin);
	check("open session with the crypto TA", r == TEEC_SUCCESS, msg);
	if (r != TEEC_SUCCESS) {
		printf("%d failed\n", failed);
		return 1;
	}
	for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++) {
		r = run(&s, VECTORS[i].cmd, &step, &origin);
		snprintf(msg, sizeof msg, "ret %#x origin %u, first bad step %u", r, origin, step);
		check(VECTORS[i].name, r == TEEC_SUCCESS && step == 0, msg);
	}
	for (size_t i = 0; i < sizeof MISUSES / sizeof MISUSES[0]; i++) {
		TEEC_Session m;
		r = TEEC_OpenSession(&ctx, &m, &CRYPTO, 0, NULL, NULL, &origin);
		if (r == TEEC_SUCCESS) {
			r = run(&m, MISUSES[i].cmd, &step, &origin);
			TEEC_CloseSession(&m);
		}
		snprintf(msg, sizeof msg, "ret %#x origin %u step %#x", r, origin, step);
		check(MISUSES[i].name, r == TARGET_DEAD && origin == ORIGIN_TEE, msg);
	}
	r = run(&s, 4, &step, &origin);
	snprintf(msg, sizeof msg, "ret %#x origin %u step %u", r, origin, step);
	check("the first session carries on after the panics", r == TEEC_SUCCESS && step == 0, msg);
	TEEC_CloseSession(&s);
	TEEC_FinalizeContext(&ctx);
	printf("%d failed\n", failed);
	return failed != 0;
}
