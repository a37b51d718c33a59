#include "arena.h"

#include "xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_block *head; /* current block; older ones follow */
	size_t block_size;
	size_t total;
};

static struct arena_block *arena_block_new(size_t size)
{
	struct arena_block *blk = xmalloc(sizeof(*blk) + size);
	blk->next = NULL;
	blk->size = size;
	blk->used = 0;
	return blk;
}

struct arena *arena_new(size_t block_size)
{
	struct arena *a = xcalloc(1, sizeof(*a));
	a->block_size = block_size < 256 ? 256 : block_size;
	a->head = arena_block_new(a->block_size);
	return a;
}

void arena_destroy(struct arena **ap)
{
	struct arena *a = *ap;
	if (a == NULL)
		return;
	struct arena_block *blk = a->head;
	while (blk != NULL) {
		struct arena_block *next = blk->next;
		free(blk);
		blk = next;
	}
	free(a);
	*ap = NULL;
}

void arena_reset(struct arena *a)
{
	/* Keep only the oldest (first allocated, standard-sized) block. */
	struct arena_block *blk = a->head;
	while (blk->next != NULL) {
		struct arena_block *next = blk->next;
		free(blk);
		blk = next;
	}
	if (blk->size != a->block_size) {
		free(blk);
		blk = arena_block_new(a->block_size);
	}
	blk->used = 0;
	a->head = blk;
	a->total = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
	if (size > SIZE_MAX - 32)
		size = SIZE_MAX - 32; /* xmalloc will fail on it */
	size_t need = (size + 15) & ~(size_t)15;
	struct arena_block *blk = a->head;
	if (blk->size - blk->used < need) {
		size_t bsize = need > a->block_size ? need : a->block_size;
		struct arena_block *nb = arena_block_new(bsize);
		/* Insert behind the head when oversized, so the head keeps its room. */
		if (need > a->block_size / 2 && blk->size - blk->used > 64) {
			nb->next = blk->next;
			blk->next = nb;
			blk = nb;
		} else {
			nb->next = blk;
			a->head = nb;
			blk = nb;
		}
	}
	void *p = blk->data + blk->used;
	blk->used += need;
	a->total += need;
	memset(p, 0, size);
	return p;
}

char *arena_memdup0(struct arena *a, const void *p, size_t n)
{
	char *d = arena_alloc(a, n + 1);
	if (n > 0)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup0(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	char *d = arena_alloc(a, (size_t)n + 1);
	vsnprintf(d, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return d;
}

size_t arena_used(const struct arena *a)
{
	return a->total;
}
