/* mime-private.h - pieces shared by mime.c, mime-header.c, mime-decode.c and
 * mime-parts.c. Not for use outside the MIME parser. */
#ifndef ROOST_MIME_PRIVATE_H
#define ROOST_MIME_PRIVATE_H

#include "buf.h"
#include "mime.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte range inside a header block; p == NULL when the field is absent. */
struct mime_span {
	const char *p;
	size_t n;
};

/* Header fields the parser looks at; the first occurrence wins. */
enum mime_hdr_id {
	MIME_H_CONTENT_TYPE,
	MIME_H_CONTENT_TRANSFER_ENCODING,
	MIME_H_CONTENT_ID,
	MIME_H_CONTENT_DESCRIPTION,
	MIME_H_CONTENT_MD5,
	MIME_H_CONTENT_DISPOSITION,
	MIME_H_CONTENT_LANGUAGE,
	MIME_H_CONTENT_LOCATION,
	MIME_H_DATE,
	MIME_H_SUBJECT,
	MIME_H_FROM,
	MIME_H_SENDER,
	MIME_H_REPLY_TO,
	MIME_H_TO,
	MIME_H_CC,
	MIME_H_BCC,
	MIME_H_IN_REPLY_TO,
	MIME_H_MESSAGE_ID,
	MIME_H_REFERENCES,
	MIME_H__COUNT
};

struct mime_field {
	struct mime_span name;  /* trimmed */
	struct mime_span value; /* raw, folded, without the final line break */
};

/* Steps through the fields of a header block; *pos starts at 0. Lines that
 * are not fields are skipped. false at the end (or at the blank line). */
bool mime_header_next(const char *h, size_t len, size_t *pos, struct mime_field *f);
/* Fills spans[MIME_H__COUNT] with the first occurrence of each known field. */
void mime_header_scan(const char *h, size_t len, struct mime_span *spans);
/* Unfolds a raw value into out: CR and LF removed, NULs dropped, leading
 * and trailing white space trimmed. */
void mime_unfold(struct mime_span v, struct buf *out);

/* A parameter after RFC 2231 decoding: value is UTF-8 when ext is set (it
 * came from an extended value), else the bytes as written. */
struct mime_param {
	char *name;
	char *value;
	bool ext;
};

/* "type/subtype; params" (Content-Type) or "value; params"
 * (Content-Disposition when subtype_r is NULL). Returns -1 when the value
 * is not usable. The strings are as written (case kept), at most
 * type_size-1 / subtype_size-1 bytes. */
struct mime_ctype {
	char type[32];
	char subtype[64];
	struct mime_param *params;
	size_t nparams;
};
int mime_ctype_parse(struct mime_span v, bool want_subtype, struct mime_ctype *ct);
void mime_ctype_free(struct mime_ctype *ct);
const char *mime_param_get(const struct mime_ctype *ct, const char *name);

/* IMAP output: NIL for NULL, a quoted string for printable 7-bit text,
 * else a literal (NULs dropped). */
void mime_imap_nstring(struct buf *out, const char *s, size_t n);
void mime_imap_cstr(struct buf *out, const char *s);
/* ("name" "value" ...) or NIL; RFC 2231 values that are not printable
 * ASCII go out as name*="utf-8''%XX". */
void mime_imap_params(struct buf *out, const struct mime_ctype *ct, bool add_charset);

/* Renders the ENVELOPE of a message header. */
void mime_envelope_render(const struct mime_span *spans, struct buf *out);
/* "Name <a@b>, c@d" with names decoded, for SEARCH and SORT. */
void mime_addresses_decoded(struct mime_span v, struct buf *out);

/* Streaming transfer decoders. */
struct mime_b64 {
	uint32_t acc;
	unsigned n;
	bool pad;
	bool bad;
};
struct mime_qp {
	int state;
	unsigned char hi;
	bool bad;
};
void mime_b64_feed(struct mime_b64 *s, const unsigned char *in, size_t len, struct buf *out);
/* Flushes a partial quantum; marks bad when one was left. */
void mime_b64_end(struct mime_b64 *s, struct buf *out);
void mime_qp_feed(struct mime_qp *s, const unsigned char *in, size_t len, struct buf *out);
void mime_qp_end(struct mime_qp *s, struct buf *out);

/* Appends UTF-8 text from in, invalid sequences replaced by U+FFFD. */
void mime_utf8_sanitize(const unsigned char *in, size_t len, struct buf *out);
bool mime_utf8_valid(const unsigned char *in, size_t len);
/* HTML to plain text: tags, comments, script and style dropped, a few
 * entities decoded. */
void mime_html_to_text(const char *in, size_t len, struct buf *out);
/* Appends in to out with runs of white space folded to one space, trimmed,
 * at most max_chars UTF-8 characters in out (counting what is there). */
void mime_fold_preview(const char *in, size_t len, size_t max_chars, struct buf *out);
/* Appends at most max bytes of UTF-8 text, cut at a character boundary,
 * NULs replaced by spaces. */
void mime_append_utf8_cut(struct buf *out, const char *in, size_t len, size_t max);

#endif
