/* A TA that misbehaves on request, to show what the TA runtime does about
 * it (tests/ta.rs): panics, crashes, loops, and tries to leave its
 * sandbox. Every probe answers with value out a = 1 if the host call
 * worked, b = its errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <tee_internal_api.h>
#include <tee_ta_api.h>

enum { PING, PANIC, CRASH, LOOP_CANCELLABLE, LOOP_FOREVER, OPEN_FILE, READ_DAEMON, OPEN_SOCKET, WAIT, BAD_HANDLE };

static TEE_Result probe(TEE_Param *out, long r)
{
	out->value.a = r >= 0;
	out->value.b = r >= 0 ? 0 : errno;
	return TEE_SUCCESS;
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
	volatile int *nowhere = NULL;
	char buf[16];
	struct iovec mine = { buf, sizeof(buf) }, theirs = { (void *)0x400000, sizeof(buf) };

	(void)c;
	if (TEE_PARAM_TYPE_GET(t, 0) != TEE_PARAM_TYPE_VALUE_INOUT)
		return TEE_ERROR_BAD_PARAMETERS;
	switch (cmd) {
	case PING:
		p[0].value.a += 1;
		return TEE_SUCCESS;
	case PANIC:
		TEE_Panic(0xdead);
	case CRASH:
		*nowhere = 1;
		return TEE_ERROR_GENERIC;
	case LOOP_CANCELLABLE:
		TEE_UnmaskCancellation();
		while (!TEE_GetCancellationFlag())
			;
		return TEE_ERROR_CANCEL;
	case LOOP_FOREVER:
		for (;;)
			;
	case OPEN_FILE:
		return probe(&p[0], open("/etc/passwd", O_RDONLY));
	case READ_DAEMON:
		return probe(&p[0], process_vm_readv(getppid(), &mine, 1, &theirs, 1, 0));
	case OPEN_SOCKET:
		return probe(&p[0], socket(AF_INET, SOCK_STREAM, 0));
	case WAIT:
		TEE_UnmaskCancellation();
		return TEE_Wait(TEE_TIMEOUT_INFINITE);
	case BAD_HANDLE:
		/* The TEE refuses a session this TA never opened; as OP-TEE's
		 * libutee, the API panics the TA for it. */
		return TEE_InvokeTACommand((TEE_TASessionHandle)12345, TEE_TIMEOUT_INFINITE, 0, 0, NULL, NULL);
	default:
		return TEE_ERROR_NOT_SUPPORTED;
	}
}
