/* smtp-parse.c - SMTP command-line and ESMTP parameter parsing. */
#include "smtp-parse.h"

#include "buf.h"
#include "strnum.h"

#include <string.h>

static bool is_alpha(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool is_alnum(unsigned char ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9');
}

static char to_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

static char to_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

int smtp_parse_verb(const char *line, size_t len, char verb[SMTP_VERB_MAX + 1], size_t *args_off_r)
{
	size_t i = 0;
	while (i < len && is_alpha((unsigned char)line[i])) {
		if (i >= SMTP_VERB_MAX)
			return -1;
		verb[i] = to_upper(line[i]);
		i++;
	}
	verb[i] = '\0';
	if (i == 0 || (i < len && line[i] != ' '))
		return -1;
	*args_off_r = i < len ? i + 1 : len;
	return 0;
}

/* ---- xtext and parameter values ---- */

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int smtp_xtext_decode(const char *s, size_t len, char *out, size_t outmax)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '+') {
			int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
			if (lo < 0)
				return -1;
			ch = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			return -1;
		}
		if (o + 1 >= outmax)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

/* One "keyword[=value]" of the parameter list. */
struct esmtp_param {
	const char *key, *value;
	size_t key_len, value_len;
	bool has_value;
};

/* Splits the next parameter off s[*pos..len). Parameters are separated by
 * one or more spaces. Returns 1 with *p filled, 0 at the end, -1 on junk. */
static int param_next(const char *s, size_t len, size_t *pos, struct esmtp_param *p)
{
	size_t i = *pos;
	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return 0;
	size_t k = i;
	while (i < len && (is_alnum((unsigned char)s[i]) || (i > k && s[i] == '-')))
		i++;
	if (i == k)
		return -1;
	*p = (struct esmtp_param){.key = s + k, .key_len = i - k};
	if (i < len && s[i] == '=') {
		size_t v = ++i;
		/* esmtp-value: %d33-60 / %d62-126 / UTF8-non-ascii (RFC 6531) */
		while (i < len && (unsigned char)s[i] > 32 && s[i] != '=' && s[i] != 0x7f)
			i++;
		if (i == v || !address_utf8_is_valid(s + v, i - v))
			return -1;
		p->has_value = true;
		p->value = s + v;
		p->value_len = i - v;
	}
	if (i < len && s[i] != ' ')
		return -1;
	*pos = i;
	return 1;
}

static bool param_is(const struct esmtp_param *p, const char *name)
{
	return mem_eq_ci(p->key, p->key_len, name);
}

static bool value_is(const struct esmtp_param *p, const char *word)
{
	return p->has_value && mem_eq_ci(p->value, p->value_len, word);
}

/* Parses "PREFIX<path>" and returns the offset after the path. */
static enum smtp_parse_status parse_path_part(const char *args, size_t len, const char *prefix,
                                              struct address *a, size_t *end_r,
                                              const char **error_r)
{
	size_t plen = strlen(prefix);
	if (len < plen || !mem_eq_ci(args, plen, prefix)) {
		*error_r = "Syntax error";
		return SMTP_PARSE_SYNTAX;
	}
	size_t i = plen;
	while (i < len && args[i] == ' ')
		i++;
	if (i == len || args[i] != '<') {
		*error_r = "Address must be in angle brackets";
		return SMTP_PARSE_SYNTAX;
	}
	size_t used = 0;
	if (address_parse_path_prefix(args + i, len - i, a, &used, error_r) < 0)
		return SMTP_PARSE_BAD_ADDRESS;
	*end_r = i + used;
	if (*end_r < len && args[*end_r] != ' ') {
		*error_r = "Junk after the address";
		return SMTP_PARSE_SYNTAX;
	}
	return SMTP_PARSE_OK;
}

/* ---- MAIL ---- */

static enum smtp_parse_status mail_param(const struct esmtp_param *q, struct smtp_mail_params *p,
                                         const char **error_r)
{
	*error_r = "Bad parameter value";
	if (param_is(q, "SIZE")) {
		if (p->has_size || !q->has_value ||
		    mem_to_u64(q->value, q->value_len, UINT64_MAX, &p->size) < 0)
			return SMTP_PARSE_BAD_PARAM;
		p->has_size = true;
	} else if (param_is(q, "BODY")) {
		if (p->body != SMTP_BODY_7BIT || (!value_is(q, "7BIT") && !value_is(q, "8BITMIME")))
			return SMTP_PARSE_BAD_PARAM;
		/* BODY=7BIT given twice slips through: harmless. */
		p->body = value_is(q, "8BITMIME") ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT;
	} else if (param_is(q, "SMTPUTF8")) {
		if (p->smtputf8 || q->has_value)
			return SMTP_PARSE_BAD_PARAM;
		p->smtputf8 = true;
	} else if (param_is(q, "RET")) {
		if (p->ret != SMTP_RET_NONE || (!value_is(q, "FULL") && !value_is(q, "HDRS")))
			return SMTP_PARSE_BAD_PARAM;
		p->ret = value_is(q, "FULL") ? SMTP_RET_FULL : SMTP_RET_HDRS;
	} else if (param_is(q, "ENVID")) {
		if (p->has_envid || !q->has_value ||
		    smtp_xtext_decode(q->value, q->value_len, p->envid, sizeof(p->envid)) < 0)
			return SMTP_PARSE_BAD_PARAM;
		p->has_envid = true;
	} else if (param_is(q, "AUTH")) {
		if (p->has_auth || !q->has_value)
			return SMTP_PARSE_BAD_PARAM;
		p->has_auth = true;
	} else {
		*error_r = "Unsupported parameter";
		return SMTP_PARSE_UNKNOWN_PARAM;
	}
	return SMTP_PARSE_OK;
}

enum smtp_parse_status smtp_parse_mail(const char *args, size_t len, struct address *from_r,
                                       struct smtp_mail_params *p_r, const char **error_r)
{
	memset(p_r, 0, sizeof(*p_r));
	size_t pos = 0;
	enum smtp_parse_status st = parse_path_part(args, len, "FROM:", from_r, &pos, error_r);
	struct esmtp_param q;
	int r;
	while (st == SMTP_PARSE_OK && (r = param_next(args, len, &pos, &q)) != 0) {
		if (r < 0) {
			*error_r = "Bad parameter syntax";
			return SMTP_PARSE_SYNTAX;
		}
		st = mail_param(&q, p_r, error_r);
	}
	return st;
}

/* ---- RCPT ---- */

static int notify_parse(const struct esmtp_param *q, unsigned *notify_r)
{
	if (!q->has_value || *notify_r != 0)
		return -1;
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
	    {"NEVER", SMTP_NOTIFY_NEVER},
	    {"SUCCESS", SMTP_NOTIFY_SUCCESS},
	    {"FAILURE", SMTP_NOTIFY_FAILURE},
	    {"DELAY", SMTP_NOTIFY_DELAY},
	};
	size_t i = 0;
	while (i <= q->value_len) {
		size_t j = i;
		while (j < q->value_len && q->value[j] != ',')
			j++;
		unsigned bit = 0;
		for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
			if (mem_eq_ci(q->value + i, j - i, words[w].name))
				bit = words[w].bit;
		if (bit == 0 || (*notify_r & bit) != 0)
			return -1;
		*notify_r |= bit;
		i = j + 1;
	}
	/* NEVER stands alone. */
	if ((*notify_r & SMTP_NOTIFY_NEVER) != 0 && *notify_r != SMTP_NOTIFY_NEVER)
		return -1;
	return 0;
}

/* ORCPT=addr-type;xtext. rfc822 is xtext-decoded; utf-8 (RFC 6533) is kept
 * as written once it is valid UTF-8 without controls. */
static int orcpt_parse(const struct esmtp_param *q, struct smtp_rcpt_params *p)
{
	if (!q->has_value || p->orcpt[0] != '\0' || q->value_len > SMTP_ORCPT_MAX)
		return -1;
	size_t semi = 0;
	while (semi < q->value_len && q->value[semi] != ';')
		semi++;
	if (semi == 0 || semi + 1 >= q->value_len)
		return -1;
	const char *x = q->value + semi + 1;
	size_t xlen = q->value_len - semi - 1;
	if (mem_eq_ci(q->value, semi, "rfc822")) {
		if (smtp_xtext_decode(x, xlen, p->orcpt_addr, sizeof(p->orcpt_addr)) < 0)
			return -1;
	} else if (mem_eq_ci(q->value, semi, "utf-8")) {
		memcpy(p->orcpt_addr, x, xlen);
		p->orcpt_addr[xlen] = '\0';
	} else {
		return -1;
	}
	memcpy(p->orcpt, q->value, q->value_len);
	p->orcpt[q->value_len] = '\0';
	return 0;
}

enum smtp_parse_status smtp_parse_rcpt(const char *args, size_t len, struct address *to_r,
                                       struct smtp_rcpt_params *p_r, const char **error_r)
{
	memset(p_r, 0, sizeof(*p_r));
	size_t pos = 0;
	enum smtp_parse_status st = parse_path_part(args, len, "TO:", to_r, &pos, error_r);
	if (st == SMTP_PARSE_OK && to_r->null_path) {
		*error_r = "Null recipient";
		return SMTP_PARSE_BAD_ADDRESS;
	}
	struct esmtp_param q;
	int r;
	while (st == SMTP_PARSE_OK && (r = param_next(args, len, &pos, &q)) != 0) {
		if (r < 0) {
			*error_r = "Bad parameter syntax";
			return SMTP_PARSE_SYNTAX;
		}
		*error_r = "Bad parameter value";
		if (param_is(&q, "NOTIFY"))
			st = notify_parse(&q, &p_r->notify) < 0 ? SMTP_PARSE_BAD_PARAM
			                                        : SMTP_PARSE_OK;
		else if (param_is(&q, "ORCPT"))
			st = orcpt_parse(&q, p_r) < 0 ? SMTP_PARSE_BAD_PARAM : SMTP_PARSE_OK;
		else {
			*error_r = "Unsupported parameter";
			st = SMTP_PARSE_UNKNOWN_PARAM;
		}
	}
	return st;
}

/* ---- BDAT ---- */

int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r, bool *last_r)
{
	size_t i = 0;
	while (i < len && args[i] >= '0' && args[i] <= '9')
		i++;
	/* 20 digits cover every uint64; the strict parser checks the rest. */
	if (i == 0 || i > 20 || mem_to_u64(args, i, UINT64_MAX, size_r) < 0)
		return -1;
	*last_r = false;
	if (i == len)
		return 0;
	if (args[i] != ' ' || !mem_eq_ci(args + i + 1, len - i - 1, "LAST"))
		return -1;
	*last_r = true;
	return 0;
}

/* ---- header scan ---- */

/* The current line's field name ended after n bytes. */
static void header_scan_name_end(struct smtp_header_scan *h, size_t n)
{
	h->colon = true;
	if (n == 8 && memcmp(h->name, "received", 8) == 0)
		h->received++;
	if (n == 4 && memcmp(h->name, "from", 4) == 0 && h->from_fields++ == 0)
		h->in_from = true;
}

static void header_scan_byte(struct smtp_header_scan *h, char ch)
{
	if (ch == '\n') {
		h->line_pos = 0;
		return;
	}
	if (h->line_pos == 0) {
		if (ch == '\r') /* a blank line: CR LF */
			h->done = true;
		if (ch != ' ' && ch != '\t') {
			h->in_from = false;
			h->colon = false;
			h->name_len = 0;
		}
	}
	unsigned pos = h->line_pos++;
	if (!h->colon) {
		/* White space between the name and the colon is allowed (RFC
		 * 5322 4.5.8, obs-optional): the MIME parser reads "From :" as
		 * From, so this scan must too. Blanks are stored like any byte,
		 * so that one inside the name ("F om") keeps it another name;
		 * only trailing ones fall outside name_len. */
		if (ch == ':') {
			header_scan_name_end(h, h->name_len);
			return;
		}
		if (pos < sizeof(h->name) - 1)
			h->name[pos] = to_lower(ch);
		if (ch != ' ' && ch != '\t')
			h->name_len = pos + 1;
		return;
	}
	if (!h->in_from || ch == '\r')
		return;
	if (h->from_len >= SMTP_FROM_FIELD_MAX) {
		h->from_cut = true;
		return;
	}
	h->from[h->from_len++] = ch;
	h->from[h->from_len] = '\0';
}

void smtp_header_scan_feed(struct smtp_header_scan *h, const void *data, size_t len)
{
	const char *p = data;
	for (size_t i = 0; i < len && !h->done; i++) {
		if (p[i] == '\n' && h->line_pos == 0) {
			h->done = true; /* a blank line: bare LF */
			break;
		}
		header_scan_byte(h, p[i]);
	}
}

/* ---- address lists (header From:) ---- */

struct alist {
	char cur[ADDRESS_BUF_SIZE + 2];
	char angle[ADDRESS_BUF_SIZE + 2];
	size_t ncur, nangle;
	bool in_angle, had_angle, overflow;
	int count;
	int (*fn)(void *, const char *, size_t);
	void *ctx;
};

static void alist_put(struct alist *a, char ch)
{
	char *dst = a->in_angle ? a->angle : a->cur;
	size_t *n = a->in_angle ? &a->nangle : &a->ncur;
	if (*n + 1 >= sizeof(a->cur)) {
		a->overflow = true;
		return;
	}
	dst[(*n)++] = ch;
	dst[*n] = '\0';
}

static int alist_emit(struct alist *a)
{
	const char *addr = a->had_angle ? a->angle : a->cur;
	size_t n = a->had_angle ? a->nangle : a->ncur;
	size_t skip = 0;
	/* obs-route inside the brackets: "<@relay:user@dom>" */
	if (a->had_angle && n > 0 && addr[0] == '@') {
		while (skip < n && addr[skip] != ':')
			skip++;
		skip = skip < n ? skip + 1 : n;
	}
	int r = 0;
	if (a->in_angle || a->overflow)
		r = -1;
	else if (n > skip) {
		a->count++;
		r = a->fn(a->ctx, addr + skip, n - skip);
	}
	a->ncur = a->nangle = 0;
	a->cur[0] = a->angle[0] = '\0';
	a->had_angle = false;
	return r;
}

/* Skips a comment starting at s[i] == '(' (nested, with quoted pairs). */
static int alist_skip_comment(const char *s, size_t len, size_t *i)
{
	int depth = 0;
	for (; *i < len; (*i)++) {
		if (s[*i] == '\\')
			(*i)++;
		else if (s[*i] == '(')
			depth++;
		else if (s[*i] == ')' && --depth == 0)
			return 0;
	}
	return -1;
}

/* Copies a quoted string or a domain literal starting at s[*i]. */
static int alist_copy_quoted(struct alist *a, const char *s, size_t len, size_t *i, char close)
{
	alist_put(a, s[*i]);
	for ((*i)++; *i < len; (*i)++) {
		if (s[*i] == '\\' && *i + 1 < len) {
			alist_put(a, s[(*i)++]);
		} else if (s[*i] == close) {
			alist_put(a, close);
			return 0;
		}
		alist_put(a, s[*i]);
	}
	return -1;
}

static int alist_step(struct alist *a, const char *s, size_t len, size_t *i)
{
	char ch = s[*i];
	switch (ch) {
	case '"':
		return alist_copy_quoted(a, s, len, i, '"');
	case '[':
		return alist_copy_quoted(a, s, len, i, ']');
	case '(':
		return alist_skip_comment(s, len, i);
	case '<':
		if (a->in_angle || a->had_angle)
			return -1;
		a->in_angle = a->had_angle = true;
		return 0;
	case '>':
		if (!a->in_angle)
			return -1;
		a->in_angle = false;
		return 0;
	case ' ':
	case '\t':
	case '\r':
	case '\n':
		return 0;
	case ':': /* a group's display name ends, or an obs-route in brackets */
		if (a->in_angle) {
			alist_put(a, ch);
			return 0;
		}
		if (a->had_angle)
			return -1;
		a->ncur = 0;
		a->cur[0] = '\0';
		return 0;
	case ',':
	case ';':
		return a->in_angle ? -1 : alist_emit(a);
	default:
		if ((unsigned char)ch < 0x20 || ch == 0x7f)
			return -1;
		alist_put(a, ch);
		return 0;
	}
}

int smtp_parse_address_list(const char *s, size_t len,
                            int (*fn)(void *ctx, const char *addr, size_t addr_len), void *ctx)
{
	struct alist a = {.fn = fn, .ctx = ctx};
	for (size_t i = 0; i < len; i++)
		if (alist_step(&a, s, len, &i) < 0)
			return -1;
	if (alist_emit(&a) < 0)
		return -1;
	return a.count;
}

void smtp_helo_sanitize(const char *name, char *out, size_t outmax)
{
	size_t o = 0;
	for (size_t i = 0; name[i] != '\0' && o + 1 < outmax; i++) {
		char ch = name[i];
		bool ok = is_alnum((unsigned char)ch) || strchr(".-:[]_", ch) != NULL;
		out[o++] = ok ? ch : '?';
	}
	out[o] = '\0';
}
