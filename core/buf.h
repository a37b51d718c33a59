/* buf.h - the one growable, binary-safe byte string of Roost.
 *
 * A buf owns its bytes, always keeps them NUL-terminated (the NUL is not
 * counted in len), and never grows past its maximum: appends that would
 * exceed it fail with -1 and leave the buffer unchanged. Use this instead of
 * strcpy/strcat/sprintf everywhere (STYLE.md). */
#ifndef ROOST_BUF_H
#define ROOST_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define BUF_NO_LIMIT ((size_t)-1 / 2)

struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* largest len allowed */
};

/* Initialise an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Free the bytes; the buffer is left empty and reusable. */
void buf_free(struct buf *b);
/* Forget the contents, keep the allocation. */
void buf_reset(struct buf *b);
/* Make sure len + extra fits without reallocation. -1 if past max. */
int buf_reserve(struct buf *b, size_t extra);

int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Append s with CR, LF, control bytes, '"' and '\\' escaped as \r \n \xHH,
 * cut after at most max_in input bytes (then "..." is appended).
 * For echoing untrusted text in replies and logs. */
int buf_append_escaped(struct buf *b, const void *s, size_t n, size_t max_in);

/* Always a valid C string ("" for an empty buffer). Valid until the next
 * change to the buffer. */
const char *buf_cstr(const struct buf *b);
/* Drop len bytes from the front (shifting the rest down). */
void buf_consume(struct buf *b, size_t n);
/* Shorten to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);
/* Hand the bytes to the caller (free() them); the buffer is left empty. */
char *buf_steal(struct buf *b, size_t *len_r);

/* Helpers for byte strings that are not bufs. */
bool mem_eq_ci(const void *a, size_t alen, const char *b);
bool str_starts_ci(const char *s, const char *prefix);

#endif
