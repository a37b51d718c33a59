/* arena.h - memory with a lifetime.
 *
 * A session owns one arena and each command another, reset after the command
 * (STYLE.md). Allocations are never freed one by one; arena_reset() frees
 * everything at once and keeps the first block for reuse. */
#ifndef ROOST_ARENA_H
#define ROOST_ARENA_H

#include <stddef.h>

struct arena;

struct arena *arena_new(size_t block_size);
/* Frees the arena and everything allocated from it; sets *a to NULL. */
void arena_destroy(struct arena **a);
/* Frees every allocation; pointers from this arena become invalid. */
void arena_reset(struct arena *a);
/* Zeroed, 16-byte aligned memory valid until the next reset/destroy. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_memdup0(struct arena *a, const void *p, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bytes handed out since the last reset (for limits and tests). */
size_t arena_used(const struct arena *a);

#endif
