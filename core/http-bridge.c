/* http-bridge.c - http_session(): one conn (plain or TLS) bridged to MHD.
 *
 * MHD gets one end of a socketpair; this thread pumps bytes between the conn
 * and the other end until either side closes. The pump also keeps the
 * conn's time rules (idle timeout between requests, request deadline while
 * a request is coming in), which MHD cannot see through the socketpair. */
#include "http-private.h"

#include "conn.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_PUMP_CHUNK ((size_t)32 * 1024)

struct http_pump {
	struct http_server *srv;
	struct conn *c;
	int fd;          /* our end of the socketpair */
	struct buf up;   /* client bytes not yet taken by MHD */
	bool in_request; /* client bytes arrived since MHD last wrote */
	bool mhd_spoke;  /* MHD wrote anything on this connection */
	bool client_eof;
	uint64_t req_start_ms, req_bytes, last_in_ms;
};

/* Outcome of one pump step. */
enum http_step { HTTP_STEP_GO, HTTP_STEP_END };

static uint64_t http_pump_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- Registry: lets the MHD side find the conn behind a socket. --- */

int http_bridge_register(struct http_server *srv, struct http_bridge_entry *e)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->stopping) {
		pthread_mutex_unlock(&srv->lock);
		return -1;
	}
	e->next = srv->bridges;
	srv->bridges = e;
	srv->nbridges++;
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

void http_bridge_unregister(struct http_server *srv, struct http_bridge_entry *e)
{
	pthread_mutex_lock(&srv->lock);
	for (struct http_bridge_entry **p = &srv->bridges; *p != NULL; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	if (--srv->nbridges == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

bool http_bridge_lookup(struct http_server *srv, int mhd_fd, struct http_link_info *r)
{
	bool found = false;
	pthread_mutex_lock(&srv->lock);
	for (struct http_bridge_entry *e = srv->bridges; e != NULL; e = e->next) {
		if (e->mhd_fd == mhd_fd) {
			*r = e->info;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return found;
}

static bool http_server_is_stopping(struct http_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	bool s = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	return s;
}

/* --- The pump --- */

static void http_pump_bare(struct http_pump *p, unsigned status)
{
	struct buf out;
	char path[8] = "\"-\"";
	buf_init(&out, 4096);
	http_format_bare_response(&out, status, conn_is_tls(p->c));
	conn_write(p->c, out.data, out.len);
	conn_flush(p->c);
	log_info("event=http method=- path=%s status=%u bytes=0 duration_ms=0 peer=%s", path,
	         status, conn_peer_ip(p->c));
	buf_free(&out);
}

/* Milliseconds the pump may wait now: the idle timeout between requests, or
 * what is left of the request deadline (conn.h's rule: a budget extended by
 * the bytes received, and never more than the deadline past the last byte). */
static int http_pump_timeout(const struct http_pump *p)
{
	const struct conn_limits *lim = conn_get_limits(p->c);
	if (!p->in_request)
		return (int)lim->idle_timeout_ms;
	uint64_t end = p->last_in_ms + lim->request_deadline_ms;
	if (lim->min_data_rate > 0) {
		uint64_t total = p->req_start_ms + lim->request_deadline_ms +
		                 p->req_bytes * 1000 / lim->min_data_rate;
		if (total < end)
			end = total;
	}
	uint64_t now = http_pump_now();
	if (end <= now)
		return 0;
	return end - now > INT32_MAX ? INT32_MAX : (int)(end - now);
}

static enum http_step http_pump_timed_out(struct http_pump *p)
{
	if (p->in_request)
		http_pump_bare(p, 408);
	return HTTP_STEP_END;
}

/* MHD -> client. */
static enum http_step http_pump_from_mhd(struct http_pump *p)
{
	char data[HTTP_PUMP_CHUNK];
	ssize_t n = recv(p->fd, data, sizeof(data), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return HTTP_STEP_GO;
	if (n <= 0) {
		/* MHD closed. If it never answered anything the client sent
		 * (an unparsable request line), answer 400 for it. */
		if (!p->mhd_spoke && p->in_request && !http_server_is_stopping(p->srv))
			http_pump_bare(p, 400);
		return HTTP_STEP_END;
	}
	p->mhd_spoke = true;
	p->in_request = false;
	if (conn_write(p->c, data, (size_t)n) != CONN_OK || conn_flush(p->c) != CONN_OK)
		return HTTP_STEP_END;
	return HTTP_STEP_GO;
}

/* Client -> our buffer. */
static enum http_step http_pump_from_client(struct http_pump *p)
{
	size_t before = p->up.len;
	enum conn_status st =
	    conn_read_some(p->c, &p->up, HTTP_PUMP_CHUNK, p->in_request ? 0 : CONN_NEW_REQUEST);
	if (st == CONN_EOF) {
		/* Half-close: let MHD see it, keep forwarding its answer. */
		p->client_eof = true;
		shutdown(p->fd, SHUT_WR);
		return HTTP_STEP_GO;
	}
	if (st == CONN_TIMEOUT)
		return http_pump_timed_out(p);
	if (st != CONN_OK)
		return HTTP_STEP_END;
	uint64_t now = http_pump_now();
	if (!p->in_request) {
		p->in_request = true;
		p->req_start_ms = now;
		p->req_bytes = 0;
	}
	p->req_bytes += p->up.len - before;
	p->last_in_ms = now;
	return HTTP_STEP_GO;
}

/* Our buffer -> MHD, without blocking. */
static enum http_step http_pump_to_mhd(struct http_pump *p)
{
	ssize_t n = send(p->fd, p->up.data, p->up.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return HTTP_STEP_GO;
	if (n < 0) {
		/* MHD closed its side; whatever it answered is still queued. */
		buf_reset(&p->up);
		p->client_eof = true;
		return HTTP_STEP_GO;
	}
	buf_consume(&p->up, (size_t)n);
	return HTTP_STEP_GO;
}

/* Waits on our socket only: while MHD has not taken the client's bytes, or
 * after the client closed its side. */
static enum http_step http_pump_wait_fd(struct http_pump *p, int timeout)
{
	struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
	if (p->up.len > 0)
		pfd.events |= POLLOUT;
	int r = poll(&pfd, 1, timeout);
	if (r < 0)
		return errno == EINTR ? HTTP_STEP_GO : HTTP_STEP_END;
	if (r == 0)
		return http_pump_timed_out(p);
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		return http_pump_from_mhd(p);
	return HTTP_STEP_GO;
}

static bool http_fd_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 0) > 0;
}

/* The server is stopping: a request in flight is still completed. Keep
 * reading the rest of it from the client (without CONN_NEW_REQUEST, which
 * would only say "stopping"), let MHD answer within the request's deadline,
 * forward what it writes, then end. */
static void http_pump_finish(struct http_pump *p)
{
	while (p->in_request) {
		int t = http_pump_timeout(p);
		if (t == 0)
			return;
		if (p->up.len > 0 && http_pump_to_mhd(p) == HTTP_STEP_END)
			return;
		if (!p->client_eof && conn_pending_input(p->c) > 0) {
			if (http_pump_from_client(p) == HTTP_STEP_END)
				return;
			continue;
		}
		struct pollfd pfd[2] = {
		    {.fd = p->fd, .events = (short)(POLLIN | (p->up.len > 0 ? POLLOUT : 0))},
		    {.fd = conn_fd(p->c), .events = POLLIN},
		};
		int r = poll(pfd, p->client_eof ? 1 : 2, t > 100 ? 100 : t);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    http_pump_from_mhd(p) == HTTP_STEP_END)
			return;
		if (!p->client_eof && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    http_pump_from_client(p) == HTTP_STEP_END)
			return;
	}
	struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
	while (p->mhd_spoke && poll(&pfd, 1, 100) > 0)
		if (http_pump_from_mhd(p) == HTTP_STEP_END)
			return;
}

static enum http_step http_pump_step(struct http_pump *p)
{
	if (p->up.len > 0 && http_pump_to_mhd(p) == HTTP_STEP_END)
		return HTTP_STEP_END;
	int timeout = http_pump_timeout(p);
	if (timeout == 0)
		return http_pump_timed_out(p);
	if (p->up.len > 0 || p->client_eof)
		return http_pump_wait_fd(p, timeout);
	bool mhd_ready = false;
	enum conn_status st = conn_wait_input(p->c, timeout, p->fd, &mhd_ready);
	if (st == CONN_TIMEOUT)
		return http_pump_timed_out(p);
	if (st == CONN_STOPPING) {
		http_pump_finish(p);
		return HTTP_STEP_END;
	}
	if (st != CONN_OK)
		return HTTP_STEP_END;
	if (mhd_ready && http_pump_from_mhd(p) == HTTP_STEP_END)
		return HTTP_STEP_END;
	if (!mhd_ready || conn_pending_input(p->c) > 0 || http_fd_readable(conn_fd(p->c)))
		return http_pump_from_client(p);
	return HTTP_STEP_GO;
}

/* The address MHD reports as the client's: the real one for IP peers. */
static socklen_t http_peer_for_mhd(struct conn *c, struct sockaddr_storage *ss)
{
	const struct sockaddr_storage *peer = conn_peer_addr(c);
	if (peer != NULL && peer->ss_family == AF_INET) {
		*ss = *peer;
		return sizeof(struct sockaddr_in);
	}
	if (peer != NULL && peer->ss_family == AF_INET6) {
		*ss = *peer;
		return sizeof(struct sockaddr_in6);
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*sin);
}

static void http_entry_init(struct http_bridge_entry *e, struct conn *c, const int sv[2])
{
	memset(e, 0, sizeof(*e));
	e->mhd_fd = sv[0];
	e->our_fd = sv[1];
	e->info.tls = conn_is_tls(c);
	snprintf(e->info.session_id, sizeof(e->info.session_id), "%s", conn_session_id(c));
	snprintf(e->info.peer_ip, sizeof(e->info.peer_ip), "%s", conn_peer_ip(c));
}

void http_session(struct conn *c, void *ctx)
{
	struct http_server *srv = ctx;
	int sv[2];
	log_set_session(conn_session_id(c));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("event=http_bridge_failed error=\"socketpair: %s\"", strerror(errno));
		return;
	}
	struct http_bridge_entry entry;
	http_entry_init(&entry, c, sv);
	if (http_bridge_register(srv, &entry) < 0) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	struct sockaddr_storage peer;
	socklen_t plen = http_peer_for_mhd(c, &peer);
	struct http_pump p = {.srv = srv, .c = c, .fd = sv[1]};
	buf_init(&p.up, HTTP_PUMP_CHUNK);
	/* MHD owns (and closes) sv[0] from here on, even on failure. */
	if (MHD_add_connection(srv->daemon, sv[0], (struct sockaddr *)&peer, plen) != MHD_YES) {
		log_warn("event=http_bridge_failed error=\"MHD refused the connection: %s\"",
		         strerror(errno));
		http_pump_bare(&p, 503);
	} else {
		while (http_pump_step(&p) == HTTP_STEP_GO)
			;
	}
	/* sv[0]'s number may already belong to a newer bridge: lookups find
	 * the newest entry first, so this one is harmless until removed. */
	http_bridge_unregister(srv, &entry);
	close(sv[1]);
	buf_free(&p.up);
}
