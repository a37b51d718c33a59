/* webadmin.h - browser administration: the admin API (/api/v1, JSON), the
 * embedded single-page UI (/, /ui/...) and /metrics, as rows of the HTTP
 * route table of core/http.h.
 *
 * Sign-in is a session: POST /api/v1/session checks the address and
 * password with directory_authenticate() and sets the cookie
 * "__Host-roost_session" (HttpOnly, Secure, SameSite=Strict) whose token's
 * SHA-256 is a row of web_sessions (db/migrations/008_webadmin.sql) with an
 * idle and an absolute expiry. Every state-changing request of a signed-in
 * user carries the session's CSRF token in the X-CSRF-Token header. Failed
 * sign-ins are delayed and counted per IP and per account.
 *
 * Roles: routes are public (UI files, sign-in, first-run setup), for any
 * signed-in account (its own page), for administrators, or /metrics
 * (administrators or loopback peers). webadmin_guard() enforces them from
 * the route flags before any handler runs; handlers never re-check.
 *
 * The API is documented in docs/api.md.
 *
 * Wiring (core/cli-serve.c): webadmin_new() once the pool and directory are
 * open; webadmin_mount() to join the host's own routes (/healthz) to ours;
 * http_server_new(routes, n, opts) with opts.guard = webadmin_guard and
 * opts.ctx = the struct webadmin; webadmin_free() after http_server_free(). */
#ifndef ROOST_WEBADMIN_H
#define ROOST_WEBADMIN_H

#include "config.h"
#include "directory.h"
#include "http.h"
#include "pool.h"

#include <stddef.h>

struct webadmin;

/* Keeps pool and dir (they must outlive the handle). When no administrator
 * exists yet and an https listener is configured, makes a one-time setup
 * token (valid 24 h) and logs the link that creates the first administrator
 * (event=setup_link). -1 with a static *error_r if the database cannot be
 * reached. */
int webadmin_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                 struct webadmin **wa_r, const char **error_r);
/* Sets *wa to NULL. Call after the HTTP server using it was freed. */
void webadmin_free(struct webadmin **wa);

/* Our rows (a static table); their handlers expect ctx = struct webadmin. */
const struct http_route *webadmin_routes(size_t *n_r);

/* The table to give http_server_new() with ctx = wa: the host's rows first
 * (their handlers are called with host_ctx, as if they were alone), then
 * ours. host may be NULL when n_host is 0. The table is owned by wa and
 * stays valid until webadmin_free(). Call once. */
const struct http_route *webadmin_mount(struct webadmin *wa, const struct http_route *host,
                                        size_t n_host, void *host_ctx, size_t *n_r);

/* http_options.guard; ctx is the struct webadmin. Refuses with 401 (no or
 * expired session), 403 (role, CSRF token, cross-site origin) or 503 (the
 * database is unreachable). Rows without our flags pass. */
int webadmin_guard(struct http_request *req, struct http_response *resp, void *ctx);

#endif
