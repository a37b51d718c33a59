/* mime.h - the streaming MIME parser (RFC 5322, 2045-2049, 2047, 2231).
 *
 * Runs once when a message first arrives (DESIGN.md, "parse once"). It is fed
 * the raw message in chunks of any size and never holds more than the header
 * blocks and what it needs for search text and preview; bodies are not kept.
 * The result carries everything IMAP needs so FETCH never re-parses:
 *   - the rendered IMAP ENVELOPE, BODY and BODYSTRUCTURE strings (RFC 3501
 *     section 7.4.2 / RFC 9051 section 7.5.2), including nested
 *     message/rfc822 envelopes and extension data (disposition, language,
 *     location, MD5, parameters with RFC 2231 continuations decoded);
 *   - a part table with octet offsets into the raw message, so BODY[1.2],
 *     BODY[1.2.HEADER], BODY[1.2.MIME], BODY[TEXT] are slices of the blob;
 *   - decoded (RFC 2047, charset -> UTF-8) header values for SEARCH and SORT;
 *   - search text (decoded text/... bodies, UTF-8) and a short preview.
 * Broken mail (missing boundaries, bad encodings, raw 8-bit headers, absurd
 * nesting, NULs) never crashes the parser or fails the parse: it degrades to
 * treating the offending part as opaque text/plain and keeps going. The raw
 * message is stored by the caller regardless.
 *
 * Thread-safety: a parser is used by one thread; different parsers are
 * independent. */
#ifndef ROOST_MIME_H
#define ROOST_MIME_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mime_limits {
	unsigned max_depth;      /* deeper parts become opaque leaves (config mime_depth) */
	unsigned max_parts;      /* later parts stay inside their parent (config mime_parts) */
	size_t max_header_bytes; /* one header block; past it the rest is body (default 1 MiB) */
	size_t max_search_text;  /* bytes of search text kept (default 1 MiB) */
	size_t preview_chars;    /* characters of preview (default 200) */
};
void mime_limits_default(struct mime_limits *l);

enum mime_encoding {
	MIME_ENC_7BIT = 0,
	MIME_ENC_8BIT,
	MIME_ENC_BINARY,
	MIME_ENC_QP,
	MIME_ENC_BASE64,
	MIME_ENC_OTHER, /* unknown token: served raw, BINARY[] answers UNKNOWN-CTE */
};

#define MIME_PART_MULTIPART 0x01 /* multipart/...: has children, body is the raw multipart body */
#define MIME_PART_MESSAGE                                                                          \
	0x02                /* message/rfc822 or message/global: one child, the inner message      \
	                     */
#define MIME_PART_TEXT 0x04 /* text/... */

/* One entry of the part table, in depth-first order. Offsets are octets from
 * the start of the raw message.
 *
 * Index 0 is the whole message: section "", header = the top-level header
 * (including the blank line that ends it, BODY[HEADER]), body = everything
 * after it (BODY[TEXT]).
 * A part "1.2": header = its MIME header block including the blank line
 * (BODY[1.2.MIME]), body = its content (BODY[1.2]).
 * A message/rfc822 (or message/global) part "2": body = the whole
 * encapsulated message, inner_header_len = the size of that message's own
 * header, so BODY[2.HEADER] is body_start .. body_start+inner_header_len and
 * BODY[2.TEXT] is the rest. Its inner message's parts follow as "2.1", "2.2"...
 * with parent = the index of "2".
 * A non-multipart message (top level or encapsulated) also lists its body as
 * part "1" (or "2.1"), as IMAP numbers it; that entry's header is the
 * message's header. */
struct mime_part {
	char section[64]; /* "1.2.3"; "" for the top level */
	int parent;       /* index of the parent entry, -1 for index 0 */
	unsigned flags;   /* MIME_PART_* */
	enum mime_encoding encoding;
	char type[32];    /* lower-case, e.g. "text", "multipart" */
	char subtype[64]; /* lower-case, e.g. "plain", "mixed" */
	char charset[40]; /* lower-case charset parameter, "" if none */
	uint64_t header_start, header_len;
	uint64_t body_start, body_len;
	uint64_t body_lines; /* lines in the body (for BODYSTRUCTURE text and message parts) */
	uint64_t inner_header_len; /* MIME_PART_MESSAGE only, see above */
};

struct mime_message {
	/* Rendered IMAP strings (parenthesised lists, NUL-terminated). */
	char *envelope;
	char *body;          /* BODY: without extension data */
	char *bodystructure; /* BODYSTRUCTURE: with extension data */
	/* The part table. parts[0] is the whole message. */
	struct mime_part *parts;
	size_t nparts;
	/* Top-level header values, decoded to UTF-8 ("" when absent). */
	char *subject;
	char *from; /* address lists as "Name <a@b>, c@d" */
	char *to, *cc, *bcc, *reply_to, *sender;
	char *message_id, *in_reply_to, *references;
	char *headers; /* all top-level fields, unfolded, "Name: value\n" each */
	bool has_date;
	time_t date;          /* Date: header in UTC seconds, when has_date */
	uint64_t size;        /* octets fed */
	uint64_t header_size; /* octets of the top-level header incl. the blank line */
	char *search_text;    /* decoded text bodies and subject, UTF-8, cut at max_search_text */
	char *preview;  /* first preview_chars characters of the main text, whitespace folded */
	bool truncated; /* a limit (depth, parts, header size) was hit */
};

struct mime_parser;

struct mime_parser *mime_parser_new(const struct mime_limits *limits);
/* Feed the next bytes of the raw message; chunks may split anything,
 * including CRLF pairs and boundary lines. Never fails. */
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* Ends the input and returns the result (caller frees with mime_message_free).
 * The parser is destroyed and *p set to NULL. */
struct mime_message *mime_parser_finish(struct mime_parser **p);
/* Convenience: parse a whole message in memory. */
struct mime_message *mime_parse(const void *data, size_t len, const struct mime_limits *limits);
void mime_message_free(struct mime_message **m);

/* Index of the part with the given section ("" is 0), or -1. Sections
 * are dot-separated positive numbers without leading zeros. */
int mime_part_find(const struct mime_part *parts, size_t nparts, const char *section);

/* Pack the part table into a compact, versioned binary form for the store
 * (messages.parts) and back. Unpack validates everything (offsets within
 * size, parents in range) and returns -1 on any corruption. */
void mime_parts_pack(const struct mime_part *parts, size_t nparts, struct buf *out);
int mime_parts_unpack(const void *data, size_t len, uint64_t message_size,
                      struct mime_part **parts_r, size_t *nparts_r);

/* Decoders shared with IMAP BINARY and SEARCH. They append to out and return
 * 0, or -1 if the input is not valid in that encoding (out then holds what
 * could be decoded). */
int mime_decode_base64(const void *in, size_t len, struct buf *out);
int mime_decode_qp(const void *in, size_t len, struct buf *out);
/* Decodes RFC 2047 encoded-words in a header value to UTF-8; raw 8-bit input
 * that is not UTF-8 is taken as Latin-1. */
void mime_decode_header(const void *in, size_t len, struct buf *out);
/* Converts text in charset to UTF-8 (iconv); unknown charsets are taken as
 * UTF-8 with invalid bytes replaced by U+FFFD. */
void mime_to_utf8(const char *charset, const void *in, size_t len, struct buf *out);
/* Parses an RFC 5322 date (with the obsolete forms). 0 on success. */
int mime_parse_date(const char *s, time_t *r);

#endif
