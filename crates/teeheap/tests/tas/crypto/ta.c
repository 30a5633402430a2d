/* A TA that checks teeheap's GP cryptographic operations against published
 * test vectors (tests/ta_crypto.rs): NIST SP 800-38A F.1.1, F.2.1, F.5.1
 * (AES-128 ECB, CBC, CTR), test case 4 of the GCM specification, SHA-256
 * of "abc" (FIPS 180-2), HMAC-SHA256 test cases 2 and 4 of RFC 4231. Each
 * check command answers TEE_SUCCESS, or the number of the first step that
 * went wrong in value a of parameter 0 with TEE_ERROR_GENERIC. Commands
 * from MISUSE_* on break a GP rule on purpose: the TA must panic there. */
#include <string.h>
#include <tee_internal_api.h>
#include <tee_ta_api.h>

enum {
	CMD_ECB, CMD_CBC, CMD_CTR, CMD_GCM, CMD_SHA256, CMD_HMAC, CMD_GENERATE, CMD_SHORT_BUFFER, CMD_INFO,
	/* Not crypto: asks the property test TA who its client is (TA to TA). */
	CMD_PROPS_CLIENT = 10,
	MISUSE_UPDATE_BEFORE_INIT = 20, MISUSE_BAD_HANDLE, MISUSE_DIGEST_ON_CIPHER, MISUSE_WRONG_KEY_TYPE,
	MISUSE_AAD_AFTER_PAYLOAD, MISUSE_FREED_OBJECT,
};

static const uint8_t SP_KEY[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
				    0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const uint8_t SP_PT[64] = {
	0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
	0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51,
	0x30, 0xc8, 0x1c, 0x46, 0xa3, 0x5c, 0xe4, 0x11, 0xe5, 0xfb, 0xc1, 0x19, 0x1a, 0x0a, 0x52, 0xef,
	0xf6, 0x9f, 0x24, 0x45, 0xdf, 0x4f, 0x9b, 0x17, 0xad, 0x2b, 0x41, 0x7b, 0xe6, 0x6c, 0x37, 0x10,
};
static const uint8_t ECB_CT[64] = {
	0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60, 0xa8, 0x9e, 0xca, 0xf3, 0x24, 0x66, 0xef, 0x97,
	0xf5, 0xd3, 0xd5, 0x85, 0x03, 0xb9, 0x69, 0x9d, 0xe7, 0x85, 0x89, 0x5a, 0x96, 0xfd, 0xba, 0xaf,
	0x43, 0xb1, 0xcd, 0x7f, 0x59, 0x8e, 0xce, 0x23, 0x88, 0x1b, 0x00, 0xe3, 0xed, 0x03, 0x06, 0x88,
	0x7b, 0x0c, 0x78, 0x5e, 0x27, 0xe8, 0xad, 0x3f, 0x82, 0x23, 0x20, 0x71, 0x04, 0x72, 0x5d, 0xd4,
};
static const uint8_t CBC_IV[16] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
static const uint8_t CBC_CT[64] = {
	0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9, 0x19, 0x7d,
	0x50, 0x86, 0xcb, 0x9b, 0x50, 0x72, 0x19, 0xee, 0x95, 0xdb, 0x11, 0x3a, 0x91, 0x76, 0x78, 0xb2,
	0x73, 0xbe, 0xd6, 0xb8, 0xe3, 0xc1, 0x74, 0x3b, 0x71, 0x16, 0xe6, 0x9e, 0x22, 0x22, 0x95, 0x16,
	0x3f, 0xf1, 0xca, 0xa1, 0x68, 0x1f, 0xac, 0x09, 0x12, 0x0e, 0xca, 0x30, 0x75, 0x86, 0xe1, 0xa7,
};
static const uint8_t CTR_IV[16] = { 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
				    0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff };
static const uint8_t CTR_CT[64] = {
	0x87, 0x4d, 0x61, 0x91, 0xb6, 0x20, 0xe3, 0x26, 0x1b, 0xef, 0x68, 0x64, 0x99, 0x0d, 0xb6, 0xce,
	0x98, 0x06, 0xf6, 0x6b, 0x79, 0x70, 0xfd, 0xff, 0x86, 0x17, 0x18, 0x7b, 0xb9, 0xff, 0xfd, 0xff,
	0x5a, 0xe4, 0xdf, 0x3e, 0xdb, 0xd5, 0xd3, 0x5e, 0x5b, 0x4f, 0x09, 0x02, 0x0d, 0xb0, 0x3e, 0xab,
	0x1e, 0x03, 0x1d, 0xda, 0x2f, 0xbe, 0x03, 0xd1, 0x79, 0x21, 0x70, 0xa0, 0xf3, 0x00, 0x9c, 0xee,
};

/* GCM specification, test case 4. */
static const uint8_t GCM_KEY[16] = { 0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c,
				     0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08 };
static const uint8_t GCM_IV[12] = { 0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88 };
static const uint8_t GCM_AAD[20] = { 0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed,
				     0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2 };
static const uint8_t GCM_PT[60] = {
	0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26, 0x9a,
	0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31, 0x8a, 0x72,
	0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49, 0xa6, 0xb5, 0x25,
	0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39,
};
static const uint8_t GCM_CT[60] = {
	0x42, 0x83, 0x1e, 0xc2, 0x21, 0x77, 0x74, 0x24, 0x4b, 0x72, 0x21, 0xb7, 0x84, 0xd0, 0xd4, 0x9c,
	0xe3, 0xaa, 0x21, 0x2f, 0x2c, 0x02, 0xa4, 0xe0, 0x35, 0xc1, 0x7e, 0x23, 0x29, 0xac, 0xa1, 0x2e,
	0x21, 0xd5, 0x14, 0xb2, 0x54, 0x66, 0x93, 0x1c, 0x7d, 0x8f, 0x6a, 0x5a, 0xac, 0x84, 0xaa, 0x05,
	0x1b, 0xa3, 0x0b, 0x39, 0x6a, 0x0a, 0xac, 0x97, 0x3d, 0x58, 0xe0, 0x91,
};
static const uint8_t GCM_TAG[16] = { 0x5b, 0xc9, 0x4f, 0xbc, 0x32, 0x21, 0xa5, 0xdb,
				     0x94, 0xfa, 0xe9, 0x5a, 0xe7, 0x12, 0x1a, 0x47 };

/* SHA-256("abc") */
static const uint8_t SHA_ABC[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

/* RFC 4231 test cases 2 and 4. */
static const uint8_t HMAC2[32] = {
	0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
	0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
};
static const uint8_t HMAC4[32] = {
	0x82, 0x55, 0x8a, 0x38, 0x9a, 0x44, 0x3c, 0x0e, 0xa4, 0xcc, 0x81, 0x98, 0x99, 0xf2, 0x08, 0x3a,
	0x85, 0xf0, 0xfa, 0xa3, 0xe5, 0x78, 0xf8, 0x07, 0x7a, 0x2e, 0x3f, 0xf4, 0x67, 0x29, 0x66, 0x5b,
};

/* The first failing step; 0 while all is well. */
/* Every step runs (later calls rely on earlier ones); the first failure is kept. */
static uint32_t bad_step;
#define STEP(n, cond) do { int ok_ = (cond); if (!bad_step && !ok_) bad_step = (n); } while (0)

static TEE_ObjectHandle key_object(uint32_t type, const void *key, size_t len)
{
	TEE_ObjectHandle o = TEE_HANDLE_NULL;
	TEE_Attribute a;

	if (TEE_AllocateTransientObject(type, len * 8 < 192 && type != TEE_TYPE_AES ? 256 : len * 8, &o))
		return TEE_HANDLE_NULL;
	TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, key, len);
	if (TEE_PopulateTransientObject(o, &a, 1)) {
		TEE_FreeTransientObject(o);
		return TEE_HANDLE_NULL;
	}
	return o;
}

static TEE_OperationHandle keyed(uint32_t alg, uint32_t mode, uint32_t type, const void *key, size_t len)
{
	TEE_OperationHandle op = TEE_HANDLE_NULL;
	TEE_ObjectHandle o = key_object(type, key, len);
	uint32_t max = len * 8 < 192 && type != TEE_TYPE_AES ? 256 : len * 8;

	if (o == TEE_HANDLE_NULL || TEE_AllocateOperation(&op, alg, mode, max)) {
		TEE_FreeTransientObject(o);
		return TEE_HANDLE_NULL;
	}
	if (TEE_SetOperationKey(op, o)) {
		TEE_FreeOperation(op);
		op = TEE_HANDLE_NULL;
	}
	/* The operation keeps its own copy of the key. */
	TEE_FreeTransientObject(o);
	return op;
}

/* One SP 800-38A vector both ways: in pieces of 5 bytes (block modes
 * hold back partial blocks), then in place in one DoFinal. */
static void cipher_vector(uint32_t alg, const uint8_t *iv, size_t ivlen, const uint8_t *ct)
{
	static const struct { uint32_t mode; const uint8_t *from, *to; } dir[2] = {
		{ TEE_MODE_ENCRYPT, SP_PT, NULL }, { TEE_MODE_DECRYPT, NULL, SP_PT },
	};
	for (int d = 0; d < 2; d++) {
		const uint8_t *from = dir[d].from ? dir[d].from : ct, *to = dir[d].to ? dir[d].to : ct;
		uint32_t s = 10 * (d + 1);
		TEE_OperationHandle op = keyed(alg, dir[d].mode, TEE_TYPE_AES, SP_KEY, sizeof(SP_KEY));
		uint8_t out[64], buf[64];
		size_t at = 0, n;

		STEP(s + 1, op != TEE_HANDLE_NULL);
		if (op == TEE_HANDLE_NULL)
			return;
		TEE_CipherInit(op, iv, ivlen);
		for (size_t i = 0; i < 60; i += 5) {
			n = sizeof(out) - at;
			STEP(s + 2, TEE_CipherUpdate(op, from + i, 5, out + at, &n) == TEE_SUCCESS);
			at += n;
		}
		n = sizeof(out) - at;
		STEP(s + 3, TEE_CipherDoFinal(op, from + 60, 4, out + at, &n) == TEE_SUCCESS);
		at += n;
		STEP(s + 4, at == 64 && !memcmp(out, to, 64));

		TEE_CipherInit(op, iv, ivlen);
		memcpy(buf, from, 64);
		n = sizeof(buf);
		STEP(s + 5, TEE_CipherDoFinal(op, buf, 64, buf, &n) == TEE_SUCCESS && n == 64);
		STEP(s + 6, !memcmp(buf, to, 64));
		TEE_FreeOperation(op);
	}
}

static void gcm(void)
{
	uint8_t out[60], tag[16];
	size_t n, t, at;
	TEE_OperationHandle op = keyed(TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, TEE_TYPE_AES, GCM_KEY, 16);

	STEP(1, op != TEE_HANDLE_NULL);
	if (op == TEE_HANDLE_NULL)
		return;
	STEP(2, TEE_AEInit(op, GCM_IV, sizeof(GCM_IV), 128, sizeof(GCM_AAD), sizeof(GCM_PT)) == TEE_SUCCESS);
	TEE_AEUpdateAAD(op, GCM_AAD, 7);
	TEE_AEUpdateAAD(op, GCM_AAD + 7, sizeof(GCM_AAD) - 7);
	n = sizeof(out);
	STEP(3, TEE_AEUpdate(op, GCM_PT, 33, out, &n) == TEE_SUCCESS && n == 33);
	at = n;
	n = sizeof(out) - at;
	t = 4;
	STEP(4, TEE_AEEncryptFinal(op, GCM_PT + 33, 27, out + at, &n, tag, &t) == TEE_ERROR_SHORT_BUFFER && t == 16);
	t = sizeof(tag);
	STEP(5, TEE_AEEncryptFinal(op, GCM_PT + 33, 27, out + at, &n, tag, &t) == TEE_SUCCESS && n == 27 && t == 16);
	STEP(6, !memcmp(out, GCM_CT, 60) && !memcmp(tag, GCM_TAG, 16));
	TEE_FreeOperation(op);

	op = keyed(TEE_ALG_AES_GCM, TEE_MODE_DECRYPT, TEE_TYPE_AES, GCM_KEY, 16);
	STEP(7, op != TEE_HANDLE_NULL);
	if (op == TEE_HANDLE_NULL)
		return;
	STEP(8, TEE_AEInit(op, GCM_IV, sizeof(GCM_IV), 128, 0, 0) == TEE_SUCCESS);
	TEE_AEUpdateAAD(op, GCM_AAD, sizeof(GCM_AAD));
	n = sizeof(out);
	STEP(9, TEE_AEDecryptFinal(op, GCM_CT, 60, out, &n, (void *)GCM_TAG, 16) == TEE_SUCCESS && n == 60);
	STEP(10, !memcmp(out, GCM_PT, 60));
	/* A changed tag (or a short one) is refused and the last part of the
	 * plaintext is not released. */
	memcpy(tag, GCM_TAG, 16);
	tag[15] ^= 1;
	memset(out, 0, sizeof(out));
	STEP(11, TEE_AEInit(op, GCM_IV, sizeof(GCM_IV), 128, 0, 0) == TEE_SUCCESS);
	TEE_AEUpdateAAD(op, GCM_AAD, sizeof(GCM_AAD));
	n = sizeof(out);
	STEP(12, TEE_AEDecryptFinal(op, GCM_CT, 60, out, &n, tag, 16) == TEE_ERROR_MAC_INVALID);
	STEP(13, out[0] == 0 && out[59] == 0);
	STEP(14, TEE_AEInit(op, GCM_IV, sizeof(GCM_IV), 64, 0, 0) == TEE_ERROR_NOT_SUPPORTED);
	TEE_FreeOperation(op);
}

static void sha256(void)
{
	TEE_OperationHandle op = TEE_HANDLE_NULL;
	uint8_t h[32];
	size_t n = 31;

	STEP(1, TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0) == TEE_SUCCESS);
	if (op == TEE_HANDLE_NULL)
		return;
	TEE_DigestUpdate(op, "a", 1);
	STEP(2, TEE_DigestDoFinal(op, "bc", 2, h, &n) == TEE_ERROR_SHORT_BUFFER && n == 32);
	STEP(3, TEE_DigestDoFinal(op, "bc", 2, h, &n) == TEE_SUCCESS && n == 32);
	STEP(4, !memcmp(h, SHA_ABC, 32));
	/* After the final the digest starts over. */
	STEP(5, TEE_DigestDoFinal(op, "abc", 3, h, &n) == TEE_SUCCESS && !memcmp(h, SHA_ABC, 32));
	TEE_FreeOperation(op);
	STEP(6, TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_ENCRYPT, 0) == TEE_ERROR_NOT_SUPPORTED &&
			op == TEE_HANDLE_NULL);
}

static void hmac(void)
{
	static const uint8_t k4[25] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
					14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 };
	uint8_t d4[50], mac[32];
	size_t n = sizeof(mac);
	TEE_OperationHandle op = keyed(TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, TEE_TYPE_GENERIC_SECRET, "Jefe", 4);

	STEP(1, op != TEE_HANDLE_NULL);
	if (op == TEE_HANDLE_NULL)
		return;
	TEE_MACInit(op, NULL, 0);
	TEE_MACUpdate(op, "what do ya want ", 16);
	STEP(2, TEE_MACComputeFinal(op, "for nothing?", 12, mac, &n) == TEE_SUCCESS && n == 32);
	STEP(3, !memcmp(mac, HMAC2, 32));
	TEE_FreeOperation(op);

	memset(d4, 0xcd, sizeof(d4));
	op = keyed(TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, TEE_TYPE_HMAC_SHA256, k4, sizeof(k4));
	STEP(4, op != TEE_HANDLE_NULL);
	if (op == TEE_HANDLE_NULL)
		return;
	TEE_MACInit(op, NULL, 0);
	STEP(5, TEE_MACCompareFinal(op, d4, sizeof(d4), HMAC4, 32) == TEE_SUCCESS);
	memcpy(mac, HMAC4, 32);
	mac[0] ^= 0x80;
	TEE_MACInit(op, NULL, 0);
	STEP(6, TEE_MACCompareFinal(op, d4, sizeof(d4), mac, 32) == TEE_ERROR_MAC_INVALID);
	TEE_MACInit(op, NULL, 0);
	n = 16;
	STEP(7, TEE_MACComputeFinal(op, d4, sizeof(d4), mac, &n) == TEE_ERROR_SHORT_BUFFER && n == 32);
	STEP(8, TEE_MACComputeFinal(op, d4, sizeof(d4), mac, &n) == TEE_SUCCESS && !memcmp(mac, HMAC4, 32));
	TEE_FreeOperation(op);
}

/* A generated AES-256 key: encrypt with CTR, decrypt with CTR, same bytes;
 * the object reports its size; an HMAC key of 192 bits too. */
static void generate(void)
{
	TEE_ObjectHandle o = TEE_HANDLE_NULL;
	TEE_OperationHandle e = TEE_HANDLE_NULL, d = TEE_HANDLE_NULL;
	TEE_ObjectInfo info;
	uint8_t buf[100], back[100];
	size_t n = sizeof(buf);

	STEP(1, TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &o) == TEE_SUCCESS);
	STEP(2, TEE_GetObjectInfo1(o, &info) == TEE_SUCCESS && !(info.handleFlags & TEE_HANDLE_FLAG_INITIALIZED));
	STEP(3, TEE_GenerateKey(o, 256, NULL, 0) == TEE_SUCCESS);
	STEP(4, TEE_GetObjectInfo1(o, &info) == TEE_SUCCESS && info.objectType == TEE_TYPE_AES &&
			info.objectSize == 256 && info.maxObjectSize == 256 &&
			(info.handleFlags & TEE_HANDLE_FLAG_INITIALIZED));
	STEP(5, TEE_AllocateOperation(&e, TEE_ALG_AES_CTR, TEE_MODE_ENCRYPT, 256) == TEE_SUCCESS);
	STEP(6, TEE_AllocateOperation(&d, TEE_ALG_AES_CTR, TEE_MODE_DECRYPT, 256) == TEE_SUCCESS);
	STEP(7, TEE_SetOperationKey(e, o) == TEE_SUCCESS && TEE_SetOperationKey(d, o) == TEE_SUCCESS);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	TEE_CipherInit(e, CTR_IV, 16);
	TEE_CipherInit(d, CTR_IV, 16);
	STEP(8, TEE_CipherDoFinal(e, buf, sizeof(buf), back, &n) == TEE_SUCCESS && n == sizeof(buf));
	STEP(9, memcmp(back, buf, sizeof(buf)) != 0);
	STEP(10, TEE_CipherDoFinal(d, back, sizeof(back), back, &n) == TEE_SUCCESS && !memcmp(back, buf, sizeof(buf)));
	TEE_ResetTransientObject(o);
	STEP(11, TEE_GetObjectInfo1(o, &info) == TEE_SUCCESS && !(info.handleFlags & TEE_HANDLE_FLAG_INITIALIZED));
	TEE_FreeTransientObject(o);
	TEE_FreeOperation(e);
	TEE_FreeOperation(d);
	STEP(12, TEE_AllocateTransientObject(TEE_TYPE_HMAC_SHA256, 192, &o) == TEE_SUCCESS);
	STEP(13, TEE_GenerateKey(o, 192, NULL, 0) == TEE_SUCCESS);
	TEE_FreeTransientObject(o);
	STEP(14, TEE_AllocateTransientObject(TEE_TYPE_AES, 100, &o) == TEE_ERROR_NOT_SUPPORTED);
	STEP(15, TEE_AllocateTransientObject(0xA0000011 /* DES */, 64, &o) == TEE_ERROR_NOT_SUPPORTED);
}

/* SHORT_BUFFER writes the size needed back and consumes nothing; bad
 * attribute sizes are BAD_PARAMETERS; a partial final block too. */
static void short_buffer(void)
{
	TEE_OperationHandle op = keyed(TEE_ALG_AES_CBC_NOPAD, TEE_MODE_ENCRYPT, TEE_TYPE_AES, SP_KEY, 16);
	TEE_ObjectHandle o = TEE_HANDLE_NULL;
	TEE_Attribute a;
	uint8_t out[64];
	size_t n;

	STEP(1, op != TEE_HANDLE_NULL);
	if (op == TEE_HANDLE_NULL)
		return;
	TEE_CipherInit(op, CBC_IV, 16);
	n = 0;
	STEP(2, TEE_CipherUpdate(op, SP_PT, 10, out, &n) == TEE_SUCCESS && n == 0);
	n = 15;
	STEP(3, TEE_CipherUpdate(op, SP_PT + 10, 30, out, &n) == TEE_ERROR_SHORT_BUFFER && n == 32);
	STEP(4, TEE_CipherUpdate(op, SP_PT + 10, 30, out, &n) == TEE_SUCCESS && n == 32);
	n = sizeof(out) - 32;
	STEP(5, TEE_CipherDoFinal(op, SP_PT + 40, 20, out + 32, &n) == TEE_ERROR_BAD_PARAMETERS);
	STEP(6, TEE_CipherDoFinal(op, SP_PT + 40, 24, out + 32, &n) == TEE_SUCCESS && n == 32);
	STEP(7, !memcmp(out, CBC_CT, 64));
	TEE_FreeOperation(op);

	STEP(8, TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &o) == TEE_SUCCESS);
	TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, SP_PT, 32);
	STEP(9, TEE_PopulateTransientObject(o, &a, 1) == TEE_ERROR_BAD_PARAMETERS);
	TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, SP_PT, 15);
	STEP(10, TEE_PopulateTransientObject(o, &a, 1) == TEE_ERROR_BAD_PARAMETERS);
	TEE_FreeTransientObject(o);
}

static void info(void)
{
	TEE_OperationHandle op = TEE_HANDLE_NULL;
	TEE_OperationInfo i;

	STEP(1, TEE_AllocateOperation(&op, TEE_ALG_AES_CTR, TEE_MODE_DECRYPT, 256) == TEE_SUCCESS);
	TEE_GetOperationInfo(op, &i);
	STEP(2, i.algorithm == TEE_ALG_AES_CTR && i.operationClass == TEE_OPERATION_CIPHER &&
			i.mode == TEE_MODE_DECRYPT && i.maxKeySize == 256 && i.keySize == 0 &&
			i.requiredKeyUsage == TEE_USAGE_DECRYPT && i.handleState == 0);
	TEE_ObjectHandle o = key_object(TEE_TYPE_AES, SP_KEY, 16);
	STEP(3, TEE_SetOperationKey(op, o) == TEE_SUCCESS);
	TEE_CipherInit(op, CTR_IV, 16);
	TEE_GetOperationInfo(op, &i);
	STEP(4, i.keySize == 128 &&
			i.handleState == (TEE_HANDLE_FLAG_KEY_SET | TEE_HANDLE_FLAG_INITIALIZED));
	TEE_ResetOperation(op);
	TEE_GetOperationInfo(op, &i);
	STEP(5, i.handleState == TEE_HANDLE_FLAG_KEY_SET);
	TEE_FreeOperation(op);
	TEE_FreeTransientObject(o);
	STEP(6, TEE_IsAlgorithmSupported(TEE_ALG_AES_GCM, TEE_CRYPTO_ELEMENT_NONE) == TEE_SUCCESS);
	STEP(7, TEE_IsAlgorithmSupported(0x10000310 /* AES-CTS */, TEE_CRYPTO_ELEMENT_NONE) ==
			TEE_ERROR_NOT_SUPPORTED);
	STEP(8, TEE_AllocateOperation(&op, TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, 128) == TEE_ERROR_NOT_SUPPORTED);
}

/* Breaks a GP rule: every branch must end in a panic. */
static void misuse(uint32_t cmd)
{
	TEE_OperationHandle op = TEE_HANDLE_NULL;
	uint8_t b[16] = { 0 };
	size_t n = sizeof(b);

	switch (cmd) {
	case MISUSE_UPDATE_BEFORE_INIT:
		op = keyed(TEE_ALG_AES_CTR, TEE_MODE_ENCRYPT, TEE_TYPE_AES, SP_KEY, 16);
		TEE_CipherUpdate(op, b, sizeof(b), b, &n);
		break;
	case MISUSE_BAD_HANDLE:
		TEE_DigestUpdate((TEE_OperationHandle)(uintptr_t)0x1234567, b, 1);
		break;
	case MISUSE_DIGEST_ON_CIPHER:
		op = keyed(TEE_ALG_AES_ECB_NOPAD, TEE_MODE_ENCRYPT, TEE_TYPE_AES, SP_KEY, 16);
		TEE_DigestUpdate(op, b, 1);
		break;
	case MISUSE_WRONG_KEY_TYPE: {
		TEE_ObjectHandle o = key_object(TEE_TYPE_HMAC_SHA256, HMAC4, 32);
		TEE_AllocateOperation(&op, TEE_ALG_AES_CTR, TEE_MODE_ENCRYPT, 256);
		TEE_SetOperationKey(op, o);
		break;
	}
	case MISUSE_AAD_AFTER_PAYLOAD:
		op = keyed(TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, TEE_TYPE_AES, GCM_KEY, 16);
		TEE_AEInit(op, GCM_IV, 12, 128, 0, 0);
		TEE_AEUpdate(op, b, 3, b, &n);
		TEE_AEUpdateAAD(op, b, 1);
		break;
	case MISUSE_FREED_OBJECT: {
		TEE_ObjectHandle o = key_object(TEE_TYPE_AES, SP_KEY, 16);
		TEE_FreeTransientObject(o);
		TEE_AllocateOperation(&op, TEE_ALG_AES_CTR, TEE_MODE_ENCRYPT, 128);
		TEE_SetOperationKey(op, o);
		break;
	}
	}
}

TEE_Result TA_CreateEntryPoint(void) { return TEE_SUCCESS; }
void TA_DestroyEntryPoint(void) {}
TEE_Result TA_OpenSessionEntryPoint(uint32_t t, TEE_Param p[TEE_NUM_PARAMS], void **c)
{
	(void)t; (void)p; (void)c;
	return TEE_SUCCESS;
}
void TA_CloseSessionEntryPoint(void *c) { (void)c; }

TEE_Result TA_InvokeCommandEntryPoint(void *c, uint32_t cmd, uint32_t t, TEE_Param p[TEE_NUM_PARAMS])
{
	(void)c;
	if (t != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_OUTPUT, TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE,
				 TEE_PARAM_TYPE_NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	if (cmd == CMD_PROPS_CLIENT) {
		static const TEE_UUID props = { 0x8aa2f1e3, 0x4b2c, 0x4f0e,
						{ 0x9d, 0x51, 0x6c, 0x7e, 0x2b, 0x0a, 0x9c, 0x03 } };
		TEE_TASessionHandle s;
		uint32_t origin, ret = TEE_OpenTASession(&props, TEE_TIMEOUT_INFINITE, 0, NULL, &s, &origin);

		if (ret)
			return ret;
		ret = TEE_InvokeTACommand(s, TEE_TIMEOUT_INFINITE, 1, t, p, &origin);
		TEE_CloseTASession(s);
		return ret;
	}
	bad_step = 0;
	switch (cmd) {
	case CMD_ECB: cipher_vector(TEE_ALG_AES_ECB_NOPAD, NULL, 0, ECB_CT); break;
	case CMD_CBC: cipher_vector(TEE_ALG_AES_CBC_NOPAD, CBC_IV, 16, CBC_CT); break;
	case CMD_CTR: cipher_vector(TEE_ALG_AES_CTR, CTR_IV, 16, CTR_CT); break;
	case CMD_GCM: gcm(); break;
	case CMD_SHA256: sha256(); break;
	case CMD_HMAC: hmac(); break;
	case CMD_GENERATE: generate(); break;
	case CMD_SHORT_BUFFER: short_buffer(); break;
	case CMD_INFO: info(); break;
	default:
		if (cmd < MISUSE_UPDATE_BEFORE_INIT || cmd > MISUSE_FREED_OBJECT)
			return TEE_ERROR_NOT_SUPPORTED;
		misuse(cmd);
		/* Still alive: the API did not panic. */
		p[0].value.a = 0xdead;
		return TEE_ERROR_GENERIC;
	}
	p[0].value.a = bad_step;
	return bad_step ? TEE_ERROR_GENERIC : TEE_SUCCESS;
}
