/* imap-fetch.h - FETCH internals shared by cmd-fetch.c and the fetch-*.c
 * files, and tested by tests/unit/test-imap-search.c.
 *
 * Everything is served from what delivery stored (DESIGN.md "parse once"):
 * the view's entries (UID, flags, MODSEQ, INTERNALDATE, size), the
 * messages row (ENVELOPE, BODY, BODYSTRUCTURE, part table, preview) and
 * slices of the blob at the part table's offsets. */
#ifndef ROOST_IMAP_FETCH_H
#define ROOST_IMAP_FETCH_H

#include "buf.h"
#include "mime.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

enum fetch_item_type {
	FI_FLAGS,
	FI_INTERNALDATE,
	FI_RFC822_SIZE,
	FI_ENVELOPE,
	FI_BODY, /* BODY without a section: the non-extensible structure */
	FI_BODYSTRUCTURE,
	FI_UID,
	FI_MODSEQ,
	FI_PREVIEW,
	FI_SECTION, /* BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER, RFC822.TEXT */
	FI_BINARY,  /* BINARY[...], BINARY.PEEK[...] */
	FI_BINARY_SIZE,
};

enum fetch_spec {
	FS_NONE, /* the part itself, or the whole message */
	FS_HEADER,
	FS_HEADER_FIELDS,
	FS_HEADER_FIELDS_NOT,
	FS_MIME,
	FS_TEXT,
};

struct fetch_item {
	enum fetch_item_type type;
	bool peek;        /* does not set \Seen */
	const char *part; /* "1.2", "" for the top level */
	enum fetch_spec spec;
	const char **fields; /* HEADER.FIELDS(.NOT), NULL-terminated */
	bool partial;
	uint64_t origin, length;
	const char *name; /* the response's item name, e.g. "BODY[TEXT]<0>" */
};

#define FETCH_MAX_ITEMS  64
#define FETCH_MAX_FIELDS 64

struct fetch_request {
	struct fetch_item items[FETCH_MAX_ITEMS];
	size_t n;
	uint64_t changedsince; /* 0: none */
	bool vanished;
	bool need_meta;   /* ENVELOPE/BODY/BODYSTRUCTURE/PREVIEW/sections */
	bool need_header; /* the top-level header bytes */
	bool sets_seen;   /* an item without PEEK */
	bool has_modseq;
};

/* Parses one fetch attribute (as imap_arg_word returns it) or a macro
 * (ALL, FAST, FULL) into req (appending). -1 with a static message. */
int imap_fetch_parse_att(struct arena *a, const char *word, struct fetch_request *req,
                         const char **error_r);

/* A section's byte range inside the message, from the part table: *start_r
 * and *len_r, or -1 if the part does not exist. *message_r: the range is a
 * message (header fields apply to its header). For FS_HEADER_FIELDS* the
 * range is the header the fields come from. */
int imap_fetch_section_range(const struct mime_part *parts, size_t nparts,
                             const struct fetch_item *it, uint64_t *start_r, uint64_t *len_r);

/* Appends to out the fields of the header block hdr (CRLF or LF lines,
 * folded continuation lines kept with their field) named (not named when
 * not_in) in fields, then the blank line. */
void imap_fetch_header_fields(const char *hdr, size_t len, const char *const *fields, bool not_in,
                              struct buf *out);

/* Incremental Content-Transfer-Encoding decoder for BINARY: feed encoded
 * chunks of any size, then finish. Decoded bytes are appended to out. */
struct fetch_decoder {
	enum mime_encoding enc;
	struct buf carry; /* base64: alphabet bytes not yet a quad; QP: a partial line */
};
void imap_fetch_decoder_init(struct fetch_decoder *d, enum mime_encoding enc);
void imap_fetch_decoder_feed(struct fetch_decoder *d, const void *p, size_t len, struct buf *out);
void imap_fetch_decoder_finish(struct fetch_decoder *d, struct buf *out);

/* "17-Jul-1996 02:44:25 +0000" (UTC) into out[32]. */
void imap_fetch_format_date(int64_t t, char out[32]);

#endif
