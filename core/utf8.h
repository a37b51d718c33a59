/* utf8.h - well-formed UTF-8, one definition for every module.
 *
 * Well-formed means RFC 3629: no overlong forms, no surrogates (U+D800 to
 * U+DFFF), nothing above U+10FFFF, no sequence cut short. NUL is a
 * character like any other here; callers that cannot carry it check. */
#ifndef ROOST_CORE_UTF8_H
#define ROOST_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the sequence at s[0..len) (1 for ASCII) with its code point in
 * *cp_r, or 0 if it is not well-formed. len must be at least 1. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp_r);

/* The same, without the code point. */
size_t utf8_seq_len(const unsigned char *s, size_t len);

/* How many bytes from s on are ASCII (checked eight at a time). */
size_t utf8_ascii_span(const unsigned char *s, size_t len);

/* The length of s[0..len) cut to at most max bytes, backed up to the
 * start of a character (a UTF-8 continuation byte never begins the rest). */
size_t utf8_cut(const char *s, size_t len, size_t max);

/* Writes code point cp (at most U+10FFFF, not a surrogate) to out as
 * UTF-8; returns the bytes written (1 to 4). */
size_t utf8_encode(uint32_t cp, char out[4]);

/* Whether s[0..len) is all well-formed UTF-8. */
bool utf8_valid(const void *s, size_t len);

#endif
