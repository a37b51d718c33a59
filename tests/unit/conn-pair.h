/* conn-pair.h - a struct conn over one end of a socketpair, for the conn
 * tests (test-conn.c, test-conn-idle.c); the test plays the client on the
 * other end. */
#ifndef ROOST_TEST_CONN_PAIR_H
#define ROOST_TEST_CONN_PAIR_H

#include "conn.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Writes all of p to fd; stops quietly when the peer is gone (some tests
 * close it on purpose). */
static inline void write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* A conn with 5 s timeouts and a 1 KB/s minimum rate; *peer_r is the
 * test's end. */
static inline struct conn *pair_conn(int *peer_r)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	*peer_r = sv[1];
	struct conn *c = conn_new(sv[0], "test");
	struct conn_limits l = {.idle_timeout_ms = 5000,
	                        .request_deadline_ms = 5000,
	                        .min_data_rate = 1024,
	                        .write_timeout_ms = 5000};
	conn_set_limits(c, &l);
	return c;
}

#endif
