/* mime-decode.c - transfer decoders, charsets, RFC 2047 words, dates and the
 * text clean-up behind search text and previews. */
#include "mime-private.h"

#include "buf.h"
#include "mime.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---- base64 ---------------------------------------------------------- */

/* 0-63 data, 64 padding, 65 white space, 66 invalid. A constant table:
 * parsers run in many threads at once. */
static const unsigned char b64_class[256] = {
    66, 66, 66, 66, 66, 66, 66, 66, 66, 65, 65, 66, 66, 65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 62, 66, 66, 66, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 66, 66, 66, 64, 66, 66, 66, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 66, 66, 66, 66, 66,
    66, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
};

void mime_b64_feed(struct mime_b64 *s, const unsigned char *in, size_t len, struct buf *out)
{
	unsigned char tmp[3072];
	size_t t = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned c = b64_class[in[i]];
		if (c == 65)
			continue;
		if (c == 66) {
			s->bad = true;
			continue;
		}
		if (c == 64) {
			/* Padding ends a quantum; what is left of it is decoded at
			 * the next data byte or at the end. */
			s->pad = true;
			continue;
		}
		if (s->pad) {
			/* Data after padding: concatenated base64, decode on. */
			s->bad = true;
			s->pad = false;
			if (s->n == 2)
				tmp[t++] = (unsigned char)(s->acc >> 4);
			else if (s->n == 3) {
				tmp[t++] = (unsigned char)(s->acc >> 10);
				tmp[t++] = (unsigned char)(s->acc >> 2);
			}
			s->n = 0;
			s->acc = 0;
		}
		s->acc = (s->acc << 6) | c;
		if (++s->n == 4) {
			tmp[t++] = (unsigned char)(s->acc >> 16);
			tmp[t++] = (unsigned char)(s->acc >> 8);
			tmp[t++] = (unsigned char)s->acc;
			s->n = 0;
			s->acc = 0;
		}
		if (t + 6 >= sizeof(tmp)) {
			buf_append(out, tmp, t);
			t = 0;
		}
	}
	buf_append(out, tmp, t);
}

void mime_b64_end(struct mime_b64 *s, struct buf *out)
{
	unsigned char tmp[2];
	if (s->n == 2) {
		tmp[0] = (unsigned char)(s->acc >> 4);
		buf_append(out, tmp, 1);
	} else if (s->n == 3) {
		tmp[0] = (unsigned char)(s->acc >> 10);
		tmp[1] = (unsigned char)(s->acc >> 2);
		buf_append(out, tmp, 2);
	}
	if (s->n == 1 || (s->n != 0 && !s->pad))
		s->bad = true;
	s->n = 0;
	s->acc = 0;
}

int mime_decode_base64(const void *in, size_t len, struct buf *out)
{
	struct mime_b64 s = {0};
	mime_b64_feed(&s, in, len, out);
	mime_b64_end(&s, out);
	return s.bad ? -1 : 0;
}

/* ---- quoted-printable ------------------------------------------------ */

enum { QP_TEXT, QP_EQ, QP_HEX1, QP_WS, QP_CR };

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t qp_step(struct mime_qp *s, unsigned char c, unsigned char *o)
{
	size_t t = 0;
	switch (s->state) {
	case QP_TEXT:
		if (c == '=')
			s->state = QP_EQ;
		else
			o[t++] = c;
		return t;
	case QP_EQ:
		if (hexval(c) >= 0) {
			s->hi = c;
			s->state = QP_HEX1;
		} else if (c == '\r')
			s->state = QP_CR;
		else if (c == '\n')
			s->state = QP_TEXT;
		else if (c == ' ' || c == '\t')
			s->state = QP_WS;
		else {
			s->bad = true;
			s->state = QP_TEXT;
			o[t++] = '=';
			t += qp_step(s, c, o + t);
		}
		return t;
	case QP_HEX1:
		s->state = QP_TEXT;
		if (hexval(c) >= 0) {
			o[t++] = (unsigned char)(hexval(s->hi) << 4 | hexval(c));
			return t;
		}
		s->bad = true;
		o[t++] = '=';
		o[t++] = s->hi;
		return t + qp_step(s, c, o + t);
	case QP_WS:
		if (c == ' ' || c == '\t')
			return 0;
		if (c == '\r') {
			s->state = QP_CR;
			return 0;
		}
		s->state = QP_TEXT;
		if (c == '\n')
			return 0;
		s->bad = true;
		o[t++] = '=';
		return t + qp_step(s, c, o + t);
	default: /* QP_CR: "=\r" is a soft break when LF follows */
		s->state = QP_TEXT;
		if (c == '\n')
			return 0;
		s->bad = true;
		return qp_step(s, c, o);
	}
}

void mime_qp_feed(struct mime_qp *s, const unsigned char *in, size_t len, struct buf *out)
{
	unsigned char tmp[4096];
	size_t t = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if (s->state == QP_TEXT && c != '=') {
			tmp[t++] = c;
		} else {
			t += qp_step(s, c, tmp + t);
		}
		if (t + 8 >= sizeof(tmp)) {
			buf_append(out, tmp, t);
			t = 0;
		}
	}
	buf_append(out, tmp, t);
}

void mime_qp_end(struct mime_qp *s, struct buf *out)
{
	/* A trailing "=" is a soft line break at the end of the data. */
	if (s->state == QP_HEX1) {
		char tmp[2] = {'=', (char)s->hi};
		buf_append(out, tmp, 2);
		s->bad = true;
	}
	s->state = QP_TEXT;
}

int mime_decode_qp(const void *in, size_t len, struct buf *out)
{
	struct mime_qp s = {0};
	mime_qp_feed(&s, in, len, out);
	mime_qp_end(&s, out);
	return s.bad ? -1 : 0;
}

/* ---- UTF-8 and charsets ---------------------------------------------- */

bool mime_utf8_valid(const unsigned char *in, size_t len)
{
	return utf8_valid(in, len);
}

void mime_utf8_sanitize(const unsigned char *in, size_t len, struct buf *out)
{
	size_t i = 0, run = 0;
	while ((i += utf8_ascii_span(in + i, len - i)) < len) {
		size_t n = utf8_seq_len(in + i, len - i);
		if (n > 0) {
			i += n;
			continue;
		}
		buf_append(out, in + run, i - run);
		buf_append(out, "\xef\xbf\xbd", 3);
		i++;
		run = i;
	}
	buf_append(out, in + run, len - run);
}

/* Windows-1252 in 0x80-0x9f; ISO-8859-1 labels get it too, as browsers do,
 * because that is what mislabelled mail means. 0 = undefined. */
static const uint16_t cp1252_c1[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

static void put_cp(struct buf *out, uint32_t cp)
{
	char t[4];
	buf_append(out, t, utf8_encode(cp, t));
}

static void latin1_to_utf8(const unsigned char *in, size_t len, struct buf *out)
{
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] < 0x80)
			continue;
		buf_append(out, in + run, i - run);
		uint32_t cp = in[i];
		if (cp < 0xa0)
			cp = cp1252_c1[cp - 0x80] ? cp1252_c1[cp - 0x80] : cp;
		put_cp(out, cp);
		run = i + 1;
	}
	buf_append(out, in + run, len - run);
}

struct cs_alias {
	const char *name;
	const char *iconv_name;
};

/* Labels seen in mail that iconv does not know, or knows as a subset. */
static const struct cs_alias cs_aliases[] = {
    {"ks_c_5601-1987", "CP949"},  {"ks_c_5601", "CP949"},
    {"euc-kr", "CP949"},          {"gb2312", "GB18030"},
    {"gbk", "GB18030"},           {"x-gbk", "GB18030"},
    {"x-sjis", "CP932"},          {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},       {"sjis", "CP932"},
    {"windows-31j", "CP932"},     {"iso-8859-8-i", "ISO-8859-8"},
    {"x-mac-roman", "MACINTOSH"}, {"unicode-1-1-utf-7", "UTF-7"},
    {"big5", "BIG5-HKSCS"},
};

enum cs_kind { CS_UTF8, CS_LATIN1, CS_ICONV };

static enum cs_kind charset_kind(const char *cs, const char **iconv_name_r)
{
	*iconv_name_r = cs;
	if (cs == NULL || *cs == '\0' || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	    strcasecmp(cs, "ascii") == 0 || strcasecmp(cs, "unknown-8bit") == 0 ||
	    strcasecmp(cs, "x-unknown") == 0)
		return CS_UTF8;
	if (strcasecmp(cs, "iso-8859-1") == 0 || strcasecmp(cs, "iso8859-1") == 0 ||
	    strcasecmp(cs, "latin1") == 0 || strcasecmp(cs, "iso_8859-1") == 0 ||
	    strcasecmp(cs, "windows-1252") == 0 || strcasecmp(cs, "cp1252") == 0 ||
	    strcasecmp(cs, "l1") == 0)
		return CS_LATIN1;
	for (size_t i = 0; i < sizeof(cs_aliases) / sizeof(cs_aliases[0]); i++)
		if (strcasecmp(cs, cs_aliases[i].name) == 0)
			*iconv_name_r = cs_aliases[i].iconv_name;
	return CS_ICONV;
}

static void iconv_convert(iconv_t cd, const unsigned char *in, size_t len, struct buf *out)
{
	char tmp[4096];
	char *ip = (char *)in;
	size_t il = len;
	while (il > 0) {
		char *op = tmp;
		size_t ol = sizeof(tmp);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int err = errno;
		buf_append(out, tmp, sizeof(tmp) - ol);
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		/* EILSEQ skips the byte; EINVAL is a sequence cut at the end. */
		buf_append(out, "\xef\xbf\xbd", 3);
		if (err == EINVAL)
			break;
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	char *op = tmp;
	size_t ol = sizeof(tmp);
	iconv(cd, NULL, NULL, &op, &ol);
	buf_append(out, tmp, sizeof(tmp) - ol);
}

void mime_to_utf8(const char *charset, const void *in, size_t len, struct buf *out)
{
	const char *name;
	enum cs_kind k = charset_kind(charset, &name);
	if (k == CS_ICONV) {
		char lc[64];
		size_t n = strlen(name);
		if (n >= sizeof(lc))
			n = sizeof(lc) - 1;
		memcpy(lc, name, n);
		lc[n] = '\0';
		/* iconv would take "//TRANSLIT"-style suffixes as options. */
		if (strchr(lc, '/') != NULL || strchr(lc, ',') != NULL)
			k = CS_UTF8;
		else {
			iconv_t cd = iconv_open("UTF-8", lc);
			if (cd != (iconv_t)-1) {
				iconv_convert(cd, in, len, out);
				iconv_close(cd);
				return;
			}
			k = CS_UTF8;
		}
	}
	if (k == CS_LATIN1)
		latin1_to_utf8(in, len, out);
	else
		mime_utf8_sanitize(in, len, out);
}

/* Raw header text: UTF-8 when it is valid UTF-8, else Latin-1. */
static void raw_header_text(const unsigned char *in, size_t len, struct buf *out)
{
	if (mime_utf8_valid(in, len))
		buf_append(out, in, len);
	else
		latin1_to_utf8(in, len, out);
}

/* ---- RFC 2047 -------------------------------------------------------- */

struct ew {
	char charset[64];
	char enc;
	const unsigned char *text;
	size_t text_len;
	size_t total;
};

/* Parses "=?charset?X?text?=" at in; false if it is not one. */
static bool ew_parse(const unsigned char *in, size_t len, struct ew *w)
{
	if (len < 8 || in[0] != '=' || in[1] != '?')
		return false;
	size_t i = 2, cs = 0;
	while (i < len && in[i] != '?' && in[i] > ' ' && in[i] < 0x7f) {
		if (cs < sizeof(w->charset) - 1)
			w->charset[cs++] = (char)in[i];
		i++;
	}
	w->charset[cs] = '\0';
	if (cs == 0 || i + 3 >= len || in[i] != '?' || in[i + 2] != '?')
		return false;
	char *star = strchr(w->charset, '*'); /* RFC 2231 language suffix */
	if (star != NULL)
		*star = '\0';
	w->enc = (char)(in[i + 1] | 0x20);
	if (w->enc != 'b' && w->enc != 'q')
		return false;
	i += 3;
	size_t start = i;
	/* RFC 2047 words are at most 75 bytes and hold no white space; a
	 * looser bound keeps broken mailers' words and bounds the work
	 * (every "=?" in a header may start a scan). */
	while (i + 1 < len && !(in[i] == '?' && in[i + 1] == '=')) {
		if (in[i] <= ' ' || i - start > 500)
			return false;
		i++;
	}
	if (i + 1 >= len)
		return false;
	w->text = in + start;
	w->text_len = i - start;
	w->total = i + 2;
	return true;
}

static void ew_decode(const struct ew *w, struct buf *raw)
{
	if (w->enc == 'b') {
		mime_decode_base64(w->text, w->text_len, raw);
		return;
	}
	for (size_t i = 0; i < w->text_len; i++) {
		unsigned char c = w->text[i];
		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < w->text_len && hexval(w->text[i + 1]) >= 0 &&
		         hexval(w->text[i + 2]) >= 0) {
			c = (unsigned char)(hexval(w->text[i + 1]) << 4 | hexval(w->text[i + 2]));
			i += 2;
		}
		buf_append(raw, &c, 1);
	}
}

struct hdr_dec {
	struct buf *out;
	struct buf raw; /* decoded bytes of adjacent words, one charset */
	char charset[64];
	const unsigned char *ws;
	size_t ws_len;
	bool prev_word;
};

static void hd_flush_words(struct hdr_dec *d)
{
	if (d->raw.len > 0)
		mime_to_utf8(d->charset, d->raw.data, d->raw.len, d->out);
	buf_reset(&d->raw);
}

static void hd_flush_ws(struct hdr_dec *d)
{
	buf_append(d->out, d->ws, d->ws_len);
	d->ws_len = 0;
}

static void hd_word(struct hdr_dec *d, const struct ew *w)
{
	/* White space between two encoded words is dropped (RFC 2047 6.2);
	 * the bytes of words in one charset are joined before conversion so
	 * that a character split across two words survives. */
	if (!d->prev_word)
		hd_flush_ws(d);
	d->ws_len = 0;
	if (strcasecmp(d->charset, w->charset) != 0) {
		hd_flush_words(d);
		memcpy(d->charset, w->charset, sizeof(d->charset));
	}
	ew_decode(w, &d->raw);
	d->prev_word = true;
}

void mime_decode_header(const void *in, size_t len, struct buf *out)
{
	const unsigned char *s = in;
	struct hdr_dec d = {.out = out};
	size_t start_len = out->len, i = 0;
	buf_init(&d.raw, BUF_NO_LIMIT);
	while (i < len) {
		struct ew w;
		unsigned char c = s[i];
		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			size_t j = i;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			/* A second run (after a fold) collapses to one space. */
			d.ws = d.ws_len == 0 ? s + i : (const unsigned char *)" ";
			d.ws_len = d.ws_len == 0 ? j - i : 1;
			i = j;
			continue;
		}
		if (c == '=' && ew_parse(s + i, len - i, &w)) {
			hd_word(&d, &w);
			i += w.total;
			continue;
		}
		hd_flush_words(&d);
		hd_flush_ws(&d);
		d.prev_word = false;
		size_t j = i;
		while (j < len && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n' &&
		       !(s[j] == '=' && j + 1 < len && s[j + 1] == '?' && j > i))
			j++;
		if (j == i)
			j++;
		raw_header_text(s + i, j - i, out);
		i = j;
	}
	hd_flush_words(&d);
	if (!d.prev_word)
		hd_flush_ws(&d);
	buf_free(&d.raw);
	/* The value goes into "Name: value\n" lists and SQL text: no NUL,
	 * CR or LF may come out of a decoded word. */
	for (size_t k = start_len; k < out->len; k++)
		if (out->data[k] == '\0' || out->data[k] == '\r' || out->data[k] == '\n')
			out->data[k] = ' ';
}

/* ---- dates ----------------------------------------------------------- */

struct dtok {
	const char *s;
	size_t i;
};

static void dt_skip(struct dtok *t)
{
	for (;;) {
		char c = t->s[t->i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
			t->i++;
		} else if (c == '(') {
			int depth = 0;
			do {
				c = t->s[t->i];
				if (c == '\\' && t->s[t->i + 1] != '\0')
					t->i++;
				else if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
				t->i++;
			} while (depth > 0 && t->s[t->i] != '\0');
		} else
			return;
	}
}

/* Reads a run of digits; -1 if none or more than maxd digits. */
static long dt_num(struct dtok *t, int maxd, int *ndigits)
{
	long v = 0;
	int n = 0;
	while (isdigit((unsigned char)t->s[t->i])) {
		if (++n > maxd)
			return -1;
		v = v * 10 + (t->s[t->i++] - '0');
	}
	if (ndigits != NULL)
		*ndigits = n;
	return n == 0 ? -1 : v;
}

static size_t dt_alpha(struct dtok *t, char *w, size_t wsize)
{
	size_t n = 0;
	while (isalpha((unsigned char)t->s[t->i])) {
		if (n < wsize - 1)
			w[n++] = (char)tolower((unsigned char)t->s[t->i]);
		t->i++;
	}
	w[n] = '\0';
	return n;
}

static int dt_month(const char *w)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	if (strlen(w) < 3)
		return -1;
	for (int m = 0; m < 12; m++)
		if (strncmp(w, months + m * 3, 3) == 0)
			return m + 1;
	return -1;
}

static bool dt_weekday(const char *w)
{
	static const char days[] = "monsuntuewedthufrisat";
	if (strlen(w) < 3)
		return false;
	for (int d = 0; d < 7; d++)
		if (strncmp(w, days + d * 3, 3) == 0)
			return true;
	return false;
}

static bool dt_zone_name(const char *w, long *off_r)
{
	static const struct {
		const char *n;
		long h;
	} zones[] = {
	    {"ut", 0},   {"utc", 0},  {"gmt", 0},  {"z", 0},    {"est", -5}, {"edt", -4},
	    {"cst", -6}, {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7},
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strcmp(w, zones[i].n) == 0) {
			*off_r = zones[i].h * 3600;
			return true;
		}
	/* Military zones: RFC 5322 4.3 says to take them as -0000. */
	if (strlen(w) == 1 && w[0] != 'j') {
		*off_r = 0;
		return true;
	}
	return false;
}

static int64_t days_from_civil(long y, long m, long d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + doe - 719468;
}

static int dt_time(struct dtok *t, long *h, long *mi, long *sec)
{
	*h = dt_num(t, 2, NULL);
	if (*h < 0 || t->s[t->i] != ':')
		return -1;
	t->i++;
	*mi = dt_num(t, 2, NULL);
	if (*mi < 0)
		return -1;
	*sec = 0;
	if (t->s[t->i] == ':') {
		t->i++;
		*sec = dt_num(t, 2, NULL);
		if (*sec < 0)
			return -1;
	}
	return *h > 23 || *mi > 59 || *sec > 60 ? -1 : 0;
}

static int dt_zone(struct dtok *t, long *off)
{
	char w[16];
	*off = 0;
	dt_skip(t);
	char c = t->s[t->i];
	if (c == '+' || c == '-') {
		t->i++;
		int nd;
		long v = dt_num(t, 4, &nd);
		if (v < 0)
			return -1;
		long hh = nd <= 2 ? v : v / 100, mm = nd <= 2 ? 0 : v % 100;
		if (nd <= 2 && t->s[t->i] == ':') { /* "+01:00" */
			t->i++;
			mm = dt_num(t, 2, NULL);
		}
		if (mm < 0 || mm > 59 || hh > 99)
			return -1;
		*off = (hh * 3600 + mm * 60) * (c == '-' ? -1 : 1);
		return 0;
	}
	if (dt_alpha(t, w, sizeof(w)) > 0 && !dt_zone_name(w, off))
		*off = 0; /* unknown names: RFC 5322 says take as -0000 */
	return 0;
}

static long dt_fix_year(long y, int nd)
{
	if (nd <= 2)
		return y < 50 ? 2000 + y : 1900 + y;
	if (nd == 3)
		return 1900 + y;
	return y;
}

struct dt_fields {
	long day, mon, year, h, mi, sec, off;
};

/* asctime order: Jan  1 10:00:00 2024 [zone] (the month already read). */
static int dt_asctime(struct dtok *t, struct dt_fields *f)
{
	int nd;
	dt_skip(t);
	if ((f->day = dt_num(t, 2, NULL)) < 0)
		return -1;
	dt_skip(t);
	if (dt_time(t, &f->h, &f->mi, &f->sec) < 0)
		return -1;
	dt_skip(t);
	if ((f->year = dt_num(t, 4, &nd)) < 0)
		return -1;
	f->year = dt_fix_year(f->year, nd);
	return dt_zone(t, &f->off);
}

/* RFC 5322 order: 1 Jul 2003 10:52:37 +0200 (also 1-Jul-2003). */
static int dt_rfc5322(struct dtok *t, struct dt_fields *f)
{
	char w[16];
	int nd;
	if ((f->day = dt_num(t, 2, NULL)) < 0)
		return -1;
	dt_skip(t);
	if (t->s[t->i] == '-')
		t->i++;
	if (dt_alpha(t, w, sizeof(w)) == 0 || (f->mon = dt_month(w)) < 0)
		return -1;
	dt_skip(t);
	if (t->s[t->i] == '-')
		t->i++;
	if ((f->year = dt_num(t, 4, &nd)) < 0)
		return -1;
	f->year = dt_fix_year(f->year, nd);
	dt_skip(t);
	if (dt_time(t, &f->h, &f->mi, &f->sec) < 0)
		return -1;
	return dt_zone(t, &f->off);
}

int mime_parse_date(const char *s, time_t *r)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct dtok t = {s, 0};
	struct dt_fields f;
	char w[16];
	dt_skip(&t);
	size_t start = t.i;
	if (dt_alpha(&t, w, sizeof(w)) > 0 && dt_weekday(w))
		dt_skip(&t);
	else
		t.i = start;
	start = t.i;
	if (dt_alpha(&t, w, sizeof(w)) > 0 && (f.mon = dt_month(w)) > 0) {
		if (dt_asctime(&t, &f) < 0)
			return -1;
	} else {
		t.i = start;
		if (dt_rfc5322(&t, &f) < 0)
			return -1;
	}
	if (f.day < 1 || f.day > mdays[f.mon - 1] || f.year < 1900 || f.year > 9999)
		return -1;
	bool leap = (f.year % 4 == 0 && f.year % 100 != 0) || f.year % 400 == 0;
	if (f.mon == 2 && f.day == 29 && !leap)
		return -1;
	*r = (time_t)(days_from_civil(f.year, f.mon, f.day) * 86400 + f.h * 3600 + f.mi * 60 +
	              f.sec - f.off);
	return 0;
}

/* ---- text clean-up --------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t cp;
} html_entities[] = {
    {"nbsp", 0xa0},    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},    {"copy", 0xa9},    {"reg", 0xae},     {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"rdquo", 0x201d},  {"ldquo", 0x201c},
    {"euro", 0x20ac},  {"zwnj", 0x200c},
};

static void put_cp_any(struct buf *out, uint32_t cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x10000) {
		put_cp(out, cp);
		return;
	}
	char t[4] = {(char)(0xf0 | cp >> 18), (char)(0x80 | ((cp >> 12) & 0x3f)),
	             (char)(0x80 | ((cp >> 6) & 0x3f)), (char)(0x80 | (cp & 0x3f))};
	buf_append(out, t, 4);
}

/* Decodes "&...;" at in[0]; returns the bytes used, 0 if not an entity. */
static size_t html_entity(const char *in, size_t len, struct buf *out)
{
	size_t i = 1;
	char name[12];
	size_t n = 0;
	while (i < len && i < 12 && in[i] != ';')
		name[n++] = in[i++];
	if (i >= len || in[i] != ';' || n == 0)
		return 0;
	name[n] = '\0';
	if (name[0] == '#') {
		unsigned long v = 0;
		bool hex = n > 1 && (name[1] == 'x' || name[1] == 'X');
		for (size_t k = hex ? 2 : 1; k < n; k++) {
			int d = hex ? hexval((unsigned char)name[k])
			            : (isdigit((unsigned char)name[k]) ? name[k] - '0' : -1);
			if (d < 0)
				return 0;
			v = v * (hex ? 16 : 10) + (unsigned long)d;
		}
		put_cp_any(out, (uint32_t)v);
		return i + 1;
	}
	for (size_t k = 0; k < sizeof(html_entities) / sizeof(html_entities[0]); k++)
		if (strcmp(name, html_entities[k].name) == 0) {
			put_cp_any(out, html_entities[k].cp);
			return i + 1;
		}
	return 0;
}

/* Skips a tag starting at in[0] == '<'; returns bytes used. Drops the body
 * of script and style elements and whole comments. */
static size_t html_tag(const char *in, size_t len, struct buf *out)
{
	if (len >= 4 && memcmp(in, "<!--", 4) == 0) {
		const char *e = memmem(in + 4, len - 4, "-->", 3);
		return e == NULL ? len : (size_t)(e - in) + 3;
	}
	const char *gt = memchr(in, '>', len);
	size_t n = gt == NULL ? len : (size_t)(gt - in) + 1;
	static const char *const skip[] = {"script", "style", "head", "title"};
	for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++) {
		size_t sl = strlen(skip[k]);
		if (n > sl + 1 && strncasecmp(in + 1, skip[k], sl) == 0 &&
		    !isalnum((unsigned char)in[1 + sl])) {
			char close[16] = "</";
			memcpy(close + 2, skip[k], sl + 1);
			for (size_t i = n; i + sl + 2 <= len; i++)
				if (in[i] == '<' && strncasecmp(in + i, close, sl + 2) == 0) {
					const char *g = memchr(in + i, '>', len - i);
					return g == NULL ? len : (size_t)(g - in) + 1;
				}
			return len;
		}
	}
	buf_append_char(out, ' ');
	return n;
}

void mime_html_to_text(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		const char *lt = memchr(in + i, '<', len - i);
		size_t end = lt == NULL ? len : (size_t)(lt - in);
		while (i < end) {
			const char *amp = memchr(in + i, '&', end - i);
			size_t stop = amp == NULL ? end : (size_t)(amp - in);
			buf_append(out, in + i, stop - i);
			i = stop;
			if (i < end) {
				size_t used = html_entity(in + i, end - i, out);
				if (used == 0) {
					buf_append_char(out, '&');
					used = 1;
				}
				i += used;
			}
		}
		if (i < len)
			i += html_tag(in + i, len - i, out);
	}
}

static bool is_fold_space(const unsigned char *s, size_t len, size_t *n)
{
	if (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n' || s[0] == '\f' ||
	    s[0] == '\v') {
		*n = 1;
		return true;
	}
	if (len >= 2 && s[0] == 0xc2 && s[1] == 0xa0) { /* NBSP */
		*n = 2;
		return true;
	}
	return false;
}

static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

void mime_fold_preview(const char *in, size_t len, size_t max_chars, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t chars = utf8_chars(out->data ? out->data : "", out->len);
	bool space = out->len > 0 && out->data[out->len - 1] != ' ';
	size_t i = 0;
	while (i < len && chars < max_chars) {
		size_t n;
		if (is_fold_space(s + i, len - i, &n)) {
			i += n;
			if (out->len > 0 && out->data[out->len - 1] != ' ')
				space = true;
			continue;
		}
		if (space) {
			buf_append_char(out, ' ');
			chars++;
			space = false;
			if (chars >= max_chars)
				break;
		}
		if (s[i] == '\0') {
			i++;
			continue;
		}
		n = s[i] < 0x80 ? 1 : utf8_seq_len(s + i, len - i);
		if (n == 0) {
			buf_append(out, "\xef\xbf\xbd", 3);
			n = 1;
		} else
			buf_append(out, s + i, n);
		chars++;
		i += n;
	}
	/* Never end on the separator. */
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		buf_truncate(out, out->len - 1);
}

void mime_append_utf8_cut(struct buf *out, const char *in, size_t len, size_t max)
{
	len = utf8_cut(in, len, max);
	size_t start = out->len;
	if (buf_append(out, in, len) < 0)
		return;
	char *end = out->data + out->len;
	for (char *p = out->data + start; (p = memchr(p, '\0', (size_t)(end - p))) != NULL;)
		*p++ = ' ';
}
