#include "address.h"

#include "utf8.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

bool address_utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static unsigned char to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* RFC 5322 atext, ASCII part. */
static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5321 qtextSMTP: printable ASCII except '"' and '\\'. */
static bool is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* Length of the dot-string at the start of s (stops at the first byte that
 * cannot continue it), or 0 with *error_r on a malformed dot-string. */
static size_t scan_dot_string(const char *s, size_t len, bool *utf8_r, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	bool after_dot = true; /* at the start, like after a dot */

	while (i < len) {
		if (p[i] == '.') {
			if (after_dot) {
				*error_r = i == 0 ? "local part starts with a dot"
				                  : "two dots in a row in the local part";
				return 0;
			}
			after_dot = true;
			i++;
			continue;
		}
		size_t n = 1;
		if (p[i] >= 0x80) {
			n = utf8_seq_len(p + i, len - i);
			if (n == 0) {
				*error_r = "invalid UTF-8 in the local part";
				return 0;
			}
			*utf8_r = true;
		} else if (!is_atext(p[i]))
			break;
		after_dot = false;
		i += n;
	}
	if (i == 0) {
		*error_r = "empty local part";
		return 0;
	}
	if (after_dot) {
		*error_r = "local part ends with a dot";
		return 0;
	}
	return i;
}

static bool is_dot_string(const char *s, size_t len)
{
	bool utf8 = false;
	const char *err;
	return len > 0 && scan_dot_string(s, len, &utf8, &err) == len;
}

/* Scans a quoted string starting at s[0] == '"', decoding its content into
 * out (room for ADDRESS_LOCAL_MAX + 1). Returns the bytes consumed including
 * both quotes, or 0 with *error_r. */
static size_t scan_quoted(const char *s, size_t len, char *out, size_t *outlen_r, bool *utf8_r,
                          const char **error_r)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 1, o = 0;

	while (i < len && p[i] != '"') {
		size_t n = 1;
		if (p[i] == '\\') {
			if (i + 1 >= len || p[i + 1] < 32 || p[i + 1] > 126) {
				*error_r = "bad escape in quoted local part";
				return 0;
			}
			i++;
		} else if (p[i] >= 0x80) {
			n = utf8_seq_len(p + i, len - i);
			if (n == 0) {
				*error_r = "invalid UTF-8 in the local part";
				return 0;
			}
			*utf8_r = true;
		} else if (!is_qtext(p[i])) {
			*error_r = "control character in quoted local part";
			return 0;
		}
		if (o + n > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return 0;
		}
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	if (i >= len) {
		*error_r = "unbalanced quote in local part";
		return 0;
	}
	out[o] = '\0';
	*outlen_r = o;
	return i + 1;
}

/* Writes the canonical form of a decoded quoted local part into r->local. */
static void canonical_quoted(const char *text, size_t len, struct address *r)
{
	size_t o = 0;

	if (is_dot_string(text, len)) {
		memcpy(r->local, text, len);
		r->local[len] = '\0';
		r->local_len = len;
		r->quoted = false;
		return;
	}
	/* Only '"' and '\\' need escaping; the input escaped at least those, so
	 * the result is never longer than what was written. */
	r->local[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '"' || text[i] == '\\')
			r->local[o++] = '\\';
		r->local[o++] = text[i];
	}
	r->local[o++] = '"';
	r->local[o] = '\0';
	r->local_len = o;
	r->quoted = true;
}

/* Parses the local part at the start of s; returns its length as written
 * (the next byte must be '@'), or 0 with *error_r. */
static size_t parse_local(const char *s, size_t len, struct address *r, const char **error_r)
{
	size_t n;

	if (len > 0 && s[0] == '"') {
		char text[ADDRESS_LOCAL_MAX + 1];
		size_t tlen = 0;
		n = scan_quoted(s, len, text, &tlen, &r->utf8, error_r);
		if (n == 0)
			return 0;
		if (n > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return 0;
		}
		canonical_quoted(text, tlen, r);
	} else {
		n = scan_dot_string(s, len, &r->utf8, error_r);
		if (n == 0)
			return 0;
		if (n > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return 0;
		}
		memcpy(r->local, s, n);
		r->local[n] = '\0';
		r->local_len = n;
	}
	if (n >= len || s[n] != '@') {
		*error_r = n >= len ? "missing '@'" : "invalid character in the local part";
		return 0;
	}
	return n;
}

/* Validates one label of len bytes. */
static bool domain_label_ok(const unsigned char *p, size_t len, bool *utf8_r)
{
	if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len;) {
		if (p[i] >= 0x80) {
			size_t n = utf8_seq_len(p + i, len - i);
			if (n == 0)
				return false;
			*utf8_r = true;
			i += n;
		} else if (is_alpha(p[i]) || is_digit(p[i]) || p[i] == '-')
			i++;
		else
			return false;
	}
	return true;
}

static bool domain_name_ok(const char *s, size_t len, bool *utf8_r)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = 0;

	if (len == 0 || len > ADDRESS_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '.') {
			if (!domain_label_ok(p + start, i - start, utf8_r))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* "[1.2.3.4]" or "[IPv6:...]" into r->domain. */
static int parse_literal(const char *s, size_t len, struct address *r, const char **error_r)
{
	char text[64];
	unsigned char bin[16];

	if (len < 2 || s[len - 1] != ']' || len - 2 >= sizeof(text) || memchr(s, '\0', len)) {
		*error_r = "malformed address literal";
		return -1;
	}
	size_t tlen = len - 2;
	bool v6 = tlen >= 5 && strncasecmp(s + 1, "IPv6:", 5) == 0;
	if (v6) {
		memcpy(text, s + 6, tlen - 5);
		text[tlen - 5] = '\0';
	} else {
		memcpy(text, s + 1, tlen);
		text[tlen] = '\0';
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, text, bin) != 1) {
		*error_r = v6 ? "malformed IPv6 address literal"
		              : "malformed or unsupported address literal";
		return -1;
	}
	size_t o = 0;
	r->domain[o++] = '[';
	if (v6) {
		memcpy(r->domain + o, "IPv6:", 5);
		o += 5;
	}
	for (size_t i = 0; text[i] != '\0'; i++)
		r->domain[o++] = (char)to_lower((unsigned char)text[i]);
	r->domain[o++] = ']';
	r->domain[o] = '\0';
	r->domain_len = o;
	r->domain_literal = true;
	return 0;
}

static int parse_domain(const char *s, size_t len, struct address *r, const char **error_r)
{
	if (len == 0) {
		*error_r = "empty domain";
		return -1;
	}
	if (memchr(s, '@', len) != NULL) {
		*error_r = "more than one '@'";
		return -1;
	}
	if (s[0] == '[')
		return parse_literal(s, len, r, error_r);
	if (len > ADDRESS_DOMAIN_MAX) {
		*error_r = "domain too long";
		return -1;
	}
	if (!domain_name_ok(s, len, &r->utf8)) {
		*error_r = "invalid domain";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		r->domain[i] = (char)to_lower((unsigned char)s[i]);
	r->domain[len] = '\0';
	r->domain_len = len;
	return 0;
}

int address_parse(const char *s, size_t len, struct address *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	if (len == 0) {
		*error_r = "empty address";
		return -1;
	}
	if (len > ADDRESS_MAX) {
		*error_r = "address too long";
		return -1;
	}
	size_t n = parse_local(s, len, r, error_r);
	if (n == 0 || parse_domain(s + n + 1, len - n - 1, r, error_r) < 0) {
		memset(r, 0, sizeof(*r));
		return -1;
	}
	return 0;
}

/* Skips an RFC 5321 A-d-l ("@dom,@dom:") at s; returns the bytes consumed
 * (0 if there is none) or -1 if it is malformed. */
static long skip_source_route(const char *s, size_t len)
{
	size_t i = 0;
	if (len == 0 || s[0] != '@')
		return 0;
	for (;;) {
		if (i >= len || s[i] != '@')
			return -1;
		size_t start = ++i;
		while (i < len && s[i] != ',' && s[i] != ':')
			i++;
		bool utf8 = false;
		if (i >= len || !domain_name_ok(s + start, i - start, &utf8))
			return -1;
		if (s[i++] == ':')
			return (long)i;
	}
}

/* Offset of the '>' closing the mailbox that starts at s, or -1. A quoted
 * local part may contain '>', so it is skipped first. */
static long find_path_end(const char *s, size_t len)
{
	size_t i = 0;
	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\')
				i++;
		}
		if (i >= len)
			return -1;
	}
	const char *gt = memchr(s + i, '>', len - i);
	return gt == NULL ? -1 : gt - s;
}

int address_parse_path_prefix(const char *s, size_t len, struct address *r, size_t *consumed_r,
                              const char **error_r)
{
	memset(r, 0, sizeof(*r));
	if (len == 0 || s[0] != '<') {
		*error_r = "path must start with '<'";
		return -1;
	}
	if (len >= 2 && s[1] == '>') {
		r->null_path = true;
		if (consumed_r != NULL)
			*consumed_r = 2;
		return 0;
	}
	long route = skip_source_route(s + 1, len - 1);
	if (route < 0) {
		*error_r = "malformed source route";
		return -1;
	}
	size_t start = 1 + (size_t)route;
	long end = find_path_end(s + start, len - start);
	if (end < 0) {
		*error_r = "path must end with '>'";
		return -1;
	}
	if (address_parse(s + start, (size_t)end, r, error_r) < 0)
		return -1;
	if (consumed_r != NULL)
		*consumed_r = start + (size_t)end + 1;
	return 0;
}

int address_parse_path(const char *s, size_t len, struct address *r, const char **error_r)
{
	size_t n;
	if (address_parse_path_prefix(s, len, r, &n, error_r) < 0)
		return -1;
	if (n != len) {
		memset(r, 0, sizeof(*r));
		*error_r = "unexpected text after the path";
		return -1;
	}
	return 0;
}

bool address_is_valid_domain(const char *name)
{
	bool utf8 = false;
	size_t len = strnlen(name, ADDRESS_DOMAIN_MAX + 1);
	return domain_name_ok(name, len, &utf8);
}

int address_normalize_domain(const char *name, char *out, size_t outlen)
{
	size_t len = strnlen(name, ADDRESS_DOMAIN_MAX + 1);
	if (!address_is_valid_domain(name) || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)to_lower((unsigned char)name[i]);
	out[len] = '\0';
	return 0;
}

static void format_address(const struct address *a, bool fold, char out[ADDRESS_BUF_SIZE])
{
	size_t o = 0;
	if (a->null_path) {
		out[0] = '\0';
		return;
	}
	/* local_len + 1 + domain_len <= ADDRESS_MAX: canonical forms never
	 * grow, and the input was at most ADDRESS_MAX. */
	for (size_t i = 0; i < a->local_len; i++) {
		unsigned char c = (unsigned char)a->local[i];
		out[o++] = (char)(fold ? to_lower(c) : c);
	}
	out[o++] = '@';
	memcpy(out + o, a->domain, a->domain_len);
	out[o + a->domain_len] = '\0';
}

void address_format(const struct address *a, char out[ADDRESS_BUF_SIZE])
{
	format_address(a, false, out);
}

void address_lookup_key(const struct address *a, char out[ADDRESS_BUF_SIZE])
{
	format_address(a, true, out);
}

int address_split_detail(const struct address *a, char separator, struct address *base_r,
                         char *detail_r)
{
	if (a->quoted || a->null_path || separator == '\0')
		return 0;
	const char *sep = memchr(a->local, separator, a->local_len);
	if (sep == NULL || sep == a->local)
		return 0;
	size_t ulen = (size_t)(sep - a->local);
	if (!is_dot_string(a->local, ulen))
		return 0;
	if (detail_r != NULL) {
		size_t dlen = a->local_len - ulen - 1;
		memcpy(detail_r, sep + 1, dlen);
		detail_r[dlen] = '\0';
	}
	*base_r = *a;
	base_r->local[ulen] = '\0';
	base_r->local_len = ulen;
	bool utf8 = false;
	for (size_t i = 0; i < ulen; i++)
		utf8 |= (unsigned char)base_r->local[i] >= 0x80;
	for (size_t i = 0; i < base_r->domain_len; i++)
		utf8 |= (unsigned char)base_r->domain[i] >= 0x80;
	base_r->utf8 = utf8;
	return 1;
}
