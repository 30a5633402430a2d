/* OP-TEE's invoke_tests pseudo-TA: the commands teeheap provides. It
 * accepts sessions from TAs only. */
#ifndef PTA_INVOKE_TESTS_H
#define PTA_INVOKE_TESTS_H

#define PTA_INVOKE_TESTS_UUID \
	{ 0xd96a5b40, 0xc3e5, 0x21e3, { 0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b } }

/* memref in (non-secure), memref out (secure): copy */
#define PTA_INVOKE_TESTS_CMD_COPY_NSEC_TO_SEC 3
/* memref inout (secure): each byte b becomes ~b + 1 */
#define PTA_INVOKE_TESTS_CMD_READ_MODIFY_SEC  4
/* memref in (secure), memref out (non-secure): copy */
#define PTA_INVOKE_TESTS_CMD_COPY_SEC_TO_NSEC 5

#endif
