/* strnum.h - strict number parsing (no atoi, STYLE.md).
 *
 * Every function parses the whole input: no sign, no leading or trailing
 * space, no empty string, and fails with -1 on overflow or any stray byte. */
#ifndef ROOST_STRNUM_H
#define ROOST_STRNUM_H

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only, value <= max. */
int str_to_u64(const char *s, uint64_t max, uint64_t *r);
int mem_to_u64(const char *s, size_t len, uint64_t max, uint64_t *r);
int str_to_u32(const char *s, uint32_t *r);
/* A size with an optional suffix K, M, G, T (powers of 1024; also KB, MB, KiB...),
 * case-insensitive, e.g. "10M", "512k", "1GiB", "12345". */
int str_to_size(const char *s, uint64_t *r);
/* A duration with an optional suffix s, m, h, d (seconds when absent). */
int str_to_seconds(const char *s, uint64_t *r);
/* Formats bytes as "10M"-style text into out (at least 24 bytes). */
void size_format(uint64_t bytes, char *out, size_t outlen);

#endif
