/* The example content-decryption TA's interface (shared with its hosts). */
#ifndef TA_DECRYPT_EXAMPLE_H
#define TA_DECRYPT_EXAMPLE_H

/* 7eaf5d5c-8d11-4d8e-9a3c-7b1e5a1d0c02 */
#define TA_DECRYPT_EXAMPLE_UUID \
	{ 0x7eaf5d5c, 0x8d11, 0x4d8e, { 0x9a, 0x3c, 0x7b, 0x1e, 0x5a, 0x1d, 0x0c, 0x02 } }

/* value in (key bytes 0-3 big-endian in a, 4-7 in b), value in (8-11, 12-15):
 * the session's AES-128 content key. */
#define TA_DECRYPT_CMD_SET_KEY 0
/* memref in: the encrypted sample; memref out: the destination, which must
 * be secure memory; value in, value in: the 16-byte initial counter block
 * as for SET_KEY. AES-128-CTR (128-bit big-endian counter), one pass from
 * the sample to the destination; the output size is the sample's. */
#define TA_DECRYPT_CMD_DECRYPT 1

#endif
