#include "unit.h"

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "conn.h"
#include "http.h"
#include "server.h"
#include "strnum.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- The application under test: a small route table. --- */

static int h_healthz(struct http_request *req, struct http_response *resp, void *ctx)
{
	http_response_text(resp, 200, "ok\n");
	return 0;
}

static int h_alias(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_append_str(&b, "{\"id\":");
	http_json_append_string(&b, http_request_param(req, "id"));
	buf_append_str(&b, ",\"alias\":");
	http_json_append_string(&b, http_request_param(req, "alias"));
	const char *q = http_request_query(req, "q");
	buf_append_str(&b, ",\"q\":");
	http_json_append_string(&b, q != NULL ? q : "(none)");
	buf_append_char(&b, '}');
	http_response_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

static int h_echo(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_printf(&b, "len=%zu body=", req->body.len);
	buf_append(&b, req->body.data != NULL ? req->body.data : "", req->body.len);
	http_response_set_status(resp, 201);
	http_response_body_buf(resp, &b);
	return 0;
}

static const char ui_bytes[] = "<!doctype html><title>ui</title>";

static int h_ui(struct http_request *req, struct http_response *resp, void *ctx)
{
	if (strcmp(http_request_param(req, "*"), "app.html") == 0) {
		http_response_set_type(resp, "text/html; charset=utf-8");
		http_response_add_header(resp, "Cache-Control", "public, max-age=60");
		http_response_body_static(resp, ui_bytes, sizeof(ui_bytes) - 1);
		return 0;
	}
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "rest=%s", http_request_param(req, "*"));
	http_response_text(resp, 200, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

static int h_fail(struct http_request *req, struct http_response *resp, void *ctx)
{
	http_response_text(resp, 200, "never sent");
	return -1;
}

static int h_peer(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "peer=%s tls=%d method=%s", req->peer_ip, req->tls, req->method);
	http_response_text(resp, 200, buf_cstr(&b));
	buf_free(&b);
	/* Refused: CR/LF would split the header. */
	if (http_response_add_header(resp, "X-Bad", "a\r\nSet-Cookie: x=1") != -1 ||
	    http_response_add_header(resp, "Bad Name", "v") != -1)
		return -1;
	return 0;
}

static int h_slow(struct http_request *req, struct http_response *resp, void *ctx)
{
	poll(NULL, 0, 400); /* a request in flight when the stop comes */
	http_response_text(resp, 200, "slow done\n");
	return 0;
}

/* 1 MiB of a repeating pattern, to push data through the bridge. */
static int h_big(struct http_request *req, struct http_response *resp, void *ctx)
{
	for (size_t i = 0; i < 1024 * 1024; i++)
		buf_append_char(&resp->body, (char)('a' + i % 26));
	return 0;
}

#define APP_NEEDS_AUTH HTTP_ROUTE_APP(0)

static int test_guard(struct http_request *req, struct http_response *resp, void *ctx)
{
	if (!(req->route->flags & APP_NEEDS_AUTH))
		return 0;
	const char *auth = http_request_header(req, "x-test-auth");
	if (auth != NULL && strcmp(auth, "yes") == 0)
		return 0;
	http_response_error(resp, 401, "login required");
	return 1;
}

static const struct http_route test_routes[] = {
    {"GET", "/healthz", h_healthz, HTTP_ROUTE_NO_BODY},
    {"GET", "/api/v1/accounts/{id}/aliases/{alias}", h_alias, 0},
    {"POST", "/api/v1/echo", h_echo, 0},
    {"PUT", "/api/v1/echo", h_echo, HTTP_ROUTE_LARGE_BODY},
    {"GET", "/ui/*", h_ui, 0},
    {"GET", "/fail", h_fail, 0},
    {"*", "/peer", h_peer, 0},
    {"GET", "/admin", h_healthz, APP_NEEDS_AUTH},
    {"GET", "/slow", h_slow, 0},
    {"GET", "/big", h_big, 0},
};
#define NROUTES (sizeof(test_routes) / sizeof(test_routes[0]))

static struct http_options test_opts(void)
{
	struct config *cfg = config_defaults();
	struct http_options o;
	http_options_from_config(cfg, &o);
	config_free(&cfg);
	o.max_body = 1024;
	o.max_body_large = (size_t)2 * 1024 * 1024;
	o.header_memory = 8192;
	o.guard = test_guard;
	o.redirect_host = "mail.example.test";
	return o;
}

static struct http_server *test_server(void)
{
	static struct http_server *srv;
	if (srv == NULL) {
		struct http_options o = test_opts();
		const char *err = NULL;
		srv = http_server_new(test_routes, NROUTES, &o, &err);
		if (srv == NULL) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
	}
	return srv;
}

/* --- Temp dir and certificate, for TLS. --- */

static char tmpdir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static const char *test_dir(void)
{
	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/roost-test-http-XXXXXX");
		if (mkdtemp(tmpdir) == NULL)
			abort();
	}
	return tmpdir;
}

/* A client writing to a connection the server has closed must see EPIPE,
 * not die (SSL_write has no MSG_NOSIGNAL). */
__attribute__((constructor)) static void test_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

__attribute__((destructor)) static void test_dir_cleanup(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tls_server_cleanup();
}

static SSL_CTX *test_server_tls_ctx(void)
{
	static SSL_CTX *ctx;
	if (ctx == NULL) {
		char dir[256], *c, *k;
		const char *err = NULL;
		snprintf(dir, sizeof(dir), "%s/tls", test_dir());
		if (tls_selfsigned_ensure(dir, "mail.example.test", &c, &k, &err) < 0 ||
		    (ctx = tls_server_ctx_new(c, k, &err)) == NULL) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		free(c);
		free(k);
	}
	return ctx;
}

/* --- A client on one end of a socketpair, the bridge on the other. --- */

struct bridge_run {
	struct conn *c;
	struct http_server *srv;
	bool tls;
	pthread_t thread;
};

static void *bridge_main(void *arg)
{
	struct bridge_run *b = arg;
	if (!b->tls || conn_tls_accept(b->c, test_server_tls_ctx(), 5000) == CONN_OK)
		http_session(b->c, b->srv);
	conn_flush(b->c);
	conn_free(&b->c);
	return NULL;
}

/* The client side: plain fd, or TLS over it. */
struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int client_tls_start(struct client *cl)
{
	cl->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_NONE, NULL);
	cl->ssl = SSL_new(cl->ctx);
	SSL_set_fd(cl->ssl, cl->fd);
	return SSL_connect(cl->ssl) == 1 ? 0 : -1;
}

static void client_close(struct client *cl)
{
	if (cl->ssl != NULL)
		SSL_free(cl->ssl);
	if (cl->ctx != NULL)
		SSL_CTX_free(cl->ctx);
	close(cl->fd);
}

/* Sends everything it can; stops quietly when the server has closed. */
static void client_send(struct client *cl, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (cl->ssl != NULL) {
			int r = SSL_write(cl->ssl, p, n > 16384 ? 16384 : (int)n);
			w = r > 0 ? r : -1;
		} else {
			w = send(cl->fd, p, n, MSG_NOSIGNAL);
		}
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Reads until the server closes (or 5 s of silence). */
static void client_read_all(struct client *cl, struct buf *out)
{
	char data[8192];
	for (;;) {
		if (cl->ssl == NULL || SSL_pending(cl->ssl) == 0) {
			struct pollfd p = {.fd = cl->fd, .events = POLLIN};
			if (poll(&p, 1, 5000) <= 0)
				return;
		}
		ssize_t n = cl->ssl != NULL ? SSL_read(cl->ssl, data, sizeof(data))
		                            : recv(cl->fd, data, sizeof(data), 0);
		if (n <= 0)
			return;
		buf_append(out, data, (size_t)n);
	}
}

/* One connection through the bridge: sends req (then half-closes if asked),
 * collects everything the server says until it closes. */
static void exchange(const char *req, size_t len, bool tls, bool half_close,
                     const struct conn_limits *limits, struct buf *out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct bridge_run b = {.c = conn_new(sv[0], "https"), .srv = test_server(), .tls = tls};
	if (limits != NULL)
		conn_set_limits(b.c, limits);
	pthread_create(&b.thread, NULL, bridge_main, &b);
	struct client cl = {.fd = sv[1]};
	buf_init(out, (size_t)4 * 1024 * 1024);
	if (!tls || client_tls_start(&cl) == 0) {
		client_send(&cl, req, len);
		if (half_close)
			shutdown(cl.fd, SHUT_WR);
		client_read_all(&cl, out);
	}
	client_close(&cl);
	pthread_join(b.thread, NULL);
}

static void get(const char *req, struct buf *out)
{
	exchange(req, strlen(req), false, false, NULL, out);
}

/* --- Looking at responses. --- */

static unsigned resp_status(const struct buf *r)
{
	uint64_t st = 0;
	if (r->len < 12 || strncmp(r->data, "HTTP/1.1 ", 9) != 0 ||
	    mem_to_u64(r->data + 9, 3, 999, &st) < 0)
		return 0;
	return (unsigned)st;
}

/* Value of header name in the first response, in static storage; NULL if absent. */
static const char *resp_header(const struct buf *r, const char *name)
{
	static char value[1024];
	const char *end = r->data != NULL ? strstr(r->data, "\r\n\r\n") : NULL;
	size_t nl = strlen(name);
	for (const char *p = r->data; end != NULL && p != NULL && p < end;) {
		p = strstr(p, "\r\n");
		if (p == NULL || p >= end)
			break;
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1 + (p[nl + 1] == ' ');
			size_t vl = strcspn(v, "\r");
			snprintf(value, sizeof(value), "%.*s", (int)vl, v);
			return value;
		}
	}
	return NULL;
}

static const char *resp_body(const struct buf *r)
{
	const char *p = r->data != NULL ? strstr(r->data, "\r\n\r\n") : NULL;
	return p != NULL ? p + 4 : "";
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void check_security_headers(const struct buf *r, bool tls, int line)
{
	const char *v;
	if ((v = resp_header(r, "Content-Security-Policy")) == NULL || strcmp(v, HTTP_CSP) != 0)
		unit_fail(__FILE__, line, "CSP missing or wrong");
	if ((v = resp_header(r, "X-Content-Type-Options")) == NULL || strcmp(v, "nosniff") != 0)
		unit_fail(__FILE__, line, "nosniff missing");
	if ((v = resp_header(r, "Referrer-Policy")) == NULL || strcmp(v, "no-referrer") != 0)
		unit_fail(__FILE__, line, "Referrer-Policy missing");
	if ((v = resp_header(r, "X-Frame-Options")) == NULL || strcmp(v, "DENY") != 0)
		unit_fail(__FILE__, line, "X-Frame-Options missing");
	v = resp_header(r, "Strict-Transport-Security");
	if (tls ? (v == NULL || strcmp(v, HTTP_HSTS) != 0) : v != NULL)
		unit_fail(__FILE__, line, "HSTS %s", tls ? "missing" : "sent without TLS");
}
#define CHECK_SECURITY(r, tls) check_security_headers(r, tls, __LINE__)

/* --- Router, as a table. --- */

struct route_case {
	const char *method, *path;
	enum http_route_result expect;
	const char *pattern;       /* matched row when FOUND */
	const char *param, *value; /* one parameter to check */
	const char *allow;         /* for BAD_METHOD */
};

static const struct route_case route_cases[] = {
    {"GET", "/healthz", HTTP_ROUTE_FOUND, "/healthz", NULL, NULL, NULL},
    {"HEAD", "/healthz", HTTP_ROUTE_FOUND, "/healthz", NULL, NULL, NULL},
    {"POST", "/healthz", HTTP_ROUTE_BAD_METHOD, NULL, NULL, NULL, "GET, HEAD"},
    {"DELETE", "/api/v1/echo", HTTP_ROUTE_BAD_METHOD, NULL, NULL, NULL, "POST, PUT"},
    {"GET", "/healthz/", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL},
    {"GET", "/nope", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL},
    {"GET", "/api/v1/accounts/a%40b.test/aliases/x", HTTP_ROUTE_FOUND,
     "/api/v1/accounts/{id}/aliases/{alias}", "id", "a@b.test", NULL},
    {"GET", "/api/v1/accounts/a%2Fb/aliases/y", HTTP_ROUTE_FOUND,
     "/api/v1/accounts/{id}/aliases/{alias}", "id", "a/b", NULL},
    {"GET", "/api/v1/accounts//aliases/y", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL},
    {"GET", "/api/v1/accounts/x/aliases", HTTP_ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL},
    {"GET", "/ui", HTTP_ROUTE_FOUND, "/ui/*", "*", "", NULL},
    {"GET", "/ui/", HTTP_ROUTE_FOUND, "/ui/*", "*", "", NULL},
    {"GET", "/ui/css/a%20b.css", HTTP_ROUTE_FOUND, "/ui/*", "*", "css/a b.css", NULL},
    {"PROPFIND", "/peer", HTTP_ROUTE_FOUND, "/peer", NULL, NULL, NULL},
    {"GET", "/ui/../etc/passwd", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/ui/%2e%2e/x", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/ui/./x", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/a%00b", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/a%zzb", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/a%4", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/a b", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "/a\x7f", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "healthz", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "http://x/healthz", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
    {"GET", "*", HTTP_ROUTE_BAD_PATH, NULL, NULL, NULL, NULL},
};

static const char *match_param(const struct http_match *m, const char *name)
{
	for (size_t i = 0; i < m->nparams; i++)
		if (m->params[i].name_len == strlen(name) &&
		    memcmp(m->params[i].name, name, m->params[i].name_len) == 0)
			return m->params[i].value;
	return NULL;
}

UNIT_TEST(http_route_table)
{
	struct arena *a = arena_new(4096);
	for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		const struct route_case *rc = &route_cases[i];
		struct http_match m;
		enum http_route_result r =
		    http_route_find(test_routes, NROUTES, rc->method, rc->path, a, &m);
		if (r != rc->expect) {
			unit_fail(__FILE__, __LINE__, "%s %s: result %d, expected %d", rc->method,
			          rc->path, r, rc->expect);
			continue;
		}
		if (rc->pattern != NULL)
			CHECK_STR(m.route->pattern, rc->pattern);
		if (rc->param != NULL)
			CHECK_STR(match_param(&m, rc->param), rc->value);
		if (rc->allow != NULL)
			CHECK_STR(m.allow, rc->allow);
		arena_reset(a);
	}
	arena_destroy(&a);
}

UNIT_TEST(http_percent_decode_cases)
{
	struct arena *a = arena_new(1024);
	char *r;
	CHECK_INT(http_percent_decode(a, "a%20b+c", 7, false, &r), 0);
	CHECK_STR(r, "a b+c");
	CHECK_INT(http_percent_decode(a, "a%20b+c", 7, true, &r), 0);
	CHECK_STR(r, "a b c");
	CHECK_INT(http_percent_decode(a, "%C3%A9", 6, false, &r), 0);
	CHECK_STR(r, "\xc3\xa9");
	CHECK_INT(http_percent_decode(a, "%", 1, false, &r), -1);
	CHECK_INT(http_percent_decode(a, "%0", 2, false, &r), -1);
	CHECK_INT(http_percent_decode(a, "%00", 3, false, &r), -1);
	CHECK_INT(http_percent_decode(a, "%g0", 3, false, &r), -1);
	CHECK_INT(http_percent_decode(a, "abc", 2, false, &r), 0);
	CHECK_STR(r, "ab");
	arena_destroy(&a);
}

UNIT_TEST(http_json_string_escaping)
{
	struct buf b;
	buf_init(&b, 1024);
	http_json_append_string(&b, "a\"b\\c\n\x01\xc3\xa9");
	CHECK_STR(buf_cstr(&b), "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"");
	buf_free(&b);
}

/* --- Through the bridge. --- */

UNIT_TEST(http_healthz_and_security_headers)
{
	struct buf r;
	get("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_body(&r), "ok\n");
	CHECK_STR(resp_header(&r, "Content-Type"), "text/plain; charset=utf-8");
	CHECK_STR(resp_header(&r, "Cache-Control"), "no-store");
	CHECK_SECURITY(&r, false);
	buf_free(&r);
}

UNIT_TEST(http_params_and_query)
{
	struct buf r;
	get("GET /api/v1/accounts/a%40b.test/aliases/sales?x=1&q=hello+w%C3%B6rld%26more "
	    "HTTP/1.1\r\n"
	    "Host: a\r\nConnection: close\r\n\r\n",
	    &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_header(&r, "Content-Type"), "application/json");
	CHECK_STR(resp_body(&r),
	          "{\"id\":\"a@b.test\",\"alias\":\"sales\",\"q\":\"hello w\xc3\xb6rld&more\"}");
	buf_free(&r);
	get("GET /api/v1/accounts/x/aliases/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	    &r);
	CHECK_STR(resp_body(&r), "{\"id\":\"x\",\"alias\":\"y\",\"q\":\"(none)\"}");
	buf_free(&r);
}

UNIT_TEST(http_not_found_and_method_not_allowed)
{
	struct buf r;
	get("GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 404);
	CHECK_STR(resp_body(&r), "{\"error\":\"not found\"}");
	CHECK_SECURITY(&r, false);
	buf_free(&r);
	get("DELETE /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 405);
	CHECK_STR(resp_header(&r, "Allow"), "GET, HEAD");
	CHECK_SECURITY(&r, false);
	buf_free(&r);
}

UNIT_TEST(http_head_served_by_get)
{
	struct buf r;
	get("HEAD /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_header(&r, "Content-Length"), "3");
	CHECK_STR(resp_body(&r), "");
	buf_free(&r);
}

UNIT_TEST(http_body_echo_and_limits)
{
	struct buf r;
	get("POST /api/v1/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Connection: close\r\n\r\nhello",
	    &r);
	CHECK_INT(resp_status(&r), 201);
	CHECK_STR(resp_body(&r), "len=5 body=hello");
	buf_free(&r);

	/* Declared too big: refused before the body is read. */
	struct buf req;
	buf_init(&req, BUF_NO_LIMIT);
	buf_printf(&req, "POST /api/v1/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n");
	for (int i = 0; i < 2000; i++)
		buf_append_char(&req, 'x');
	exchange(req.data, req.len, false, false, NULL, &r);
	CHECK_INT(resp_status(&r), 413);
	CHECK_STR(resp_header(&r, "Connection"), "close");
	CHECK_SECURITY(&r, false);
	buf_free(&r);

	/* The large-body route takes the same 2000 bytes. */
	buf_reset(&req);
	buf_printf(&req, "PUT /api/v1/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n"
	                 "Connection: close\r\n\r\n");
	for (int i = 0; i < 2000; i++)
		buf_append_char(&req, 'y');
	exchange(req.data, req.len, false, false, NULL, &r);
	CHECK_INT(resp_status(&r), 201);
	CHECK(strncmp(resp_body(&r), "len=2000 body=yyy", 17) == 0);
	buf_free(&r);

	/* Chunked, growing past the limit: read to its end, then 413, and
	 * the connection stays in step for the next request. */
	buf_reset(&req);
	buf_printf(&req,
	           "POST /api/v1/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		buf_printf(&req, "200\r\n");
		for (int j = 0; j < 0x200; j++)
			buf_append_char(&req, 'z');
		buf_printf(&req, "\r\n");
	}
	buf_printf(&req, "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	exchange(req.data, req.len, false, false, NULL, &r);
	CHECK_INT(resp_status(&r), 413);
	CHECK(strstr(r.data, "HTTP/1.1 200 OK") != NULL);
	CHECK(strstr(r.data, "\r\n\r\nok\n") != NULL);
	buf_free(&r);

	/* No body at all allowed on /healthz. */
	get("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", &r);
	CHECK_INT(resp_status(&r), 413);
	buf_free(&r);
	buf_free(&req);
}

UNIT_TEST(http_keep_alive_pipelined_and_half_close)
{
	struct buf r;
	const char *two = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
	                  "GET /ui/x/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	get(two, &r);
	CHECK_INT(count(r.data, "HTTP/1.1 200 OK"), 2);
	CHECK(strstr(r.data, "rest=x/y") != NULL);
	buf_free(&r);
	const char *one = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
	exchange(one, strlen(one), false, true, NULL, &r);
	CHECK_INT(resp_status(&r), 200);
	buf_free(&r);
}

static void *byte_client(void *arg)
{
	int fd = *(int *)arg;
	const char *req = "POST /api/v1/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	                  "Connection: close\r\n\r\nabc";
	for (const char *p = req; *p != '\0'; p++) {
		if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
			break;
		poll(NULL, 0, 1);
	}
	return NULL;
}

UNIT_TEST(http_request_byte_by_byte)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	struct bridge_run b = {.c = conn_new(sv[0], "https"), .srv = test_server()};
	pthread_create(&b.thread, NULL, bridge_main, &b);
	pthread_t writer;
	pthread_create(&writer, NULL, byte_client, &sv[1]);
	struct client cl = {.fd = sv[1]};
	struct buf r;
	buf_init(&r, 65536);
	client_read_all(&cl, &r);
	pthread_join(writer, NULL);
	client_close(&cl);
	pthread_join(b.thread, NULL);
	CHECK_INT(resp_status(&r), 201);
	CHECK_STR(resp_body(&r), "len=3 body=abc");
	buf_free(&r);
}

UNIT_TEST(http_static_body_and_own_cache_control)
{
	struct buf r;
	get("GET /ui/app.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_header(&r, "Content-Type"), "text/html; charset=utf-8");
	CHECK_STR(resp_header(&r, "Cache-Control"), "public, max-age=60");
	CHECK_INT(count(r.data, "Cache-Control"), 1);
	CHECK_STR(resp_body(&r), ui_bytes);
	CHECK_SECURITY(&r, false);
	buf_free(&r);
}

UNIT_TEST(http_handler_failure_is_500_with_id)
{
	struct buf r;
	get("GET /fail HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 500);
	CHECK(strncmp(resp_body(&r), "{\"error\":\"internal error err-", 29) == 0);
	CHECK(strstr(r.data, "never sent") == NULL);
	buf_free(&r);
}

UNIT_TEST(http_guard_runs_before_handler)
{
	struct buf r;
	get("GET /admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 401);
	CHECK_STR(resp_body(&r), "{\"error\":\"login required\"}");
	buf_free(&r);
	get("GET /admin HTTP/1.1\r\nHost: a\r\nX-Test-Auth: yes\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	buf_free(&r);
}

UNIT_TEST(http_peer_method_and_header_injection)
{
	struct buf r;
	get("PROPFIND /peer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	/* An AF_UNIX client counts as loopback ("local"). */
	CHECK_STR(resp_body(&r), "peer=local tls=0 method=PROPFIND");
	CHECK(strstr(r.data, "Set-Cookie") == NULL);
	buf_free(&r);
}

UNIT_TEST(http_malformed_requests_then_next_ok)
{
	static const struct {
		const char *req;
		unsigned status;
	} bad[] = {
	    {"garbage\r\n\r\n", 400},
	    {"GET\r\n\r\n", 400},
	    {"G\x01T /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	    {"GET /ui/../x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	    {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	    {"GET http://evil/healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	    {"GET /healthz HTTP/1.1\r\n\r\n", 400},
	    {"GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n", 505},
	};
	struct buf r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		get(bad[i].req, &r);
		if (resp_status(&r) != bad[i].status)
			unit_fail(__FILE__, __LINE__, "case %zu: status %u, expected %u", i,
			          resp_status(&r), bad[i].status);
		buf_free(&r);
		get("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
		CHECK_INT(resp_status(&r), 200);
		buf_free(&r);
	}
}

UNIT_TEST(http_absurdly_long_header_then_next_ok)
{
	struct buf req, r;
	buf_init(&req, BUF_NO_LIMIT);
	buf_printf(&req, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Long: ");
	for (int i = 0; i < 100000; i++)
		buf_append_char(&req, 'a');
	buf_printf(&req, "\r\n\r\n");
	exchange(req.data, req.len, false, false, NULL, &r);
	CHECK_INT(resp_status(&r), 431);
	buf_free(&r);
	/* A request line longer than the memory limit. */
	buf_reset(&req);
	buf_printf(&req, "GET /");
	for (int i = 0; i < 20000; i++)
		buf_append_char(&req, 'b');
	buf_printf(&req, " HTTP/1.1\r\nHost: a\r\n\r\n");
	exchange(req.data, req.len, false, false, NULL, &r);
	CHECK_INT(resp_status(&r), 414);
	buf_free(&r);
	buf_free(&req);
	get("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	buf_free(&r);
}

UNIT_TEST(http_stalled_request_gets_408_idle_gets_closed)
{
	struct conn_limits lim = {.idle_timeout_ms = 300,
	                          .request_deadline_ms = 400,
	                          .min_data_rate = 0,
	                          .write_timeout_ms = 2000};
	struct buf r;
	const char *partial = "GET /healthz HTTP/1.1\r\nHo";
	exchange(partial, strlen(partial), false, false, &lim, &r);
	CHECK_INT(resp_status(&r), 408);
	CHECK_SECURITY(&r, false);
	buf_free(&r);
	/* Silent client: closed after the idle timeout, nothing said. */
	exchange("", 0, false, false, &lim, &r);
	CHECK_INT(r.len, 0);
	buf_free(&r);
}

static void *trickle_client(void *arg)
{
	int fd = *(int *)arg;
	const char *req =
	    "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	for (const char *p = req; *p != '\0'; p++) {
		if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
			break;
		poll(NULL, 0, 60);
	}
	return NULL;
}

UNIT_TEST(http_trickling_client_gets_408)
{
	/* 1 byte per 60 ms is far below 1000 B/s: the budget (400 ms plus
	 * 1 ms per byte) runs out long before the request is complete. */
	struct conn_limits lim = {.idle_timeout_ms = 2000,
	                          .request_deadline_ms = 400,
	                          .min_data_rate = 1000,
	                          .write_timeout_ms = 2000};
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	struct bridge_run b = {.c = conn_new(sv[0], "https"), .srv = test_server()};
	conn_set_limits(b.c, &lim);
	pthread_create(&b.thread, NULL, bridge_main, &b);
	pthread_t writer;
	pthread_create(&writer, NULL, trickle_client, &sv[1]);
	struct client cl = {.fd = sv[1]};
	struct buf r;
	buf_init(&r, 65536);
	client_read_all(&cl, &r);
	pthread_join(b.thread, NULL);
	CHECK_INT(resp_status(&r), 408);
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(writer, NULL);
	client_close(&cl);
	buf_free(&r);
}

UNIT_TEST(http_large_bodies_both_ways_over_tls)
{
	struct buf r;
	const char *req = "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	exchange(req, strlen(req), true, false, NULL, &r);
	CHECK_INT(resp_status(&r), 200);
	const char *body = resp_body(&r);
	CHECK_INT(r.len - (size_t)(body - r.data), 1024 * 1024);
	CHECK(body[0] == 'a' && body[1024 * 1024 - 1] == (char)('a' + (1024 * 1024 - 1) % 26));
	buf_free(&r);

	struct buf up;
	buf_init(&up, BUF_NO_LIMIT);
	buf_printf(&up,
	           "PUT /api/v1/echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
	           "Connection: close\r\n\r\n",
	           1536 * 1024);
	for (int i = 0; i < 1536 * 1024; i++)
		buf_append_char(&up, (char)('A' + i % 26));
	exchange(up.data, up.len, true, false, NULL, &r);
	CHECK_INT(resp_status(&r), 201);
	CHECK(strncmp(resp_body(&r), "len=1572864 body=ABCDEF", 23) == 0);
	CHECK_INT(strlen(resp_body(&r)), 17 + 1536 * 1024);
	buf_free(&r);
	buf_free(&up);
}

UNIT_TEST(http_over_tls_sends_hsts)
{
	struct buf r;
	const char *req = "GET /peer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	exchange(req, strlen(req), true, false, NULL, &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_body(&r), "peer=local tls=1 method=GET");
	CHECK_SECURITY(&r, true);
	buf_free(&r);
}

static struct http_server *redirect_server(void)
{
	static struct http_server *srv;
	if (srv == NULL) {
		struct http_options o = test_opts();
		const char *err = NULL;
		o.name = "http";
		o.redirect_only = true;
		o.redirect_port = 8443;
		srv = http_server_new(test_routes, NROUTES, &o, &err);
	}
	return srv;
}

static void redirect_get(const char *req, struct buf *out)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	struct bridge_run b = {.c = conn_new(sv[0], "http"), .srv = redirect_server()};
	pthread_create(&b.thread, NULL, bridge_main, &b);
	struct client cl = {.fd = sv[1]};
	buf_init(out, (size_t)4 * 1024 * 1024);
	client_send(&cl, req, strlen(req));
	client_read_all(&cl, out);
	client_close(&cl);
	pthread_join(b.thread, NULL);
}

UNIT_TEST(http_redirect_only_mode)
{
	struct buf r;
	redirect_get("GET /ui/x?a=1+2&b=%26 HTTP/1.1\r\nHost: www.example.test:8080\r\n"
	             "Connection: close\r\n\r\n",
	             &r);
	CHECK_INT(resp_status(&r), 301);
	CHECK_STR(resp_header(&r, "Location"), "https://www.example.test:8443/ui/x?a=1+2&b=%26");
	CHECK_SECURITY(&r, false);
	buf_free(&r);
	/* Unknown paths too, and a bad Host falls back to the configured name. */
	redirect_get("GET /anything HTTP/1.1\r\nHost: evil\"<x>\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 301);
	CHECK_STR(resp_header(&r, "Location"), "https://mail.example.test:8443/anything");
	buf_free(&r);
	redirect_get("GET / HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n", &r);
	CHECK_STR(resp_header(&r, "Location"), "https://[::1]:8443/");
	buf_free(&r);
	redirect_get("GET http://evil.test/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 400);
	CHECK(resp_header(&r, "Location") == NULL);
	buf_free(&r);
}

/* --- Through server_run, over real TCP and TLS. --- */

struct server_thread {
	struct config *cfg;
	struct server_protocol protos[2];
	sem_t ready;
	int ret;
	pthread_t thread;
};

static int after_bind(void *arg)
{
	sem_post(&((struct server_thread *)arg)->ready);
	return 0;
}

static void *server_thread_main(void *arg)
{
	struct server_thread *s = arg;
	struct server_hooks hooks = {.after_bind = after_bind, .arg = s, .grace_ms = 2000};
	const char *err = NULL;
	s->ret = server_run(s->cfg, s->protos, 2, &hooks, &err);
	if (s->ret < 0)
		fprintf(stderr, "server_run: %s\n", err);
	sem_post(&s->ready);
	return NULL;
}

static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	bind(fd, (struct sockaddr *)&sa, len);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static int tcp_connect(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void tcp_get(unsigned port, bool tls, const char *req, struct buf *out)
{
	struct client cl = {.fd = tcp_connect(port)};
	buf_init(out, (size_t)4 * 1024 * 1024);
	if (cl.fd < 0)
		return;
	if (!tls || client_tls_start(&cl) == 0) {
		client_send(&cl, req, strlen(req));
		client_read_all(&cl, out);
	}
	client_close(&cl);
}

UNIT_TEST(http_zz_server_run_https_and_redirect)
{
	struct server_thread s = {.ret = -2};
	unsigned https_port = free_port(), http_port = free_port();
	char v[64], *e = NULL;
	s.cfg = config_defaults();
	config_set(s.cfg, "server", "data_dir", test_dir(), &e);
	config_set(s.cfg, "server", "hostname", "mail.example.test", &e);
	snprintf(v, sizeof(v), "127.0.0.1:%u", https_port);
	config_set(s.cfg, "listen", "https", v, &e);
	snprintf(v, sizeof(v), "127.0.0.1:%u", http_port);
	config_set(s.cfg, "listen", "http", v, &e);

	struct http_options o = test_opts();
	struct http_server *srv = http_server_new(test_routes, NROUTES, &o, (const char **)&e);
	struct http_options ro;
	http_options_from_config(s.cfg, &ro);
	ro.name = "http";
	ro.redirect_only = true;
	struct http_server *rsrv = http_server_new(test_routes, NROUTES, &ro, (const char **)&e);
	CHECK(srv != NULL && rsrv != NULL);
	CHECK_INT(ro.redirect_port, https_port);
	s.protos[0] =
	    (struct server_protocol){"https", CFG_LISTEN_HTTPS, true, http_session, NULL, srv};
	s.protos[1] =
	    (struct server_protocol){"http", CFG_LISTEN_HTTP, false, http_session, NULL, rsrv};
	sem_init(&s.ready, 0, 0);
	pthread_create(&s.thread, NULL, server_thread_main, &s);
	sem_wait(&s.ready);
	CHECK_INT(s.ret, -2);

	struct buf r;
	tcp_get(https_port, true, "GET /peer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_body(&r), "peer=127.0.0.1 tls=1 method=GET");
	CHECK_SECURITY(&r, true);
	buf_free(&r);
	tcp_get(https_port, true, "garbage\r\n\r\n", &r);
	CHECK_INT(resp_status(&r), 400);
	buf_free(&r);
	tcp_get(https_port, true, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	        &r);
	CHECK_INT(resp_status(&r), 200);
	buf_free(&r);
	tcp_get(http_port, false,
	        "GET /healthz?x=1 HTTP/1.1\r\nHost: mail.example.test\r\n"
	        "Connection: close\r\n\r\n",
	        &r);
	CHECK_INT(resp_status(&r), 301);
	snprintf(v, sizeof(v), "https://mail.example.test:%u/healthz?x=1", https_port);
	CHECK_STR(resp_header(&r, "Location"), v);
	buf_free(&r);

	/* An idle keep-alive client must not hold up the stop; a request in
	 * flight is answered before its connection ends. */
	struct client idle = {.fd = tcp_connect(http_port)};
	struct client slow = {.fd = tcp_connect(https_port)};
	CHECK_INT(client_tls_start(&slow), 0);
	const char *sreq = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
	client_send(&slow, sreq, strlen(sreq));
	poll(NULL, 0, 100);
	server_request_stop();
	buf_init(&r, 65536);
	client_read_all(&slow, &r);
	CHECK_INT(resp_status(&r), 200);
	CHECK_STR(resp_body(&r), "slow done\n");
	buf_free(&r);
	pthread_join(s.thread, NULL);
	CHECK_INT(s.ret, 0);
	/* server_run's session threads are detached: give them a moment to
	 * finish exiting (and OpenSSL to free their per-thread state) so the
	 * leak checker at exit does not see it half done. */
	poll(NULL, 0, 200);
	client_close(&slow);
	close(idle.fd);
	sem_destroy(&s.ready);
	http_server_free(&srv);
	http_server_free(&rsrv);
	CHECK(srv == NULL && rsrv == NULL);
	config_free(&s.cfg);
}
