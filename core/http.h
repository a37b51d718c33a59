/* http.h - the HTTP server (libmicrohttpd) and its route table.
 *
 * Roost's HTTP applications (admin API, browser UI, CalDAV, /metrics,
 * /healthz) are rows of one route table handed to http_server_new(). TLS and
 * connection limits stay where every other protocol has them, in core/conn
 * and core/server: http_session() is a server_protocol session function that
 * bridges its (TLS) conn to libmicrohttpd through a socketpair, so MHD only
 * ever parses plain HTTP. The client's real address is handed to MHD.
 *
 *   client --TLS-- conn (session thread: http_session pumps bytes)
 *                    <--socketpair--> MHD (one MHD thread per connection)
 *                                       -> generic step -> route handler
 *
 * Each HTTP connection has its own MHD thread (MHD_USE_THREAD_PER_CONNECTION),
 * so a handler may block (database, directory) without stalling other
 * clients, as every other Roost session does (DESIGN.md "Threads, not
 * callbacks").
 *
 * The generic step, run before any handler (STYLE.md "Commands live in a
 * table"), answers by itself:
 *   400  method not a token, path not absolute, control bytes or a "." /
 *        ".." segment or %00 in the path, HTTP/1.1 without Host;
 *   404  no route matches the path;
 *   405  a route matches the path but not the method (with Allow);
 *   413  Content-Length above the route's limit (at once, before the body is
 *        read; the connection is then closed) or a chunked body growing past
 *        it (read to its end and dropped, so the connection stays in step);
 *   301  everything, in redirect-only mode (the plain http listener);
 *   the guard's answer, when opts.guard refuses;
 *   500  with an error id in body and log, when a handler returns -1.
 * HEAD is served by the GET route (MHD drops the body, keeps the headers).
 * Requests MHD itself refuses (headers over the memory limit: 431, a
 * request line over it: 414, bad Content-Length: 400, unsupported version:
 * 505) get MHD's own answer, without our headers; a first request MHD closes
 * without any answer (an unparsable request line) gets a 400 from the
 * bridge. A request that stalls or trickles past its deadline (the conn's
 * limits; the handler's time counts until its answer starts) gets 408.
 *
 * Every response carries the security headers (CSP, nosniff, no-referrer,
 * X-Frame-Options DENY), Strict-Transport-Security when the connection is
 * TLS, and "Cache-Control: no-store" unless the handler set its own
 * Cache-Control.
 *
 * One log line per request:
 *   event=http method=GET path="/x" status=200 bytes=12 duration_ms=3 peer=192.0.2.1
 * with the conn's session id, so it joins the server's connect/disconnect
 * lines. */
#ifndef ROOST_HTTP_H
#define ROOST_HTTP_H

#include "buf.h"
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct conn;
struct http_server;
struct http_request_private;

/* Largest number of {param} segments in one pattern. */
#define HTTP_MAX_PARAMS 8

/* Security headers sent with every response (also used by tests). */
#define HTTP_CSP                                                                                   \
	"default-src 'self'; script-src 'self'; style-src 'self'; "                                \
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "                          \
	"form-action 'self'"
#define HTTP_HSTS "max-age=31536000"

struct http_request {
	const char *method;             /* as sent: "GET", "HEAD", "PROPFIND"... */
	const char *path;               /* as sent (still percent-encoded), no query */
	const char *peer_ip;            /* "192.0.2.1", "2001:db8::1", "local" */
	const char *session_id;         /* the conn's, e.g. "https-1f3a9c02" */
	bool tls;                       /* the client's connection is TLS */
	const struct http_route *route; /* the row that matched */
	/* The request body, at most the route's limit (see http_options);
	 * data is NULL when there was none (buf_cstr() gives ""). Handlers
	 * may keep it (buf_steal) or leave it to be freed. */
	struct buf body;
	/* Freed when the response has been sent: handler allocations that
	 * the response points to (header values, type) may live here. */
	struct arena *arena;
	struct http_request_private *priv;
};

struct http_response_header;

struct http_response {
	unsigned status;          /* default 200 */
	const char *content_type; /* default "text/plain; charset=utf-8" */
	/* Body bytes; handlers may append directly (buf_append, buf_printf).
	 * Ignored when static_body is set. */
	struct buf body;
	const void *static_body; /* bytes that outlive the server (embedded UI) */
	size_t static_len;
	struct http_response_header *headers; /* extra headers, in the arena */
	struct arena *arena;                  /* the request's */
	bool has_cache_control;
};

/* Route flags, low 16 bits: ours. High 16 bits (HTTP_ROUTE_APP(n)): the
 * application's, read only by its guard (e.g. "admin login required"). */
#define HTTP_ROUTE_LARGE_BODY 0x1u              /* body limit opts.max_body_large */
#define HTTP_ROUTE_NO_BODY    0x2u              /* any body at all is refused with 413 */
#define HTTP_ROUTE_APP(n)     (0x10000u << (n)) /* n in 0..15 */

/* Handler: fill resp and return 0; return -1 for an internal failure (the
 * response is then replaced by a 500 carrying an error id that is logged).
 * ctx is opts.ctx. Client mistakes are answered with 4xx and return 0. */
typedef int http_handler_fn(struct http_request *req, struct http_response *resp, void *ctx);

struct http_route {
	/* "GET", "POST", ...; "*" matches every method. A GET row also
	 * serves HEAD. */
	const char *method;
	/* "/api/v1/accounts/{id}": literal segments compare with the
	 * percent-decoded path segment; {name} matches one non-empty
	 * segment, decoded, fetched with http_request_param(req, "name"); a
	 * last segment "*" matches the rest of the path (zero or more
	 * segments), fetched as http_request_param(req, "*") (decoded,
	 * segments joined with '/'). */
	const char *pattern;
	http_handler_fn *handler;
	unsigned flags;
};

struct http_options {
	const char *name;      /* "https" or "http"; in MHD log lines */
	size_t max_body;       /* body limit of ordinary routes */
	size_t max_body_large; /* for HTTP_ROUTE_LARGE_BODY routes */
	size_t header_memory;  /* MHD memory per connection: request line,
	                        * headers, and response headers */
	unsigned timeout_s;    /* MHD's own inactivity backstop; the bridge
	                        * applies the conn's limits first */
	unsigned max_connections;
	/* Redirect-only mode: every request gets a 301 to
	 * https://<Host without port>[:redirect_port]<path and query>
	 * (redirect_host when Host is missing or not a valid host name). */
	bool redirect_only;
	unsigned redirect_port; /* 443 is left out of the URL */
	const char *redirect_host;
	/* Runs after a route matched and before its handler, for every
	 * route (it reads route->flags). Returns 0 to go on, or 1 after
	 * filling resp with the refusal (401, 403...), or -1 on an internal
	 * failure (500). May be NULL. */
	int (*guard)(struct http_request *req, struct http_response *resp, void *ctx);
	void *ctx; /* passed to handlers and guard */
};

/* Options from [limits]: max_body 1 MiB, max_body_large message_size,
 * header_memory line_length + 16 KiB, timeout_s idle_timeout +
 * request_deadline, max_connections connections; redirect_host the
 * [server] hostname. */
void http_options_from_config(const struct config *cfg, struct http_options *r);

/* Starts the MHD daemon (no listening socket of its own). routes must stay
 * valid while the server runs (a static table). NULL with *error_r (static
 * text) if MHD cannot start. */
struct http_server *http_server_new(const struct http_route *routes, size_t n,
                                    const struct http_options *opts, const char **error_r);
/* Ends every bridged connection, stops MHD (waiting for handlers in flight)
 * and frees the server. Sets *srv to NULL. Call after server_run returned,
 * or at least after the listener stopped handing it connections. */
void http_server_free(struct http_server **srv);

/* server_protocol session function; ctx is the struct http_server. Serves
 * the conn's HTTP requests until either side closes, the conn's idle
 * timeout or a request deadline passes, or the server stops (a request in
 * flight is answered first). */
void http_session(struct conn *c, void *ctx);

/* --- Request --- */

/* Value of {name} (or "*") in the matched pattern, percent-decoded; NULL if
 * the pattern has no such parameter. Valid until the response is sent. */
const char *http_request_param(const struct http_request *req, const char *name);
/* First value of query argument name, percent-decoded ("+" is a space);
 * "" for an argument without "=", NULL if absent. */
const char *http_request_query(const struct http_request *req, const char *name);
/* Calls fn with every query argument, decoded as by http_request_query()
 * (or every {param} of the matched pattern, as by http_request_param()),
 * until it returns non-zero; returns that value, or 0. */
int http_request_query_each(const struct http_request *req,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx);
int http_request_param_each(const struct http_request *req,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* Request header value (name compared case-insensitively); NULL if absent. */
const char *http_request_header(const struct http_request *req, const char *name);

/* --- Response builder --- */

void http_response_set_status(struct http_response *resp, unsigned status);
/* type is copied. */
void http_response_set_type(struct http_response *resp, const char *type);
/* Adds a header (both copied). -1, adding nothing, if name is not an HTTP
 * token or value holds CR, LF or other control bytes. */
int http_response_add_header(struct http_response *resp, const char *name, const char *value);
/* Body from bytes that stay valid for the life of the process. */
void http_response_body_static(struct http_response *resp, const void *p, size_t n);
/* Body from b: its bytes are moved into the response, b is left empty. */
void http_response_body_buf(struct http_response *resp, struct buf *b);
/* status, "application/json", body = json (copied). */
void http_response_json(struct http_response *resp, unsigned status, const char *json);
/* status, "text/plain; charset=utf-8", body = text (copied). */
void http_response_text(struct http_response *resp, unsigned status, const char *text);
/* status and {"error":"<message>"} (message JSON-escaped). */
void http_response_error(struct http_response *resp, unsigned status, const char *message);
/* status (301, 302, 303, 307, 308) with Location; -1 if location holds
 * control bytes. */
int http_response_redirect(struct http_response *resp, unsigned status, const char *location);

/* Appends s as a JSON string (with quotes), escaping '"', '\\' and control
 * bytes; other bytes are copied as they are. */
int http_json_append_string(struct buf *b, const char *s);

/* --- Router (used by the server; exposed for tests and tools) --- */

struct http_match {
	const struct http_route *route; /* NULL: no row matched */
	size_t nparams;
	struct {
		const char *name; /* points into the pattern */
		size_t name_len;
		char *value; /* decoded, in the arena */
	} params[HTTP_MAX_PARAMS + 1];
	/* When only the method failed: Allow header value ("GET, HEAD, POST"),
	 * in the arena; NULL otherwise. */
	const char *allow;
};

enum http_route_result {
	HTTP_ROUTE_FOUND = 0,
	HTTP_ROUTE_BAD_PATH,   /* 400: see the generic step above */
	HTTP_ROUTE_NOT_FOUND,  /* 404 */
	HTTP_ROUTE_BAD_METHOD, /* 405, match->allow set */
};

/* Finds the first row matching method and raw path (percent-encoded, no
 * query). Allocates the decoded parameters from arena. */
enum http_route_result http_route_find(const struct http_route *routes, size_t n,
                                       const char *method, const char *path, struct arena *arena,
                                       struct http_match *r);
/* Percent-decodes n bytes of s into the arena ("+" stays "+" unless
 * plus_is_space). -1 on a bad %-escape or a decoded NUL. */
int http_percent_decode(struct arena *arena, const char *s, size_t n, bool plus_is_space, char **r);

#endif
