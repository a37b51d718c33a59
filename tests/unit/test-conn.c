/* Tests of core/conn, core/tls and core/server over socketpairs and real
 * loopback sockets, with real OpenSSL clients in threads. */
#include "unit.h"

#include "conn-pair.h"

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "privdrop.h"
#include "server.h"
#include "tls.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- Helpers. --- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Sends its bytes in pieces of chunk bytes with delay_ms between them,
 * then (if close_after) closes its socket. */
struct trickle {
	int fd;
	const char *data;
	size_t len;
	size_t chunk;
	unsigned delay_ms;
	bool close_after;
	pthread_t thread;
};

static void *trickle_main(void *arg)
{
	struct trickle *t = arg;
	for (size_t off = 0; off < t->len; off += t->chunk) {
		size_t n = t->len - off < t->chunk ? t->len - off : t->chunk;
		write_all(t->fd, t->data + off, n);
		sleep_ms(t->delay_ms);
	}
	if (t->close_after)
		close(t->fd);
	return NULL;
}

static void trickle_start(struct trickle *t)
{
	pthread_create(&t->thread, NULL, trickle_main, t);
}

/* Reads one line (through LF) from a blocking fd, or "" after 5 s. */
static void read_plain_line(int fd, char *out, size_t outlen)
{
	size_t n = 0;
	uint64_t end = now_ms() + 5000;
	out[0] = '\0';
	while (n + 1 < outlen && now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		char ch;
		if (read(fd, &ch, 1) != 1)
			break;
		out[n++] = ch;
		if (ch == '\n')
			break;
	}
	out[n] = '\0';
}

static char tmpdir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const char *test_dir(void)
{
	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/roost-test-conn-XXXXXX");
		if (mkdtemp(tmpdir) == NULL)
			abort();
	}
	return tmpdir;
}

__attribute__((destructor)) static void test_dir_cleanup(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tls_server_cleanup();
}

/* A self-signed pair in the temp dir; paths are static. */
static void test_cert(const char **cert_r, const char **key_r)
{
	static char cert[256], key[256];
	if (cert[0] == '\0') {
		char dir[256];
		snprintf(dir, sizeof(dir), "%s/tls", test_dir());
		char *c, *k;
		const char *err = NULL;
		if (tls_selfsigned_ensure(dir, "mail.example.test", &c, &k, &err) < 0) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		snprintf(cert, sizeof(cert), "%s", c);
		snprintf(key, sizeof(key), "%s", k);
		free(c);
		free(k);
	}
	*cert_r = cert;
	*key_r = key;
}

/* --- Line reading. --- */

UNIT_TEST(conn_line_crlf_and_pipelining)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	write_all(peer, "A1 NOOP\r\nA2 LOGIN\r\n", 19);
	struct buf line;
	buf_init(&line, 1024);
	bool bare = true;
	CHECK_INT(conn_read_line(c, &line, 1024, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "A1 NOOP");
	CHECK(!bare);
	CHECK_INT(conn_pending_input(c), 10);
	CHECK_INT(conn_read_line(c, &line, 1024, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "A2 LOGIN");
	CHECK_INT(conn_pending_input(c), 0);
	buf_free(&line);
	conn_free(&c);
	CHECK(c == NULL);
	close(peer);
}

UNIT_TEST(conn_line_bare_lf_and_cr)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	write_all(peer, "abc\nx\r\r\n\r\n", 11);
	struct buf line;
	buf_init(&line, 64);
	bool bare = false;
	CHECK_INT(conn_read_line(c, &line, 64, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "abc");
	CHECK(bare);
	CHECK_INT(conn_read_line(c, &line, 64, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "x\r"); /* only the CR before LF is the line end */
	CHECK(!bare);
	CHECK_INT(conn_read_line(c, &line, 64, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_INT(line.len, 0);
	buf_free(&line);
	conn_free(&c);
	close(peer);
}

UNIT_TEST(conn_line_too_long_is_skipped)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	/* Exactly the limit is fine; one more is not; a huge one is skipped
	 * in pieces (more than the 16 KiB read chunk) and the next line is
	 * read in step. */
	struct buf in;
	buf_init(&in, BUF_NO_LIMIT);
	buf_append_str(&in, "0123456789\r\n01234567890\r\n");
	for (int i = 0; i < 50000; i++)
		buf_append_char(&in, (char)('a' + i % 26));
	buf_append_str(&in, "\r\nNEXT\r\n");
	struct trickle t = {
	    .fd = peer, .data = in.data, .len = in.len, .chunk = 777, .delay_ms = 0};
	trickle_start(&t);
	struct buf line;
	buf_init(&line, 10);
	CHECK_INT(conn_read_line(c, &line, 10, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "0123456789");
	CHECK_INT(conn_read_line(c, &line, 10, CONN_NEW_REQUEST, NULL), CONN_TOO_LONG);
	CHECK_INT(line.len, 0);
	CHECK_INT(conn_read_line(c, &line, 10, CONN_NEW_REQUEST, NULL), CONN_TOO_LONG);
	CHECK_INT(conn_read_line(c, &line, 10, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "NEXT");
	pthread_join(t.thread, NULL);
	buf_free(&line);
	buf_free(&in);
	conn_free(&c);
	close(peer);
}

UNIT_TEST(conn_line_byte_by_byte)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	static const char script[] = "HELLO WORLD\r\nSECOND\nTHIRD\r\npartial";
	struct trickle t = {.fd = peer,
	                    .data = script,
	                    .len = sizeof(script) - 1,
	                    .chunk = 1,
	                    .delay_ms = 1,
	                    .close_after = true};
	trickle_start(&t);
	struct buf line;
	buf_init(&line, 100);
	bool bare;
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "HELLO WORLD");
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "SECOND");
	CHECK(bare);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, &bare), CONN_OK);
	CHECK_STR(buf_cstr(&line), "THIRD");
	/* The peer closes in the middle of a line. */
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, &bare), CONN_EOF);
	pthread_join(t.thread, NULL);
	buf_free(&line);
	conn_free(&c);
}

/* --- Time limits. --- */

UNIT_TEST(conn_deadline_beats_trickling_client)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	/* 1 byte every 50 ms is far under 1000 B/s: the 400 ms budget is not
	 * extended (much), though each byte comes well inside the idle time. */
	struct conn_limits l = {.idle_timeout_ms = 2000,
	                        .request_deadline_ms = 400,
	                        .min_data_rate = 1000,
	                        .write_timeout_ms = 2000};
	conn_set_limits(c, &l);
	static const char slow[] =
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct trickle t = {
	    .fd = peer, .data = slow, .len = sizeof(slow) - 1, .chunk = 1, .delay_ms = 50};
	trickle_start(&t);
	struct buf line;
	buf_init(&line, 1000);
	uint64_t start = now_ms();
	CHECK_INT(conn_read_line(c, &line, 1000, CONN_NEW_REQUEST, NULL), CONN_TIMEOUT);
	uint64_t took = now_ms() - start;
	CHECK(took >= 350);
	CHECK(took < 1200);
	/* No more reads after a timeout, but a goodbye still goes out. */
	CHECK_INT(conn_read_line(c, &line, 1000, CONN_NEW_REQUEST, NULL), CONN_ERROR);
	CHECK_INT(conn_wait_input(c, 10, -1, NULL), CONN_ERROR);
	CHECK_INT(conn_write_str(c, "421 timeout\r\n"), CONN_OK);
	CHECK_INT(conn_flush(c), CONN_OK);
	char bye[32];
	read_plain_line(peer, bye, sizeof(bye));
	CHECK_STR(bye, "421 timeout\r\n");
	pthread_join(t.thread, NULL);
	buf_free(&line);
	conn_free(&c);
	close(peer);
}

UNIT_TEST(conn_deadline_extended_at_min_rate)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	/* 100 bytes every 20 ms (5000 B/s) beats 1000 B/s: a 300 ms budget
	 * stretches over the whole ~1 s line. */
	struct conn_limits l = {.idle_timeout_ms = 2000,
	                        .request_deadline_ms = 300,
	                        .min_data_rate = 1000,
	                        .write_timeout_ms = 2000};
	conn_set_limits(c, &l);
	struct buf in;
	buf_init(&in, BUF_NO_LIMIT);
	for (int i = 0; i < 5000; i++)
		buf_append_char(&in, 'x');
	buf_append_str(&in, "\r\n");
	struct trickle t = {
	    .fd = peer, .data = in.data, .len = in.len, .chunk = 100, .delay_ms = 20};
	trickle_start(&t);
	struct buf line;
	buf_init(&line, 10000);
	CHECK_INT(conn_read_line(c, &line, 10000, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_INT(line.len, 5000);
	pthread_join(t.thread, NULL);
	buf_free(&line);
	buf_free(&in);
	conn_free(&c);
	close(peer);
}

UNIT_TEST(conn_idle_timeout)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	struct conn_limits l = {.idle_timeout_ms = 200,
	                        .request_deadline_ms = 5000,
	                        .min_data_rate = 1000,
	                        .write_timeout_ms = 2000};
	conn_set_limits(c, &l);
	struct buf line;
	buf_init(&line, 100);
	uint64_t start = now_ms();
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_TIMEOUT);
	uint64_t took = now_ms() - start;
	CHECK(took >= 180 && took < 1000);
	buf_free(&line);
	conn_free(&c);
	close(peer);
}

UNIT_TEST(conn_wait_input_with_extra_fd)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	int ev[2];
	CHECK(pipe(ev) == 0);
	bool extra = true;
	CHECK_INT(conn_wait_input(c, 50, ev[0], &extra), CONN_TIMEOUT);
	CHECK(!extra);
	CHECK_INT(write(ev[1], "x", 1), 1);
	CHECK_INT(conn_wait_input(c, 1000, ev[0], &extra), CONN_OK);
	CHECK(extra);
	write_all(peer, "DONE\r\n", 6);
	CHECK_INT(conn_wait_input(c, 1000, -1, &extra), CONN_OK);
	CHECK(!extra);
	struct buf line;
	buf_init(&line, 100);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "DONE");
	buf_free(&line);
	close(ev[0]);
	close(ev[1]);
	conn_free(&c);
	close(peer);
}

/* --- Sized reads. --- */

static int sink_count(void *ctx, const void *p, size_t len)
{
	(void)p;
	*(size_t *)ctx += len;
	return 0;
}

static int sink_refuse(void *ctx, const void *p, size_t len)
{
	(void)p;
	(void)len;
	(*(int *)ctx)++;
	return -1;
}

UNIT_TEST(conn_exact_size_reads)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	struct buf in;
	buf_init(&in, BUF_NO_LIMIT);
	buf_append_str(&in, "{5}\r\nhello A\r\n");
	for (int i = 0; i < 100000; i++)
		buf_append_char(&in, 'z');
	buf_append_str(&in, "AFTER\r\n");
	for (int i = 0; i < 40000; i++)
		buf_append_char(&in, 'q');
	buf_append_str(&in, "LAST\r\nrest");
	struct trickle t = {
	    .fd = peer, .data = in.data, .len = in.len, .chunk = 4096, .delay_ms = 0};
	trickle_start(&t);

	struct buf line, out;
	buf_init(&line, 100);
	buf_init(&out, 5);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "{5}");
	CHECK_INT(conn_read_bytes(c, &out, 6), CONN_TOO_LONG); /* does not fit */
	CHECK_INT(conn_read_bytes(c, &out, 5), CONN_OK);
	CHECK_STR(buf_cstr(&out), "hello");
	CHECK_INT(conn_read_line(c, &line, 100, 0, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), " A");
	size_t got = 0;
	CHECK_INT(conn_read_stream(c, 100000, sink_count, &got), CONN_OK);
	CHECK_INT(got, 100000);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "AFTER");
	/* A refusing sink is asked once; the payload is still consumed. */
	int calls = 0;
	CHECK_INT(conn_read_stream(c, 40000, sink_refuse, &calls), CONN_SINK_FAILED);
	CHECK_INT(calls, 1);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "LAST");
	pthread_join(t.thread, NULL);
	struct buf some;
	buf_init(&some, 100);
	CHECK_INT(conn_read_some(c, &some, 100, CONN_NEW_REQUEST), CONN_OK);
	CHECK_STR(buf_cstr(&some), "rest");
	close(peer);
	CHECK_INT(conn_read_some(c, &some, 100, CONN_NEW_REQUEST), CONN_EOF);
	buf_free(&some);
	buf_free(&line);
	buf_free(&out);
	buf_free(&in);
	conn_free(&c);
}

UNIT_TEST(conn_buffered_output)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	CHECK_INT(conn_printf(c, "* %d EXISTS\r\n", 42), CONN_OK);
	CHECK_INT(conn_write_str(c, "A1 OK done\r\n"), CONN_OK);
	CHECK_INT(conn_pending_output(c), 25);
	struct pollfd p = {.fd = peer, .events = POLLIN};
	CHECK_INT(poll(&p, 1, 0), 0); /* nothing sent before the flush */
	CHECK_INT(conn_flush(c), CONN_OK);
	CHECK_INT(conn_pending_output(c), 0);
	char l1[64], l2[64];
	read_plain_line(peer, l1, sizeof(l1));
	read_plain_line(peer, l2, sizeof(l2));
	CHECK_STR(l1, "* 42 EXISTS\r\n");
	CHECK_STR(l2, "A1 OK done\r\n");
	CHECK_INT(conn_bytes_out(c), 25);
	/* A client that never reads: the write budget ends the flush. */
	struct conn_limits l = {.idle_timeout_ms = 2000,
	                        .request_deadline_ms = 2000,
	                        .min_data_rate = 1000,
	                        .write_timeout_ms = 300};
	conn_set_limits(c, &l);
	static char big[1 << 16];
	memset(big, 'b', sizeof(big));
	enum conn_status st = CONN_OK;
	uint64_t start = now_ms();
	for (int i = 0; i < 200 && st == CONN_OK; i++)
		st = conn_write(c, big, sizeof(big));
	if (st == CONN_OK)
		st = conn_flush(c);
	CHECK_INT(st, CONN_TIMEOUT);
	CHECK(now_ms() - start < 3000);
	conn_free(&c);
	close(peer);
}

/* --- TLS. --- */

struct tls_client {
	int fd;
	const char *first; /* plaintext sent before TLS, in one write */
	char reply1[128];  /* plaintext reply before TLS */
	char reply2[128];  /* reply over TLS */
	bool ok;
	pthread_t thread;
};

static int ssl_read_line(SSL *ssl, char *out, size_t outlen)
{
	size_t n = 0;
	while (n + 1 < outlen) {
		char ch;
		if (SSL_read(ssl, &ch, 1) != 1)
			return -1;
		out[n++] = ch;
		if (ch == '\n')
			break;
	}
	out[n] = '\0';
	return 0;
}

static void *tls_client_main(void *arg)
{
	struct tls_client *t = arg;
	write_all(t->fd, t->first, strlen(t->first));
	read_plain_line(t->fd, t->reply1, sizeof(t->reply1));
	const char *err;
	SSL_CTX *ctx = tls_client_ctx_new(false, &err);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, t->fd);
	if (SSL_connect(ssl) == 1 && SSL_write(ssl, "HELLO\r\n", 7) == 7 &&
	    ssl_read_line(ssl, t->reply2, sizeof(t->reply2)) == 0)
		t->ok = true;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

UNIT_TEST(conn_starttls_discards_pipelined_plaintext)
{
	const char *cert, *key, *err = NULL;
	test_cert(&cert, &key);
	SSL_CTX *sctx = tls_server_ctx_new(cert, key, &err);
	CHECK(sctx != NULL);
	int peer;
	struct conn *c = pair_conn(&peer);
	/* The injection attack: a command smuggled in the same packet as
	 * STARTTLS must never run inside the TLS session. */
	struct tls_client t = {.fd = peer, .first = "STARTTLS\r\nINJECTED\r\n"};
	/* Written before the server reads, so both lines arrive together. */
	write_all(peer, t.first, strlen(t.first));
	t.first = "";
	struct buf line;
	buf_init(&line, 100);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "STARTTLS");
	CHECK_INT(conn_pending_input(c), 10);
	pthread_create(&t.thread, NULL, tls_client_main, &t);
	conn_write_str(c, "220 go ahead\r\n");
	size_t discarded = 0;
	CHECK_INT(conn_starttls(c, sctx, &discarded), CONN_OK);
	CHECK_INT(discarded, 10);
	CHECK(conn_is_tls(c));
	CHECK(strncmp(conn_tls_description(c), "TLSv1.", 6) == 0);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "HELLO");
	conn_printf(c, "ECHO %s\r\n", buf_cstr(&line));
	CHECK_INT(conn_flush(c), CONN_OK);
	pthread_join(t.thread, NULL);
	CHECK(t.ok);
	CHECK_STR(t.reply1, "220 go ahead\r\n");
	CHECK_STR(t.reply2, "ECHO HELLO\r\n");
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_EOF);
	buf_free(&line);
	conn_free(&c);
	close(peer);
	SSL_CTX_free(sctx);
}

UNIT_TEST(conn_tls_handshake_garbage_fails_cleanly)
{
	const char *cert, *key, *err = NULL;
	test_cert(&cert, &key);
	SSL_CTX *sctx = tls_server_ctx_new(cert, key, &err);
	int peer;
	struct conn *c = pair_conn(&peer);
	write_all(peer, "GET / HTTP/1.0\r\n\r\n", 18);
	CHECK_INT(conn_tls_accept(c, sctx, 1000), CONN_ERROR);
	CHECK(!conn_is_tls(c) || conn_write_str(c, "x") == CONN_ERROR);
	conn_free(&c);
	close(peer);
	SSL_CTX_free(sctx);
}

UNIT_TEST(tls_selfsigned_generated_once)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/gen", test_dir());
	char *c1, *k1, *c2, *k2;
	const char *err = NULL;
	CHECK_INT(tls_selfsigned_ensure(dir, "host,DNS:evil.test", &c1, &k1, &err), 0);
	struct stat st;
	CHECK(stat(k1, &st) == 0 && (st.st_mode & 0777) == 0600);
	size_t l1, l2;
	char *pem1 = unit_read_file(c1, &l1);
	CHECK_INT(tls_selfsigned_ensure(dir, "host,DNS:evil.test", &c2, &k2, &err), 0);
	char *pem2 = unit_read_file(c2, &l2);
	CHECK(pem1 != NULL && pem2 != NULL && l1 == l2 && memcmp(pem1, pem2, l1) == 0);
	SSL_CTX *ctx = tls_server_ctx_new(c1, k1, &err);
	CHECK(ctx != NULL);
	/* The SAN is one DNS name holding the odd text, not two names. */
	X509 *x = ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;
	GENERAL_NAMES *san =
	    x != NULL ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
	CHECK(san != NULL && sk_GENERAL_NAME_num(san) == 1);
	GENERAL_NAMES_free(san);
	SSL_CTX_free(ctx);
	free(pem1);
	free(pem2);
	free(c1);
	free(k1);
	free(c2);
	free(k2);
}

UNIT_TEST(tls_setup_and_failed_reload_keeps_old)
{
	struct config *cfg = config_defaults();
	char *e = NULL;
	CHECK_INT(config_set(cfg, "server", "data_dir", test_dir(), &e), 0);
	CHECK_INT(config_set(cfg, "server", "hostname", "mx.example.test", &e), 0);
	const char *err = NULL;
	CHECK_INT(tls_server_setup(cfg, &err), 0);
	SSL_CTX *a = tls_server_ctx_ref();
	CHECK(a != NULL);
	CHECK_INT(config_set(cfg, "tls", "cert", "/nonexistent/cert.pem", &e), 0);
	CHECK_INT(tls_server_reload(cfg, &err), -1);
	CHECK(err != NULL && strstr(err, "/nonexistent/cert.pem") != NULL);
	SSL_CTX *b = tls_server_ctx_ref();
	CHECK(a == b);
	tls_ctx_unref(&b);
	/* A good reload swaps; the old context stays valid for its holder. */
	CHECK_INT(config_set(cfg, "tls", "cert", "", &e), 0);
	CHECK_INT(tls_server_reload(cfg, &err), 0);
	b = tls_server_ctx_ref();
	CHECK(b != NULL && a != b);
	CHECK(SSL_CTX_get0_certificate(a) != NULL);
	tls_ctx_unref(&a);
	tls_ctx_unref(&b);
	CHECK(a == NULL);
	config_free(&cfg);
}

/* --- The server runtime. --- */

static atomic_int echo_slow_done;

/* Greets, echoes lines, says BYE when the server stops. */
static void echo_session(struct conn *c, void *ctx)
{
	(void)ctx;
	struct buf line;
	buf_init(&line, 200);
	conn_printf(c, "* OK echo%s\r\n", conn_is_tls(c) ? " tls" : "");
	for (;;) {
		enum conn_status st = conn_read_line(c, &line, 200, CONN_NEW_REQUEST, NULL);
		if (st == CONN_STOPPING) {
			conn_write_str(c, "* BYE stopping\r\n");
			break;
		}
		if (st != CONN_OK || strcmp(buf_cstr(&line), "QUIT") == 0)
			break;
		if (strcmp(buf_cstr(&line), "SLOW") == 0) {
			sleep_ms(400); /* a command in flight when the stop comes */
			atomic_fetch_add(&echo_slow_done, 1);
		}
		conn_printf(c, "%s %s\r\n", conn_is_loopback(c) ? "lo" : "remote", buf_cstr(&line));
	}
	buf_free(&line);
}

static const struct server_protocol echo_protos[] = {
    {"echo", CFG_LISTEN_IMAP, false, echo_session, "* BYE busy\r\n", NULL},
    {"echos", CFG_LISTEN_IMAPS, true, echo_session, "* BYE busy\r\n", NULL},
};

struct server_thread {
	struct config *cfg;
	sem_t ready;
	int ret;
	const char *err;
	char errbuf[512]; /* err points here: server_run's text is thread-local */
	pthread_t thread;
};

static int echo_after_bind(void *arg)
{
	sem_post(&((struct server_thread *)arg)->ready);
	return 0;
}

static void *server_thread_main(void *arg)
{
	struct server_thread *s = arg;
	struct server_hooks hooks = {.after_bind = echo_after_bind, .arg = s, .grace_ms = 3000};
	const char *err = NULL;
	s->ret = server_run(s->cfg, echo_protos, 2, &hooks, &err);
	snprintf(s->errbuf, sizeof(s->errbuf), "%s", err != NULL ? err : "");
	s->err = s->errbuf;
	sem_post(&s->ready); /* also on failure, so the test never hangs */
	return NULL;
}

/* A port that was free a moment ago. */
static unsigned free_port(int family)
{
	int fd = socket(family, SOCK_STREAM, 0);
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len =
	    family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		abort();
	close(fd);
	return family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
	                         : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static struct config *server_test_config(unsigned per_ip)
{
	struct config *cfg = config_defaults();
	char v[128], *e = NULL;
	config_set(cfg, "server", "data_dir", test_dir(), &e);
	snprintf(v, sizeof(v), "127.0.0.1:%u,[::1]:%u", free_port(AF_INET), free_port(AF_INET6));
	config_set(cfg, "listen", "imap", v, &e);
	snprintf(v, sizeof(v), "127.0.0.1:%u", free_port(AF_INET));
	config_set(cfg, "listen", "imaps", v, &e);
	snprintf(v, sizeof(v), "%u", per_ip);
	config_set(cfg, "limits", "connections_per_ip", v, &e);
	return cfg;
}

static int server_start(struct server_thread *s, struct config *cfg)
{
	s->cfg = cfg;
	s->ret = -2;
	sem_init(&s->ready, 0, 0);
	pthread_create(&s->thread, NULL, server_thread_main, s);
	sem_wait(&s->ready);
	return s->ret == -2 ? 0 : -1;
}

static int server_finish(struct server_thread *s)
{
	server_request_stop();
	pthread_join(s->thread, NULL);
	sem_destroy(&s->ready);
	config_free(&s->cfg);
	return s->ret;
}

static int tcp_connect(int family, unsigned port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void wait_open(const char *proto, uint64_t n)
{
	for (int i = 0; i < 200 && server_stats_open(proto) != n; i++)
		sleep_ms(10);
}

UNIT_TEST(server_echo_plain_v4_v6_and_tls)
{
	struct server_thread s;
	if (server_start(&s, server_test_config(50)) < 0) {
		unit_fail(__FILE__, __LINE__, "server_run failed: %s", s.err);
		return;
	}
	char l[256];
	unsigned p4 = server_listener_port("echo", 0), p6 = server_listener_port("echo", 1);
	CHECK(p4 != 0 && p6 != 0);
	int fds[2] = {tcp_connect(AF_INET, p4), tcp_connect(AF_INET6, p6)};
	for (int i = 0; i < 2; i++) {
		CHECK(fds[i] >= 0);
		read_plain_line(fds[i], l, sizeof(l));
		CHECK_STR(l, "* OK echo\r\n");
		write_all(fds[i], "ping\r\nQUIT\r\n", 12);
		read_plain_line(fds[i], l, sizeof(l));
		CHECK_STR(l, "lo ping\r\n");
		read_plain_line(fds[i], l, sizeof(l)); /* then closed */
		CHECK_STR(l, "");
		close(fds[i]);
	}
	/* Implicit TLS. */
	int fd = tcp_connect(AF_INET, server_listener_port("echos", 0));
	const char *err;
	SSL_CTX *ctx = tls_client_ctx_new(false, &err);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	CHECK_INT(SSL_connect(ssl), 1);
	CHECK_INT(ssl_read_line(ssl, l, sizeof(l)), 0);
	CHECK_STR(l, "* OK echo tls\r\n");
	CHECK_INT(SSL_write(ssl, "tls ping\r\n", 10), 10);
	CHECK_INT(ssl_read_line(ssl, l, sizeof(l)), 0);
	CHECK_STR(l, "lo tls ping\r\n");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	CHECK_INT(server_finish(&s), 0);
	struct server_stats st;
	server_stats_get(&st);
	CHECK(st.accepted >= 3);
	CHECK_INT(st.open, 0);
}

UNIT_TEST(server_per_ip_limit_answers_busy)
{
	struct server_thread s;
	if (server_start(&s, server_test_config(2)) < 0) {
		unit_fail(__FILE__, __LINE__, "server_run failed: %s", s.err);
		return;
	}
	struct server_stats before;
	server_stats_get(&before);
	unsigned port = server_listener_port("echo", 0);
	char l[256];
	int a = tcp_connect(AF_INET, port), b = tcp_connect(AF_INET, port);
	read_plain_line(a, l, sizeof(l));
	CHECK_STR(l, "* OK echo\r\n");
	read_plain_line(b, l, sizeof(l));
	CHECK_STR(l, "* OK echo\r\n");
	wait_open("echo", 2);
	CHECK_INT(server_stats_open("echo"), 2);
	int c = tcp_connect(AF_INET, port);
	read_plain_line(c, l, sizeof(l));
	CHECK_STR(l, "* BYE busy\r\n");
	read_plain_line(c, l, sizeof(l));
	CHECK_STR(l, ""); /* closed */
	close(c);
	struct server_stats after;
	server_stats_get(&after);
	CHECK_INT(after.rejected_limits - before.rejected_limits, 1);
	/* Once one leaves, a new client is served again. */
	write_all(a, "QUIT\r\n", 6);
	close(a);
	wait_open("echo", 1);
	c = tcp_connect(AF_INET, port);
	read_plain_line(c, l, sizeof(l));
	CHECK_STR(l, "* OK echo\r\n");
	close(c);
	close(b);
	CHECK_INT(server_finish(&s), 0);
}

UNIT_TEST(server_stop_lets_sessions_finish)
{
	struct server_thread s;
	if (server_start(&s, server_test_config(50)) < 0) {
		unit_fail(__FILE__, __LINE__, "server_run failed: %s", s.err);
		return;
	}
	unsigned port = server_listener_port("echo", 0);
	char l[256];
	int idle = tcp_connect(AF_INET, port), busy = tcp_connect(AF_INET, port);
	int tls = tcp_connect(AF_INET, server_listener_port("echos", 0));
	const char *err;
	SSL_CTX *ctx = tls_client_ctx_new(false, &err);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, tls);
	CHECK_INT(SSL_connect(ssl), 1);
	CHECK_INT(ssl_read_line(ssl, l, sizeof(l)), 0);
	read_plain_line(idle, l, sizeof(l));
	read_plain_line(busy, l, sizeof(l));
	atomic_store(&echo_slow_done, 0);
	write_all(busy, "SLOW\r\n", 6);
	sleep_ms(100); /* the SLOW command is in flight */
	uint64_t start = now_ms();
	CHECK_INT(server_finish(&s), 0);
	CHECK(now_ms() - start < 2500); /* well inside the 3 s grace */
	CHECK_INT(atomic_load(&echo_slow_done), 1);
	read_plain_line(busy, l, sizeof(l));
	CHECK_STR(l, "lo SLOW\r\n");
	read_plain_line(busy, l, sizeof(l));
	CHECK_STR(l, "* BYE stopping\r\n");
	read_plain_line(idle, l, sizeof(l));
	CHECK_STR(l, "* BYE stopping\r\n");
	CHECK_INT(ssl_read_line(ssl, l, sizeof(l)), 0);
	CHECK_STR(l, "* BYE stopping\r\n");
	CHECK(server_stopping());
	struct server_stats st;
	server_stats_get(&st);
	CHECK_INT(st.open, 0);
	/* Listeners are closed. */
	CHECK(tcp_connect(AF_INET, port) < 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(tls);
	close(idle);
	close(busy);
}

UNIT_TEST(server_bind_failure_names_listener)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0);
	socklen_t len = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	struct config *cfg = server_test_config(50);
	char v[64], *e = NULL;
	snprintf(v, sizeof(v), "127.0.0.1:%u", ntohs(sa.sin_port));
	config_set(cfg, "listen", "imaps", v, &e);
	struct server_thread s;
	CHECK_INT(server_start(&s, cfg), -1);
	pthread_join(s.thread, NULL);
	CHECK_INT(s.ret, -1);
	char want[128];
	snprintf(want, sizeof(want),
	         "listener echos: cannot bind 127.0.0.1:%u: ", ntohs(sa.sin_port));
	CHECK(s.err != NULL && strstr(s.err, want) == s.err);
	CHECK(s.err != NULL && strstr(s.err, "in use") != NULL);
	sem_destroy(&s.ready);
	config_free(&cfg);
	close(fd);
}

/* --- Stop, signals, limits, privileges. --- */

struct reader {
	struct conn *c;
	enum conn_status st;
	char line[64];
	uint64_t took_ms;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct buf line;
	buf_init(&line, 60);
	uint64_t start = now_ms();
	r->st = conn_read_line(r->c, &line, 60, CONN_NEW_REQUEST, NULL);
	r->took_ms = now_ms() - start;
	snprintf(r->line, sizeof(r->line), "%s", buf_cstr(&line));
	buf_free(&line);
	return NULL;
}

UNIT_TEST(conn_stopping_wakes_idle_but_not_busy_reads)
{
	int p1, p2;
	struct conn *idle = pair_conn(&p1), *busy = pair_conn(&p2);
	write_all(p2, "abc", 3); /* a command half received */
	struct reader ri = {.c = idle}, rb = {.c = busy};
	pthread_create(&ri.thread, NULL, reader_main, &ri);
	pthread_create(&rb.thread, NULL, reader_main, &rb);
	sleep_ms(100);
	conn_set_stopping(true);
	pthread_join(ri.thread, NULL);
	CHECK_INT(ri.st, CONN_STOPPING);
	CHECK(ri.took_ms < 1000);
	sleep_ms(100);
	write_all(p2, "def\r\n", 5); /* the command in flight completes */
	pthread_join(rb.thread, NULL);
	CHECK_INT(rb.st, CONN_OK);
	CHECK_STR(rb.line, "abcdef");
	/* While stopping, a new request is refused without waiting, and the
	 * conn can still say goodbye. */
	struct buf line;
	buf_init(&line, 60);
	CHECK_INT(conn_read_line(busy, &line, 60, CONN_NEW_REQUEST, NULL), CONN_STOPPING);
	CHECK_INT(conn_wait_input(busy, 1000, -1, NULL), CONN_STOPPING);
	CHECK_INT(conn_write_str(busy, "BYE\r\n"), CONN_OK);
	CHECK_INT(conn_flush(busy), CONN_OK);
	conn_set_stopping(false);
	char l[16];
	read_plain_line(p2, l, sizeof(l));
	CHECK_STR(l, "BYE\r\n");
	buf_free(&line);
	conn_free(&idle);
	conn_free(&busy);
	close(p1);
	close(p2);
}

struct tls_peer {
	struct conn *c;
	SSL_CTX *ctx;
	enum conn_status st;
	pthread_t thread;
};

static void *tls_peer_accept(void *arg)
{
	struct tls_peer *t = arg;
	t->st = conn_tls_accept(t->c, t->ctx, 3000);
	if (t->st == CONN_OK) {
		conn_write_str(t->c, "220 hi\r\n");
		t->st = conn_flush(t->c);
	}
	return NULL;
}

UNIT_TEST(conn_tls_client_side)
{
	const char *cert, *key, *err = NULL;
	test_cert(&cert, &key);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct tls_peer srvside = {.c = conn_new(sv[0], "srv"),
	                           .ctx = tls_server_ctx_new(cert, key, &err)};
	pthread_create(&srvside.thread, NULL, tls_peer_accept, &srvside);
	struct conn *cli = conn_new(sv[1], "out");
	SSL_CTX *cctx = tls_client_ctx_new(false, &err);
	CHECK_INT(conn_tls_connect(cli, cctx, "mail.example.test", 3000), CONN_OK);
	struct buf line;
	buf_init(&line, 60);
	CHECK_INT(conn_read_line(cli, &line, 60, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "220 hi");
	pthread_join(srvside.thread, NULL);
	CHECK_INT(srvside.st, CONN_OK);
	/* A verifying client refuses the self-signed certificate. */
	conn_free(&cli);
	conn_free(&srvside.c);
	SSL_CTX_free(cctx);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	srvside.c = conn_new(sv[0], "srv");
	pthread_create(&srvside.thread, NULL, tls_peer_accept, &srvside);
	cli = conn_new(sv[1], "out");
	cctx = tls_client_ctx_new(true, &err);
	CHECK(cctx != NULL);
	CHECK(conn_tls_connect(cli, cctx, "mail.example.test", 3000) != CONN_OK);
	conn_free(&cli); /* the server side sees the close */
	pthread_join(srvside.thread, NULL);
	CHECK(srvside.st != CONN_OK);
	conn_free(&srvside.c);
	SSL_CTX_free(cctx);
	SSL_CTX_free(srvside.ctx);
	buf_free(&line);
}

static atomic_int reload_calls;

static void count_reload(void *arg)
{
	(void)arg;
	atomic_fetch_add(&reload_calls, 1);
}

struct signal_server {
	struct config *cfg;
	sem_t ready;
	int ret;
	pthread_t thread;
};

static int signal_after_bind(void *arg)
{
	sem_post(&((struct signal_server *)arg)->ready);
	return 0;
}

static void *signal_server_main(void *arg)
{
	struct signal_server *s = arg;
	struct server_hooks hooks = {
	    .after_bind = signal_after_bind, .reload = count_reload, .arg = s, .grace_ms = 2000};
	const char *err;
	s->ret = server_run(s->cfg, echo_protos, 2, &hooks, &err);
	return NULL;
}

UNIT_TEST(server_signals_reload_and_stop)
{
	struct signal_server s = {.cfg = server_test_config(50), .ret = -2};
	sem_init(&s.ready, 0, 0);
	pthread_create(&s.thread, NULL, signal_server_main, &s);
	sem_wait(&s.ready);
	SSL_CTX *before = tls_server_ctx_ref();
	atomic_store(&reload_calls, 0);
	kill(getpid(), SIGHUP);
	for (int i = 0; i < 200 && atomic_load(&reload_calls) == 0; i++)
		sleep_ms(10);
	sleep_ms(100); /* the TLS reload follows the hook */
	CHECK_INT(atomic_load(&reload_calls), 1);
	SSL_CTX *after = tls_server_ctx_ref();
	CHECK(before != NULL && after != NULL && before != after);
	tls_ctx_unref(&before);
	tls_ctx_unref(&after);
	int fd = tcp_connect(AF_INET, server_listener_port("echo", 0));
	char l[64];
	read_plain_line(fd, l, sizeof(l));
	CHECK_STR(l, "* OK echo\r\n");
	kill(getpid(), SIGTERM);
	pthread_join(s.thread, NULL);
	CHECK_INT(s.ret, 0);
	read_plain_line(fd, l, sizeof(l));
	CHECK_STR(l, "* BYE stopping\r\n");
	close(fd);
	sem_destroy(&s.ready);
	config_free(&s.cfg);
}

UNIT_TEST(server_total_limit_answers_busy)
{
	struct config *cfg = server_test_config(50);
	char *e = NULL;
	CHECK_INT(config_set(cfg, "limits", "connections", "1", &e), 0);
	struct server_thread s;
	if (server_start(&s, cfg) < 0) {
		unit_fail(__FILE__, __LINE__, "server_run failed: %s", s.err);
		return;
	}
	char l[64];
	int a = tcp_connect(AF_INET6, server_listener_port("echo", 1));
	read_plain_line(a, l, sizeof(l));
	CHECK_STR(l, "* OK echo\r\n");
	int b = tcp_connect(AF_INET, server_listener_port("echo", 0));
	read_plain_line(b, l, sizeof(l));
	CHECK_STR(l, "* BYE busy\r\n");
	/* Implicit TLS gets no plaintext reply, only the close. */
	int c = tcp_connect(AF_INET, server_listener_port("echos", 0));
	read_plain_line(c, l, sizeof(l));
	CHECK_STR(l, "");
	close(a);
	close(b);
	close(c);
	CHECK_INT(server_finish(&s), 0);
}

UNIT_TEST(privdrop_in_child)
{
	const char *err = NULL;
	uid_t uid;
	gid_t gid;
	CHECK_INT(privdrop_lookup("no-such-user-roost", &uid, &gid, &err), -1);
	CHECK(err != NULL && strstr(err, "does not exist") != NULL);
	if (geteuid() != 0) {
		CHECK_INT(privdrop_to_user("no-such-user-roost", &err), 0); /* no-op */
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Only the child gives up root; the test process keeps it. */
		if (privdrop_to_user("nobody", &err) < 0)
			_exit(2);
		_exit(setuid(0) == 0 || geteuid() == 0 ? 3 : 0);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pid = fork();
	if (pid == 0)
		_exit(privdrop_to_user("no-such-user-roost", &err) == -1 ? 0 : 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
