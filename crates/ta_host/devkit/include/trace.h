/* Trace macros: lines go to the daemon's log with the TA's UUID
 * (teeheap dev kit). */
#ifndef TRACE_H
#define TRACE_H

#include <stdarg.h>
#include <stdio.h>

#define TRACE_MIN   1
#define TRACE_ERROR 1
#define TRACE_INFO  2
#define TRACE_DEBUG 3
#define TRACE_FLOW  4

#ifndef TRACE_LEVEL
#define TRACE_LEVEL TRACE_FLOW
#endif

void teeheap_trace(int level, const char *func, int line, const char *msg);

static inline void __attribute__((format(printf, 4, 5)))
teeheap_trace_printf(int level, const char *func, int line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	teeheap_trace(level, func, line, buf);
}

#define TEEHEAP_TRACE(level, ...) \
	do { \
		if ((level) <= TRACE_LEVEL) \
			teeheap_trace_printf((level), __func__, __LINE__, __VA_ARGS__); \
	} while (0)

#define EMSG(...) TEEHEAP_TRACE(TRACE_ERROR, __VA_ARGS__)
#define IMSG(...) TEEHEAP_TRACE(TRACE_INFO, __VA_ARGS__)
#define DMSG(...) TEEHEAP_TRACE(TRACE_DEBUG, __VA_ARGS__)
#define FMSG(...) TEEHEAP_TRACE(TRACE_FLOW, __VA_ARGS__)

#endif
