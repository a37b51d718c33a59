/* smtp-client.c - the outbound SMTP client: one connection, EHLO,
 * opportunistic STARTTLS, AUTH for a smarthost, PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, per-recipient replies (outbound-private.h).
 *
 * Whether the peer's certificate is checked is the TLS context's business
 * (the queue runner gives a verifying one for the smarthost, a
 * non-verifying one for opportunistic STARTTLS to MX hosts); conn checks
 * the name o->host when the context verifies. A certificate that does not
 * verify is a temporary failure (451 4.7.5) naming the reason. */
#include "outbound-private.h"

#include "dkim-key.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTPC_LINE_MAX        4096
#define SMTPC_REPLY_LINES_MAX 100

#define SMTPC_EXT_PIPELINING 0x01u
#define SMTPC_EXT_8BITMIME   0x02u
#define SMTPC_EXT_SMTPUTF8   0x04u
#define SMTPC_EXT_STARTTLS   0x08u
#define SMTPC_EXT_SIZE       0x10u
#define SMTPC_EXT_AUTH_PLAIN 0x20u
#define SMTPC_EXT_AUTH_LOGIN 0x40u

struct smtpc_session {
	struct conn *c;
	const struct smtpc_options *o;
	unsigned ext;
	uint64_t size_max; /* 0: no SIZE limit announced */
	struct buf line;
};

void smtpc_reply_set(struct smtpc_reply *r, unsigned code, const char *esc, const char *text)
{
	r->code = code;
	snprintf(r->esc, sizeof(r->esc), "%s", esc);
	snprintf(r->text, sizeof(r->text), "%u %s %s", code, esc, text);
}

struct conn *smtpc_conn(struct smtpc_session *s)
{
	return s->c;
}

/* "5.1.1 " at the start of a reply text: its class must match the code's. */
static bool smtpc_parse_esc(const char *t, unsigned code, char *esc, size_t n)
{
	size_t i = 0;
	if (t[0] != (char)('0' + code / 100) || t[1] != '.')
		return false;
	for (i = 2; (t[i] >= '0' && t[i] <= '9') || t[i] == '.'; i++)
		;
	if (i >= n || (t[i] != ' ' && t[i] != '\0'))
		return false;
	memcpy(esc, t, i);
	esc[i] = '\0';
	return true;
}

/* Reads one (multi-line) reply; extension keywords of EHLO go to ext. */
static void smtpc_read_reply(struct smtpc_session *s, struct smtpc_reply *r, bool ehlo)
{
	for (unsigned n = 0;; n++) {
		enum conn_status st = conn_read_line(s->c, &s->line, SMTPC_LINE_MAX, 0, NULL);
		const char *l = buf_cstr(&s->line);
		if (st != CONN_OK || s->line.len < 3 || n > SMTPC_REPLY_LINES_MAX || l[0] < '2' ||
		    l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
		    (l[3] != ' ' && l[3] != '-' && l[3] != '\0')) {
			smtpc_reply_set(r, 451, "4.4.2",
			                st == CONN_OK ? "bad reply from remote server"
			                              : "connection lost or timed out");
			return;
		}
		unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
		const char *text = l[3] != '\0' ? l + 4 : "";
		if (ehlo && n > 0 && code == 250) {
			if (str_starts_ci(text, "PIPELINING"))
				s->ext |= SMTPC_EXT_PIPELINING;
			else if (str_starts_ci(text, "8BITMIME"))
				s->ext |= SMTPC_EXT_8BITMIME;
			else if (str_starts_ci(text, "SMTPUTF8"))
				s->ext |= SMTPC_EXT_SMTPUTF8;
			else if (str_starts_ci(text, "STARTTLS"))
				s->ext |= SMTPC_EXT_STARTTLS;
			else if (str_starts_ci(text, "SIZE")) {
				s->ext |= SMTPC_EXT_SIZE;
				unsigned long long v = 0;
				if (sscanf(text + 4, " %llu", &v) == 1)
					s->size_max = v;
			} else if (str_starts_ci(text, "AUTH ") || str_starts_ci(text, "AUTH=")) {
				if (strcasestr(text, " PLAIN") != NULL)
					s->ext |= SMTPC_EXT_AUTH_PLAIN;
				if (strcasestr(text, " LOGIN") != NULL)
					s->ext |= SMTPC_EXT_AUTH_LOGIN;
			}
		}
		if (n == 0) {
			r->code = code;
			if (!smtpc_parse_esc(text, code, r->esc, sizeof(r->esc)))
				snprintf(r->esc, sizeof(r->esc), "%u.0.0", code / 100);
			struct buf t;
			buf_init(&t, sizeof(r->text) - 1);
			buf_printf(&t, "%u ", code);
			buf_append_escaped(&t, text, strlen(text), 200);
			snprintf(r->text, sizeof(r->text), "%s", buf_cstr(&t));
			buf_free(&t);
		}
		if (l[3] != '-')
			return;
	}
}

static void smtpc_cmd(struct smtpc_session *s, struct smtpc_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void smtpc_cmd(struct smtpc_session *s, struct smtpc_reply *r, const char *fmt, ...)
{
	struct buf cmd;
	buf_init(&cmd, BUF_NO_LIMIT);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&cmd, fmt, ap);
	va_end(ap);
	buf_append(&cmd, "\r\n", 2);
	conn_write(s->c, cmd.data, cmd.len);
	OPENSSL_cleanse(cmd.data, cmd.len);
	buf_free(&cmd);
	smtpc_read_reply(s, r, false);
}

/* Non-blocking connect within the timeout; the socket or -1. */
static int smtpc_connect(const struct sockaddr_storage *addr, uint32_t timeout_ms, int stop_fd)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	socklen_t len =
	    addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (connect(fd, (const struct sockaddr *)addr, len) == 0)
		return fd;
	struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT}, {.fd = stop_fd, .events = POLLIN}};
	int err = 0;
	socklen_t elen = sizeof(err);
	if (errno != EINPROGRESS || poll(pfd, stop_fd >= 0 ? 2 : 1, (int)timeout_ms) < 1 ||
	    pfd[0].revents == 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 ||
	    err != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void smtpc_set_limits(struct conn *c, uint32_t timeout_ms)
{
	struct conn_limits l = {.idle_timeout_ms = timeout_ms,
	                        .request_deadline_ms = timeout_ms,
	                        .min_data_rate = 0,
	                        .write_timeout_ms = timeout_ms};
	conn_set_limits(c, &l);
}

static int smtpc_ehlo(struct smtpc_session *s, struct smtpc_reply *r)
{
	s->ext = 0;
	s->size_max = 0;
	conn_printf(s->c, "EHLO %s\r\n", s->o->helo);
	smtpc_read_reply(s, r, true);
	if (r->code >= 500 && r->code < 600) {
		smtpc_cmd(s, r, "HELO %s", s->o->helo);
		s->ext = 0;
	}
	return r->code == 250 ? 0 : -1;
}

/* The reply for a failed handshake: with a verifying context, why the
 * certificate was refused ("hostname mismatch", "self-signed certificate"). */
static void smtpc_tls_failed(struct smtpc_session *s, struct smtpc_reply *r)
{
	SSL *ssl = conn_ssl(s->c);
	long v = X509_V_OK;
	if (ssl != NULL && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0)
		v = SSL_get_verify_result(ssl);
	if (v == X509_V_OK) {
		smtpc_reply_set(r, 451, "4.7.5", "TLS handshake failed");
		return;
	}
	char text[256];
	snprintf(text, sizeof(text), "TLS certificate of %.100s not verified: %s", s->o->host,
	         X509_verify_cert_error_string(v));
	smtpc_reply_set(r, 451, "4.7.5", text);
	char q[LOG_QUOTE_MAX];
	log_warn("event=tls_verify_failed host=%s error=%s", log_quote(q, sizeof(q), s->o->host),
	         X509_verify_cert_error_string(v));
}

static int smtpc_starttls(struct smtpc_session *s, struct smtpc_reply *r)
{
	bool offered = (s->ext & SMTPC_EXT_STARTTLS) != 0;
	if (s->o->tls == SMTPC_TLS_NONE || s->o->tls == SMTPC_TLS_IMPLICIT ||
	    (!offered && s->o->tls == SMTPC_TLS_OPPORTUNISTIC))
		return 0;
	if (!offered) {
		smtpc_reply_set(r, 451, "4.7.4", "STARTTLS required but not offered");
		return -1;
	}
	smtpc_cmd(s, r, "STARTTLS");
	if (r->code != 220)
		return s->o->tls == SMTPC_TLS_REQUIRED ? -1 : 0;
	if (conn_tls_connect(s->c, s->o->tls_ctx, s->o->host, s->o->connect_timeout_ms) !=
	    CONN_OK) {
		smtpc_tls_failed(s, r);
		return -1;
	}
	return smtpc_ehlo(s, r);
}

static void smtpc_b64(struct buf *out, const char *p, size_t n)
{
	dkim_base64_append(out, (const unsigned char *)p, n);
}

static int smtpc_auth(struct smtpc_session *s, struct smtpc_reply *r)
{
	const char *u = s->o->auth_user, *p = s->o->auth_password;
	if (u == NULL || u[0] == '\0')
		return 0;
	if (!conn_is_tls(s->c) && s->o->tls != SMTPC_TLS_NONE) {
		smtpc_reply_set(r, 451, "4.7.4", "no TLS: credentials not sent");
		return -1;
	}
	struct buf plain, b64;
	buf_init(&plain, 4096);
	buf_init(&b64, 8192);
	if ((s->ext & SMTPC_EXT_AUTH_PLAIN) != 0 || (s->ext & SMTPC_EXT_AUTH_LOGIN) == 0) {
		buf_append_char(&plain, '\0');
		buf_append_str(&plain, u);
		buf_append_char(&plain, '\0');
		buf_append_str(&plain, p);
		smtpc_b64(&b64, plain.data, plain.len);
		smtpc_cmd(s, r, "AUTH PLAIN %s", buf_cstr(&b64));
	} else {
		smtpc_b64(&b64, u, strlen(u));
		smtpc_cmd(s, r, "AUTH LOGIN %s", buf_cstr(&b64));
		buf_reset(&b64);
		smtpc_b64(&b64, p, strlen(p));
		if (r->code == 334)
			smtpc_cmd(s, r, "%s", buf_cstr(&b64));
	}
	if (plain.data != NULL)
		OPENSSL_cleanse(plain.data, plain.len);
	if (b64.data != NULL)
		OPENSSL_cleanse(b64.data, b64.len);
	buf_free(&plain);
	buf_free(&b64);
	return r->code == 235 ? 0 : -1;
}

struct smtpc_session *smtpc_open(const struct sockaddr_storage *addr, const struct smtpc_options *o,
                                 struct smtpc_reply *err_r)
{
	int fd = smtpc_connect(addr, o->connect_timeout_ms, o->stop_fd);
	if (fd < 0) {
		smtpc_reply_set(err_r, 451, "4.4.1", "connection failed");
		return NULL;
	}
	struct smtpc_session *s = xcalloc(1, sizeof(*s));
	s->c = conn_new(fd, "smtpc");
	s->o = o;
	buf_init(&s->line, SMTPC_LINE_MAX);
	smtpc_set_limits(s->c, o->command_timeout_ms);
	if (o->tls == SMTPC_TLS_IMPLICIT &&
	    conn_tls_connect(s->c, o->tls_ctx, o->host, o->connect_timeout_ms) != CONN_OK) {
		smtpc_tls_failed(s, err_r);
		goto fail;
	}
	smtpc_read_reply(s, err_r, false);
	if (err_r->code != 220) {
		if (err_r->code >= 200 && err_r->code < 400)
			smtpc_reply_set(err_r, 451, "4.4.2", "unexpected greeting");
		goto fail;
	}
	if (smtpc_ehlo(s, err_r) < 0 || smtpc_starttls(s, err_r) < 0 || smtpc_auth(s, err_r) < 0)
		goto fail;
	return s;
fail:
	smtpc_close(&s);
	return NULL;
}

void smtpc_close(struct smtpc_session **s)
{
	if (*s == NULL)
		return;
	conn_write_str((*s)->c, "QUIT\r\n");
	conn_flush((*s)->c);
	conn_free(&(*s)->c);
	buf_free(&(*s)->line);
	free(*s);
	*s = NULL;
}

/* The message, dot-stuffed, ending in CRLF "." CRLF. */
static void smtpc_write_data(struct smtpc_session *s, const struct buf *data)
{
	size_t i = 0;
	while (i < data->len) {
		const char *nl = memchr(data->data + i, '\n', data->len - i);
		size_t n = nl != NULL ? (size_t)(nl - (data->data + i)) + 1 : data->len - i;
		if (data->data[i] == '.')
			conn_write(s->c, ".", 1);
		conn_write(s->c, data->data + i, n);
		i += n;
	}
	if (data->len > 0 && data->data[data->len - 1] != '\n')
		conn_write(s->c, "\r\n", 2);
	conn_write(s->c, ".\r\n", 3);
}

static bool smtpc_8bit(const struct buf *data)
{
	for (size_t i = 0; i < data->len; i++)
		if ((unsigned char)data->data[i] >= 0x80)
			return true;
	return false;
}

static void smtpc_mail_cmd(struct smtpc_session *s, const char *sender, const struct buf *data,
                           bool smtputf8)
{
	conn_printf(s->c, "MAIL FROM:<%s>", sender);
	if ((s->ext & SMTPC_EXT_SIZE) != 0)
		conn_printf(s->c, " SIZE=%zu", data->len);
	/* An 8-bit body to a server without 8BITMIME is sent as it is (no
	 * downgrade to quoted-printable; docs/protocols.md). */
	if ((s->ext & SMTPC_EXT_8BITMIME) != 0 && smtpc_8bit(data))
		conn_write_str(s->c, " BODY=8BITMIME");
	if (smtputf8)
		conn_write_str(s->c, " SMTPUTF8");
	conn_write_str(s->c, "\r\n");
}

static void smtpc_copy_all(struct smtpc_reply *rcpt_r, size_t n, const struct smtpc_reply *r,
                           bool only_accepted)
{
	for (size_t i = 0; i < n; i++)
		if (!only_accepted || rcpt_r[i].code == 250)
			rcpt_r[i] = *r;
}

/* Checks that need no round trip; -1 when they fail every recipient. */
static int smtpc_precheck(struct smtpc_session *s, const struct buf *data, bool smtputf8,
                          struct smtpc_reply *rcpt_r, size_t n)
{
	struct smtpc_reply r;
	if (smtputf8 && (s->ext & SMTPC_EXT_SMTPUTF8) == 0)
		smtpc_reply_set(&r, 553, "5.6.7", "remote server does not support SMTPUTF8");
	else if (s->size_max > 0 && data->len > s->size_max)
		smtpc_reply_set(&r, 552, "5.3.4", "message too big for remote server");
	else
		return 0;
	smtpc_copy_all(rcpt_r, n, &r, false);
	return -1;
}

void smtpc_send(struct smtpc_session *s, const char *sender, const char *const *rcpts,
                size_t nrcpts, const struct buf *data, bool smtputf8, struct smtpc_reply *rcpt_r)
{
	if (smtpc_precheck(s, data, smtputf8, rcpt_r, nrcpts) < 0)
		return;
	bool pipe = (s->ext & SMTPC_EXT_PIPELINING) != 0;
	struct smtpc_reply mail, dr;
	size_t accepted = 0;
	smtpc_mail_cmd(s, sender, data, smtputf8);
	if (!pipe)
		smtpc_read_reply(s, &mail, false);
	for (size_t i = 0; i < nrcpts && (pipe || mail.code == 250); i++) {
		conn_printf(s->c, "RCPT TO:<%s>\r\n", rcpts[i]);
		if (!pipe)
			smtpc_read_reply(s, &rcpt_r[i], false);
	}
	if (pipe) {
		conn_write_str(s->c, "DATA\r\n");
		smtpc_read_reply(s, &mail, false);
		for (size_t i = 0; i < nrcpts; i++)
			smtpc_read_reply(s, &rcpt_r[i], false);
	}
	if (mail.code != 250) {
		smtpc_copy_all(rcpt_r, nrcpts, &mail, false);
		if (pipe)
			smtpc_read_reply(s, &dr, false);
		return;
	}
	for (size_t i = 0; i < nrcpts; i++)
		accepted += rcpt_r[i].code == 250;
	if (!pipe && accepted > 0)
		smtpc_cmd(s, &dr, "DATA");
	else if (pipe)
		smtpc_read_reply(s, &dr, false);
	else
		return;
	if (dr.code != 354) {
		smtpc_copy_all(rcpt_r, nrcpts, &dr, true);
		return;
	}
	if (accepted == 0) {
		/* A server that said 354 with no recipient: end the empty message. */
		conn_write_str(s->c, ".\r\n");
		smtpc_read_reply(s, &dr, false);
		return;
	}
	smtpc_write_data(s, data);
	smtpc_read_reply(s, &dr, false);
	smtpc_copy_all(rcpt_r, nrcpts, &dr, true);
}
