/* mime.c - the streaming MIME parser: lines, boundaries, the entity tree and
 * the results built from it (mime.h).
 *
 * The parser keeps a stack of open entities (the top-level message, multipart
 * children, messages inside message/rfc822). Only the top of the stack reads
 * lines: a header is collected into one buffer; a body is either decoded for
 * search text (text leaves) or only scanned for boundary lines. A line that
 * starts with '-' is held back until it is known whether it is a boundary of
 * any open multipart; everything else streams through with memchr.
 *
 * Offsets follow RFC 2046: the line break before a boundary line belongs to
 * the boundary, so a part's body ends before it. Line counts are the number
 * of LFs in the body, plus one when the body ends in a partial line. Sizes
 * are raw octets, as stored.
 *
 * Rendering (documented choice): type, subtype, parameter names and values
 * and the transfer encoding are sent as written in the message, as Dovecot
 * does; defaults are lower case ("text" "plain" ("charset" "us-ascii")
 * "7bit"). RFC 2231 parameters are joined and decoded; a decoded value that
 * is not printable ASCII is sent as name*="utf-8''%XX..". Address parts
 * that are missing are sent as "MISSING_MAILBOX" / "MISSING_DOMAIN" (a NIL
 * host would mean a group), as Dovecot does. A multipart whose boundary never
 * appears is sent with one empty text/plain part, listed in the part table
 * too. Sections must fit struct mime_part's 64 bytes, so nesting stops (the
 * part becomes opaque, or later parts stay in their parent) at about 30
 * levels even when max_depth allows more. */
#include "mime.h"

#include "buf.h"
#include "mime-private.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIME_MAX_BOUNDARY 200
#define MIME_PFX_MAX      (2 + MIME_MAX_BOUNDARY + 3)
/* Decoded bytes kept for a preview candidate even when search text is full. */
#define MIME_PREVIEW_TEXT (64 * 1024)

enum ent_kind { ENT_LEAF, ENT_MULTIPART, ENT_MESSAGE };

enum ent_phase {
	PH_HEADER,   /* collecting the header block */
	PH_BODY,     /* leaf body, or a message whose inner entity is open */
	PH_PREAMBLE, /* multipart before its first boundary */
	PH_PARTS,    /* multipart with a child open */
	PH_IGNORE,   /* multipart past a limit: children not parsed */
	PH_EPILOGUE, /* multipart after its close delimiter */
};

struct ment {
	struct ment *parent, *child, *last, *next;
	unsigned depth, nchildren;
	enum ent_kind kind;
	enum ent_phase phase;
	bool is_msg; /* its header is a message header (has an envelope) */
	bool digest; /* multipart/digest: children default to message/rfc822 */
	bool text, plain, html, attach;
	bool alt_indexed; /* multipart/alternative: one alternative is in the search text */
	enum mime_encoding enc;
	char type[32], subtype[64], charset[40]; /* lower case */
	char sec[64];                            /* its own section in the part table */
	char pfx[64];                            /* what its children's sections start with */
	uint64_t header_start, header_len, body_start, body_end, lines, nlf_body;
	char *boundary;
	size_t blen;
	char *basic;      /* "type" "subtype" params id desc enc */
	char *ext;        /* extension data for BODYSTRUCTURE */
	char *mp_subtype; /* multipart: quoted subtype */
	char *envelope;   /* is_msg: ENVELOPE */
};

enum line_mode { LM_NORMAL, LM_COLLECT, LM_SKIP };

struct mime_parser {
	struct mime_limits lim;
	uint64_t off, nlf;
	/* the current line */
	uint64_t line_start, line_len;
	bool line_cr;
	unsigned prev_term; /* 0, 1 or 2: the line break before line_start */
	bool prev_nonempty; /* the line before line_start had content */
	enum line_mode lmode;
	unsigned char pfx[MIME_PFX_MAX];
	size_t pfx_len, pfx_need;
	struct ment *pend;
	bool pend_close;
	/* entities */
	struct ment *root;
	struct ment **stack;
	size_t sp, scap, nents;
	unsigned nbound;
	size_t max_blen;
	struct buf hdr;
	/* text of the open text leaf */
	struct ment *text_owner;
	bool decoding;
	size_t text_cap, text_in;
	struct mime_b64 b64;
	struct mime_qp qp;
	struct buf text;
	struct buf search, prev_plain, prev_html;
	bool have_plain, have_html;
	struct mime_message *m;
};

void mime_limits_default(struct mime_limits *l)
{
	l->max_depth = 64;
	l->max_parts = 2000;
	l->max_header_bytes = 1024 * 1024;
	l->max_search_text = 1024 * 1024;
	l->preview_chars = 200;
}

static struct ment *top(struct mime_parser *p)
{
	return p->stack[p->sp - 1];
}

/* dst = a + b, cut to size (callers check fits() first). */
static void set_str(char *dst, size_t size, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la >= size)
		la = size - 1;
	if (lb >= size - la)
		lb = size - la - 1;
	memmove(dst, a, la);
	memcpy(dst + la, b, lb);
	dst[la + lb] = '\0';
}

static bool fits(const char *a, const char *b, size_t size)
{
	return strlen(a) + strlen(b) < size;
}

static struct ment *ent_push(struct mime_parser *p, struct ment *parent, uint64_t header_start)
{
	struct ment *e = xcalloc(1, sizeof(*e));
	e->parent = parent;
	e->depth = parent != NULL ? parent->depth + 1 : 0;
	e->phase = PH_HEADER;
	e->header_start = header_start;
	if (parent != NULL && parent->kind == ENT_MULTIPART) {
		if (parent->last != NULL)
			parent->last->next = e;
		else
			parent->child = e;
		parent->last = e;
		parent->nchildren++;
	} else if (parent != NULL) {
		parent->child = e;
		e->is_msg = true;
	}
	if (p->sp == p->scap) {
		p->scap = p->scap == 0 ? 16 : p->scap * 2;
		p->stack = xreallocarray(p->stack, p->scap, sizeof(*p->stack));
	}
	p->stack[p->sp++] = e;
	return e;
}

static void boundaries_update(struct mime_parser *p)
{
	p->nbound = 0;
	p->max_blen = 0;
	for (size_t k = 0; k < p->sp; k++) {
		struct ment *e = p->stack[k];
		if (e->kind != ENT_MULTIPART || e->phase == PH_HEADER || e->phase == PH_EPILOGUE)
			continue;
		p->nbound++;
		if (e->blen > p->max_blen)
			p->max_blen = e->blen;
	}
}

/* ---- header blocks ---------------------------------------------------- */

static void lower_copy(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	/* The table is stored and validated as printable ASCII. */
	for (; s[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = c <= ' ' || c >= 0x7f ? '_' : (char)tolower(c);
	}
	dst[i] = '\0';
}

static enum mime_encoding encoding_parse(const char *s)
{
	if (*s == '\0' || strcasecmp(s, "7bit") == 0)
		return MIME_ENC_7BIT;
	if (strcasecmp(s, "8bit") == 0)
		return MIME_ENC_8BIT;
	if (strcasecmp(s, "binary") == 0)
		return MIME_ENC_BINARY;
	if (strcasecmp(s, "quoted-printable") == 0)
		return MIME_ENC_QP;
	if (strcasecmp(s, "base64") == 0)
		return MIME_ENC_BASE64;
	return MIME_ENC_OTHER;
}

static void nstring_field(struct buf *out, struct mime_span v, struct buf *tmp)
{
	if (v.p == NULL) {
		buf_append(out, "NIL", 3);
		return;
	}
	buf_reset(tmp);
	mime_unfold(v, tmp);
	mime_imap_nstring(out, buf_cstr(tmp), tmp->len);
}

/* Content-Language: one tag as a string, several as a list. */
static void language_field(struct buf *out, struct mime_span v)
{
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	if (v.p != NULL)
		mime_unfold(v, &tmp);
	char *save = NULL, *s = tmp.data;
	size_t n = 0;
	struct buf list;
	buf_init(&list, BUF_NO_LIMIT);
	for (char *t = s == NULL ? NULL : strtok_r(s, ", \t", &save); t != NULL;
	     t = strtok_r(NULL, ", \t", &save)) {
		if (n++ > 0)
			buf_append_char(&list, ' ');
		mime_imap_cstr(&list, t);
	}
	if (n == 0)
		buf_append(out, "NIL", 3);
	else if (n == 1)
		buf_append(out, list.data, list.len);
	else
		buf_printf(out, "(%s)", list.data);
	buf_free(&list);
	buf_free(&tmp);
}

/* Content-Location may be folded anywhere: white space is dropped. */
static void location_field(struct buf *out, struct mime_span v)
{
	if (v.p == NULL) {
		buf_append(out, "NIL", 3);
		return;
	}
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	for (size_t i = 0; i < v.n; i++)
		if (v.p[i] != ' ' && v.p[i] != '\t' && v.p[i] != '\r' && v.p[i] != '\n' &&
		    v.p[i] != '\0')
			buf_append_char(&tmp, v.p[i]);
	mime_imap_nstring(out, buf_cstr(&tmp), tmp.len);
	buf_free(&tmp);
}

static void disposition_field(struct ment *e, struct buf *out, struct mime_span v)
{
	struct mime_ctype cd;
	if (v.p == NULL || mime_ctype_parse(v, false, &cd) < 0) {
		buf_append(out, "NIL", 3);
		return;
	}
	e->attach = strcasecmp(cd.type, "attachment") == 0;
	buf_append_char(out, '(');
	mime_imap_cstr(out, cd.type);
	buf_append_char(out, ' ');
	mime_imap_params(out, &cd, false);
	buf_append_char(out, ')');
	mime_ctype_free(&cd);
}

/* Decides what the entity is; may turn it into an opaque text/plain leaf
 * when a limit says so. */
static void ent_kind_decide(struct mime_parser *p, struct ment *e, struct mime_ctype *ct,
                            bool *opaque_r)
{
	*opaque_r = false;
	e->kind = ENT_LEAF;
	if (strcmp(e->type, "multipart") == 0) {
		const char *b = mime_param_get(ct, "boundary");
		size_t bl = b == NULL ? 0 : strlen(b);
		if (bl == 0 || bl > MIME_MAX_BOUNDARY || e->depth >= p->lim.max_depth) {
			*opaque_r = true;
			return;
		}
		e->kind = ENT_MULTIPART;
		e->boundary = xstrdup(b);
		e->blen = bl;
		e->digest = strcmp(e->subtype, "digest") == 0;
	} else if (strcmp(e->type, "message") == 0 &&
	           (strcmp(e->subtype, "rfc822") == 0 || strcmp(e->subtype, "global") == 0) &&
	           (e->enc == MIME_ENC_7BIT || e->enc == MIME_ENC_8BIT ||
	            e->enc == MIME_ENC_BINARY)) {
		if (e->depth >= p->lim.max_depth || p->nents >= p->lim.max_parts ||
		    !fits(e->sec, ".1", sizeof(e->sec))) {
			*opaque_r = true;
			return;
		}
		e->kind = ENT_MESSAGE;
	}
}

static void ent_render_basic(struct ment *e, const struct mime_ctype *ct,
                             const struct mime_span *sp)
{
	struct buf b, tmp;
	buf_init(&b, BUF_NO_LIMIT);
	buf_init(&tmp, BUF_NO_LIMIT);
	mime_imap_cstr(&b, ct->type);
	buf_append_char(&b, ' ');
	mime_imap_cstr(&b, ct->subtype);
	buf_append_char(&b, ' ');
	mime_imap_params(&b, ct, e->text);
	buf_append_char(&b, ' ');
	nstring_field(&b, sp[MIME_H_CONTENT_ID], &tmp);
	buf_append_char(&b, ' ');
	nstring_field(&b, sp[MIME_H_CONTENT_DESCRIPTION], &tmp);
	buf_append_char(&b, ' ');
	buf_reset(&tmp);
	if (sp[MIME_H_CONTENT_TRANSFER_ENCODING].p != NULL)
		mime_unfold(sp[MIME_H_CONTENT_TRANSFER_ENCODING], &tmp);
	if (tmp.len == 0)
		buf_append_str(&b, "\"7bit\"");
	else
		mime_imap_nstring(&b, tmp.data, tmp.len);
	e->basic = buf_steal(&b, NULL);
	buf_free(&tmp);
}

static void ent_render_ext(struct ment *e, const struct mime_ctype *ct, const struct mime_span *sp)
{
	struct buf b, tmp;
	buf_init(&b, BUF_NO_LIMIT);
	buf_init(&tmp, BUF_NO_LIMIT);
	if (e->kind == ENT_MULTIPART) {
		mime_imap_params(&b, ct, false);
		buf_init(&tmp, BUF_NO_LIMIT);
		mime_imap_cstr(&tmp, ct->subtype);
		e->mp_subtype = buf_steal(&tmp, NULL);
	} else
		nstring_field(&b, sp[MIME_H_CONTENT_MD5], &tmp);
	buf_append_char(&b, ' ');
	disposition_field(e, &b, sp[MIME_H_CONTENT_DISPOSITION]);
	buf_append_char(&b, ' ');
	language_field(&b, sp[MIME_H_CONTENT_LANGUAGE]);
	buf_append_char(&b, ' ');
	location_field(&b, sp[MIME_H_CONTENT_LOCATION]);
	e->ext = buf_steal(&b, NULL);
	buf_free(&tmp);
}

static void ent_set_type(struct mime_parser *p, struct ment *e, const struct mime_span *sp)
{
	struct mime_ctype ct;
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	if (sp[MIME_H_CONTENT_TYPE].p == NULL ||
	    mime_ctype_parse(sp[MIME_H_CONTENT_TYPE], true, &ct) < 0) {
		memset(&ct, 0, sizeof(ct));
		bool digest = e->parent != NULL && e->parent->digest && !e->is_msg;
		set_str(ct.type, sizeof(ct.type), digest ? "message" : "text", "");
		set_str(ct.subtype, sizeof(ct.subtype), digest ? "rfc822" : "plain", "");
	}
	if (sp[MIME_H_CONTENT_TRANSFER_ENCODING].p != NULL)
		mime_unfold(sp[MIME_H_CONTENT_TRANSFER_ENCODING], &tmp);
	e->enc = encoding_parse(buf_cstr(&tmp));
	buf_free(&tmp);
	lower_copy(e->type, sizeof(e->type), ct.type);
	lower_copy(e->subtype, sizeof(e->subtype), ct.subtype);
	bool opaque;
	ent_kind_decide(p, e, &ct, &opaque);
	if (opaque) {
		/* Degrade to opaque text/plain (mime.h): the structure says no
		 * more than is safe, the bytes stay in the blob. */
		p->m->truncated = true;
		mime_ctype_free(&ct);
		set_str(ct.type, sizeof(ct.type), "text", "");
		set_str(ct.subtype, sizeof(ct.subtype), "plain", "");
		set_str(e->type, sizeof(e->type), "text", "");
		set_str(e->subtype, sizeof(e->subtype), "plain", "");
	}
	const char *cs = mime_param_get(&ct, "charset");
	lower_copy(e->charset, sizeof(e->charset), cs != NULL ? cs : "");
	e->text = e->kind == ENT_LEAF && strcmp(e->type, "text") == 0;
	e->plain = e->text && strcmp(e->subtype, "plain") == 0 && !opaque;
	e->html = e->text && strcmp(e->subtype, "html") == 0;
	if (e->kind != ENT_MULTIPART)
		ent_render_basic(e, &ct, sp);
	ent_render_ext(e, &ct, sp);
	mime_ctype_free(&ct);
}

static char *span_unfolded(struct mime_span v)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	if (v.p != NULL)
		mime_unfold(v, &b);
	buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

static char *span_decoded_addrs(struct mime_span v)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	mime_addresses_decoded(v, &b);
	buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

/* "Name: value\n" for every field, values decoded. */
static char *all_fields(const char *h, size_t len)
{
	struct buf b, tmp;
	struct mime_field f;
	size_t pos = 0;
	buf_init(&b, BUF_NO_LIMIT);
	buf_init(&tmp, BUF_NO_LIMIT);
	while (mime_header_next(h, len, &pos, &f)) {
		for (size_t i = 0; i < f.name.n; i++) {
			char c = f.name.p[i];
			buf_append_char(&b, c == '\0' || c == '\r' ? ' ' : c);
		}
		buf_append(&b, ": ", 2);
		buf_reset(&tmp);
		mime_unfold(f.value, &tmp);
		mime_decode_header(buf_cstr(&tmp), tmp.len, &b);
		buf_append_char(&b, '\n');
	}
	buf_free(&tmp);
	buf_append(&b, "", 0);
	return buf_steal(&b, NULL);
}

static void root_fields(struct mime_parser *p, const char *h, size_t len,
                        const struct mime_span *sp)
{
	struct mime_message *m = p->m;
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	if (sp[MIME_H_SUBJECT].p != NULL) {
		mime_unfold(sp[MIME_H_SUBJECT], &tmp);
		struct buf d;
		buf_init(&d, BUF_NO_LIMIT);
		mime_decode_header(buf_cstr(&tmp), tmp.len, &d);
		buf_append(&d, "", 0);
		m->subject = buf_steal(&d, NULL);
	} else
		m->subject = xstrdup("");
	m->from = span_decoded_addrs(sp[MIME_H_FROM]);
	m->to = span_decoded_addrs(sp[MIME_H_TO]);
	m->cc = span_decoded_addrs(sp[MIME_H_CC]);
	m->bcc = span_decoded_addrs(sp[MIME_H_BCC]);
	m->reply_to = span_decoded_addrs(sp[MIME_H_REPLY_TO]);
	m->sender = span_decoded_addrs(sp[MIME_H_SENDER]);
	m->message_id = span_unfolded(sp[MIME_H_MESSAGE_ID]);
	m->in_reply_to = span_unfolded(sp[MIME_H_IN_REPLY_TO]);
	m->references = span_unfolded(sp[MIME_H_REFERENCES]);
	m->headers = all_fields(h, len);
	if (sp[MIME_H_DATE].p != NULL) {
		buf_reset(&tmp);
		mime_unfold(sp[MIME_H_DATE], &tmp);
		m->has_date = mime_parse_date(buf_cstr(&tmp), &m->date) == 0;
	}
	buf_free(&tmp);
	mime_append_utf8_cut(&p->search, m->subject, strlen(m->subject), p->lim.max_search_text);
	if (p->search.len > 0)
		buf_append_char(&p->search, '\n');
}

static void header_complete(struct mime_parser *p, struct ment *e, uint64_t hlen)
{
	struct mime_span sp[MIME_H__COUNT];
	const char *h = p->hdr.data != NULL ? p->hdr.data : "";
	if (hlen > p->hdr.len)
		hlen = p->hdr.len;
	e->header_len = hlen;
	e->body_start = e->header_start + hlen;
	e->nlf_body = p->nlf;
	mime_header_scan(h, hlen, sp);
	ent_set_type(p, e, sp);
	if (e->is_msg || e == p->root) {
		struct buf env;
		buf_init(&env, BUF_NO_LIMIT);
		mime_envelope_render(sp, &env);
		e->envelope = buf_steal(&env, NULL);
	}
	if (e == p->root) {
		root_fields(p, h, hlen, sp);
		p->m->header_size = hlen;
	}
	/* Keep memory bounded between parts: a huge header's buffer goes. */
	if (p->hdr.cap > 64 * 1024)
		buf_free(&p->hdr);
	else
		buf_reset(&p->hdr);
}

/* ---- text ------------------------------------------------------------ */

/* The alternatives of a multipart/alternative say the same thing: only the
 * first one that yields text goes into the search text (halving the work of
 * indexing typical plain+HTML mail). */
static struct ment *text_alternative_parent(const struct ment *e)
{
	struct ment *parent = e->parent;
	if (parent != NULL && strcmp(parent->type, "multipart") == 0 &&
	    strcmp(parent->subtype, "alternative") == 0)
		return parent;
	return NULL;
}

static bool text_searchable(const struct ment *e)
{
	const struct ment *alt = text_alternative_parent(e);
	return alt == NULL || !alt->alt_indexed;
}

static void text_start(struct mime_parser *p, struct ment *e)
{
	size_t used = p->search.len;
	size_t budget = p->lim.max_search_text > used ? p->lim.max_search_text - used : 0;
	if (!text_searchable(e))
		budget = 0;
	bool want_preview =
	    p->lim.preview_chars > 0 && !e->attach &&
	    ((e->plain && !p->have_plain) || (e->html && !p->have_plain && !p->have_html));
	if (want_preview && budget < MIME_PREVIEW_TEXT)
		budget = MIME_PREVIEW_TEXT;
	if (budget == 0)
		return;
	p->text_owner = e;
	p->decoding = true;
	p->text_cap = budget;
	p->text_in = 0;
	buf_reset(&p->text);
	memset(&p->b64, 0, sizeof(p->b64));
	memset(&p->qp, 0, sizeof(p->qp));
}

static void text_feed(struct mime_parser *p, const unsigned char *d, size_t n)
{
	/* The cap counts input bytes, so that where the text is cut does not
	 * depend on how the input was chunked. */
	size_t room = p->text_cap - p->text_in;
	if (n > room)
		n = room;
	p->text_in += n;
	if (p->text_owner->enc == MIME_ENC_BASE64)
		mime_b64_feed(&p->b64, d, n, &p->text);
	else if (p->text_owner->enc == MIME_ENC_QP)
		mime_qp_feed(&p->qp, d, n, &p->text);
	else
		buf_append(&p->text, d, n);
	if (p->text_in >= p->text_cap)
		p->decoding = false;
}

static void text_preview(struct mime_parser *p, struct ment *e, const struct buf *t)
{
	if (e->attach || p->lim.preview_chars == 0)
		return;
	struct buf *dst = NULL;
	if (e->plain && !p->have_plain)
		dst = &p->prev_plain;
	else if (e->html && !p->have_html)
		dst = &p->prev_html;
	if (dst == NULL)
		return;
	mime_fold_preview(buf_cstr(t), t->len, p->lim.preview_chars, dst);
	if (dst->len > 0) {
		p->have_plain = p->have_plain || e->plain;
		p->have_html = p->have_html || e->html;
	}
}

static void text_finish(struct mime_parser *p, struct ment *e)
{
	struct buf utf, plain;
	if (e->enc == MIME_ENC_BASE64)
		mime_b64_end(&p->b64, &p->text);
	else if (e->enc == MIME_ENC_QP)
		mime_qp_end(&p->qp, &p->text);
	buf_init(&utf, BUF_NO_LIMIT);
	mime_to_utf8(e->charset, buf_cstr(&p->text), p->text.len, &utf);
	struct buf *t = &utf;
	buf_init(&plain, BUF_NO_LIMIT);
	if (e->html) {
		mime_html_to_text(buf_cstr(&utf), utf.len, &plain);
		t = &plain;
	}
	size_t used = p->search.len, max = p->lim.max_search_text;
	if (used < max && t->len > 0 && text_searchable(e)) {
		mime_append_utf8_cut(&p->search, buf_cstr(t), t->len, max - used);
		if (p->search.len < max)
			buf_append_char(&p->search, '\n');
		struct ment *alt = text_alternative_parent(e);
		if (alt != NULL)
			alt->alt_indexed = true;
	}
	text_preview(p, e, t);
	buf_free(&utf);
	buf_free(&plain);
	if (p->text.cap > 256 * 1024)
		buf_free(&p->text);
	else
		buf_reset(&p->text);
	p->text_owner = NULL;
	p->decoding = false;
}

/* ---- opening and closing entities ------------------------------------- */

static void open_body(struct mime_parser *p, struct ment *e)
{
	switch (e->kind) {
	case ENT_MULTIPART:
		e->phase = PH_PREAMBLE;
		boundaries_update(p);
		return;
	case ENT_MESSAGE: {
		e->phase = PH_BODY;
		struct ment *in = ent_push(p, e, e->body_start);
		set_str(in->pfx, sizeof(in->pfx), e->sec, ".");
		set_str(in->sec, sizeof(in->sec), in->pfx, "1");
		p->nents++;
		return;
	}
	default:
		e->phase = PH_BODY;
		if (e->text)
			text_start(p, e);
		return;
	}
}

/* A header cut short (by a boundary or the end): no body follows. A
 * message still gets its (empty) inner message so the structure is
 * complete. */
static void header_only(struct mime_parser *p, struct ment *e, uint64_t end)
{
	header_complete(p, e, end - e->header_start);
	if (e->kind == ENT_MESSAGE)
		open_body(p, e);
	else
		e->phase = PH_BODY;
	if (e->kind == ENT_MULTIPART)
		e->phase = PH_PREAMBLE;
}

struct endpoint {
	uint64_t off, nlf;
	bool partial; /* the body ends in a line without LF */
};

static void ent_close(struct mime_parser *p, struct ment *e, const struct endpoint *ep)
{
	if (ep->off < e->body_start && ep->off >= e->header_start) {
		/* The line break before a boundary belongs to the boundary,
		 * even when it ends a header: the header gives it back, so
		 * that a part's header never reaches past its parent's body. */
		e->header_len = ep->off - e->header_start;
		e->body_start = ep->off;
	}
	e->body_end = ep->off > e->body_start ? ep->off : e->body_start;
	if (e->body_end > e->body_start)
		e->lines = ep->nlf - e->nlf_body + (ep->partial ? 1 : 0);
	if (e == p->text_owner)
		text_finish(p, e);
	p->sp--;
	if (e->kind == ENT_MULTIPART)
		boundaries_update(p);
}

/* Closes everything above mp (or everything when mp is NULL). */
static void close_above(struct mime_parser *p, struct ment *mp, const struct endpoint *ep,
                        uint64_t header_end)
{
	while (p->sp > 0 && top(p) != mp) {
		struct ment *t = top(p);
		if (t->phase == PH_HEADER) {
			header_only(p, t, header_end);
			continue;
		}
		ent_close(p, t, ep);
	}
}

static void new_child(struct mime_parser *p, struct ment *mp)
{
	char num[16];
	snprintf(num, sizeof(num), "%u", mp->nchildren + 1);
	if (p->nents >= p->lim.max_parts || !fits(mp->pfx, num, sizeof(mp->sec))) {
		/* Later parts stay inside the parent's body (mime.h). */
		mp->phase = PH_IGNORE;
		p->m->truncated = true;
		return;
	}
	struct ment *c = ent_push(p, mp, p->off);
	set_str(c->sec, sizeof(c->sec), mp->pfx, num);
	set_str(c->pfx, sizeof(c->pfx), c->sec, ".");
	mp->phase = PH_PARTS;
	p->nents++;
}

/* The current line (starting at line_start) is a boundary of mp. */
static void apply_boundary(struct mime_parser *p, struct ment *mp, bool close)
{
	struct endpoint ep = {
	    .off = p->line_start - p->prev_term,
	    .nlf = p->nlf - (p->prev_term > 0 ? 1 : 0),
	    .partial = p->prev_nonempty,
	};
	close_above(p, mp, &ep, p->line_start);
	if (close) {
		mp->phase = PH_EPILOGUE;
		boundaries_update(p);
	} else
		new_child(p, mp);
}

/* Is line (a prefix of it) a boundary of an open multipart? Innermost first. */
static struct ment *boundary_match(struct mime_parser *p, const unsigned char *line, size_t n,
                                   bool *close_r)
{
	if (n < 2 || line[0] != '-' || line[1] != '-')
		return NULL;
	for (size_t k = p->sp; k-- > 0;) {
		struct ment *e = p->stack[k];
		if (e->kind != ENT_MULTIPART || e->phase == PH_HEADER || e->phase == PH_EPILOGUE)
			continue;
		if (n < 2 + e->blen || memcmp(line + 2, e->boundary, e->blen) != 0)
			continue;
		const unsigned char *r = line + 2 + e->blen;
		size_t rn = n - 2 - e->blen;
		if (rn >= 2 && r[0] == '-' && r[1] == '-') {
			*close_r = true;
			return e;
		}
		/* A CR counts only as the end of the line, not a lone CR. */
		if (rn == 0 || r[0] == ' ' || r[0] == '\t' || (r[0] == '\r' && rn == 1)) {
			*close_r = false;
			return e;
		}
	}
	return NULL;
}

/* ---- feeding ---------------------------------------------------------- */

static void line_advance(struct mime_parser *p, const unsigned char *d, size_t n)
{
	p->off += n;
	p->line_len += n;
	if (n > 0)
		p->line_cr = d[n - 1] == '\r';
}

/* The LF of the current line was just seen (not yet counted). */
static void line_done(struct mime_parser *p)
{
	unsigned term = p->line_cr ? 2 : 1;
	bool nonempty = p->line_len > (p->line_cr ? 1u : 0u);
	p->off++;
	if (p->lmode == LM_SKIP)
		apply_boundary(p, p->pend, p->pend_close);
	p->nlf++;
	p->prev_term = term;
	p->prev_nonempty = nonempty;
	p->line_start = p->off;
	p->line_len = 0;
	p->line_cr = false;
	p->lmode = LM_NORMAL;
	p->pfx_len = 0;
}

static void header_overflow(struct mime_parser *p, struct ment *e)
{
	/* The header ends before the line that does not fit; that line and
	 * the rest are body. The part of the line already taken is fed
	 * again in the new state. */
	size_t keep = (size_t)(p->line_start - e->header_start);
	size_t plen = p->hdr.len - keep;
	char *partial = xmemdup0(p->hdr.data != NULL ? p->hdr.data + keep : "", plen);
	p->m->truncated = true;
	header_complete(p, e, keep);
	open_body(p, e);
	p->off = p->line_start;
	p->line_len = 0;
	p->line_cr = false;
	mime_parser_feed(p, partial, plen);
	free(partial);
}

static size_t step_header(struct mime_parser *p, struct ment *e, const unsigned char *d, size_t seg,
                          bool lf)
{
	if (p->lim.max_header_bytes - p->hdr.len < seg || p->lim.max_header_bytes < p->hdr.len) {
		header_overflow(p, e);
		return 0;
	}
	buf_append(&p->hdr, d, seg);
	line_advance(p, d, lf ? seg - 1 : seg);
	if (!lf)
		return seg;
	size_t ls = (size_t)(p->line_start - e->header_start);
	size_t content = p->line_len - (p->line_cr ? 1 : 0);
	bool close;
	struct ment *mp = p->nbound > 0 ? boundary_match(p, (const unsigned char *)p->hdr.data + ls,
	                                                 content, &close)
	                                : NULL;
	if (mp != NULL) {
		p->pend = mp;
		p->pend_close = close;
		p->lmode = LM_SKIP;
		line_done(p);
		return seg;
	}
	line_done(p);
	if (content == 0) {
		header_complete(p, e, p->off - e->header_start);
		open_body(p, e);
	}
	return seg;
}

static void deliver(struct mime_parser *p, const unsigned char *d, size_t n)
{
	if (p->decoding && p->text_owner == top(p))
		text_feed(p, d, n);
}

/* A collected prefix is complete: boundary or content. */
static void collect_decide(struct mime_parser *p)
{
	bool close;
	struct ment *mp = boundary_match(p, p->pfx, p->pfx_len, &close);
	if (mp != NULL) {
		p->pend = mp;
		p->pend_close = close;
		p->lmode = LM_SKIP;
		return;
	}
	p->lmode = LM_NORMAL;
	deliver(p, p->pfx, p->pfx_len);
}

static size_t step_collect(struct mime_parser *p, const unsigned char *d, size_t seg, bool lf)
{
	size_t content = lf ? seg - 1 : seg;
	size_t take = p->pfx_need - p->pfx_len;
	if (take > content)
		take = content;
	memcpy(p->pfx + p->pfx_len, d, take);
	p->pfx_len += take;
	line_advance(p, d, take);
	bool at_lf = lf && take == content;
	if (p->pfx_len < p->pfx_need && !at_lf)
		return take;
	collect_decide(p);
	if (!at_lf)
		return take;
	if (p->lmode == LM_NORMAL)
		deliver(p, d + take, 1);
	line_done(p);
	return take + 1;
}

static size_t step(struct mime_parser *p, const unsigned char *d, size_t n)
{
	struct ment *e = top(p);
	const unsigned char *nl = memchr(d, '\n', n);
	size_t seg = nl != NULL ? (size_t)(nl - d) + 1 : n;
	if (e->phase == PH_HEADER)
		return step_header(p, e, d, seg, nl != NULL);
	if (p->lmode == LM_NORMAL && p->line_len == 0 && p->nbound > 0 && d[0] == '-') {
		p->lmode = LM_COLLECT;
		p->pfx_len = 0;
		p->pfx_need = 2 + p->max_blen + 3;
	}
	if (p->lmode == LM_COLLECT)
		return step_collect(p, d, seg, nl != NULL);
	if (p->lmode == LM_NORMAL)
		deliver(p, d, seg);
	line_advance(p, d, nl != NULL ? seg - 1 : seg);
	if (nl != NULL)
		line_done(p);
	return seg;
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const unsigned char *d = data;
	size_t i = 0;
	while (i < len)
		i += step(p, d + i, len - i);
}

struct mime_parser *mime_parser_new(const struct mime_limits *limits)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	if (limits != NULL)
		p->lim = *limits;
	else
		mime_limits_default(&p->lim);
	if (p->lim.max_depth == 0)
		p->lim.max_depth = 1;
	p->m = xcalloc(1, sizeof(*p->m));
	buf_init(&p->hdr, BUF_NO_LIMIT);
	buf_init(&p->text, BUF_NO_LIMIT);
	buf_init(&p->search, p->lim.max_search_text);
	buf_init(&p->prev_plain, BUF_NO_LIMIT);
	buf_init(&p->prev_html, BUF_NO_LIMIT);
	p->root = ent_push(p, NULL, 0);
	snprintf(p->root->sec, sizeof(p->root->sec), "1");
	return p;
}

/* ---- results ---------------------------------------------------------- */

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

static void render(struct buf *out, const struct ment *e, bool ext)
{
	if (e->kind == ENT_MULTIPART) {
		buf_append_char(out, '(');
		/* IMAP needs at least one part: say an empty text/plain, as
		 * Dovecot does, when the boundary never appeared. */
		if (e->child == NULL)
			buf_append_str(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
		for (const struct ment *c = e->child; c != NULL; c = c->next)
			render(out, c, ext);
		buf_printf(out, " %s", e->mp_subtype);
		if (ext)
			buf_printf(out, " %s", e->ext);
		buf_append_char(out, ')');
		return;
	}
	buf_printf(out, "(%s %llu", e->basic, (unsigned long long)(e->body_end - e->body_start));
	if (e->kind == ENT_MESSAGE) {
		buf_printf(out, " %s ", e->child->envelope);
		render(out, e->child, ext);
		buf_printf(out, " %llu", (unsigned long long)e->lines);
	} else if (e->text)
		buf_printf(out, " %llu", (unsigned long long)e->lines);
	if (ext)
		buf_printf(out, " %s", e->ext);
	buf_append_char(out, ')');
}

struct table {
	struct mime_part *a;
	size_t n, cap;
};

static size_t table_add(struct table *t, const struct ment *e, const char *sec, int parent)
{
	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->a = xreallocarray(t->a, t->cap, sizeof(*t->a));
	}
	struct mime_part *pt = &t->a[t->n];
	memset(pt, 0, sizeof(*pt));
	snprintf(pt->section, sizeof(pt->section), "%s", sec);
	pt->parent = parent;
	pt->flags = e->kind == ENT_MULTIPART ? MIME_PART_MULTIPART
	            : e->kind == ENT_MESSAGE ? MIME_PART_MESSAGE
	            : e->text                ? MIME_PART_TEXT
	                                     : 0;
	pt->encoding = e->enc;
	/* snprintf, not memcpy: the bytes after the NUL stay zero, so a
	 * table survives pack/unpack byte for byte. */
	snprintf(pt->type, sizeof(pt->type), "%s", e->type);
	snprintf(pt->subtype, sizeof(pt->subtype), "%s", e->subtype);
	snprintf(pt->charset, sizeof(pt->charset), "%s", e->charset);
	pt->header_start = e->header_start;
	pt->header_len = e->header_len;
	pt->body_start = e->body_start;
	pt->body_len = e->body_end - e->body_start;
	pt->body_lines = e->lines;
	if (e->kind == ENT_MESSAGE)
		pt->inner_header_len = e->child->header_len;
	return t->n++;
}

static void table_content(struct table *t, const struct ment *e, int parent);

/* A multipart whose boundary never appeared is rendered with one empty
 * text/plain part (see render); the table lists it too, so that BODY[1]
 * answers what BODYSTRUCTURE promised. */
static void table_empty_part(struct table *t, const struct ment *mp, int parent)
{
	char sec[64];
	struct ment fake;
	size_t l = strlen(mp->pfx);
	if (l + 1 >= sizeof(sec))
		return;
	memcpy(sec, mp->pfx, l);
	sec[l] = '1';
	sec[l + 1] = '\0';
	memset(&fake, 0, sizeof(fake));
	fake.kind = ENT_LEAF;
	fake.text = true;
	set_str(fake.type, sizeof(fake.type), "text", "");
	set_str(fake.subtype, sizeof(fake.subtype), "plain", "");
	fake.header_start = fake.body_start = fake.body_end = mp->body_start;
	table_add(t, &fake, sec, parent);
}

static void table_part(struct table *t, const struct ment *e, int parent)
{
	int idx = (int)table_add(t, e, e->sec, parent);
	if (e->kind == ENT_MULTIPART && e->child == NULL)
		table_empty_part(t, e, idx);
	else if (e->kind == ENT_MULTIPART)
		for (const struct ment *c = e->child; c != NULL; c = c->next)
			table_part(t, c, idx);
	else if (e->kind == ENT_MESSAGE)
		table_content(t, e->child, idx);
}

/* The parts of a message's content: a multipart's children, or the body
 * itself as part "1" (mime.h). */
static void table_content(struct table *t, const struct ment *e, int parent)
{
	if (e->kind == ENT_MULTIPART && e->child == NULL)
		table_empty_part(t, e, parent);
	else if (e->kind == ENT_MULTIPART) {
		for (const struct ment *c = e->child; c != NULL; c = c->next)
			table_part(t, c, parent);
	} else
		table_part(t, e, parent);
}

static void ent_free(struct ment *e)
{
	while (e != NULL) {
		struct ment *next = e->next;
		ent_free(e->child);
		free(e->boundary);
		free(e->basic);
		free(e->ext);
		free(e->mp_subtype);
		free(e->envelope);
		free(e);
		e = next;
	}
}

static char *steal_or_empty(struct buf *b)
{
	buf_append(b, "", 0);
	return buf_steal(b, NULL);
}

static void parser_flush_line(struct mime_parser *p)
{
	struct ment *e = top(p);
	bool close;
	if (p->lmode == LM_COLLECT)
		collect_decide(p);
	if (p->lmode == LM_SKIP) {
		apply_boundary(p, p->pend, p->pend_close);
		return;
	}
	if (e->phase == PH_HEADER && p->line_len > 0 && p->nbound > 0) {
		size_t ls = (size_t)(p->line_start - e->header_start);
		struct ment *mp =
		    boundary_match(p, (const unsigned char *)p->hdr.data + ls, p->line_len, &close);
		if (mp != NULL)
			apply_boundary(p, mp, close);
	}
}

static void results(struct mime_parser *p, struct mime_message *m)
{
	struct buf b;
	struct table t = {NULL, 0, 0};
	buf_init(&b, BUF_NO_LIMIT);
	render(&b, p->root, false);
	m->body = steal_or_empty(&b);
	render(&b, p->root, true);
	m->bodystructure = steal_or_empty(&b);
	m->envelope = xstrdup(p->root->envelope);
	table_add(&t, p->root, "", -1);
	t.a[0].inner_header_len = p->root->kind == ENT_MESSAGE ? p->root->child->header_len : 0;
	table_content(&t, p->root, 0);
	m->parts = t.a;
	m->nparts = t.n;
	m->size = p->off;
	m->search_text = steal_or_empty(&p->search);
	m->preview = steal_or_empty(p->have_plain ? &p->prev_plain : &p->prev_html);
}

struct mime_message *mime_parser_finish(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	struct mime_message *m = p->m;
	*pp = NULL;
	parser_flush_line(p);
	struct endpoint ep = {p->off, p->nlf, p->line_len > 0};
	close_above(p, NULL, &ep, p->off);
	results(p, m);
	ent_free(p->root);
	free(p->stack);
	buf_free(&p->hdr);
	buf_free(&p->text);
	buf_free(&p->search);
	buf_free(&p->prev_plain);
	buf_free(&p->prev_html);
	free(p);
	return m;
}

struct mime_message *mime_parse(const void *data, size_t len, const struct mime_limits *limits)
{
	struct mime_parser *p = mime_parser_new(limits);
	mime_parser_feed(p, data, len);
	return mime_parser_finish(&p);
}

void mime_message_free(struct mime_message **mp)
{
	struct mime_message *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	char *strs[] = {
	    m->envelope,   m->body,    m->bodystructure, m->subject, m->from,       m->to,
	    m->cc,         m->bcc,     m->reply_to,      m->sender,  m->message_id, m->in_reply_to,
	    m->references, m->headers, m->search_text,   m->preview};
	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		free(strs[k]);
	free(m->parts);
	free(m);
}
