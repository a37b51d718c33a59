/* http-route.c - matching a request path against the route table. */
#include "http-private.h"

#include "arena.h"

#include <string.h>
#include <strings.h>

static int http_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http_percent_decode(struct arena *arena, const char *s, size_t n, bool plus_is_space, char **r)
{
	/* Decoding never makes text longer, so n + 1 bytes always suffice. */
	char *out = arena_alloc(arena, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (n - i < 3)
				return -1;
			int hi = http_hex(s[i + 1]), lo = http_hex(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		} else if (c == '\0') {
			return -1;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*r = out;
	return 0;
}

bool http_path_chars_ok(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/* Splits path into decoded segments (after the leading '/'), refusing
 * "." and ".." so no handler ever has to think about traversal. */
static int http_path_split(struct arena *arena, const char *path, char ***segs_r, size_t *n_r)
{
	size_t n = 1;
	for (const char *p = path + 1; *p != '\0'; p++)
		n += *p == '/';
	char **segs = arena_alloc(arena, n * sizeof(*segs));
	const char *s = path + 1;
	for (size_t i = 0; i < n; i++) {
		const char *e = strchr(s, '/');
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
		if (http_percent_decode(arena, s, len, false, &segs[i]) < 0)
			return -1;
		if (strcmp(segs[i], ".") == 0 || strcmp(segs[i], "..") == 0)
			return -1;
		s = e != NULL ? e + 1 : s + len;
	}
	*segs_r = segs;
	*n_r = n;
	return 0;
}

static void http_match_add(struct http_match *m, const char *name, size_t len, char *value)
{
	m->params[m->nparams].name = name;
	m->params[m->nparams].name_len = len;
	m->params[m->nparams].value = value;
	m->nparams++;
}

/* Joins segs[from..n) with '/' for the "*" parameter. */
static char *http_join_rest(struct arena *arena, char **segs, size_t from, size_t n)
{
	size_t len = 0;
	for (size_t i = from; i < n; i++)
		len += strlen(segs[i]) + 1;
	char *out = arena_alloc(arena, len + 1);
	size_t o = 0;
	for (size_t i = from; i < n; i++) {
		if (i > from)
			out[o++] = '/';
		size_t l = strlen(segs[i]);
		memcpy(out + o, segs[i], l);
		o += l;
	}
	out[o] = '\0';
	return out;
}

/* Does pattern match the decoded segments? Fills m->params on success. */
static bool http_pattern_match(const char *pattern, char **segs, size_t n, struct arena *arena,
                               struct http_match *m)
{
	const char *p = pattern + (pattern[0] == '/');
	size_t i = 0;
	m->nparams = 0;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t plen = e != NULL ? (size_t)(e - p) : strlen(p);
		if (e == NULL && plen == 1 && p[0] == '*') {
			http_match_add(m, "*", 1, http_join_rest(arena, segs, i, n));
			return true;
		}
		if (i >= n)
			return false;
		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			if (segs[i][0] == '\0' || m->nparams >= HTTP_MAX_PARAMS)
				return false;
			http_match_add(m, p + 1, plen - 2, segs[i]);
		} else if (strlen(segs[i]) != plen || memcmp(segs[i], p, plen) != 0) {
			return false;
		}
		i++;
		if (e == NULL)
			return i == n;
		p = e + 1;
	}
}

static bool http_method_matches(const char *route_method, const char *method)
{
	if (strcmp(route_method, "*") == 0 || strcmp(route_method, method) == 0)
		return true;
	return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void http_allow_add(char *allow, size_t size, const char *method)
{
	/* Each method once, in table order. */
	size_t ml = strlen(method);
	for (const char *p = allow; (p = strstr(p, method)) != NULL; p += ml)
		if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
			return;
	size_t used = strlen(allow);
	if (size - used < ml + 3)
		return;
	if (used > 0) {
		memcpy(allow + used, ", ", 2);
		used += 2;
	}
	memcpy(allow + used, method, ml + 1);
}

enum http_route_result http_route_find(const struct http_route *routes, size_t n,
                                       const char *method, const char *path, struct arena *arena,
                                       struct http_match *r)
{
	char **segs;
	size_t nsegs;
	memset(r, 0, sizeof(*r));
	if (!http_path_chars_ok(path) || http_path_split(arena, path, &segs, &nsegs) < 0)
		return HTTP_ROUTE_BAD_PATH;
	char allow[256] = "";
	bool path_seen = false;
	struct http_match m;
	for (size_t i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		if (!http_pattern_match(routes[i].pattern, segs, nsegs, arena, &m))
			continue;
		if (http_method_matches(routes[i].method, method)) {
			*r = m;
			r->route = &routes[i];
			return HTTP_ROUTE_FOUND;
		}
		path_seen = true;
		http_allow_add(allow, sizeof(allow), routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			http_allow_add(allow, sizeof(allow), "HEAD");
	}
	if (!path_seen)
		return HTTP_ROUTE_NOT_FOUND;
	r->allow = arena_strdup(arena, allow);
	return HTTP_ROUTE_BAD_METHOD;
}

int http_json_append_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (buf_append_char(b, '"') < 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		int rc;
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			rc = buf_append(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			rc = buf_append(b, esc, 6);
		} else {
			rc = buf_append_char(b, (char)*p);
		}
		if (rc < 0)
			return -1;
	}
	return buf_append_char(b, '"');
}
