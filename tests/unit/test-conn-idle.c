/* Tests of what an idle core/conn keeps: after a request that grew the
 * input and output buffers (and, over TLS, OpenSSL's record buffers), a
 * conn waiting for the next request gives them back, and nothing already
 * received is lost on the way. Memory is read from the allocator in use
 * (glibc's mallinfo2, or ASan's own counters in a sanitizer build). */
#include "unit.h"

#include "conn-pair.h"

#include "buf.h"
#include "conn.h"
#include "tls.h"

#include <ftw.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
/* From ASan's allocator interface (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define BIG 200000 /* bytes of the large request and of the large reply */

static size_t mem_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

static char *big_line(void)
{
	char *p = malloc(BIG + 2);
	if (p == NULL)
		abort();
	memset(p, 'x', BIG);
	memcpy(p + BIG, "\r\n", 2);
	return p;
}

/* Reads and throws away n bytes from a blocking fd. */
static void *drain_main(void *arg)
{
	int fd = *(int *)arg;
	char tmp[8192];
	size_t left = BIG + 2;
	while (left > 0) {
		ssize_t r = read(fd, tmp, left < sizeof(tmp) ? left : sizeof(tmp));
		if (r <= 0)
			break;
		left -= (size_t)r;
	}
	return NULL;
}

/* Serves one large request and its large reply, then waits idle. */
static void serve_big(struct conn *c, struct buf *line)
{
	CHECK_INT(conn_read_line(c, line, BIG + 10, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_INT(line->len, BIG);
	char *reply = big_line();
	CHECK_INT(conn_write(c, reply, BIG + 2), CONN_OK);
	free(reply);
	/* Flushes, finds nothing to read, and times out without breaking. */
	CHECK_INT(conn_wait_input(c, 100, -1, NULL), CONN_TIMEOUT);
}

UNIT_TEST(conn_idle_gives_buffers_back)
{
	int peer;
	struct conn *c = pair_conn(&peer);
	struct buf line;
	buf_init(&line, BIG + 10);
	write_all(peer, "hello\r\n", 7);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_INT(conn_wait_input(c, 50, -1, NULL), CONN_TIMEOUT);
	buf_reserve(&line, BIG + 2); /* the caller's buffer is not the conn's */
	char *req = big_line();
	size_t before = mem_in_use();

	pthread_t drain;
	pthread_create(&drain, NULL, drain_main, &peer);
	write_all(peer, req, BIG + 2);
	serve_big(c, &line);
	pthread_join(drain, NULL);
	size_t idle = mem_in_use();
	/* Without the release, the conn would hold about 256 KiB of input and
	 * 256 KiB of output buffer here. */
	CHECK(idle < before + 4096);

	/* Pipelined input survives an idle wait, and the buffers grow again. */
	write_all(peer, "one\r\ntwo\r\n", 10);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "one");
	CHECK_INT(conn_wait_input(c, 0, -1, NULL), CONN_OK);
	CHECK_INT(conn_pending_input(c), 5);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "two");
	pthread_create(&drain, NULL, drain_main, &peer);
	write_all(peer, req, BIG + 2);
	serve_big(c, &line);
	pthread_join(drain, NULL);
	close(peer);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_EOF);
	free(req);
	buf_free(&line);
	conn_free(&c);
}

/* --- The same over TLS. --- */

static char tmpdir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

__attribute__((destructor)) static void tmpdir_cleanup(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static SSL_CTX *server_ctx(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/roost-test-conn-idle-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		abort();
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/tls", tmpdir);
	char *cert, *key;
	const char *err = NULL;
	if (tls_selfsigned_ensure(dir, "mail.example.test", &cert, &key, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	SSL_CTX *ctx = tls_server_ctx_new(cert, key, &err);
	free(cert);
	free(key);
	return ctx;
}

/* The client: a line, then (when told) the large request, then the end. */
struct tls_peer {
	int fd;
	sem_t step_done, go;
	bool ok;
	pthread_t thread;
};

/* The client context allows partial writes: loop. */
static bool ssl_write_all(SSL *ssl, const char *p, size_t n)
{
	while (n > 0) {
		size_t w;
		if (SSL_write_ex(ssl, p, n, &w) != 1)
			return false;
		p += w;
		n -= w;
	}
	return true;
}

static bool ssl_skip(SSL *ssl, size_t n)
{
	char tmp[8192];
	while (n > 0) {
		size_t r;
		if (SSL_read_ex(ssl, tmp, n < sizeof(tmp) ? n : sizeof(tmp), &r) != 1)
			return false;
		n -= r;
	}
	return true;
}

static void *tls_peer_main(void *arg)
{
	struct tls_peer *t = arg;
	const char *err;
	SSL_CTX *ctx = tls_client_ctx_new(false, &err);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, t->fd);
	char *req = big_line();
	bool ok = SSL_connect(ssl) == 1 && ssl_write_all(ssl, "hello\r\n", 7) && ssl_skip(ssl, 4);
	sem_post(&t->step_done);
	sem_wait(&t->go);
	ok = ok && ssl_write_all(ssl, req, BIG + 2) && ssl_skip(ssl, BIG + 2);
	sem_post(&t->step_done);
	sem_wait(&t->go);
	t->ok = ok && ssl_write_all(ssl, "end\r\n", 5);
	free(req);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

UNIT_TEST(conn_tls_idle_gives_record_buffers_back)
{
	SSL_CTX *sctx = server_ctx();
	CHECK(sctx != NULL);
	int peer;
	struct conn *c = pair_conn(&peer);
	struct tls_peer t = {.fd = peer};
	sem_init(&t.step_done, 0, 0);
	sem_init(&t.go, 0, 0);
	pthread_create(&t.thread, NULL, tls_peer_main, &t);
	struct buf line;
	buf_init(&line, BIG + 10);
	buf_reserve(&line, BIG + 2);
	CHECK_INT(conn_tls_accept(c, sctx, 5000), CONN_OK);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "hello");
	conn_write_str(c, "ok\r\n");
	CHECK_INT(conn_wait_input(c, 100, -1, NULL), CONN_TIMEOUT);
	sem_wait(&t.step_done); /* the client waits too: its memory holds still */
	size_t before = mem_in_use();
	sem_post(&t.go);
	serve_big(c, &line);
	sem_wait(&t.step_done);
	size_t idle = mem_in_use();
	/* Without the release, the conn's buffers; OpenSSL's record buffers
	 * (SSL_MODE_RELEASE_BUFFERS) were already given back at "before", and
	 * reads and writes go on across both releases. */
	CHECK(idle < before + 4096);
	sem_post(&t.go);
	CHECK_INT(conn_read_line(c, &line, 100, CONN_NEW_REQUEST, NULL), CONN_OK);
	CHECK_STR(buf_cstr(&line), "end");
	pthread_join(t.thread, NULL);
	CHECK(t.ok);
	buf_free(&line);
	conn_free(&c);
	close(peer);
	sem_destroy(&t.step_done);
	sem_destroy(&t.go);
	SSL_CTX_free(sctx);
	tls_server_cleanup();
}
