/* mime-parts.c - looking up, packing and unpacking the part table.
 *
 * Packed form (version 1), all integers unsigned LEB128:
 *   "RMP" 0x01, nparts, then per part: section, parent+1, flags, encoding,
 *   type, subtype, charset (strings as length + bytes), header_start,
 *   header_len, body_start, body_len, body_lines, inner_header_len;
 *   then the CRC-32 (zlib) of everything before it, 4 bytes little-endian.
 * The CRC catches corruption that would still look plausible (an offset
 * changed but within the message). */
#include "mime-private.h"

#include "buf.h"
#include "mime.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PACK_MAGIC     "RMP\x01"
#define PACK_MAX_PARTS 1000000

static bool section_valid(const char *s)
{
	if (*s == '\0')
		return true;
	for (;;) {
		if (*s < '1' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s == '\0')
			return true;
		if (*s != '.')
			return false;
		s++;
	}
}

int mime_part_find(const struct mime_part *parts, size_t nparts, const char *section)
{
	if (section == NULL || !section_valid(section) || strlen(section) >= sizeof(parts->section))
		return -1;
	for (size_t k = 0; k < nparts; k++)
		if (strcmp(parts[k].section, section) == 0)
			return (int)k;
	return -1;
}

static void put_varint(struct buf *out, uint64_t v)
{
	unsigned char t[10];
	size_t n = 0;
	do {
		unsigned char c = v & 0x7f;
		v >>= 7;
		t[n++] = v != 0 ? (unsigned char)(c | 0x80) : c;
	} while (v != 0);
	buf_append(out, t, n);
}

static void put_str(struct buf *out, const char *s)
{
	size_t n = strlen(s);
	put_varint(out, n);
	buf_append(out, s, n);
}

void mime_parts_pack(const struct mime_part *parts, size_t nparts, struct buf *out)
{
	size_t start = out->len;
	buf_append(out, PACK_MAGIC, 4);
	put_varint(out, nparts);
	for (size_t k = 0; k < nparts; k++) {
		const struct mime_part *pt = &parts[k];
		put_str(out, pt->section);
		put_varint(out, (uint64_t)(pt->parent + 1));
		put_varint(out, pt->flags);
		put_varint(out, (uint64_t)pt->encoding);
		put_str(out, pt->type);
		put_str(out, pt->subtype);
		put_str(out, pt->charset);
		put_varint(out, pt->header_start);
		put_varint(out, pt->header_len);
		put_varint(out, pt->body_start);
		put_varint(out, pt->body_len);
		put_varint(out, pt->body_lines);
		put_varint(out, pt->inner_header_len);
	}
	uLong crc = crc32(0L, (const Bytef *)out->data + start, (uInt)(out->len - start));
	unsigned char c[4] = {(unsigned char)crc, (unsigned char)(crc >> 8),
	                      (unsigned char)(crc >> 16), (unsigned char)(crc >> 24)};
	buf_append(out, c, 4);
}

struct rd {
	const unsigned char *p;
	size_t n, i;
	bool bad;
};

static uint64_t get_varint(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->i >= r->n) {
			r->bad = true;
			return 0;
		}
		unsigned char c = r->p[r->i++];
		if (shift == 63 && (c & 0x7e) != 0) {
			r->bad = true;
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			/* Overlong forms (a trailing zero group) are refused. */
			if (c == 0 && shift > 0)
				r->bad = true;
			return v;
		}
	}
	r->bad = true;
	return 0;
}

/* A string into dst[size]: printable ASCII only, shorter than size. */
static void get_str(struct rd *r, char *dst, size_t size)
{
	uint64_t n = get_varint(r);
	if (r->bad || n >= size || n > r->n - r->i) {
		r->bad = true;
		dst[0] = '\0';
		return;
	}
	for (size_t k = 0; k < n; k++) {
		unsigned char c = r->p[r->i + k];
		if (c <= 0x20 || c >= 0x7f)
			r->bad = true;
		dst[k] = (char)c;
	}
	dst[n] = '\0';
	r->i += n;
}

static bool range_ok(uint64_t start, uint64_t len, uint64_t size)
{
	return start <= size && len <= size - start;
}

/* The section must be the parent's plus one more number. */
static bool section_child_of(const char *sec, const char *parent)
{
	size_t pl = strlen(parent);
	if (pl > 0) {
		if (strncmp(sec, parent, pl) != 0 || sec[pl] != '.')
			return false;
		sec += pl + 1;
	}
	return *sec != '\0' && section_valid(sec) && strchr(sec, '.') == NULL;
}

static bool part_read(struct rd *r, struct mime_part *pt, size_t k, const struct mime_part *all,
                      uint64_t size)
{
	get_str(r, pt->section, sizeof(pt->section));
	uint64_t parent = get_varint(r);
	uint64_t flags = get_varint(r);
	uint64_t enc = get_varint(r);
	get_str(r, pt->type, sizeof(pt->type));
	get_str(r, pt->subtype, sizeof(pt->subtype));
	get_str(r, pt->charset, sizeof(pt->charset));
	pt->header_start = get_varint(r);
	pt->header_len = get_varint(r);
	pt->body_start = get_varint(r);
	pt->body_len = get_varint(r);
	pt->body_lines = get_varint(r);
	pt->inner_header_len = get_varint(r);
	if (r->bad || flags > (MIME_PART_MULTIPART | MIME_PART_MESSAGE | MIME_PART_TEXT) ||
	    enc > MIME_ENC_OTHER || parent > k || (k == 0) != (parent == 0))
		return false;
	pt->parent = (int)parent - 1;
	pt->flags = (unsigned)flags;
	pt->encoding = (enum mime_encoding)enc;
	if (k == 0 ? pt->section[0] != '\0'
	           : !section_child_of(pt->section, all[pt->parent].section))
		return false;
	return range_ok(pt->header_start, pt->header_len, size) &&
	       range_ok(pt->body_start, pt->body_len, size) &&
	       pt->inner_header_len <= pt->body_len && pt->body_lines <= pt->body_len;
}

int mime_parts_unpack(const void *data, size_t len, uint64_t message_size,
                      struct mime_part **parts_r, size_t *nparts_r)
{
	const unsigned char *d = data;
	*parts_r = NULL;
	*nparts_r = 0;
	if (len < 9 || memcmp(d, PACK_MAGIC, 4) != 0)
		return -1;
	uLong crc = crc32(0L, d, (uInt)(len - 4));
	const unsigned char *c = d + len - 4;
	if (crc != ((uLong)c[0] | (uLong)c[1] << 8 | (uLong)c[2] << 16 | (uLong)c[3] << 24))
		return -1;
	struct rd r = {d, len - 4, 4, false};
	uint64_t n = get_varint(&r);
	/* Every part takes at least 13 bytes: a bound before allocating. */
	if (r.bad || n == 0 || n > PACK_MAX_PARTS || n > (r.n - r.i) / 13)
		return -1;
	struct mime_part *parts = xcalloc((size_t)n, sizeof(*parts));
	for (size_t k = 0; k < n; k++)
		if (!part_read(&r, &parts[k], k, parts, message_size)) {
			free(parts);
			return -1;
		}
	if (r.i != r.n) {
		free(parts);
		return -1;
	}
	*parts_r = parts;
	*nparts_r = (size_t)n;
	return 0;
}
