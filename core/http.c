/* http.c - the libmicrohttpd side: daemon, generic step, responses, log. */
#include "http-private.h"

#include "arena.h"
#include "clock.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct http_response_header {
	const char *name;
	const char *value;
	struct http_response_header *next;
};

enum http_req_state { HTTP_REQ_BODY, HTTP_REQ_DONE };

struct http_request_private {
	struct http_server *srv;
	struct MHD_Connection *mhd;
	enum http_req_state state;
	bool too_large;
	bool method_ok;
	struct http_match match;
	uint64_t start_ms;
	unsigned status;
	size_t bytes;
};

/* Everything of one request, freed by the completion callback. */
struct http_exchange {
	struct http_request req;
	struct http_request_private priv;
	struct http_response resp;
};

const char *http_status_reason(unsigned status)
{
	const char *r = MHD_get_reason_phrase_for(status);
	return r != NULL && r[0] != '\0' ? r : "Unknown";
}

/* --- Response builder --- */

void http_response_set_status(struct http_response *resp, unsigned status)
{
	resp->status = status;
}

void http_response_set_type(struct http_response *resp, const char *type)
{
	resp->content_type = arena_strdup(resp->arena, type);
}

static bool http_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool http_is_token(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (!http_is_tchar(*p))
			return false;
	return true;
}

static bool http_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

int http_response_add_header(struct http_response *resp, const char *name, const char *value)
{
	if (!http_is_token(name) || !http_value_ok(value))
		return -1;
	struct http_response_header *h = arena_alloc(resp->arena, sizeof(*h));
	h->name = arena_strdup(resp->arena, name);
	h->value = arena_strdup(resp->arena, value);
	h->next = resp->headers;
	resp->headers = h;
	if (strcasecmp(name, "Cache-Control") == 0)
		resp->has_cache_control = true;
	return 0;
}

void http_response_body_static(struct http_response *resp, const void *p, size_t n)
{
	buf_reset(&resp->body);
	resp->static_body = p;
	resp->static_len = n;
}

void http_response_body_buf(struct http_response *resp, struct buf *b)
{
	size_t len;
	char *data = buf_steal(b, &len);
	buf_free(&resp->body);
	resp->body.data = data;
	resp->body.len = len;
	resp->body.cap = len + 1;
	resp->static_body = NULL;
}

static void http_response_set_text(struct http_response *resp, unsigned status, const char *type,
                                   const char *text)
{
	resp->status = status;
	resp->content_type = type;
	resp->static_body = NULL;
	buf_reset(&resp->body);
	buf_append_str(&resp->body, text);
}

void http_response_json(struct http_response *resp, unsigned status, const char *json)
{
	http_response_set_text(resp, status, "application/json", json);
}

void http_response_text(struct http_response *resp, unsigned status, const char *text)
{
	http_response_set_text(resp, status, "text/plain; charset=utf-8", text);
}

void http_response_error(struct http_response *resp, unsigned status, const char *message)
{
	http_response_set_text(resp, status, "application/json", "{\"error\":");
	http_json_append_string(&resp->body, message);
	buf_append_char(&resp->body, '}');
}

int http_response_redirect(struct http_response *resp, unsigned status, const char *location)
{
	if (http_response_add_header(resp, "Location", location) < 0)
		return -1;
	http_response_text(resp, status, "Redirecting.\n");
	return 0;
}

/* --- Request accessors --- */

const char *http_request_param(const struct http_request *req, const char *name)
{
	const struct http_match *m = &req->priv->match;
	size_t len = strlen(name);
	for (size_t i = 0; i < m->nparams; i++)
		if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
			return m->params[i].value;
	return NULL;
}

int http_request_param_each(const struct http_request *req,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	const struct http_match *m = &req->priv->match;
	for (size_t i = 0; i < m->nparams; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)m->params[i].name_len, m->params[i].name);
		int r = fn(ctx, name, m->params[i].value);
		if (r != 0)
			return r;
	}
	return 0;
}

struct http_query_each {
	const struct http_request *req;
	int (*fn)(void *ctx, const char *name, const char *value);
	void *ctx;
	int result;
};

static enum MHD_Result http_query_each_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
	(void)kind;
	struct http_query_each *e = cls;
	char *k, *v = "";
	/* MHD has already turned '+' into ' '; %-escapes are ours to decode
	 * (MHD's unescaping is switched off so paths keep %2F). */
	if (http_percent_decode(e->req->arena, key, strlen(key), false, &k) < 0 ||
	    (value != NULL &&
	     http_percent_decode(e->req->arena, value, strlen(value), false, &v) < 0))
		return MHD_YES;
	e->result = e->fn(e->ctx, k, v);
	return e->result == 0 ? MHD_YES : MHD_NO;
}

int http_request_query_each(const struct http_request *req,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	struct http_query_each e = {req, fn, ctx, 0};
	MHD_get_connection_values(req->priv->mhd, MHD_GET_ARGUMENT_KIND, http_query_each_iter, &e);
	return e.result;
}

struct http_query_find {
	const char *name;
	const char *value;
};

static int http_query_find_one(void *ctx, const char *name, const char *value)
{
	struct http_query_find *f = ctx;
	if (strcmp(name, f->name) != 0)
		return 0;
	f->value = value;
	return 1;
}

const char *http_request_query(const struct http_request *req, const char *name)
{
	struct http_query_find f = {name, NULL};
	http_request_query_each(req, http_query_find_one, &f);
	return f.value;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->priv->mhd, MHD_HEADER_KIND, name);
}

/* --- Sending --- */

static void http_add_security_headers(struct MHD_Response *r, bool tls)
{
	MHD_add_response_header(r, "Content-Security-Policy", HTTP_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	if (tls)
		MHD_add_response_header(r, "Strict-Transport-Security", HTTP_HSTS);
}

static struct MHD_Response *http_mhd_response(struct http_exchange *ex)
{
	struct http_response *resp = &ex->resp;
	struct MHD_Response *r;
	if (resp->static_body != NULL) {
		ex->priv.bytes = resp->static_len;
		r = MHD_create_response_from_buffer(resp->static_len, (void *)resp->static_body,
		                                    MHD_RESPMEM_PERSISTENT);
	} else {
		size_t len;
		char *data = buf_steal(&resp->body, &len);
		ex->priv.bytes = len;
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (r == NULL)
			free(data);
	}
	if (r == NULL)
		return NULL;
	MHD_add_response_header(r, "Content-Type", resp->content_type);
	http_add_security_headers(r, ex->req.tls);
	if (!resp->has_cache_control)
		MHD_add_response_header(r, "Cache-Control", "no-store");
	for (const struct http_response_header *h = resp->headers; h != NULL; h = h->next)
		MHD_add_response_header(r, h->name, h->value);
	return r;
}

static enum MHD_Result http_send(struct http_exchange *ex)
{
	struct MHD_Response *r = http_mhd_response(ex);
	ex->priv.state = HTTP_REQ_DONE;
	ex->priv.status = ex->resp.status;
	if (r == NULL)
		return MHD_NO;
	enum MHD_Result q = MHD_queue_response(ex->priv.mhd, ex->resp.status, r);
	MHD_destroy_response(r);
	return q;
}

static enum MHD_Result http_send_error(struct http_exchange *ex, unsigned status,
                                       const char *message)
{
	http_response_error(&ex->resp, status, message);
	return http_send(ex);
}

/* --- The generic step --- */

/* A Host header value we may put into a Location: a name, IPv4 or [IPv6],
 * without the port. Copied into out; false if it is not one. */
static bool http_host_clean(const char *host, char *out, size_t outlen)
{
	size_t n = 0;
	bool v6 = host[0] == '[';
	const char *end = v6 ? strchr(host, ']') : strchr(host, ':');
	size_t len = end != NULL ? (size_t)(end - host) + v6 : strlen(host);
	if (len == 0 || len >= outlen)
		return false;
	for (; n < len; n++) {
		char c = host[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		          (v6 && (c == ':' || c == '[' || c == ']'));
		if (!ok)
			return false;
		out[n] = c;
	}
	out[n] = '\0';
	return true;
}

static enum MHD_Result http_query_rebuild(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
	struct buf *b = cls;
	static const char hex[] = "0123456789ABCDEF";
	buf_append_char(b, b->data != NULL && strchr(b->data, '?') != NULL ? '&' : '?');
	for (int part = 0; part < 2; part++) {
		const char *s = part == 0 ? key : value;
		if (s == NULL)
			break;
		if (part == 1)
			buf_append_char(b, '=');
		/* MHD turned '+' into ' '; turn it back, escape the rest. */
		for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
			if (*p == ' ')
				buf_append_char(b, '+');
			else if (*p < 0x20 || *p >= 0x7f)
				buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
			else
				buf_append_char(b, (char)*p);
		}
	}
	return MHD_YES;
}

static enum MHD_Result http_redirect_https(struct http_exchange *ex)
{
	struct http_server *srv = ex->priv.srv;
	const char *host_hdr = http_request_header(&ex->req, "Host");
	char host[256];
	if (!http_path_chars_ok(ex->req.path))
		return http_send_error(ex, 400, "bad path");
	if (host_hdr == NULL || !http_host_clean(host_hdr, host, sizeof(host))) {
		const char *def = srv->opts.redirect_host;
		if (def == NULL || !http_host_clean(def, host, sizeof(host)))
			return http_send_error(ex, 400, "bad Host header");
	}
	struct buf loc;
	buf_init(&loc, (size_t)16 * 1024);
	buf_printf(&loc, "https://%s", host);
	if (srv->opts.redirect_port != 443 && srv->opts.redirect_port != 0)
		buf_printf(&loc, ":%u", srv->opts.redirect_port);
	buf_append_str(&loc, ex->req.path);
	MHD_get_connection_values(ex->priv.mhd, MHD_GET_ARGUMENT_KIND, http_query_rebuild, &loc);
	int rc = http_response_redirect(&ex->resp, 301, buf_cstr(&loc));
	buf_free(&loc);
	if (rc < 0)
		return http_send_error(ex, 400, "bad request target");
	return http_send(ex);
}

static size_t http_body_limit(const struct http_server *srv, const struct http_route *route)
{
	if (route->flags & HTTP_ROUTE_NO_BODY)
		return 0;
	if (route->flags & HTTP_ROUTE_LARGE_BODY)
		return srv->opts.max_body_large;
	return srv->opts.max_body;
}

struct http_framing {
	unsigned content_lengths, transfer_encodings;
	const char *first_length, *first_coding;
	bool lengths_differ;
};

static enum MHD_Result http_framing_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
	(void)kind;
	struct http_framing *f = cls;
	if (strcasecmp(key, "Content-Length") == 0) {
		if (f->content_lengths++ == 0)
			f->first_length = value;
		else if (value == NULL || f->first_length == NULL ||
		         strcmp(value, f->first_length) != 0)
			f->lengths_differ = true;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0 && f->transfer_encodings++ == 0) {
		f->first_coding = value;
	}
	return MHD_YES;
}

/* How the body is framed (RFC 9112 6): 0 when it is clear, else the status
 * to refuse it with. A body's length must be told one way only, so that no
 * proxy in front reads it another: one decimal Content-Length (repeated
 * alike at most), or Transfer-Encoding "chunked" alone, not both. Other
 * transfer codings are refused with 501 (RFC 9112 6.1). */
static int http_framing_check(const struct http_request *req)
{
	struct http_framing f = {0};
	MHD_get_connection_values(req->priv->mhd, MHD_HEADER_KIND, http_framing_iter, &f);
	if (f.transfer_encodings > 0) {
		if (f.content_lengths > 0)
			return 400;
		if (f.transfer_encodings > 1 || f.first_coding == NULL ||
		    strcasecmp(f.first_coding, "chunked") != 0)
			return 501;
		return 0;
	}
	uint64_t len;
	if (f.content_lengths > 0 && (f.lengths_differ || f.first_length == NULL ||
	                              str_to_u64(f.first_length, UINT64_MAX, &len) < 0))
		return 400;
	return 0;
}

/* First call of a request: everything that can be decided from the headers. */
static enum MHD_Result http_on_headers(struct http_exchange *ex, const char *version)
{
	struct http_server *srv = ex->priv.srv;
	struct http_request *req = &ex->req;
	if (!ex->priv.method_ok)
		return http_send_error(ex, 400, "bad method");
	if (strcmp(version, "HTTP/1.0") != 0 && http_request_header(req, "Host") == NULL)
		return http_send_error(ex, 400, "Host header required");
	if (srv->opts.redirect_only)
		return http_redirect_https(ex);
	switch (http_route_find(srv->routes, srv->nroutes, req->method, req->path, req->arena,
	                        &ex->priv.match)) {
	case HTTP_ROUTE_BAD_PATH:
		return http_send_error(ex, 400, "bad path");
	case HTTP_ROUTE_NOT_FOUND:
		return http_send_error(ex, 404, "not found");
	case HTTP_ROUTE_BAD_METHOD:
		http_response_add_header(&ex->resp, "Allow", ex->priv.match.allow);
		return http_send_error(ex, 405, "method not allowed");
	case HTTP_ROUTE_FOUND:
		break;
	}
	req->route = ex->priv.match.route;
	size_t limit = http_body_limit(srv, req->route);
	buf_init(&req->body, limit);
	int framing = http_framing_check(req);
	if (framing != 0)
		return http_send_error(ex, (unsigned)framing,
		                       framing == 501 ? "transfer coding not supported"
		                                      : "bad Content-Length or Transfer-Encoding");
	const char *cl = http_request_header(req, "Content-Length");
	uint64_t len;
	if (cl != NULL && str_to_u64(cl, UINT64_MAX, &len) == 0 && len > limit)
		return http_send_error(ex, 413, "request body too large");
	return MHD_YES;
}

static enum MHD_Result http_on_body(struct http_exchange *ex, const char *data, size_t n)
{
	/* Past the limit the rest is read and dropped, so the connection stays
	 * in step and the client gets its 413 at the end. */
	if (!ex->priv.too_large && buf_append(&ex->req.body, data, n) < 0) {
		ex->priv.too_large = true;
		buf_free(&ex->req.body);
	}
	return MHD_YES;
}

static enum MHD_Result http_internal_error(struct http_exchange *ex, const char *where)
{
	char id[32];
	log_new_id("err", id, sizeof(id));
	log_error("event=http_internal_error id=%s where=%s route=\"%s\"", id, where,
	          ex->req.route->pattern);
	struct buf msg;
	buf_init(&msg, 128);
	buf_printf(&msg, "internal error %s", id);
	http_response_error(&ex->resp, 500, buf_cstr(&msg));
	buf_free(&msg);
	ex->resp.headers = NULL;
	ex->resp.has_cache_control = false;
	ex->resp.static_body = NULL;
	return http_send(ex);
}

/* Last call: the whole body is in; run the guard and the handler. */
static enum MHD_Result http_on_complete(struct http_exchange *ex)
{
	struct http_server *srv = ex->priv.srv;
	if (ex->priv.too_large)
		return http_send_error(ex, 413, "request body too large");
	if (srv->opts.guard != NULL) {
		int g = srv->opts.guard(&ex->req, &ex->resp, srv->opts.ctx);
		if (g < 0)
			return http_internal_error(ex, "guard");
		if (g > 0)
			return http_send(ex);
	}
	if (ex->req.route->handler(&ex->req, &ex->resp, srv->opts.ctx) < 0)
		return http_internal_error(ex, "handler");
	return http_send(ex);
}

/* --- MHD callbacks --- */

static struct http_link_info *http_link(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

static struct http_exchange *http_exchange_new(struct http_server *srv, struct MHD_Connection *mc,
                                               const char *url, const char *method)
{
	struct http_exchange *ex = xcalloc(1, sizeof(*ex));
	struct http_link_info *link = http_link(mc);
	struct arena *arena = arena_new(8192);
	ex->req.priv = &ex->priv;
	ex->req.arena = arena;
	ex->req.method = arena_strdup(arena, method);
	ex->req.path = arena_strdup(arena, url);
	ex->req.peer_ip = link != NULL ? link->peer_ip : "unknown";
	ex->req.session_id = link != NULL ? link->session_id : "";
	ex->req.tls = link != NULL && link->tls;
	buf_init(&ex->req.body, 0);
	ex->priv.srv = srv;
	ex->priv.mhd = mc;
	ex->priv.start_ms = clock_monotonic_ms();
	ex->priv.method_ok = http_is_token(method);
	ex->resp.arena = arena;
	ex->resp.status = 200;
	ex->resp.content_type = "text/plain; charset=utf-8";
	buf_init(&ex->resp.body, BUF_NO_LIMIT);
	return ex;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *mc, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
	struct http_exchange *ex = *con_cls;
	if (ex == NULL) {
		ex = http_exchange_new(cls, mc, url, method);
		*con_cls = ex;
		log_set_session(ex->req.session_id);
		return http_on_headers(ex, version);
	}
	log_set_session(ex->req.session_id);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (ex->priv.state == HTTP_REQ_DONE)
			return MHD_YES;
		return http_on_body(ex, upload_data, n);
	}
	if (ex->priv.state == HTTP_REQ_DONE)
		return MHD_YES;
	return http_on_complete(ex);
}

static void http_log_request(const struct http_exchange *ex)
{
	char path[LOG_QUOTE_MAX], method[LOG_QUOTE_MAX];
	if (ex->priv.method_ok)
		snprintf(method, sizeof(method), "%s", ex->req.method);
	else
		log_quote(method, sizeof(method), ex->req.method);
	log_info("event=http method=%s path=%s status=%u bytes=%zu duration_ms=%llu peer=%s",
	         method, log_quote(path, sizeof(path), ex->req.path), ex->priv.status,
	         ex->priv.bytes, (unsigned long long)(clock_monotonic_ms() - ex->priv.start_ms),
	         ex->req.peer_ip);
}

static void http_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
	struct http_exchange *ex = *con_cls;
	if (ex == NULL)
		return;
	*con_cls = NULL;
	log_set_session(ex->req.session_id);
	http_log_request(ex);
	buf_free(&ex->req.body);
	buf_free(&ex->resp.body);
	arena_destroy(&ex->req.arena);
	free(ex);
}

/* Used only when the bridge's registry has no entry (not expected). */
static void http_link_from_mhd(struct MHD_Connection *mc, struct http_link_info *l)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(l->peer_ip, sizeof(l->peer_ip), "unknown");
	if (ci != NULL && ci->client_addr != NULL) {
		socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                       : sizeof(struct sockaddr_in);
		getnameinfo(ci->client_addr, len, l->peer_ip, sizeof(l->peer_ip), NULL, 0,
		            NI_NUMERICHOST);
	}
	log_new_id("http", l->session_id, sizeof(l->session_id));
}

static void http_notify_conn(void *cls, struct MHD_Connection *mc, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
		return;
	}
	struct http_link_info *l = xcalloc(1, sizeof(*l));
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL || !http_bridge_lookup(cls, ci->connect_fd, l))
		http_link_from_mhd(mc, l);
	*socket_context = l;
}

static size_t http_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/* MHD's format strings are its own constants. */
__attribute__((format(printf, 2, 0))) static void http_mhd_log(void *cls, const char *fmt,
                                                               va_list ap)
{
	const struct http_server *srv = cls;
	char msg[512], q[LOG_QUOTE_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\r\n")] = '\0';
	/* MHD's notes are about single requests or socket options that a
	 * socketpair does not have (TCP_NODELAY): debug, not noise. */
	log_debug("event=mhd server=%s msg=%s", srv->opts.name, log_quote(q, sizeof(q), msg));
}

/* --- Server --- */

void http_options_from_config(const struct config *cfg, struct http_options *r)
{
	memset(r, 0, sizeof(*r));
	r->name = "https";
	r->max_body = config_uint(cfg, CFG_LIMITS_HTTP_BODY_SIZE);
	r->max_body_large = config_uint(cfg, CFG_LIMITS_MESSAGE_SIZE);
	r->header_memory = config_uint(cfg, CFG_LIMITS_LINE_LENGTH) + (size_t)16 * 1024;
	r->timeout_s = (unsigned)(config_uint(cfg, CFG_LIMITS_IDLE_TIMEOUT) +
	                          config_uint(cfg, CFG_LIMITS_REQUEST_DEADLINE));
	r->max_connections = (unsigned)config_uint(cfg, CFG_LIMITS_CONNECTIONS);
	r->redirect_host = config_str(cfg, CFG_SERVER_HOSTNAME);
	r->redirect_port = 443;
	struct config_listen_addr *addrs = NULL;
	size_t n = 0;
	uint32_t port;
	if (config_listen(cfg, CFG_LISTEN_HTTPS, &addrs, &n) == 0 && n > 0 &&
	    str_to_u32(addrs[0].port, &port) == 0)
		r->redirect_port = port;
	free(addrs);
}

struct http_server *http_server_new(const struct http_route *routes, size_t n,
                                    const struct http_options *opts, const char **error_r)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->routes = routes;
	srv->nroutes = n;
	srv->opts = *opts;
	if (srv->opts.name == NULL)
		srv->opts.name = "http";
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	/* Thread per connection: handlers may block on the database.
	 * poll(), not select(): descriptors may be above FD_SETSIZE. */
	unsigned flags = MHD_USE_NO_LISTEN_SOCKET | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC |
	                 MHD_USE_ERROR_LOG;
	srv->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, http_access, srv, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, srv,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, opts->header_memory, MHD_OPTION_CONNECTION_TIMEOUT,
	    opts->timeout_s, MHD_OPTION_CONNECTION_LIMIT, opts->max_connections,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
	    http_notify_conn, srv, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_none, srv,
	    MHD_OPTION_END);
	if (srv->daemon == NULL) {
		*error_r = "cannot start the HTTP server (libmicrohttpd)";
		pthread_cond_destroy(&srv->idle);
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return NULL;
	}
	return srv;
}

void http_server_free(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	if (srv == NULL)
		return;
	/* Wake every bridge (its MHD side then sees EOF) and wait until none
	 * is left, so no one calls MHD_add_connection on a stopped daemon. */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	for (struct http_bridge_entry *e = srv->bridges; e != NULL; e = e->next)
		shutdown(e->our_fd, SHUT_RDWR);
	while (srv->nbridges > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	MHD_stop_daemon(srv->daemon);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	*srvp = NULL;
}

void http_format_bare_response(struct buf *out, unsigned status, bool tls)
{
	const char *reason = http_status_reason(status);
	buf_printf(out,
	           "HTTP/1.1 %u %s\r\nConnection: close\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n"
	           "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	           "Content-Security-Policy: " HTTP_CSP "\r\n"
	           "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
	           "X-Frame-Options: DENY\r\n%s\r\n%s\n",
	           status, reason, strlen(reason) + 1,
	           tls ? "Strict-Transport-Security: " HTTP_HSTS "\r\n" : "", reason);
}
