#include "conn.h"

#include "clock.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_READ_CHUNK    16384
#define CONN_OUT_AUTOFLUSH 65536
/* Capacity an idle conn keeps for input: in.data is never NULL, and an idle
 * connection should cost next to nothing (see conn_shrink_idle). */
#define CONN_IDLE_IN 64

struct conn {
	int fd;
	SSL *ssl;
	char sid[48];
	char peer_ip[INET6_ADDRSTRLEN];
	char tls_desc[128];
	unsigned peer_port;
	unsigned local_port;
	struct sockaddr_storage peer;
	bool loopback;
	bool broken;      /* unusable: every read and write fails */
	bool read_broken; /* a read timed out mid-stream: no more reads */
	uint64_t created_ms;
	struct conn_limits limits;

	struct buf in; /* received bytes; in.data[in_pos..in.len) are unread */
	size_t in_pos;
	struct buf out;

	/* The request being read (see conn.h for the rule). */
	bool req_active;
	uint64_t req_start_ms;
	uint64_t req_last_ms;
	uint64_t req_bytes;

	uint64_t bytes_in;
	uint64_t bytes_out;
};

static atomic_bool conn_stop_flag;
/* Readable exactly while stopping: every idle wait polls it too, so setting
 * the flag wakes all idle sessions at once, with no race against a session
 * that is just about to wait. */
static int conn_stop_pipe[2] = {-1, -1};
static pthread_once_t conn_stop_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t conn_stop_lock = PTHREAD_MUTEX_INITIALIZER;

static void conn_stop_pipe_init(void)
{
	if (pipe2(conn_stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("event=conn_init error=\"pipe: %s\"", strerror(errno));
}

static int conn_stop_fd(void)
{
	pthread_once(&conn_stop_once, conn_stop_pipe_init);
	return conn_stop_pipe[0];
}

void conn_set_stopping(bool stopping)
{
	pthread_once(&conn_stop_once, conn_stop_pipe_init);
	pthread_mutex_lock(&conn_stop_lock);
	char b[64];
	while (read(conn_stop_pipe[0], b, sizeof(b)) > 0)
		;
	atomic_store(&conn_stop_flag, stopping);
	if (stopping && write(conn_stop_pipe[1], "s", 1) != 1)
		fatal("event=conn_stop error=\"pipe: %s\"", strerror(errno));
	pthread_mutex_unlock(&conn_stop_lock);
}

bool conn_stopping(void)
{
	return atomic_load(&conn_stop_flag);
}

const char *conn_status_str(enum conn_status st)
{
	switch (st) {
	case CONN_OK:
		return "ok";
	case CONN_EOF:
		return "eof";
	case CONN_TIMEOUT:
		return "timeout";
	case CONN_TOO_LONG:
		return "too_long";
	case CONN_ERROR:
		return "error";
	case CONN_STOPPING:
		return "stopping";
	case CONN_SINK_FAILED:
		return "sink_failed";
	}
	return "unknown";
}

static uint32_t conn_secs_to_ms(uint64_t s)
{
	return s > UINT32_MAX / 1000 ? UINT32_MAX : (uint32_t)(s * 1000);
}

void conn_limits_from_config(const struct config *cfg, bool preauth, struct conn_limits *r)
{
	enum config_key idle = preauth ? CFG_LIMITS_PREAUTH_TIMEOUT : CFG_LIMITS_IDLE_TIMEOUT;
	r->idle_timeout_ms = conn_secs_to_ms(config_uint(cfg, idle));
	r->request_deadline_ms = conn_secs_to_ms(config_uint(cfg, CFG_LIMITS_REQUEST_DEADLINE));
	r->min_data_rate = config_uint(cfg, CFG_LIMITS_MIN_DATA_RATE);
	r->write_timeout_ms = r->request_deadline_ms;
}

void conn_set_limits(struct conn *c, const struct conn_limits *limits)
{
	c->limits = *limits;
}

const struct conn_limits *conn_get_limits(const struct conn *c)
{
	return &c->limits;
}

/* An IPv4-mapped IPv6 peer is shown and counted as the IPv4 address. */
static void conn_unmap_v4(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

static void conn_read_addresses(struct conn *c)
{
	socklen_t len = sizeof(c->peer);
	if (getpeername(c->fd, (struct sockaddr *)&c->peer, &len) < 0)
		c->peer.ss_family = AF_UNSPEC;
	conn_unmap_v4(&c->peer);
	snprintf(c->peer_ip, sizeof(c->peer_ip), "local");
	c->loopback = true;
	if (c->peer.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&c->peer;
		inet_ntop(AF_INET, &s->sin_addr, c->peer_ip, sizeof(c->peer_ip));
		c->peer_port = ntohs(s->sin_port);
		c->loopback = (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	} else if (c->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&c->peer;
		inet_ntop(AF_INET6, &s->sin6_addr, c->peer_ip, sizeof(c->peer_ip));
		c->peer_port = ntohs(s->sin6_port);
		c->loopback = IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
	}
	struct sockaddr_storage local = {0};
	len = sizeof(local);
	if (getsockname(c->fd, (struct sockaddr *)&local, &len) == 0) {
		if (local.ss_family == AF_INET)
			c->local_port = ntohs(((struct sockaddr_in *)&local)->sin_port);
		else if (local.ss_family == AF_INET6)
			c->local_port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
	}
}

struct conn *conn_new(int fd, const char *proto)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	conn_read_addresses(c);
	if (c->peer.ss_family == AF_INET || c->peer.ss_family == AF_INET6) {
		/* We batch replies ourselves; Nagle would only add latency. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	log_new_id(proto != NULL ? proto : "conn", c->sid, sizeof(c->sid));
	c->created_ms = clock_monotonic_ms();
	conn_limits_from_config(config_current(), true, &c->limits);
	buf_init(&c->in, BUF_NO_LIMIT);
	buf_reserve(&c->in, CONN_IDLE_IN - 1); /* in.data is never NULL */
	buf_init(&c->out, BUF_NO_LIMIT);
	return c;
}

void conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		/* A close_notify only when the session is still sane: OpenSSL
		 * forbids SSL_shutdown after a fatal error. */
		if (!c->broken) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	*cp = NULL;
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}
const char *conn_session_id(const struct conn *c)
{
	return c->sid;
}
const char *conn_peer_ip(const struct conn *c)
{
	return c->peer_ip;
}
unsigned conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}
const struct sockaddr_storage *conn_peer_addr(const struct conn *c)
{
	return &c->peer;
}
bool conn_is_loopback(const struct conn *c)
{
	return c->loopback;
}
unsigned conn_local_port(const struct conn *c)
{
	return c->local_port;
}
bool conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}
const char *conn_tls_description(const struct conn *c)
{
	return c->tls_desc;
}
struct ssl_st *conn_ssl(const struct conn *c)
{
	return c->ssl;
}
uint64_t conn_bytes_in(const struct conn *c)
{
	return c->bytes_in;
}
uint64_t conn_bytes_out(const struct conn *c)
{
	return c->bytes_out;
}
size_t conn_pending_output(const struct conn *c)
{
	return c->out.len;
}

uint64_t conn_age_ms(const struct conn *c)
{
	return clock_monotonic_ms() - c->created_ms;
}

size_t conn_pending_input(const struct conn *c)
{
	size_t n = c->in.len - c->in_pos;
	if (c->ssl != NULL)
		n += (size_t)SSL_pending(c->ssl);
	return n;
}

/* Waits for events on the socket until deadline (monotonic ms); an idle
 * wait also ends with CONN_STOPPING when the server stops. */
static enum conn_status conn_poll(struct conn *c, short events, uint64_t deadline, bool idle)
{
	struct pollfd p[2] = {{.fd = c->fd, .events = events},
	                      {.fd = idle ? conn_stop_fd() : -1, .events = POLLIN}};
	for (;;) {
		uint64_t now = clock_monotonic_ms();
		if (now >= deadline)
			return CONN_TIMEOUT;
		uint64_t left = deadline - now;
		int r = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0 && p[1].revents != 0 && conn_stopping())
			return CONN_STOPPING;
		if (r > 0 && p[0].revents != 0)
			return CONN_OK; /* also POLLERR/POLLHUP: the next I/O tells */
		if (r < 0 && errno != EINTR)
			return CONN_ERROR;
	}
}

/* Result of one non-blocking read or write attempt. */
enum conn_io { CONN_IO_DONE, CONN_IO_WANT_READ, CONN_IO_WANT_WRITE, CONN_IO_EOF, CONN_IO_FAIL };

static enum conn_io conn_ssl_result(struct conn *c, int ret)
{
	int err = SSL_get_error(c->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		return CONN_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return CONN_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return CONN_IO_EOF;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
			return CONN_IO_EOF;
		return CONN_IO_FAIL;
	default:
		return CONN_IO_FAIL;
	}
}

static enum conn_io conn_raw_read(struct conn *c, void *p, size_t cap, size_t *n_r)
{
	*n_r = 0;
	if (c->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_read_ex(c->ssl, p, cap, n_r);
		return r == 1 ? CONN_IO_DONE : conn_ssl_result(c, r);
	}
	ssize_t n = recv(c->fd, p, cap, 0);
	if (n > 0) {
		*n_r = (size_t)n;
		return CONN_IO_DONE;
	}
	if (n == 0 || errno == ECONNRESET)
		return CONN_IO_EOF;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return CONN_IO_WANT_READ;
	return CONN_IO_FAIL;
}

static enum conn_io conn_raw_write(struct conn *c, const void *p, size_t n, size_t *n_r)
{
	*n_r = 0;
	if (c->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_write_ex(c->ssl, p, n, n_r);
		return r == 1 ? CONN_IO_DONE : conn_ssl_result(c, r);
	}
	ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
	if (w >= 0) {
		*n_r = (size_t)w;
		return CONN_IO_DONE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return CONN_IO_WANT_WRITE;
	if (errno == EPIPE || errno == ECONNRESET)
		return CONN_IO_EOF;
	return CONN_IO_FAIL;
}

/* A deadline that started at start, with progress bytes moved, the last at
 * last: budget + earned time at min_data_rate, but no stall beyond budget. */
static uint64_t conn_deadline(const struct conn *c, uint64_t start, uint64_t last,
                              uint64_t progress, uint32_t budget_ms)
{
	uint64_t stall = last + budget_ms;
	if (c->limits.min_data_rate == 0)
		return stall;
	uint64_t earned = progress / c->limits.min_data_rate * 1000 +
	                  progress % c->limits.min_data_rate * 1000 / c->limits.min_data_rate;
	uint64_t total = start + budget_ms + earned;
	return total < stall ? total : stall;
}

static enum conn_status conn_break(struct conn *c, enum conn_status st)
{
	c->broken = true;
	return st;
}

/* Common start of every read: stop checks and request bookkeeping. */
static enum conn_status conn_begin_read(struct conn *c, unsigned flags)
{
	if (c->broken || c->read_broken)
		return CONN_ERROR;
	if (flags & CONN_NEW_REQUEST) {
		if (conn_stopping())
			return CONN_STOPPING;
		c->req_active = false;
	}
	if (!c->req_active && (!(flags & CONN_NEW_REQUEST) || c->in.len > c->in_pos)) {
		c->req_active = true;
		c->req_start_ms = c->req_last_ms = clock_monotonic_ms();
		c->req_bytes = 0;
	}
	return CONN_OK;
}

static void conn_in_compact(struct conn *c)
{
	if (c->in_pos == c->in.len) {
		c->in_pos = 0;
		buf_reset(&c->in);
	} else if (c->in_pos > 0 && c->in_pos >= c->in.cap / 2) {
		buf_consume(&c->in, c->in_pos);
		c->in_pos = 0;
	}
}

/* The error of a read while idle at shutdown is the shutdown's doing. */
static enum conn_status conn_read_failed(struct conn *c, bool idle, enum conn_status st)
{
	if (idle && conn_stopping())
		return CONN_STOPPING;
	if (st == CONN_EOF)
		return CONN_EOF;
	if (st == CONN_TIMEOUT) {
		/* The input is out of step now, but a last reply (BYE, 421)
		 * can still go out. */
		c->read_broken = true;
		return CONN_TIMEOUT;
	}
	return conn_break(c, st);
}

static void conn_account_input(struct conn *c, size_t n)
{
	uint64_t now = clock_monotonic_ms();
	if (!c->req_active) {
		c->req_active = true;
		c->req_start_ms = now;
		c->req_bytes = 0;
	}
	c->req_last_ms = now;
	c->req_bytes += n;
	c->bytes_in += n;
	c->in.len += n;
	c->in.data[c->in.len] = '\0';
}

/* True if a read would return data without waiting for the socket. */
static bool conn_input_buffered(const struct conn *c)
{
	return c->in.len > c->in_pos || (c->ssl != NULL && SSL_has_pending(c->ssl));
}

/* Gives back the input and output buffers of a conn that waits with nothing
 * buffered: one command may have grown them to hundreds of KB, and most of
 * the thousands of IMAP connections a server holds are idle. The next read
 * or write allocates again (the TLS record buffers go the same way through
 * SSL_MODE_RELEASE_BUFFERS, core/tls.c). */
static void conn_shrink_idle(struct conn *c)
{
	if (conn_input_buffered(c) || c->out.len > 0)
		return;
	if (c->in.cap > CONN_IDLE_IN) {
		buf_free(&c->in);
		buf_reserve(&c->in, CONN_IDLE_IN - 1); /* in.data is never NULL */
		c->in_pos = 0;
	}
	buf_free(&c->out);
}

/* Reads at least one more byte into c->in, waiting under the time rules. */
static enum conn_status conn_read_more(struct conn *c)
{
	if (c->out.len > 0 && conn_flush(c) != CONN_OK)
		return CONN_ERROR;
	conn_in_compact(c);
	bool idle = !c->req_active;
	uint64_t deadline = idle ? clock_monotonic_ms() + c->limits.idle_timeout_ms
	                         : conn_deadline(c, c->req_start_ms, c->req_last_ms, c->req_bytes,
	                                         c->limits.request_deadline_ms);
	if (idle && conn_stopping())
		return CONN_STOPPING;
	enum conn_status st = CONN_OK;
	/* Waiting for a new request: wait without buffers, take them when the
	 * first byte is there. */
	if (idle && !conn_input_buffered(c)) {
		conn_shrink_idle(c);
		st = conn_poll(c, POLLIN, deadline, true);
		if (st != CONN_OK)
			return conn_read_failed(c, idle, st);
	}
	if (buf_reserve(&c->in, CONN_READ_CHUNK) < 0)
		return conn_break(c, CONN_ERROR);
	for (;;) {
		size_t n;
		enum conn_io io = conn_raw_read(c, c->in.data + c->in.len, CONN_READ_CHUNK, &n);
		if (io == CONN_IO_DONE) {
			conn_account_input(c, n);
			break;
		}
		if (io == CONN_IO_EOF || io == CONN_IO_FAIL) {
			st = io == CONN_IO_EOF ? CONN_EOF : CONN_ERROR;
			break;
		}
		st = conn_poll(c, io == CONN_IO_WANT_WRITE ? POLLOUT : POLLIN, deadline, idle);
		if (st != CONN_OK)
			break;
	}
	return st == CONN_OK ? CONN_OK : conn_read_failed(c, idle, st);
}

enum conn_status conn_read_line(struct conn *c, struct buf *line, size_t max_len, unsigned flags,
                                bool *bare_lf_r)
{
	buf_reset(line);
	if (bare_lf_r != NULL)
		*bare_lf_r = false;
	enum conn_status st = conn_begin_read(c, flags);
	if (st != CONN_OK)
		return st;
	size_t scanned = 0; /* unread bytes already searched for LF */
	bool skipping = false;
	for (;;) {
		const char *p = c->in.data + c->in_pos;
		size_t avail = c->in.len - c->in_pos;
		const char *lf =
		    avail > scanned ? memchr(p + scanned, '\n', avail - scanned) : NULL;
		if (lf != NULL) {
			size_t n = (size_t)(lf - p);
			bool cr = n > 0 && p[n - 1] == '\r';
			size_t len = cr ? n - 1 : n;
			c->in_pos += n + 1;
			if (skipping || len > max_len || buf_append(line, p, len) < 0)
				return CONN_TOO_LONG;
			if (bare_lf_r != NULL)
				*bare_lf_r = !cr;
			return CONN_OK;
		}
		/* More than max_len + 1 bytes (a line of max_len and its CR)
		 * without LF: too long, whatever follows. */
		if (avail > max_len && avail - max_len > 1)
			skipping = true;
		if (skipping) {
			c->in_pos = c->in.len; /* drop what we have of the long line */
			scanned = 0;
		} else {
			scanned = avail;
		}
		st = conn_read_more(c);
		if (st != CONN_OK)
			return st;
	}
}

static int conn_sink_buf(void *ctx, const void *p, size_t len)
{
	return buf_append(ctx, p, len);
}

enum conn_status conn_read_bytes(struct conn *c, struct buf *out, size_t n)
{
	if (c->broken || c->read_broken)
		return CONN_ERROR;
	if (out->max - out->len < n)
		return CONN_TOO_LONG;
	if (buf_reserve(out, n) < 0)
		return CONN_TOO_LONG;
	enum conn_status st = conn_read_stream(c, n, conn_sink_buf, out);
	/* The sink cannot fail: the space was checked above. */
	return st == CONN_SINK_FAILED ? CONN_ERROR : st;
}

enum conn_status conn_read_stream(struct conn *c, uint64_t n,
                                  int (*sink)(void *ctx, const void *p, size_t len), void *ctx)
{
	enum conn_status st = conn_begin_read(c, 0);
	if (st != CONN_OK)
		return st;
	bool failed = false;
	while (n > 0) {
		size_t avail = c->in.len - c->in_pos;
		if (avail == 0) {
			st = conn_read_more(c);
			if (st != CONN_OK)
				return st;
			continue;
		}
		size_t take = avail < n ? avail : (size_t)n;
		if (sink != NULL && !failed && sink(ctx, c->in.data + c->in_pos, take) < 0)
			failed = true;
		c->in_pos += take;
		n -= take;
	}
	return failed ? CONN_SINK_FAILED : CONN_OK;
}

enum conn_status conn_read_some(struct conn *c, struct buf *out, size_t max, unsigned flags)
{
	enum conn_status st = conn_begin_read(c, flags);
	if (st != CONN_OK)
		return st;
	size_t room = out->max - out->len;
	if (room < max)
		max = room;
	if (max == 0)
		return CONN_TOO_LONG;
	if (c->in.len == c->in_pos) {
		st = conn_read_more(c);
		if (st != CONN_OK)
			return st;
	}
	size_t avail = c->in.len - c->in_pos;
	size_t take = avail < max ? avail : max;
	if (buf_append(out, c->in.data + c->in_pos, take) < 0)
		return CONN_TOO_LONG;
	c->in_pos += take;
	return CONN_OK;
}

enum conn_status conn_wait_input(struct conn *c, int timeout_ms, int extra_fd, bool *extra_ready_r)
{
	if (extra_ready_r != NULL)
		*extra_ready_r = false;
	if (c->broken || c->read_broken)
		return CONN_ERROR;
	if (conn_stopping())
		return CONN_STOPPING;
	if (c->out.len > 0 && conn_flush(c) != CONN_OK)
		return CONN_ERROR;
	if (conn_input_buffered(c))
		return CONN_OK;
	conn_shrink_idle(c);
	uint64_t wait = timeout_ms < 0 ? c->limits.idle_timeout_ms : (uint64_t)timeout_ms;
	uint64_t deadline = clock_monotonic_ms() + wait;
	struct pollfd p[3] = {{.fd = c->fd, .events = POLLIN},
	                      {.fd = extra_fd, .events = POLLIN},
	                      {.fd = conn_stop_fd(), .events = POLLIN}};
	enum conn_status st = CONN_TIMEOUT;
	while (!conn_stopping()) {
		uint64_t now = clock_monotonic_ms();
		if (now >= deadline)
			break;
		uint64_t left = deadline - now;
		int r = poll(p, 3, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0 && (p[0].revents | p[1].revents) != 0) {
			st = CONN_OK;
			break;
		}
		if (r < 0 && errno != EINTR) {
			st = conn_break(c, CONN_ERROR);
			break;
		}
	}
	if (conn_stopping())
		return CONN_STOPPING;
	if (st == CONN_OK && extra_ready_r != NULL && extra_fd >= 0)
		*extra_ready_r = (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
	return st;
}

enum conn_status conn_flush(struct conn *c)
{
	if (c->broken)
		return CONN_ERROR;
	uint64_t start = clock_monotonic_ms(), last = start, sent = 0;
	while (c->out.len > 0) {
		size_t n;
		enum conn_io io = conn_raw_write(c, c->out.data, c->out.len, &n);
		if (io == CONN_IO_DONE) {
			buf_consume(&c->out, n);
			sent += n;
			c->bytes_out += n;
			last = clock_monotonic_ms();
			continue;
		}
		if (io == CONN_IO_EOF || io == CONN_IO_FAIL)
			return conn_break(c, io == CONN_IO_EOF ? CONN_EOF : CONN_ERROR);
		uint64_t deadline = conn_deadline(c, start, last, sent, c->limits.write_timeout_ms);
		enum conn_status st =
		    conn_poll(c, io == CONN_IO_WANT_READ ? POLLIN : POLLOUT, deadline, false);
		if (st != CONN_OK)
			return conn_break(c, st);
	}
	return CONN_OK;
}

enum conn_status conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->broken)
		return CONN_ERROR;
	if (buf_append(&c->out, p, n) < 0)
		return conn_break(c, CONN_ERROR);
	if (c->out.len > CONN_OUT_AUTOFLUSH)
		return conn_flush(c);
	return CONN_OK;
}

bool conn_write_would_flush(const struct conn *c, size_t n)
{
	return c->out.len + n > CONN_OUT_AUTOFLUSH;
}

enum conn_status conn_write_str(struct conn *c, const char *s)
{
	return conn_write(c, s, strlen(s));
}

enum conn_status conn_printf(struct conn *c, const char *fmt, ...)
{
	if (c->broken)
		return CONN_ERROR;
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (r < 0)
		return conn_break(c, CONN_ERROR);
	if (c->out.len > CONN_OUT_AUTOFLUSH)
		return conn_flush(c);
	return CONN_OK;
}

static void conn_log_tls_error(struct conn *c, const char *what)
{
	char reason[256] = "";
	unsigned long e = ERR_peek_last_error();
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	char q[LOG_QUOTE_MAX];
	log_info("event=tls_failed peer=%s step=%s reason=%s", c->peer_ip, what,
	         log_quote(q, sizeof(q), reason[0] != '\0' ? reason : "connection closed"));
	ERR_clear_error();
}

/* Runs the handshake on an SSL already attached to the socket. */
static enum conn_status conn_handshake_loop(struct conn *c, uint64_t deadline)
{
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_do_handshake(c->ssl);
		if (r == 1)
			return CONN_OK;
		enum conn_io io = conn_ssl_result(c, r);
		if (io != CONN_IO_WANT_READ && io != CONN_IO_WANT_WRITE) {
			conn_log_tls_error(c, "handshake");
			return conn_break(c, io == CONN_IO_EOF ? CONN_EOF : CONN_ERROR);
		}
		enum conn_status st =
		    conn_poll(c, io == CONN_IO_WANT_READ ? POLLIN : POLLOUT, deadline, false);
		if (st != CONN_OK) {
			if (st == CONN_TIMEOUT)
				log_info("event=tls_failed peer=%s step=handshake reason=timeout",
				         c->peer_ip);
			return conn_break(c, st);
		}
	}
}

static enum conn_status conn_handshake(struct conn *c, SSL_CTX *ctx, bool client, const char *sni,
                                       uint32_t timeout_ms)
{
	if (c->broken || c->ssl != NULL)
		return CONN_ERROR;
	SSL_CTX *own = NULL;
	if (ctx == NULL) {
		own = tls_server_ctx_ref();
		ctx = own;
	}
	if (ctx == NULL) {
		log_error("event=tls_failed peer=%s reason=\"no TLS context set up\"", c->peer_ip);
		return conn_break(c, CONN_ERROR);
	}
	c->ssl = SSL_new(ctx); /* takes its own reference on ctx */
	tls_ctx_unref(&own);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_log_tls_error(c, "setup");
		return conn_break(c, CONN_ERROR);
	}
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (client) {
		SSL_set_connect_state(c->ssl);
		/* An IP literal is matched against the certificate's iPAddress
		 * names and never sent as SNI (RFC 6066 section 3); a name is
		 * both SNI and, when ctx verifies, the name the certificate
		 * must carry (RFC 6125; ctx's host flags apply). */
		unsigned char addr[sizeof(struct in6_addr)];
		bool ip = sni != NULL && (inet_pton(AF_INET, sni, addr) == 1 ||
		                          inet_pton(AF_INET6, sni, addr) == 1);
		bool verify = (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) != 0;
		int ok = 1;
		if (sni != NULL && !ip)
			ok = SSL_set_tlsext_host_name(c->ssl, sni);
		if (ok == 1 && verify && sni != NULL) {
			ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), sni)
			        : SSL_set1_host(c->ssl, sni);
		}
		if (ok != 1) {
			conn_log_tls_error(c, "setup");
			return conn_break(c, CONN_ERROR);
		}
	} else {
		SSL_set_accept_state(c->ssl);
	}
	enum conn_status st = conn_handshake_loop(c, clock_monotonic_ms() + timeout_ms);
	if (st != CONN_OK)
		return st;
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s %s", SSL_get_version(c->ssl),
	         SSL_get_cipher_name(c->ssl));
	c->req_active = false;
	return CONN_OK;
}

/* Flushes our reply and forgets plaintext the client sent ahead. */
static enum conn_status conn_tls_prepare(struct conn *c, size_t *discarded_r)
{
	if (discarded_r != NULL)
		*discarded_r = 0;
	if (c->broken || c->ssl != NULL)
		return CONN_ERROR;
	enum conn_status st = conn_flush(c);
	if (st != CONN_OK)
		return st;
	if (discarded_r != NULL)
		*discarded_r = c->in.len - c->in_pos;
	buf_reset(&c->in);
	c->in_pos = 0;
	return CONN_OK;
}

enum conn_status conn_starttls(struct conn *c, struct ssl_ctx_st *ctx, size_t *discarded_r)
{
	size_t discarded = 0;
	enum conn_status st = conn_tls_prepare(c, &discarded);
	if (discarded_r != NULL)
		*discarded_r = discarded;
	if (st != CONN_OK)
		return st;
	if (discarded > 0)
		log_info(
		    "event=starttls_discarded bytes=%zu reason=\"plaintext sent after STARTTLS\"",
		    discarded);
	return conn_handshake(c, ctx, false, NULL, c->limits.idle_timeout_ms);
}

enum conn_status conn_tls_accept(struct conn *c, struct ssl_ctx_st *ctx, uint32_t timeout_ms)
{
	enum conn_status st = conn_tls_prepare(c, NULL);
	if (st != CONN_OK)
		return st;
	return conn_handshake(c, ctx, false, NULL, timeout_ms);
}

enum conn_status conn_tls_connect(struct conn *c, struct ssl_ctx_st *ctx, const char *server_name,
                                  uint32_t timeout_ms)
{
	if (ctx == NULL)
		return CONN_ERROR;
	enum conn_status st = conn_tls_prepare(c, NULL);
	if (st != CONN_OK)
		return st;
	return conn_handshake(c, ctx, true, server_name, timeout_ms);
}

void conn_shutdown_force(struct conn *c)
{
	shutdown(c->fd, SHUT_RDWR);
}
