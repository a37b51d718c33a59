/* test-webadmin.c - the parts of webadmin/ that parse client input without a
 * server: the session cookie, JSON fields (errors naming the field), and the
 * joined route table. The API itself is tested over HTTPS in
 * tests/integration/test_webadmin_api.py. */
#include "unit.h"

#include "arena.h"
#include "webadmin-private.h"
#include "xalloc.h"

#include <stdlib.h>

#define TOK  "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"
#define NAME WA_SESSION_COOKIE "="

static const struct {
	const char *header;
	const char *token; /* NULL: none found */
} cookie_cases[] = {
    {NAME TOK, TOK},
    {"a=1; " NAME TOK, TOK},
    {"a=1;" NAME TOK "; b=2", TOK},
    {NAME TOK ";", TOK},
    {NULL, NULL},
    {"", NULL},
    {";;; ", NULL},
    {NAME, NULL},
    {NAME TOK "0", NULL},                                                           /* too long */
    {NAME "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", NULL}, /* short */
    {NAME "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL},
    {"x" NAME TOK, NULL},                /* another cookie's name ending like ours */
    {"__host-roost_session=" TOK, NULL}, /* names are case-sensitive */
    {NAME "=" TOK, NULL},
    {NAME " " TOK, NULL},
};

UNIT_TEST(test_cookie_token)
{
	for (size_t i = 0; i < sizeof(cookie_cases) / sizeof(cookie_cases[0]); i++) {
		char tok[WA_TOKEN_HEX + 1] = "";
		bool found = wa_cookie_token(cookie_cases[i].header, tok);
		CHECK_INT(found, cookie_cases[i].token != NULL);
		if (found && cookie_cases[i].token != NULL)
			CHECK_STR(tok, cookie_cases[i].token);
	}
}

/* A response with an arena, as the server gives handlers. */
static void resp_init(struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	r->arena = arena_new(4096);
	r->status = 200;
	buf_init(&r->body, BUF_NO_LIMIT);
}

static void resp_free(struct http_response *r)
{
	buf_free(&r->body);
	arena_destroy(&r->arena);
}

/* Expected: 0 with the value, or 1 with a 400 whose JSON names the field. */
static const struct {
	const char *json;
	bool required;
	int expect;
	const char *value; /* for 0 */
} str_cases[] = {
    {"{\"f\":\"abc\"}", true, 0, "abc"},
    {"{\"f\":\"\"}", false, 0, ""},
    {"{}", false, 0, NULL},
    {"{\"f\":null}", false, 0, NULL},
    {"{}", true, 1, NULL},
    {"{\"f\":\"\"}", true, 1, NULL},
    {"{\"f\":5}", true, 1, NULL},
    {"{\"f\":[\"a\"]}", true, 1, NULL},
    {"{\"f\":\"a\\u0007b\"}", true, 1, NULL},
    {"{\"f\":\"a\\rb\"}", true, 1, NULL},
    {"{\"f\":\"0123456789\"}", true, 1, NULL}, /* over the 8-byte limit */
    {"{\"f\":\"01234567\"}", true, 0, "01234567"},
    {"{\"f\":\"caf\\u00e9\"}", true, 0, "caf\xc3\xa9"},
};

UNIT_TEST(test_field_str)
{
	for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
		struct http_response resp;
		resp_init(&resp);
		json_t *o = json_loads(str_cases[i].json, 0, NULL);
		const char *v = "unset";
		CHECK(o != NULL);
		int r = wa_field_str(o, "f", str_cases[i].required, 8, &resp, &v);
		CHECK_INT(r, str_cases[i].expect);
		if (r == 0 && str_cases[i].value == NULL)
			CHECK(v == NULL);
		else if (r == 0)
			CHECK_STR(v, str_cases[i].value);
		else
			CHECK(resp.status == 400 &&
			      strstr(buf_cstr(&resp.body), "\"field\":\"f\"") != NULL);
		json_decref(o);
		resp_free(&resp);
	}
}

static const struct {
	const char *json;
	int expect;
	bool present;
	uint64_t value;
} size_cases[] = {
    {"{\"q\":0}", 0, true, 0},
    {"{\"q\":1048576}", 0, true, 1048576},
    {"{\"q\":\"2G\"}", 0, true, 2ull << 30},
    {"{\"q\":\"500M\"}", 0, true, 500ull << 20},
    {"{}", 0, false, 0},
    {"{\"q\":-1}", 1, true, 0},
    {"{\"q\":1.5}", 1, true, 0},
    {"{\"q\":\"lots\"}", 1, true, 0},
    {"{\"q\":\"2Q\"}", 1, true, 0},
    {"{\"q\":\"99999999999T\"}", 1, true, 0},
    {"{\"q\":true}", 1, true, 0},
};

UNIT_TEST(test_field_size)
{
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		struct http_response resp;
		resp_init(&resp);
		json_t *o = json_loads(size_cases[i].json, 0, NULL);
		bool present = false;
		uint64_t v = 0;
		int r = wa_field_size(o, "q", &resp, &present, &v);
		CHECK_INT(r, size_cases[i].expect);
		CHECK_INT(present, size_cases[i].present);
		if (r == 0 && present)
			CHECK(v == size_cases[i].value);
		if (r != 0)
			CHECK(strstr(buf_cstr(&resp.body), "\"field\":\"q\"") != NULL);
		json_decref(o);
		resp_free(&resp);
	}
}

UNIT_TEST(test_field_bool)
{
	struct http_response resp;
	resp_init(&resp);
	json_t *o = json_loads("{\"a\":true,\"b\":false,\"c\":\"yes\",\"d\":1}", 0, NULL);
	bool present, v;
	CHECK(wa_field_bool(o, "a", &resp, &present, &v) == 0 && present && v);
	CHECK(wa_field_bool(o, "b", &resp, &present, &v) == 0 && present && !v);
	CHECK(wa_field_bool(o, "z", &resp, &present, &v) == 0 && !present);
	CHECK(wa_field_bool(o, "c", &resp, &present, &v) == 1 && resp.status == 400);
	CHECK(wa_field_bool(o, "d", &resp, &present, &v) == 1);
	json_decref(o);
	resp_free(&resp);
}

static int host_calls;
static void *host_seen_ctx;

static int host_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)resp;
	host_calls++;
	host_seen_ctx = ctx;
	return 0;
}

UNIT_TEST(test_mount_joins_host_routes)
{
	static const struct http_route host[] = {
	    {"GET", "/healthz", host_handler, HTTP_ROUTE_NO_BODY | HTTP_ROUTE_APP(1)},
	};
	struct webadmin *wa = xcalloc(1, sizeof(*wa));
	size_t nours, n;
	webadmin_routes(&nours);
	const struct http_route *routes = webadmin_mount(wa, host, 1, &host_calls, &n);
	CHECK(n == nours + 1);
	CHECK_STR(routes[0].pattern, "/healthz");
	/* The host's row keeps its own flags but none of ours. */
	CHECK(routes[0].flags == HTTP_ROUTE_NO_BODY);
	struct http_request req = {.route = &routes[0]};
	struct http_response resp;
	resp_init(&resp);
	CHECK(routes[0].handler(&req, &resp, wa) == 0);
	CHECK(host_calls == 1 && host_seen_ctx == &host_calls);
	/* Every API row needs a role, except sign-in and setup. */
	for (size_t i = 1; i < n; i++)
		if (strncmp(routes[i].pattern, "/api/", 5) == 0 &&
		    strcmp(routes[i].pattern, "/api/v1/session") != 0 &&
		    strcmp(routes[i].pattern, "/api/v1/setup") != 0)
			CHECK(routes[i].flags & (WA_USER | WA_ADMIN));
	resp_free(&resp);
	webadmin_free(&wa);
	CHECK(wa == NULL);
}
