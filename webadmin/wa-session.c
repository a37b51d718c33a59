/* wa-session.c - sign-in and sign-out, session lookup for the guard,
 * throttling of failed sign-ins, the first-run setup link, and the signed-in
 * account's own page (/api/v1/me). */
#include "webadmin-private.h"

#include "log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WA_STR(x)  WA_STR_(x)
#define WA_STR_(x) #x

/* ---- cookie and session rows ---- */

bool wa_cookie_token(const char *h, char token[WA_TOKEN_HEX + 1])
{
	const char *name = WA_SESSION_COOKIE "=";
	size_t nlen = strlen(name);
	while (h != NULL && *h != '\0') {
		while (*h == ' ' || *h == ';')
			h++;
		size_t len = strcspn(h, ";");
		if (len == nlen + WA_TOKEN_HEX && strncmp(h, name, nlen) == 0) {
			for (size_t i = 0; i < WA_TOKEN_HEX; i++)
				if (!isxdigit((unsigned char)h[nlen + i]))
					return false;
			memcpy(token, h + nlen, WA_TOKEN_HEX);
			token[WA_TOKEN_HEX] = '\0';
			return true;
		}
		h += len;
	}
	return false;
}

int wa_session_lookup(struct webadmin *wa, const struct http_request *req, struct wa_auth *r)
{
	char token[WA_TOKEN_HEX + 1];
	if (!wa_cookie_token(http_request_header(req, "Cookie"), token))
		return 0;
	wa_sha256_bytea(token, r->token_bytea);
	OPENSSL_cleanse(token, sizeof(token));
	/* Slides the idle expiry at most once a minute, in the same round trip. */
	static const char sql[] =
	    "WITH touch AS (UPDATE web_sessions SET last_seen = now(), "
	    "  expires_at = LEAST(created_at + make_interval(secs => $2::int), "
	    "                     now() + make_interval(secs => $3::int)) "
	    "  WHERE token_sha256 = $1::bytea AND expires_at > now() "
	    "    AND last_seen < now() - make_interval(secs => $4::int)) "
	    "SELECT a.id, a.address, a.display_name, a.is_admin, s.csrf_token "
	    "FROM web_sessions s JOIN accounts a ON a.id = s.account_id "
	    "WHERE s.token_sha256 = $1::bytea AND s.expires_at > now() AND NOT a.disabled";
	char max_s[24], idle_s[24];
	snprintf(max_s, sizeof(max_s), "%u", wa->session_max_s);
	snprintf(idle_s, sizeof(idle_s), "%u", wa->session_idle_s);
	const char *params[] = {r->token_bytea, max_s, idle_s, WA_STR(WA_SESSION_TOUCH_S)};
	PGresult *res = wa_db_exec(wa, sql, 4, params);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found) {
		r->account_id = wa_db_int(res, 0, 0);
		snprintf(r->address, sizeof(r->address), "%s", PQgetvalue(res, 0, 1));
		snprintf(r->display_name, sizeof(r->display_name), "%s", PQgetvalue(res, 0, 2));
		r->admin = PQgetvalue(res, 0, 3)[0] == 't';
		snprintf(r->csrf, sizeof(r->csrf), "%s", PQgetvalue(res, 0, 4));
	}
	PQclear(res);
	return found;
}

void wa_sessions_end(struct webadmin *wa, int64_t account_id, const char *keep_bytea)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = {id, keep_bytea != NULL ? keep_bytea : "\\x00"};
	PQclear(wa_db_exec(
	    wa, "DELETE FROM web_sessions WHERE account_id = $1 AND token_sha256 <> $2::bytea", 2,
	    params));
}

static void wa_set_cookie(struct http_response *resp, const char *token, unsigned max_age)
{
	char c[256];
	snprintf(c, sizeof(c), "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%u",
	         WA_SESSION_COOKIE, token, max_age);
	http_response_add_header(resp, "Set-Cookie", c);
}

static json_t *wa_session_json(const char *address, const char *name, bool admin, const char *csrf)
{
	return json_pack("{s:s, s:s, s:b, s:s}", "address", address, "display_name", name, "admin",
	                 admin, "csrf_token", csrf);
}

/* A new session row for the account; answers 200 with the cookie. */
int wa_session_start(struct webadmin *wa, const struct http_request *req,
                     struct http_response *resp, const struct directory_account *acct)
{
	char token[WA_TOKEN_HEX + 1], csrf[WA_TOKEN_HEX + 1], hash[67], id[24], idle_s[24];
	if (wa_random_hex(token, WA_TOKEN_BYTES) < 0 || wa_random_hex(csrf, WA_TOKEN_BYTES) < 0)
		return -1;
	wa_sha256_bytea(token, hash);
	snprintf(id, sizeof(id), "%lld", (long long)acct->id);
	snprintf(idle_s, sizeof(idle_s), "%u", wa->session_idle_s);
	const char *params[] = {hash, id, csrf, req->peer_ip, idle_s};
	PQclear(wa_db_exec(wa, "DELETE FROM web_sessions WHERE expires_at < now()", 0, NULL));
	PGresult *res = wa_db_exec(
	    wa,
	    "INSERT INTO web_sessions (token_sha256, account_id, csrf_token, peer_ip, expires_at) "
	    "VALUES ($1::bytea, $2, $3, $4, now() + make_interval(secs => $5::int))",
	    5, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	wa_set_cookie(resp, token, wa->session_max_s);
	OPENSSL_cleanse(token, sizeof(token));
	atomic_fetch_add(&wa->signins, 1);
	log_info("event=web_signin user=%s admin=%s peer=%s", acct->address,
	         acct->is_admin ? "yes" : "no", req->peer_ip);
	return wa_json(resp, 200,
	               wa_session_json(acct->address, acct->display_name, acct->is_admin, csrf));
}

/* ---- throttling ---- */

static void wa_account_key(const char *address, char out[ADDRESS_BUF_SIZE + 8])
{
	size_t n = snprintf(out, ADDRESS_BUF_SIZE + 8, "account:%s", address);
	for (size_t i = 8; i < n && out[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
}

/* 1 when the peer or the account has used up its failed sign-ins. */
static int wa_throttled(struct webadmin *wa, const char *ip_key, const char *acct_key)
{
	char window[24];
	snprintf(window, sizeof(window), "%u", wa->signin_window_s);
	const char *params[] = {ip_key, acct_key, window};
	PGresult *res = wa_db_exec(wa,
	                           "SELECT coalesce(max(failures) FILTER (WHERE key = $1), 0), "
	                           "       coalesce(max(failures) FILTER (WHERE key = $2), 0) "
	                           "FROM web_login_failures WHERE key IN ($1, $2) "
	                           "AND window_start > now() - make_interval(secs => $3::int)",
	                           3, params);
	if (res == NULL)
		return -1;
	int r = wa_db_int(res, 0, 0) >= (int64_t)wa->signin_max_ip ||
	        wa_db_int(res, 0, 1) >= (int64_t)wa->signin_max_acct;
	PQclear(res);
	return r;
}

static void wa_failure_record(struct webadmin *wa, const char *ip_key, const char *acct_key)
{
	char window[24];
	snprintf(window, sizeof(window), "%u", wa->signin_window_s);
	const char *params[] = {ip_key, acct_key, window};
	PQclear(wa_db_exec(
	    wa,
	    "INSERT INTO web_login_failures AS f (key, failures, window_start) "
	    "VALUES ($1, 1, now()), ($2, 1, now()) ON CONFLICT (key) DO UPDATE SET "
	    "failures = CASE WHEN f.window_start > now() - make_interval(secs => $3::int) "
	    "  THEN f.failures + 1 ELSE 1 END, "
	    "window_start = CASE WHEN f.window_start > now() - make_interval(secs => $3::int) "
	    "  THEN f.window_start ELSE now() END",
	    3, params));
}

/* A failed attempt costs the client time: the configured delay with up
 * to a quarter of it at random, so timing tells nothing. */
static void wa_failure_delay(const struct webadmin *wa)
{
	unsigned jitter = 0;
	if (wa->auth_delay_ms >= 4)
		RAND_bytes((unsigned char *)&jitter, sizeof(jitter));
	unsigned ms =
	    wa->auth_delay_ms + (wa->auth_delay_ms >= 4 ? jitter % (wa->auth_delay_ms / 4) : 0);
	usleep((useconds_t)ms * 1000);
}

/* Answers a refused attempt: 429 with Retry-After (t > 0), or 503 when
 * the database could not say (t < 0). */
static void wa_throttled_answer(const struct webadmin *wa, const struct http_request *req,
                                struct http_response *resp, int t)
{
	if (t < 0) {
		wa_error(resp, 503, NULL, "database unavailable, try again shortly");
		return;
	}
	char retry[24], msg[96];
	unsigned minutes = (wa->signin_window_s + 59) / 60;
	snprintf(retry, sizeof(retry), "%u", wa->signin_window_s);
	snprintf(msg, sizeof(msg), "too many failed sign-ins, try again in %u minute%s", minutes,
	         minutes == 1 ? "" : "s");
	http_response_add_header(resp, "Retry-After", retry);
	log_info("event=web_signin_throttled peer=%s", req->peer_ip);
	wa_error(resp, 429, NULL, msg);
}

/* Checks address and password with throttling: 0 and *acct on success, or
 * 1 after answering (fail_status naming field, 429, 503). */
static int wa_check_password(struct webadmin *wa, const struct http_request *req,
                             struct http_response *resp, const char *address, const char *password,
                             const char *field, unsigned fail_status,
                             struct directory_account *acct)
{
	char ip_key[128], acct_key[ADDRESS_BUF_SIZE + 8];
	snprintf(ip_key, sizeof(ip_key), "ip:%s", req->peer_ip);
	wa_account_key(address, acct_key);
	int t = wa_throttled(wa, ip_key, acct_key);
	if (t != 0) {
		wa_throttled_answer(wa, req, resp, t);
		return 1;
	}
	switch (directory_authenticate(wa->dir, address, password, acct)) {
	case DIR_AUTH_OK: {
		const char *params[] = {acct_key};
		PQclear(wa_db_exec(wa, "DELETE FROM web_login_failures WHERE key = $1", 1, params));
		return 0;
	}
	case DIR_AUTH_TEMPFAIL:
		wa_error(resp, 503, NULL, "cannot check the password now, try again shortly");
		return 1;
	case DIR_AUTH_DISABLED:
	case DIR_AUTH_FAILED:
		break;
	}
	atomic_fetch_add(&wa->auth_failures, 1);
	wa_failure_record(wa, ip_key, acct_key);
	char q[LOG_QUOTE_MAX];
	log_info("event=web_signin_failed user=%s peer=%s", log_quote(q, sizeof(q), address),
	         req->peer_ip);
	wa_failure_delay(wa);
	wa_error(resp, fail_status, field,
	         fail_status == 401 ? "wrong address or password" : "wrong password");
	return 1;
}

/* ---- handlers ---- */

int wa_session_create(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *address, *password;
	struct directory_account acct;
	int r = 0;
	if (wa_field_str(o, "address", true, ADDRESS_MAX, resp, &address) == 0 &&
	    wa_field_str(o, "password", true, DIR_PASSWORD_MAX, resp, &password) == 0 &&
	    wa_check_password(wa, req, resp, address, password, "password", 401, &acct) == 0)
		r = wa_session_start(wa, req, resp, &acct);
	json_decref(o);
	return r;
}

int wa_session_get(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	const struct wa_auth *a = wa_auth_of(req);
	return wa_json(resp, 200, wa_session_json(a->address, a->display_name, a->admin, a->csrf));
}

int wa_session_delete(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const struct wa_auth *a = wa_auth_of(req);
	const char *params[] = {a->token_bytea};
	PGresult *res =
	    wa_db_exec(wa, "DELETE FROM web_sessions WHERE token_sha256 = $1::bytea", 1, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	wa_set_cookie(resp, "", 0);
	log_info("event=web_signout user=%s", a->address);
	return wa_json(resp, 200, json_pack("{s:b}", "signed_out", 1));
}

int wa_me_get(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const struct wa_auth *a = wa_auth_of(req);
	struct directory_account acct;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_account_get_by_id(wa->dir, a->account_id, &acct, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, NULL);
		return 0;
	}
	return wa_json(resp, 200,
	               json_pack("{s:s, s:s, s:b, s:I, s:I}", "address", acct.address,
	                         "display_name", acct.display_name, "admin", acct.is_admin,
	                         "quota_bytes", (json_int_t)acct.quota_bytes, "used_bytes",
	                         (json_int_t)acct.used_bytes));
}

int wa_me_password(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const struct wa_auth *a = wa_auth_of(req);
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *cur, *next;
	struct directory_account acct;
	char err[DIR_ERROR_SIZE];
	if (wa_field_str(o, "current_password", true, DIR_PASSWORD_MAX, resp, &cur) == 0 &&
	    wa_field_str(o, "new_password", true, DIR_PASSWORD_MAX, resp, &next) == 0 &&
	    wa_check_password(wa, req, resp, a->address, cur, "current_password", 400, &acct) ==
	        0) {
		enum directory_err e =
		    directory_account_set_password(wa->dir, a->address, next, err);
		if (e != DIR_OK) {
			wa_dir_error(resp, e, err, "new_password");
		} else {
			/* Whoever else held this account's sessions is signed out. */
			wa_sessions_end(wa, a->account_id, a->token_bytea);
			log_info("event=web_password_changed user=%s", a->address);
			wa_json(resp, 200, json_pack("{s:b}", "changed", 1));
		}
	}
	json_decref(o);
	return 0;
}
