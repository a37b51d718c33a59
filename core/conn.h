/* conn.h - one client connection: socket or TLS, timeouts, bounded reads.
 *
 * Every protocol session (SMTP, IMAP, POP3, the HTTP bridge) reads and writes
 * through a struct conn. A conn belongs to exactly one thread (its session
 * thread); the only calls another thread may make are conn_set_stopping()
 * and conn_shutdown_force(), which the server runtime uses at shutdown.
 *
 * Time rules (STYLE.md "Deadlines, not only timeouts"):
 *  - A read with CONN_NEW_REQUEST starts a new request: while nothing is
 *    buffered it waits for the first byte under limits.idle_timeout_ms.
 *  - From the first byte of a request on, every read of that request (the
 *    rest of the line, continuation lines, literals, DATA) shares one
 *    deadline: request_deadline_ms after the request began, extended by
 *    1000 / min_data_rate ms for each byte received, but never more than
 *    request_deadline_ms past the last byte received. So a client trickling
 *    one byte every 29 s times out after about request_deadline_ms, and one
 *    that stalls halfway times out request_deadline_ms after its last byte.
 *    min_data_rate == 0 disables the total budget (only the stall bound
 *    remains).
 *  - A read without CONN_NEW_REQUEST continues the current request (or starts
 *    one at once if none is running).
 *  - conn_flush() follows the same rule with write_timeout_ms: the peer must
 *    accept our output at min_data_rate.
 *  - Before a read waits for input, buffered output is flushed, so a session
 *    can never wait for a client that is itself waiting for our reply.
 *
 * Nothing ever blocks without a time limit: all waits are poll() with the
 * remaining time. The socket is non-blocking inside.
 *
 * Something the client sends at its leisure (IMAP IDLE's DONE) is a new
 * request: read it with CONN_NEW_REQUEST or wait with conn_wait_input(),
 * or the request deadline ends the wait.
 *
 * Errors are sticky: after CONN_ERROR (or a failed write or flush) the conn
 * is broken and every later read or write returns CONN_ERROR at once. After
 * a read's CONN_TIMEOUT, later reads return CONN_ERROR but a last reply
 * (IMAP "* BYE", SMTP "421") can still be written and flushed. */
#ifndef ROOST_CONN_H
#define ROOST_CONN_H

#include "buf.h"
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* OpenSSL's SSL_CTX and SSL, without pulling <openssl/ssl.h> in here. */
struct ssl_ctx_st;
struct ssl_st;

enum conn_status {
	CONN_OK = 0,
	CONN_EOF,         /* the peer closed (or half-closed) its side */
	CONN_TIMEOUT,     /* idle timeout, request deadline or write timeout */
	CONN_TOO_LONG,    /* line (or read) over the caller's limit, see below */
	CONN_ERROR,       /* socket or TLS failure; the conn is unusable */
	CONN_STOPPING,    /* server is shutting down: say goodbye and return */
	CONN_SINK_FAILED, /* conn_read_stream's sink said -1; bytes consumed */
};

/* All in milliseconds and bytes; from config via conn_limits_from_config(). */
struct conn_limits {
	uint32_t idle_timeout_ms;     /* waiting for a request's first byte */
	uint32_t request_deadline_ms; /* budget of one request, see above */
	uint64_t min_data_rate;       /* bytes/s that extend the budget; 0: none */
	uint32_t write_timeout_ms;    /* budget of one conn_flush() */
};

/* Flags for reads. */
#define CONN_NEW_REQUEST 0x1u /* first read of a command: idle timeout applies */

struct conn;

/* Wraps an accepted (or connected) socket; takes ownership of fd and makes it
 * non-blocking. proto (e.g. "imap") prefixes the session id. Peer and local
 * addresses are read from the socket; an AF_UNIX socket (tests) counts as
 * loopback with peer "local". Limits start as the preauth
 * conn_limits_from_config() of config_current(). */
struct conn *conn_new(int fd, const char *proto);
/* Flushes nothing; sends a TLS close_notify if it can without blocking,
 * closes the socket and frees everything. Sets *c to NULL. */
void conn_free(struct conn **c);

/* Limits before (preauth) or after login, from [limits] settings:
 * preauth_timeout or idle_timeout, request_deadline, min_data_rate; the write
 * timeout is the request deadline. */
void conn_limits_from_config(const struct config *cfg, bool preauth, struct conn_limits *r);
void conn_set_limits(struct conn *c, const struct conn_limits *limits);
const struct conn_limits *conn_get_limits(const struct conn *c);

/* --- Identity. All strings live as long as the conn. --- */
int conn_fd(const struct conn *c);
/* Session id, e.g. "imap-1f3a9c02" (log_new_id); use with log_set_session. */
const char *conn_session_id(const struct conn *c);
/* Peer address as text without port ("192.0.2.1", "2001:db8::1", "local"). */
const char *conn_peer_ip(const struct conn *c);
unsigned conn_peer_port(const struct conn *c);
const struct sockaddr_storage *conn_peer_addr(const struct conn *c);
/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and AF_UNIX. */
bool conn_is_loopback(const struct conn *c);
/* Local port the client connected to (0 for AF_UNIX). */
unsigned conn_local_port(const struct conn *c);
/* Milliseconds since conn_new (for duration_ms in logs). */
uint64_t conn_age_ms(const struct conn *c);

/* --- TLS. --- */
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received: headers and logs; "" if plain. */
const char *conn_tls_description(const struct conn *c);
/* The SSL object (for channel binding, peer certificates); NULL if plain.
 * Owned by the conn. */
struct ssl_st *conn_ssl(const struct conn *c);
/* Server side of STARTTLS/STLS (call after writing the "go ahead" reply).
 * Flushes pending output, then DISCARDS every byte the client sent after the
 * STARTTLS command that is already buffered (RFC 3207 section 4.2, RFC 2595
 * section 3.1: plaintext injected before the handshake must not be executed)
 * and performs the handshake within limits.idle_timeout_ms. ctx NULL uses
 * tls_server_ctx_ref() (core/tls.h); the SSL holds its own reference, so a
 * later reload does not affect this conn. *discarded_r (may be NULL) tells
 * how many bytes were thrown away, for the log. Returns CONN_OK or
 * CONN_TIMEOUT/CONN_EOF/CONN_ERROR (then the conn is broken). */
enum conn_status conn_starttls(struct conn *c, struct ssl_ctx_st *ctx, size_t *discarded_r);
/* Same handshake for implicit-TLS listeners, within timeout_ms. */
enum conn_status conn_tls_accept(struct conn *c, struct ssl_ctx_st *ctx, uint32_t timeout_ms);
/* Client side (outbound SMTP): handshake as a client on this conn, sending
 * server_name as SNI (may be NULL), within timeout_ms. Buffered input is
 * discarded as for conn_starttls. Verification follows ctx's settings. */
enum conn_status conn_tls_connect(struct conn *c, struct ssl_ctx_st *ctx, const char *server_name,
                                  uint32_t timeout_ms);

/* --- Reading. --- */

/* Reads one line into line (reset first) without its line ending. A line ends
 * at LF; a CR right before it is removed. *bare_lf_r (may be NULL) is set
 * when the line ended in LF without CR (the caller decides whether to refuse
 * it). If the line is longer than max_len bytes (not counting CRLF), its
 * bytes are read and thrown away up to and including its LF, line is left
 * empty and CONN_TOO_LONG is returned: the next call reads the next line, so
 * the protocol stays in step. line->max must be >= max_len.
 * CONN_EOF if the peer closes before a complete line (a partial line is
 * dropped). flags: CONN_NEW_REQUEST or 0. */
enum conn_status conn_read_line(struct conn *c, struct buf *line, size_t max_len, unsigned flags,
                                bool *bare_lf_r);
/* Reads exactly n bytes and appends them to out. CONN_TOO_LONG, without
 * reading anything, if out cannot take n more bytes (check sizes against
 * limits before calling). */
enum conn_status conn_read_bytes(struct conn *c, struct buf *out, size_t n);
/* Reads exactly n bytes, handing them to sink in chunks as they arrive (for
 * literals, BDAT and other payloads of known size that must not be held in
 * memory). sink returns 0 to go on or -1 to refuse the rest: then the rest
 * of the n bytes is still read and thrown away (so the protocol stays in
 * step) and CONN_SINK_FAILED is returned. sink NULL just skips n bytes. */
enum conn_status conn_read_stream(struct conn *c, uint64_t n,
                                  int (*sink)(void *ctx, const void *p, size_t len), void *ctx);
/* Appends whatever input is available, at least 1 and at most max bytes,
 * waiting (under the time rules) only if nothing is buffered. For bridging a
 * conn to another socket. flags: CONN_NEW_REQUEST or 0. */
enum conn_status conn_read_some(struct conn *c, struct buf *out, size_t max, unsigned flags);
/* Bytes already received and not yet returned, including TLS records
 * decrypted by OpenSSL. Non-zero means the client pipelined more input: a
 * read would not wait. */
size_t conn_pending_input(const struct conn *c);
/* Waits up to timeout_ms (< 0: limits.idle_timeout_ms) until input is
 * pending on the conn, or extra_fd (if >= 0; e.g. an eventfd of the
 * notifier, or the other side of a bridge) is readable. Flushes output
 * first. CONN_OK when either is ready: *extra_ready_r (may be NULL) says
 * whether extra_fd is readable; conn input may be ready as well (check
 * conn_pending_input() or just read). CONN_TIMEOUT when neither is, which
 * does NOT break the conn. CONN_STOPPING if the server is stopping. Input
 * "ready" may also be EOF or a TLS record without data: the next read
 * tells. */
enum conn_status conn_wait_input(struct conn *c, int timeout_ms, int extra_fd, bool *extra_ready_r);

/* --- Writing. Output is buffered until conn_flush() (or until more than
 * 64 KiB is waiting, which flushes on its own). --- */
enum conn_status conn_write(struct conn *c, const void *p, size_t n);
enum conn_status conn_write_str(struct conn *c, const char *s);
enum conn_status conn_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sends all buffered output within the write budget (see the top). */
enum conn_status conn_flush(struct conn *c);
/* Whether writing n more bytes makes the buffer go out to the peer now,
 * which waits as long as the peer does not read. */
bool conn_write_would_flush(const struct conn *c, size_t n);
/* Bytes written but not yet flushed. */
size_t conn_pending_output(const struct conn *c);

/* --- Counters, for logs. --- */
uint64_t conn_bytes_in(const struct conn *c);
uint64_t conn_bytes_out(const struct conn *c);

/* "ok", "eof", "timeout", "too_long", "error", "stopping", "sink_failed". */
const char *conn_status_str(enum conn_status st);

/* --- Shutdown support (used by core/server.c). --- */

/* Process-wide flag. Setting it wakes every conn waiting for the first byte
 * of a new request (and every conn_wait_input) at once with CONN_STOPPING;
 * while it is set such reads return CONN_STOPPING without waiting. Reads
 * inside a request are not affected, so sessions finish the command in
 * flight, then see CONN_STOPPING at their next CONN_NEW_REQUEST read. */
void conn_set_stopping(bool stopping);
bool conn_stopping(void);
/* Shuts the socket down both ways now (grace period over): the owner's
 * waits end and its reads and writes fail. Safe from another thread as long
 * as c is not being freed. */
void conn_shutdown_force(struct conn *c);

#endif
