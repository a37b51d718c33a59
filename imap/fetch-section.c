/* fetch-section.c - where a FETCH section lies in the raw message (from the
 * part table stored at delivery), header field selection, the incremental
 * decoder behind BINARY, and INTERNALDATE formatting. Pure: no I/O. */
#include "imap-fetch.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The range for HEADER/TEXT/HEADER.FIELDS of the message at index i: the
 * top level, or an encapsulated message/rfc822 part. */
static int section_msgtext(const struct mime_part *p, bool top, enum fetch_spec spec,
                           uint64_t *start_r, uint64_t *len_r)
{
	uint64_t hstart, hlen, bstart, blen;
	if (top) {
		hstart = p->header_start, hlen = p->header_len;
		bstart = p->body_start, blen = p->body_len;
	} else {
		if (!(p->flags & MIME_PART_MESSAGE))
			return -1;
		hstart = p->body_start;
		hlen = p->inner_header_len <= p->body_len ? p->inner_header_len : p->body_len;
		bstart = hstart + hlen, blen = p->body_len - hlen;
	}
	if (spec == FS_TEXT)
		*start_r = bstart, *len_r = blen;
	else
		*start_r = hstart, *len_r = hlen;
	return 0;
}

int imap_fetch_section_range(const struct mime_part *parts, size_t nparts,
                             const struct fetch_item *it, uint64_t *start_r, uint64_t *len_r)
{
	if (nparts == 0)
		return -1;
	int i = mime_part_find(parts, nparts, it->part);
	if (i < 0)
		return -1;
	const struct mime_part *p = &parts[i];
	bool top = it->part[0] == '\0';
	switch (it->spec) {
	case FS_NONE:
		if (top) {
			*start_r = 0;
			*len_r = p->body_start + p->body_len;
		} else {
			*start_r = p->body_start, *len_r = p->body_len;
		}
		return 0;
	case FS_MIME:
		*start_r = p->header_start, *len_r = p->header_len;
		return 0;
	default:
		return section_msgtext(p, top, it->spec, start_r, len_r);
	}
}

static bool field_listed(const char *name, size_t n, const char *const *fields)
{
	for (size_t i = 0; fields[i] != NULL; i++)
		if (strlen(fields[i]) == n && strncasecmp(fields[i], name, n) == 0)
			return true;
	return false;
}

void imap_fetch_header_fields(const char *hdr, size_t len, const char *const *fields, bool not_in,
                              struct buf *out)
{
	size_t i = 0;
	bool keep = false;
	while (i < len) {
		const char *nl = memchr(hdr + i, '\n', len - i);
		size_t end = nl == NULL ? len : (size_t)(nl - hdr) + 1;
		size_t linelen = end - i;
		bool blank = hdr[i] == '\n' || (hdr[i] == '\r' && linelen <= 2);
		if (blank)
			break;
		if (hdr[i] != ' ' && hdr[i] != '\t') {
			const char *colon = memchr(hdr + i, ':', linelen);
			size_t n = colon == NULL ? 0 : (size_t)(colon - hdr) - i;
			while (n > 0 && (hdr[i + n - 1] == ' ' || hdr[i + n - 1] == '\t'))
				n--;
			keep = colon != NULL && field_listed(hdr + i, n, fields) != not_in;
		}
		if (keep) {
			buf_append(out, hdr + i, linelen);
			if (hdr[end - 1] != '\n')
				buf_append_str(out, "\r\n");
		}
		i = end;
	}
	buf_append_str(out, "\r\n");
}

void imap_fetch_decoder_init(struct fetch_decoder *d, enum mime_encoding enc)
{
	d->enc = enc;
	buf_init(&d->carry, BUF_NO_LIMIT);
}

static bool b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

static void b64_feed(struct fetch_decoder *d, const unsigned char *p, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++)
		if (b64_char(p[i]))
			buf_append_char(&d->carry, (char)p[i]);
	size_t whole = d->carry.len - d->carry.len % 4;
	if (whole == 0)
		return;
	mime_decode_base64(d->carry.data, whole, out);
	buf_consume(&d->carry, whole);
}

/* Quoted-printable decodes line by line; a partial last line waits. */
static void qp_feed(struct fetch_decoder *d, const void *p, size_t len, struct buf *out)
{
	buf_append(&d->carry, p, len);
	const char *nl = d->carry.len == 0 ? NULL : memrchr(d->carry.data, '\n', d->carry.len);
	if (nl == NULL)
		return;
	size_t n = (size_t)(nl - d->carry.data) + 1;
	mime_decode_qp(d->carry.data, n, out);
	buf_consume(&d->carry, n);
}

void imap_fetch_decoder_feed(struct fetch_decoder *d, const void *p, size_t len, struct buf *out)
{
	switch (d->enc) {
	case MIME_ENC_BASE64:
		b64_feed(d, p, len, out);
		break;
	case MIME_ENC_QP:
		qp_feed(d, p, len, out);
		break;
	default:
		buf_append(out, p, len);
		break;
	}
}

void imap_fetch_decoder_finish(struct fetch_decoder *d, struct buf *out)
{
	if (d->carry.len > 0) {
		if (d->enc == MIME_ENC_BASE64)
			mime_decode_base64(d->carry.data, d->carry.len, out);
		else if (d->enc == MIME_ENC_QP)
			mime_decode_qp(d->carry.data, d->carry.len, out);
	}
	buf_free(&d->carry);
}

void imap_fetch_format_date(int64_t t, char out[32])
{
	static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm)), tm.tm_mday = 1, tm.tm_year = 70;
	/* The modulos only tell the compiler the widths gmtime_r keeps to. */
	snprintf(out, 32, "%2u-%.3s-%04u %02u:%02u:%02u +0000", (unsigned)tm.tm_mday % 100u,
	         mon[(unsigned)tm.tm_mon % 12u], (unsigned)(tm.tm_year + 1900) % 10000u,
	         (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
	         (unsigned)tm.tm_sec % 100u);
}
