/* webadmin.c - the route table, the guard that enforces its roles, and the
 * embedded UI files. */
#include "webadmin-private.h"

#include "log.h"
#include "utf8.h"
#include "xalloc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_GET    "GET"
#define R_POST   "POST"
#define R_PATCH  "PATCH"
#define R_PUT    "PUT"
#define R_DELETE "DELETE"

static const struct http_route wa_route_table[] = {
    {R_GET, "/", wa_ui_index, HTTP_ROUTE_NO_BODY},
    {R_GET, "/ui/{file}", wa_ui_file, HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/session", wa_session_create, WA_PUBLIC_POST},
    {R_GET, "/api/v1/session", wa_session_get, WA_USER | HTTP_ROUTE_NO_BODY},
    {R_DELETE, "/api/v1/session", wa_session_delete, WA_USER},
    {R_POST, "/api/v1/setup", wa_setup, WA_PUBLIC_POST},
    {R_GET, "/api/v1/me", wa_me_get, WA_USER | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/me/password", wa_me_password, WA_USER},
    {R_GET, "/api/v1/status", wa_status, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_GET, "/api/v1/stats/hourly", wa_stats_hourly, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_GET, "/api/v1/domains", wa_domains_list, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/domains", wa_domains_add, WA_ADMIN},
    {R_DELETE, "/api/v1/domains/{name}", wa_domains_remove, WA_ADMIN},
    {R_GET, "/api/v1/domains/{name}/dns", wa_domains_dns, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/domains/{name}/dkim", wa_domains_dkim_new, WA_ADMIN},
    {R_GET, "/api/v1/accounts", wa_accounts_list, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/accounts", wa_accounts_add, WA_ADMIN},
    {R_GET, "/api/v1/accounts/{address}", wa_accounts_get, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_PATCH, "/api/v1/accounts/{address}", wa_accounts_update, WA_ADMIN},
    {R_DELETE, "/api/v1/accounts/{address}", wa_accounts_remove, WA_ADMIN},
    {R_GET, "/api/v1/aliases", wa_aliases_list, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/aliases", wa_aliases_add, WA_ADMIN},
    {R_DELETE, "/api/v1/aliases/{address}", wa_aliases_remove, WA_ADMIN},
    {R_DELETE, "/api/v1/aliases/{address}/targets/{target}", wa_aliases_remove_target, WA_ADMIN},
    {R_GET, "/api/v1/queue", wa_queue_list, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_POST, "/api/v1/queue/{id}/retry", wa_queue_retry, WA_ADMIN},
    {R_DELETE, "/api/v1/queue/{id}", wa_queue_delete, WA_ADMIN},
    {R_GET, "/api/v1/ldap", wa_ldap_get, WA_ADMIN | HTTP_ROUTE_NO_BODY},
    {R_PUT, "/api/v1/ldap", wa_ldap_set, WA_ADMIN},
    {R_POST, "/api/v1/ldap", wa_ldap_set, WA_ADMIN},
    {R_POST, "/api/v1/ldap/test", wa_ldap_test, WA_ADMIN},
    {R_POST, "/api/v1/ldap/sync", wa_ldap_sync, WA_ADMIN},
    {R_GET, "/metrics", wa_metrics, WA_METRICS | HTTP_ROUTE_NO_BODY},
};

const struct http_route *webadmin_routes(size_t *n_r)
{
	*n_r = sizeof(wa_route_table) / sizeof(wa_route_table[0]);
	return wa_route_table;
}

int webadmin_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                 struct webadmin **wa_r, const char **error_r)
{
	struct webadmin *wa = xcalloc(1, sizeof(*wa));
	wa->pool = pool;
	wa->dir = dir;
	wa->started = time(NULL);
	wa->auth_delay_ms = (unsigned)config_uint(cfg, CFG_LIMITS_AUTH_FAILURE_DELAY_MS);
	wa->session_idle_s = (unsigned)config_uint(cfg, CFG_HTTP_SESSION_IDLE_TIMEOUT);
	wa->session_max_s = (unsigned)config_uint(cfg, CFG_HTTP_SESSION_MAX_AGE);
	wa->signin_window_s = (unsigned)config_uint(cfg, CFG_HTTP_SIGNIN_WINDOW);
	wa->signin_max_ip = (unsigned)config_uint(cfg, CFG_HTTP_SIGNIN_FAILURES_PER_IP);
	wa->signin_max_acct = (unsigned)config_uint(cfg, CFG_HTTP_SIGNIN_FAILURES_PER_ACCOUNT);
	wa->setup_link_s = (unsigned)config_uint(cfg, CFG_HTTP_SETUP_LINK_LIFETIME);
	snprintf(wa->hostname, sizeof(wa->hostname), "%s", config_str(cfg, CFG_SERVER_HOSTNAME));
	atomic_init(&wa->auth_failures, 0);
	atomic_init(&wa->signins, 0);
	if (wa_setup_announce(wa, cfg) < 0) {
		*error_r = "cannot read the administrators from the database";
		webadmin_free(&wa);
		return -1;
	}
	*wa_r = wa;
	return 0;
}

void webadmin_free(struct webadmin **wa)
{
	if (*wa == NULL)
		return;
	free((*wa)->routes);
	free(*wa);
	*wa = NULL;
}

/* A host row reached through the joined table: call its own handler with
 * its own ctx. The row's index in the joined table is its index in host. */
static int wa_host_trampoline(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	size_t i = (size_t)(req->route - wa->routes);
	if (i >= wa->nhost)
		return -1;
	return wa->host[i].handler(req, resp, wa->host_ctx);
}

const struct http_route *webadmin_mount(struct webadmin *wa, const struct http_route *host,
                                        size_t n_host, void *host_ctx, size_t *n_r)
{
	size_t nours;
	const struct http_route *ours = webadmin_routes(&nours);
	free(wa->routes);
	wa->routes = xreallocarray(NULL, n_host + nours, sizeof(*wa->routes));
	for (size_t i = 0; i < n_host; i++) {
		wa->routes[i] = host[i];
		wa->routes[i].handler = wa_host_trampoline;
		/* Host rows are never ours to guard. */
		wa->routes[i].flags &= 0xffffu;
	}
	memcpy(wa->routes + n_host, ours, nours * sizeof(*ours));
	wa->nroutes = n_host + nours;
	wa->host = host;
	wa->nhost = n_host;
	wa->host_ctx = host_ctx;
	*n_r = wa->nroutes;
	return wa->routes;
}

/* ---- the guard ---- */

static _Thread_local struct wa_auth wa_current;

const struct wa_auth *wa_auth_of(const struct http_request *req)
{
	/* Only the guard of this very request fills it. */
	if (wa_current.req != req)
		abort();
	return &wa_current;
}

static bool wa_is_loopback(const char *ip)
{
	return strcmp(ip, "127.0.0.1") == 0 || strncmp(ip, "127.", 4) == 0 ||
	       strcmp(ip, "::1") == 0 || strcmp(ip, "::ffff:127.0.0.1") == 0;
}

static bool wa_is_safe_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Public POSTs (sign-in, setup) have no session to carry a CSRF token:
 * a JSON content type (which a cross-site form cannot send without a CORS
 * preflight we never grant) and, when the browser sends one, an Origin
 * naming this host stand in for it. */
static int wa_guard_public_post(struct http_request *req, struct http_response *resp)
{
	const char *type = http_request_header(req, "Content-Type");
	if (type == NULL || !str_starts_ci(type, "application/json")) {
		wa_error(resp, 415, NULL, "Content-Type must be application/json");
		return 1;
	}
	const char *origin = http_request_header(req, "Origin");
	const char *host = http_request_header(req, "Host");
	if (origin != NULL &&
	    (host == NULL || !str_starts_ci(origin, "https://") || strcmp(origin + 8, host) != 0)) {
		wa_error(resp, 403, NULL, "cross-site request refused");
		return 1;
	}
	return 0;
}

static bool wa_csrf_ok(const struct http_request *req, const struct wa_auth *a)
{
	const char *sent = http_request_header(req, "X-CSRF-Token");
	if (sent == NULL || strlen(sent) != WA_TOKEN_HEX)
		return false;
	return CRYPTO_memcmp(sent, a->csrf, WA_TOKEN_HEX) == 0;
}

/* Signed-in routes: a live session, the role, and the CSRF token on every
 * state change. */
static int wa_guard_session(struct webadmin *wa, struct http_request *req,
                            struct http_response *resp, unsigned flags)
{
	int r = wa_session_lookup(wa, req, &wa_current);
	if (r < 0) {
		wa_error(resp, 503, NULL, "database unavailable, try again shortly");
		return 1;
	}
	if (r == 0) {
		wa_current.req = NULL;
		if ((flags & WA_METRICS) && wa_is_loopback(req->peer_ip))
			return 0;
		wa_error(resp, 401, NULL, "sign in required");
		return 1;
	}
	wa_current.req = req;
	if ((flags & (WA_ADMIN | WA_METRICS)) && !wa_current.admin) {
		if ((flags & WA_METRICS) && wa_is_loopback(req->peer_ip))
			return 0;
		wa_error(resp, 403, NULL, "administrator role required");
		return 1;
	}
	if (!wa_is_safe_method(req->method) && !wa_csrf_ok(req, &wa_current)) {
		wa_error(resp, 403, NULL, "missing or wrong X-CSRF-Token header");
		return 1;
	}
	return 0;
}

/* 0 if value is absent or UTF-8, else 1 after a 400 naming it. */
static int wa_guard_text(struct http_response *resp, const char *name, const char *value)
{
	if (value == NULL || utf8_valid(value, strlen(value)))
		return 0;
	/* The name is UTF-8 ("query" stands for one that is not): cut at a
	 * character, so that the reply stays JSON. */
	char msg[128];
	snprintf(msg, sizeof(msg), "%.*s must be valid UTF-8",
	         (int)utf8_cut(name, strlen(name), 64), name);
	wa_error(resp, 400, name, msg);
	return 1;
}

static int wa_guard_arg(void *ctx, const char *name, const char *value)
{
	struct http_response *resp = ctx;
	if (!utf8_valid(name, strlen(name)))
		return wa_guard_text(resp, "query", name);
	return wa_guard_text(resp, name, value);
}

/* Path {params} and query arguments go on to the directory and the
 * database, which take UTF-8 only (PostgreSQL fails the statement): check
 * them all here rather than in each handler. */
static int wa_guard_params(const struct http_request *req, struct http_response *resp)
{
	int r = http_request_param_each(req, wa_guard_arg, resp);
	return r != 0 ? r : http_request_query_each(req, wa_guard_arg, resp);
}

int webadmin_guard(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	unsigned flags = req->route->flags;
	int r;
	memset(&wa_current, 0, sizeof(wa_current));
	if (flags & WA_PUBLIC_POST)
		r = wa_guard_public_post(req, resp);
	else if (flags & (WA_USER | WA_ADMIN | WA_METRICS))
		r = wa_guard_session(wa, req, resp, flags);
	else
		return 0; /* the UI's files, and the host's rows */
	return r != 0 ? r : wa_guard_params(req, resp);
}

/* ---- the embedded UI ---- */

static int wa_ui_send(struct http_response *resp, const struct wa_ui_file *f)
{
	http_response_set_type(resp, f->type);
	http_response_add_header(resp, "Cache-Control", "no-cache");
	http_response_body_static(resp, f->data, f->len);
	return 0;
}

static const struct wa_ui_file *wa_ui_find(const char *name)
{
	for (size_t i = 0; i < wa_ui_files_count; i++)
		if (strcmp(wa_ui_files[i].name, name) == 0)
			return &wa_ui_files[i];
	return NULL;
}

int wa_ui_index(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	const struct wa_ui_file *f = wa_ui_find("index.html");
	if (f == NULL)
		return -1;
	return wa_ui_send(resp, f);
}

int wa_ui_file(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	const char *name = http_request_param(req, "file");
	const struct wa_ui_file *f = name != NULL ? wa_ui_find(name) : NULL;
	if (f == NULL || strcmp(name, "index.html") == 0) {
		http_response_error(resp, 404, "not found");
		return 0;
	}
	return wa_ui_send(resp, f);
}
