/* Asks the daemon at $TEEHEAP_SOCKET for a secure-CPU read of the
 * secure-video carveout before main() runs (a constructor of a static
 * binary: the earliest a program can act after exec), and prints the
 * daemon's reply code: "not_permitted", "devmem" (the access was made) or
 * what went wrong. tests/privilege.rs checks that a run is registered with
 * its daemon before the program's first instruction. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char reply[1 << 16];
static const char *outcome = "not run";

static int xfer(int s, void *buf, size_t len, int rd) {
	size_t done = 0;
	while (done < len) {
		ssize_t n = rd ? read(s, (char *)buf + done, len - done) : write(s, (char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

__attribute__((constructor)) static void first(void) {
	const char *path = getenv("TEEHEAP_SOCKET");
	if (!path) {
		outcome = "no TEEHEAP_SOCKET";
		return;
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		outcome = "connect failed";
		return;
	}
	const char *req = "{\"version\":2,\"body\":{\"op\":\"devmem\",\"master\":\"secure-cpu\","
			  "\"addr\":5905580032,\"len\":16}}";
	uint32_t len = (uint32_t)strlen(req); /* little endian on every target we build */
	if (xfer(s, &len, 4, 0) || xfer(s, (void *)req, len, 0) || xfer(s, &len, 4, 1) || len >= sizeof reply ||
	    xfer(s, reply, len, 1)) {
		outcome = "protocol error";
		return;
	}
	reply[len] = 0;
	if (strstr(reply, "\"not_permitted\""))
		outcome = "not_permitted";
	else if (strstr(reply, "\"reply\":\"devmem\""))
		outcome = "devmem";
	else
		outcome = reply;
	close(s);
}

int main(void) {
	printf("%s\n", outcome);
	return 0;
}
