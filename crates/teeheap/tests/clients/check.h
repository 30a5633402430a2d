/* The test clients' report: one "ok NAME" or "FAIL NAME: DETAIL" line per
 * check, flushed at once (the tests read some clients line by line); the
 * failures are counted in `failed` for the closing "N failed" line. */
#ifndef TEEHEAP_CHECK_H
#define TEEHEAP_CHECK_H

#include <stdio.h>

static int failed;

static void check(const char *name, int ok, const char *detail) {
	if (ok)
		printf("ok %s\n", name);
	else {
		failed++;
		printf("FAIL %s: %s\n", name, detail ? detail : "");
	}
	fflush(stdout);
}

#endif
