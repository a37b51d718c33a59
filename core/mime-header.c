/* mime-header.c - header fields, Content-Type parameters (RFC 2045, 2231),
 * addresses (RFC 5322) and the IMAP strings made from them. */
#include "mime-private.h"

#include "buf.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- fields ---------------------------------------------------------- */

static size_t line_end(const char *h, size_t len, size_t i, size_t *content_end)
{
	const char *lf = memchr(h + i, '\n', len - i);
	size_t e = lf == NULL ? len : (size_t)(lf - h);
	*content_end = e > i && h[e - 1] == '\r' ? e - 1 : e;
	return lf == NULL ? len : e + 1;
}

bool mime_header_next(const char *h, size_t len, size_t *pos, struct mime_field *f)
{
	size_t i = *pos;
	while (i < len) {
		size_t ce, next = line_end(h, len, i, &ce);
		if (ce == i)
			return false; /* the blank line */
		const char *colon = memchr(h + i, ':', ce - i);
		if (h[i] == ' ' || h[i] == '\t' || colon == NULL) {
			i = next; /* not a field: skip it */
			continue;
		}
		size_t ne = (size_t)(colon - h);
		while (ne > i && (h[ne - 1] == ' ' || h[ne - 1] == '\t'))
			ne--;
		if (ne == i) {
			i = next;
			continue;
		}
		size_t vend = ce;
		while (next < len && (h[next] == ' ' || h[next] == '\t'))
			next = line_end(h, len, next, &vend);
		f->name = (struct mime_span){h + i, ne - i};
		f->value = (struct mime_span){colon + 1, vend - (size_t)(colon + 1 - h)};
		*pos = next;
		return true;
	}
	*pos = len;
	return false;
}

static const char *const hdr_names[MIME_H__COUNT] = {
    [MIME_H_CONTENT_TYPE] = "content-type",
    [MIME_H_CONTENT_TRANSFER_ENCODING] = "content-transfer-encoding",
    [MIME_H_CONTENT_ID] = "content-id",
    [MIME_H_CONTENT_DESCRIPTION] = "content-description",
    [MIME_H_CONTENT_MD5] = "content-md5",
    [MIME_H_CONTENT_DISPOSITION] = "content-disposition",
    [MIME_H_CONTENT_LANGUAGE] = "content-language",
    [MIME_H_CONTENT_LOCATION] = "content-location",
    [MIME_H_DATE] = "date",
    [MIME_H_SUBJECT] = "subject",
    [MIME_H_FROM] = "from",
    [MIME_H_SENDER] = "sender",
    [MIME_H_REPLY_TO] = "reply-to",
    [MIME_H_TO] = "to",
    [MIME_H_CC] = "cc",
    [MIME_H_BCC] = "bcc",
    [MIME_H_IN_REPLY_TO] = "in-reply-to",
    [MIME_H_MESSAGE_ID] = "message-id",
    [MIME_H_REFERENCES] = "references",
};

void mime_header_scan(const char *h, size_t len, struct mime_span *spans)
{
	struct mime_field f;
	size_t pos = 0;
	memset(spans, 0, sizeof(*spans) * MIME_H__COUNT);
	while (mime_header_next(h, len, &pos, &f)) {
		char c = (char)tolower((unsigned char)f.name.p[0]);
		if (c != 'c' && c != 'd' && c != 's' && c != 'f' && c != 'r' && c != 't' &&
		    c != 'b' && c != 'i' && c != 'm')
			continue;
		for (int k = 0; k < MIME_H__COUNT; k++)
			if (spans[k].p == NULL && mem_eq_ci(f.name.p, f.name.n, hdr_names[k])) {
				spans[k] = f.value;
				break;
			}
	}
}

void mime_unfold(struct mime_span v, struct buf *out)
{
	size_t a = 0, b = v.n;
	while (a < b && (v.p[a] == ' ' || v.p[a] == '\t' || v.p[a] == '\r' || v.p[a] == '\n'))
		a++;
	while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t' || v.p[b - 1] == '\r' ||
	                 v.p[b - 1] == '\n'))
		b--;
	size_t run = a;
	for (size_t i = a; i < b; i++) {
		char c = v.p[i];
		if (c != '\r' && c != '\n' && c != '\0')
			continue;
		buf_append(out, v.p + run, i - run);
		run = i + 1;
	}
	buf_append(out, v.p + run, b - run);
}

/* ---- lexer for structured fields -------------------------------------- */

struct lex {
	const char *s;
	size_t n, i;
	struct buf *comment; /* last comment's text, when wanted */
};

static void lex_comment(struct lex *l)
{
	int depth = 0;
	if (l->comment != NULL)
		buf_reset(l->comment);
	while (l->i < l->n) {
		char c = l->s[l->i++];
		if (c == '\\' && l->i < l->n) {
			if (l->comment != NULL)
				buf_append_char(l->comment, l->s[l->i]);
			l->i++;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		if (depth == 0)
			return;
		if (l->comment != NULL && !(depth == 1 && c == '('))
			buf_append_char(l->comment, c);
	}
}

static void lex_cfws(struct lex *l)
{
	while (l->i < l->n) {
		char c = l->s[l->i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			l->i++;
		else if (c == '(')
			lex_comment(l);
		else
			return;
	}
}

static bool lex_end(const struct lex *l)
{
	return l->i >= l->n;
}

static char lex_peek(const struct lex *l)
{
	return l->i < l->n ? l->s[l->i] : '\0';
}

/* RFC 2045 token, leniently: anything but white space, controls and
 * tspecials. */
static size_t lex_token(struct lex *l, const char *stops)
{
	size_t st = l->i;
	while (l->i < l->n) {
		unsigned char c = (unsigned char)l->s[l->i];
		if (c <= ' ' || c == 0x7f || strchr(stops, c) != NULL)
			break;
		l->i++;
	}
	return l->i - st;
}

static void lex_quoted(struct lex *l, struct buf *out)
{
	l->i++; /* opening quote */
	while (l->i < l->n) {
		char c = l->s[l->i++];
		if (c == '"')
			return;
		if (c == '\\' && l->i < l->n)
			c = l->s[l->i++];
		else if (c == '\r' || c == '\n')
			continue;
		buf_append_char(out, c);
	}
}

/* ---- Content-Type and RFC 2231 ---------------------------------------- */

#define MIME_MAX_PARAMS   128
#define MIME_MAX_SECTIONS 1000

struct rawparam {
	char *name;
	struct buf value;
};

static void copy_bounded(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Splits "name*3*" into the base length, the section (-1 none) and
 * whether the value is extended (percent-encoded). false if not 2231. */
static bool p2231_name(const char *name, size_t *base_r, long *sect_r, bool *ext_r)
{
	const char *star = strchr(name, '*');
	if (star == NULL || star == name)
		return false;
	*base_r = (size_t)(star - name);
	*sect_r = -1;
	*ext_r = false;
	const char *q = star + 1;
	if (*q == '\0') {
		*ext_r = true;
		return true;
	}
	long v = 0;
	const char *d = q;
	while (isdigit((unsigned char)*q) && v < MIME_MAX_SECTIONS)
		v = v * 10 + (*q++ - '0');
	if (q == d || (d[0] == '0' && q - d > 1) || v >= MIME_MAX_SECTIONS)
		return false;
	*sect_r = v;
	if (*q == '*') {
		*ext_r = true;
		q++;
	}
	return *q == '\0';
}

static void pct_decode(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char h[3] = {s[i + 1], s[i + 2], 0};
			char c = (char)strtol(h, NULL, 16);
			buf_append_char(out, c);
			i += 2;
		} else
			buf_append_char(out, s[i]);
	}
}

/* Joins the sections of one 2231 parameter into UTF-8. */
static char *p2231_join(struct rawparam *rp, size_t nrp, const char *base, size_t blen)
{
	struct buf raw, utf;
	char charset[64] = "";
	buf_init(&raw, BUF_NO_LIMIT);
	buf_init(&utf, BUF_NO_LIMIT);
	for (long sect = -1; sect < MIME_MAX_SECTIONS; sect++) {
		bool found = false;
		for (size_t k = 0; k < nrp && !found; k++) {
			size_t b;
			long s;
			bool ext;
			if (!p2231_name(rp[k].name, &b, &s, &ext) || b != blen ||
			    strncasecmp(rp[k].name, base, blen) != 0 || s != sect)
				continue;
			found = true;
			const char *v = buf_cstr(&rp[k].value);
			size_t vn = rp[k].value.len;
			if (ext && sect <= 0) {
				/* charset'language'value */
				const char *q1 = memchr(v, '\'', vn);
				const char *q2 =
				    q1 == NULL ? NULL
				               : memchr(q1 + 1, '\'', vn - (size_t)(q1 + 1 - v));
				if (q2 != NULL) {
					copy_bounded(charset, sizeof(charset), v, (size_t)(q1 - v));
					vn -= (size_t)(q2 + 1 - v);
					v = q2 + 1;
				}
			}
			if (ext)
				pct_decode(v, vn, &raw);
			else
				buf_append(&raw, v, vn);
		}
		if (!found && sect >= 0)
			break;
	}
	mime_to_utf8(charset, raw.data != NULL ? raw.data : "", raw.len, &utf);
	buf_free(&raw);
	if (utf.data == NULL)
		buf_append(&utf, "", 0);
	return buf_steal(&utf, NULL);
}

static void params_add(struct mime_ctype *ct, char *name, char *value, bool ext)
{
	ct->params = xreallocarray(ct->params, ct->nparams + 1, sizeof(*ct->params));
	ct->params[ct->nparams++] = (struct mime_param){name, value, ext};
}

static bool params_have(const struct mime_ctype *ct, const char *name, size_t n)
{
	for (size_t k = 0; k < ct->nparams; k++)
		if (strlen(ct->params[k].name) == n &&
		    strncasecmp(ct->params[k].name, name, n) == 0)
			return true;
	return false;
}

static void params_merge(struct mime_ctype *ct, struct rawparam *rp, size_t nrp)
{
	/* 2231 forms first, so that they win over a plain twin. */
	for (size_t k = 0; k < nrp; k++) {
		size_t b;
		long s;
		bool ext;
		if (!p2231_name(rp[k].name, &b, &s, &ext) || params_have(ct, rp[k].name, b))
			continue;
		char *v = p2231_join(rp, nrp, rp[k].name, b);
		params_add(ct, xstrndup(rp[k].name, b), v, true);
	}
	for (size_t k = 0; k < nrp; k++) {
		size_t b;
		long s;
		bool ext;
		size_t n = strlen(rp[k].name);
		if (p2231_name(rp[k].name, &b, &s, &ext) || params_have(ct, rp[k].name, n))
			continue;
		buf_append(&rp[k].value, "", 0); /* a NUL even when empty */
		params_add(ct, xstrdup(rp[k].name), buf_steal(&rp[k].value, NULL), false);
	}
}

/* Reads "; name=value" pairs into rp; returns how many. */
static size_t params_read(struct lex *l, struct rawparam *rp, size_t max)
{
	size_t n = 0;
	while (n < max) {
		lex_cfws(l);
		if (lex_end(l))
			break;
		if (lex_peek(l) != ';') {
			/* Garbage: skip to the next parameter. */
			const char *semi = memchr(l->s + l->i, ';', l->n - l->i);
			if (semi == NULL)
				break;
			l->i = (size_t)(semi - l->s);
		}
		l->i++;
		lex_cfws(l);
		size_t ns = l->i, nl = lex_token(l, "()<>@,;:\\\"/[]?=");
		lex_cfws(l);
		if (nl == 0 || lex_peek(l) != '=')
			continue;
		l->i++;
		lex_cfws(l);
		rp[n].name = xstrndup(l->s + ns, nl);
		buf_init(&rp[n].value, BUF_NO_LIMIT);
		if (lex_peek(l) == '"')
			lex_quoted(l, &rp[n].value);
		else {
			size_t vs = l->i, vl = lex_token(l, ";(\"");
			buf_append(&rp[n].value, l->s + vs, vl);
		}
		n++;
	}
	return n;
}

int mime_ctype_parse(struct mime_span v, bool want_subtype, struct mime_ctype *ct)
{
	struct lex l = {v.p, v.n, 0, NULL};
	memset(ct, 0, sizeof(*ct));
	lex_cfws(&l);
	size_t ts = l.i, tl = lex_token(&l, "()<>@,;:\\\"/[]?=");
	if (tl == 0 || tl >= sizeof(ct->type))
		return -1;
	copy_bounded(ct->type, sizeof(ct->type), v.p + ts, tl);
	if (want_subtype) {
		lex_cfws(&l);
		if (lex_peek(&l) != '/')
			return -1;
		l.i++;
		lex_cfws(&l);
		size_t ss = l.i, sl = lex_token(&l, "()<>@,;:\\\"/[]?=");
		if (sl == 0 || sl >= sizeof(ct->subtype))
			return -1;
		copy_bounded(ct->subtype, sizeof(ct->subtype), v.p + ss, sl);
	}
	struct rawparam rp[MIME_MAX_PARAMS];
	size_t nrp = params_read(&l, rp, MIME_MAX_PARAMS);
	params_merge(ct, rp, nrp);
	for (size_t k = 0; k < nrp; k++) {
		free(rp[k].name);
		buf_free(&rp[k].value);
	}
	return 0;
}

void mime_ctype_free(struct mime_ctype *ct)
{
	for (size_t k = 0; k < ct->nparams; k++) {
		free(ct->params[k].name);
		free(ct->params[k].value);
	}
	free(ct->params);
	ct->params = NULL;
	ct->nparams = 0;
}

const char *mime_param_get(const struct mime_ctype *ct, const char *name)
{
	for (size_t k = 0; k < ct->nparams; k++)
		if (strcasecmp(ct->params[k].name, name) == 0)
			return ct->params[k].value;
	return NULL;
}

/* ---- IMAP strings ---------------------------------------------------- */

void mime_imap_nstring(struct buf *out, const char *s, size_t n)
{
	if (s == NULL) {
		buf_append(out, "NIL", 3);
		return;
	}
	bool quoted = true;
	size_t nuls = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			nuls++;
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			quoted = false;
	}
	if (!quoted) {
		buf_printf(out, "{%zu}\r\n", n - nuls);
		size_t run = 0;
		for (size_t i = 0; i < n; i++)
			if (s[i] == '\0') {
				buf_append(out, s + run, i - run);
				run = i + 1;
			}
		buf_append(out, s + run, n - run);
		return;
	}
	buf_append_char(out, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '"' || s[i] == '\\') {
			buf_append(out, s + run, i - run);
			buf_append_char(out, '\\');
			run = i;
		}
	buf_append(out, s + run, n - run);
	buf_append_char(out, '"');
}

void mime_imap_cstr(struct buf *out, const char *s)
{
	mime_imap_nstring(out, s, s == NULL ? 0 : strlen(s));
}

static bool printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* RFC 2231 form for a value that cannot travel as a quoted string. */
static void imap_param_2231(struct buf *out, const struct mime_param *pr)
{
	struct buf t;
	buf_init(&t, BUF_NO_LIMIT);
	buf_printf(&t, "%s*", pr->name);
	mime_imap_cstr(out, buf_cstr(&t));
	buf_reset(&t);
	buf_append_str(&t, "utf-8''");
	for (const unsigned char *s = (const unsigned char *)pr->value; *s != '\0'; s++) {
		if (isalnum(*s) || strchr("!#$&+-.^_`|~", *s) != NULL)
			buf_append_char(&t, (char)*s);
		else
			buf_printf(&t, "%%%02X", *s);
	}
	buf_append_char(out, ' ');
	mime_imap_cstr(out, buf_cstr(&t));
	buf_free(&t);
}

void mime_imap_params(struct buf *out, const struct mime_ctype *ct, bool add_charset)
{
	if (add_charset && mime_param_get(ct, "charset") != NULL)
		add_charset = false;
	if (ct->nparams == 0 && !add_charset) {
		buf_append(out, "NIL", 3);
		return;
	}
	buf_append_char(out, '(');
	if (add_charset)
		buf_append_str(out, "\"charset\" \"us-ascii\"");
	for (size_t k = 0; k < ct->nparams; k++) {
		const struct mime_param *pr = &ct->params[k];
		if (k > 0 || add_charset)
			buf_append_char(out, ' ');
		if (pr->ext && !printable_ascii(pr->value)) {
			imap_param_2231(out, pr);
			continue;
		}
		mime_imap_cstr(out, pr->name);
		buf_append_char(out, ' ');
		mime_imap_cstr(out, pr->value);
	}
	buf_append_char(out, ')');
}

/* ---- addresses ------------------------------------------------------- */

enum { ADDR_MAILBOX, ADDR_GROUP_START, ADDR_GROUP_END };

struct addr {
	int kind;
	char *name;    /* NULL: none */
	char *mailbox; /* NULL: missing */
	char *host;    /* NULL: missing */
};

struct addr_list {
	struct addr *a;
	size_t n, cap;
};

#define ADDR_SPECIALS  "()<>[]:;@\\,\""
#define MIME_MAX_ADDRS 10000

static void addr_push(struct addr_list *al, int kind, struct buf *name, struct buf *mbox,
                      struct buf *host)
{
	if (al->n >= MIME_MAX_ADDRS)
		return;
	if (al->n == al->cap) {
		al->cap = al->cap == 0 ? 8 : al->cap * 2;
		al->a = xreallocarray(al->a, al->cap, sizeof(*al->a));
	}
	struct addr *a = &al->a[al->n++];
	a->kind = kind;
	a->name = name != NULL && name->len > 0 ? xstrdup(buf_cstr(name)) : NULL;
	a->mailbox = mbox != NULL && mbox->len > 0 ? xstrdup(buf_cstr(mbox)) : NULL;
	a->host = host != NULL && host->len > 0 ? xstrdup(buf_cstr(host)) : NULL;
}

static void addr_list_free(struct addr_list *al)
{
	for (size_t k = 0; k < al->n; k++) {
		free(al->a[k].name);
		free(al->a[k].mailbox);
		free(al->a[k].host);
	}
	free(al->a);
	al->a = NULL;
	al->n = 0;
}

/* Words of a phrase or local part: atoms (dots allowed) and quoted strings.
 * phrase gets them space-separated, local concatenated. */
static void addr_words(struct lex *l, struct buf *phrase, struct buf *local)
{
	for (;;) {
		lex_cfws(l);
		char c = lex_peek(l);
		if (lex_end(l))
			return;
		if (c == '"') {
			if (phrase->len > 0)
				buf_append_char(phrase, ' ');
			size_t before = phrase->len;
			lex_quoted(l, phrase);
			buf_append(local, phrase->data != NULL ? phrase->data + before : "",
			           phrase->len - before);
			continue;
		}
		size_t st = l->i, n = lex_token(l, ADDR_SPECIALS);
		if (n == 0)
			return;
		if (phrase->len > 0)
			buf_append_char(phrase, ' ');
		buf_append(phrase, l->s + st, n);
		buf_append(local, l->s + st, n);
	}
}

static void addr_domain(struct lex *l, struct buf *host)
{
	for (;;) {
		lex_cfws(l);
		char c = lex_peek(l);
		if (c == '[') {
			const char *e = memchr(l->s + l->i, ']', l->n - l->i);
			size_t end = e == NULL ? l->n : (size_t)(e - l->s) + 1;
			buf_append(host, l->s + l->i, end - l->i);
			l->i = end;
			continue;
		}
		size_t st = l->i, n = lex_token(l, ADDR_SPECIALS);
		if (n == 0)
			return;
		buf_append(host, l->s + st, n);
	}
}

/* "<[route:]local@domain>", l at '<'. */
static void addr_angle(struct lex *l, struct buf *mbox, struct buf *host)
{
	struct buf junk;
	buf_init(&junk, BUF_NO_LIMIT);
	l->i++;
	lex_cfws(l);
	if (lex_peek(l) == '@') { /* obsolete route: dropped (route is NIL) */
		const char *colon = memchr(l->s + l->i, ':', l->n - l->i);
		const char *gt = memchr(l->s + l->i, '>', l->n - l->i);
		if (colon != NULL && (gt == NULL || colon < gt))
			l->i = (size_t)(colon - l->s) + 1;
	}
	addr_words(l, &junk, mbox);
	lex_cfws(l);
	if (lex_peek(l) == '@') {
		l->i++;
		addr_domain(l, host);
	}
	const char *gt = memchr(l->s + l->i, '>', l->n - l->i);
	l->i = gt == NULL ? l->n : (size_t)(gt - l->s) + 1;
	buf_free(&junk);
}

/* One mailbox (or a group when in_group is false and ':' comes). */
static void addr_one(struct lex *l, struct addr_list *al, bool in_group, bool *group_r)
{
	struct buf phrase, local, host, comment;
	buf_init(&phrase, BUF_NO_LIMIT);
	buf_init(&local, BUF_NO_LIMIT);
	buf_init(&host, BUF_NO_LIMIT);
	buf_init(&comment, BUF_NO_LIMIT);
	l->comment = &comment;
	*group_r = false;
	size_t start = l->i;
	addr_words(l, &phrase, &local);
	char c = lex_peek(l);
	if (c == '<') {
		buf_reset(&local);
		addr_angle(l, &local, &host);
		addr_push(al, ADDR_MAILBOX, &phrase, &local, &host);
	} else if (c == ':' && !in_group) {
		l->i++;
		addr_push(al, ADDR_GROUP_START, NULL, &phrase, NULL);
		*group_r = true;
	} else if (c == '@') {
		l->i++;
		addr_domain(l, &host);
		lex_cfws(l);
		addr_push(al, ADDR_MAILBOX, &comment, &local, &host);
	} else if (local.len > 0) {
		addr_push(al, ADDR_MAILBOX, &comment, &local, NULL);
	}
	l->comment = NULL;
	/* Skip to the end of this address. */
	while (!lex_end(l) && lex_peek(l) != ',' && lex_peek(l) != ';' && !*group_r) {
		lex_cfws(l);
		if (!lex_end(l) && lex_peek(l) != ',' && lex_peek(l) != ';')
			l->i++;
	}
	if (l->i == start && !lex_end(l) && lex_peek(l) != ',' && lex_peek(l) != ';')
		l->i++;
	buf_free(&phrase);
	buf_free(&local);
	buf_free(&host);
	buf_free(&comment);
}

static void addr_parse(struct mime_span v, struct addr_list *al)
{
	struct lex l = {v.p, v.n, 0, NULL};
	bool in_group = false;
	al->a = NULL;
	al->n = al->cap = 0;
	while (!lex_end(&l)) {
		lex_cfws(&l);
		char c = lex_peek(&l);
		if (lex_end(&l))
			break;
		if (c == ',') {
			l.i++;
			continue;
		}
		if (c == ';') {
			l.i++;
			if (in_group)
				addr_push(al, ADDR_GROUP_END, NULL, NULL, NULL);
			in_group = false;
			continue;
		}
		bool g;
		addr_one(&l, al, in_group, &g);
		if (g)
			in_group = true;
	}
	if (in_group)
		addr_push(al, ADDR_GROUP_END, NULL, NULL, NULL);
}

static void addr_render(struct buf *out, const struct addr_list *al)
{
	if (al->n == 0) {
		buf_append(out, "NIL", 3);
		return;
	}
	buf_append_char(out, '(');
	for (size_t k = 0; k < al->n; k++) {
		const struct addr *a = &al->a[k];
		buf_append_char(out, '(');
		if (a->kind == ADDR_GROUP_END)
			buf_append_str(out, "NIL NIL NIL NIL");
		else if (a->kind == ADDR_GROUP_START) {
			buf_append_str(out, "NIL NIL ");
			mime_imap_cstr(out, a->mailbox != NULL ? a->mailbox : "");
			buf_append_str(out, " NIL");
		} else {
			mime_imap_cstr(out, a->name);
			buf_append_str(out, " NIL ");
			/* A host of NIL would mean a group: say what is missing. */
			mime_imap_cstr(out, a->mailbox != NULL ? a->mailbox : "MISSING_MAILBOX");
			buf_append_char(out, ' ');
			mime_imap_cstr(out, a->host != NULL ? a->host : "MISSING_DOMAIN");
		}
		buf_append_char(out, ')');
	}
	buf_append_char(out, ')');
}

static void env_string(struct buf *out, struct mime_span v, struct buf *tmp)
{
	if (v.p == NULL) {
		buf_append(out, "NIL", 3);
		return;
	}
	buf_reset(tmp);
	mime_unfold(v, tmp);
	mime_imap_nstring(out, buf_cstr(tmp), tmp->len);
}

static void env_addrs(struct buf *out, struct mime_span v, struct mime_span fallback)
{
	struct addr_list al = {NULL, 0, 0};
	if (v.p != NULL)
		addr_parse(v, &al);
	if (al.n == 0 && fallback.p != NULL)
		addr_parse(fallback, &al);
	addr_render(out, &al);
	addr_list_free(&al);
}

void mime_envelope_render(const struct mime_span *h, struct buf *out)
{
	struct buf tmp;
	struct mime_span none = {NULL, 0};
	buf_init(&tmp, BUF_NO_LIMIT);
	buf_append_char(out, '(');
	env_string(out, h[MIME_H_DATE], &tmp);
	buf_append_char(out, ' ');
	env_string(out, h[MIME_H_SUBJECT], &tmp);
	buf_append_char(out, ' ');
	env_addrs(out, h[MIME_H_FROM], none);
	buf_append_char(out, ' ');
	env_addrs(out, h[MIME_H_SENDER], h[MIME_H_FROM]);
	buf_append_char(out, ' ');
	env_addrs(out, h[MIME_H_REPLY_TO], h[MIME_H_FROM]);
	static const enum mime_hdr_id lists[] = {MIME_H_TO, MIME_H_CC, MIME_H_BCC};
	for (size_t k = 0; k < 3; k++) {
		buf_append_char(out, ' ');
		env_addrs(out, h[lists[k]], none);
	}
	buf_append_char(out, ' ');
	env_string(out, h[MIME_H_IN_REPLY_TO], &tmp);
	buf_append_char(out, ' ');
	env_string(out, h[MIME_H_MESSAGE_ID], &tmp);
	buf_append_char(out, ')');
	buf_free(&tmp);
}

void mime_addresses_decoded(struct mime_span v, struct buf *out)
{
	struct addr_list al;
	if (v.p == NULL)
		return;
	addr_parse(v, &al);
	bool first = true;
	for (size_t k = 0; k < al.n; k++) {
		const struct addr *a = &al.a[k];
		if (a->kind != ADDR_MAILBOX)
			continue;
		if (!first)
			buf_append(out, ", ", 2);
		first = false;
		if (a->name != NULL) {
			mime_decode_header(a->name, strlen(a->name), out);
			buf_append(out, " <", 2);
		}
		buf_append_str(out, a->mailbox != NULL ? a->mailbox : "");
		if (a->host != NULL)
			buf_printf(out, "@%s", a->host);
		if (a->name != NULL)
			buf_append_char(out, '>');
	}
	addr_list_free(&al);
}
