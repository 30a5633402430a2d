/* The example secure-data-path TA: its UUID and commands, shared with
 * its host programs. Commands 0-8 are numbered as OP-TEE's sdp_basic test
 * TA numbers them. */
#ifndef TA_SDP_EXAMPLE_H
#define TA_SDP_EXAMPLE_H

/* 7eaf5d5c-8d11-4d8e-9a3c-7b1e5a1d0c01 */
#define TA_SDP_EXAMPLE_UUID \
	{ 0x7eaf5d5c, 0x8d11, 0x4d8e, { 0x9a, 0x3c, 0x7b, 0x1e, 0x5a, 0x1d, 0x0c, 0x01 } }

/* memref in (normal), memref out (secure): copy into protected memory */
#define TA_SDP_EXAMPLE_CMD_INJECT 0
/* memref inout (secure): each byte b becomes ~b + 1 */
#define TA_SDP_EXAMPLE_CMD_TRANSFORM 1
/* memref in (secure), memref out (normal): copy out of protected memory */
#define TA_SDP_EXAMPLE_CMD_DUMP 2
/* The same three, done by a second instance of this TA (TA to TA) */
#define TA_SDP_EXAMPLE_CMD_INVOKE_INJECT 3
#define TA_SDP_EXAMPLE_CMD_INVOKE_TRANSFORM 4
#define TA_SDP_EXAMPLE_CMD_INVOKE_DUMP 5
/* The same three, done by the invoke_tests pseudo-TA (TA to pseudo-TA) */
#define TA_SDP_EXAMPLE_CMD_PTA_INJECT 6
#define TA_SDP_EXAMPLE_CMD_PTA_TRANSFORM 7
#define TA_SDP_EXAMPLE_CMD_PTA_DUMP 8
/* memref in (any), value out: a = 1 if TEE_CheckMemoryAccessRights says
 * the memory is secure, b = 1 if it says it is non-secure */
#define TA_SDP_EXAMPLE_CMD_WHERE 9

#endif
